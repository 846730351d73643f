//! The Lua scripts run inside Redis: a batched GCRA with bans, and an operator's ban.
//!
//! Both read the time from Redis (`TIME`), never from the instance that calls them, so the
//! clocks of the app instances do not enter the shared count. Times inside Redis are in
//! microseconds since the Unix epoch (Lua numbers are doubles: exact to well below a
//! microsecond at today's epoch). Every number written back is formatted explicitly
//! (`string.format`), as Redis would otherwise print it with 14 significant digits.
//!
//! A stored field that does not parse as a non-negative number is treated as missing, and the
//! reply says so (its last element), so that the syncer can report it.

use redis::Value;

/// The batched GCRA: one call counts the pending hits of many keys, and answers for each.
///
/// `KEYS[1]`: the batch's idempotency key (`<prefix>:batch:<instance>:<sequence>`); then, for
/// each key `k` of the batch, `KEYS[2k]` its state (a hash: `tat`, `ban`, `off`) and
/// `KEYS[2k+1]` its ban key (for listing and late joiners).
///
/// `ARGV`: the idempotency key's TTL (ms), the ban channel, the number `L` of limits in the
/// table that follows, `L` times (period in µs, may be fractional; tolerance `tau` in µs;
/// `ban_for` in ms, 0: no ban policy; growth; `max_ban` in ms), then for each key: its hits,
/// its limit's index in the table (from 1), and the message tail `limit|subject`.
///
/// The call first records the batch (`SET NX PX`). When the batch was recorded already (a
/// resend of a call whose reply was lost), nothing is counted again: each key is only read,
/// and its answer says where it stands now.
///
/// Reply: `{replayed, then per key: status, micros, offence, accepted, malformed}`, with
/// status 0 allowed (micros: how far the TAT is ahead), 1 banned (micros left; nothing
/// counted), 2 ban started (its length), 3 limited (micros until the next hit conforms).
/// A state that is not a hash (another type under the key) is deleted and counted afresh, and
/// reported as malformed like a field that does not parse.
pub(super) const GCRA_BATCH: &str = r#"
local malformed = 0
local function num(v)
  if not v then return nil end
  local x = tonumber(v)
  if x == nil or x ~= x or x < 0 or x == math.huge then malformed = 1; return nil end
  return x
end
local function fmt(x) return string.format('%.3f', x) end
local replay = not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
local channel = ARGV[2]
local limits = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function one(sk, bk, n, l, tail)
  local period = tonumber(ARGV[l])
  local tau = tonumber(ARGV[l + 1])
  local ban_for = tonumber(ARGV[l + 2]) * 1000
  local growth = tonumber(ARGV[l + 3])
  local max_ban = tonumber(ARGV[l + 4]) * 1000
  local st = redis.pcall('HMGET', sk, 'tat', 'ban', 'off')
  if type(st) == 'table' and st.err then
    malformed = 1
    if not replay then redis.call('DEL', sk) end
    st = {}
  end
  local tat = num(st[1]) or now
  local ban = num(st[2]) or 0
  local off = num(st[3]) or 0
  if ban > now then
    return 1, math.ceil(ban - now), off, 0
  end
  if tat < now then tat = now end
  if replay then
    if tat - now > tau then return 3, math.ceil(tat - now - tau), 0, 0 end
    return 0, math.ceil(tat - now), 0, 0
  end
  local fit = math.floor((tau - (tat - now)) / period) + 1
  if fit < 0 then fit = 0 end
  local accepted = math.min(n, fit)
  tat = tat + accepted * period
  if accepted < n and ban_for > 0 then
    if off > 0 and now < ban + max_ban then off = off + 1 else off = 1 end
    local len = ban_for * (growth ^ (off - 1))
    if len ~= len or len > max_ban then len = max_ban end
    ban = now + len
    redis.call('HSET', sk, 'tat', fmt(now), 'ban', fmt(ban), 'off', string.format('%d', off))
    redis.call('PEXPIRE', sk, string.format('%d', math.ceil((len + max_ban) / 1000) + 1))
    local ms = string.format('%d', math.ceil(len / 1000))
    redis.call('SET', bk, string.format('%d', off), 'PX', ms)
    redis.call('PUBLISH', channel, 'ban|' .. ms .. '|' .. string.format('%d', off) .. '|' .. tail)
    return 2, math.ceil(len), off, accepted
  end
  local keep = tat - now
  if off > 0 and ban + max_ban - now > keep then keep = ban + max_ban - now end
  redis.call('HSET', sk, 'tat', fmt(tat))
  redis.call('PEXPIRE', sk, string.format('%d', math.ceil(keep / 1000) + 1))
  if accepted < n then
    return 3, math.ceil(tat - now - tau), 0, accepted
  end
  return 0, math.ceil(tat - now), 0, accepted
end

local out = {replay and 1 or 0}
local a = 4 + 5 * limits
local k = 1
while a + 2 <= #ARGV do
  malformed = 0
  local status, micros, off, accepted = one(KEYS[2 * k], KEYS[2 * k + 1], tonumber(ARGV[a]),
    4 + 5 * (tonumber(ARGV[a + 1]) - 1), ARGV[a + 2])
  out[#out + 1] = status
  out[#out + 1] = micros
  out[#out + 1] = off
  out[#out + 1] = accepted
  out[#out + 1] = malformed
  a = a + 3
  k = k + 1
end
return out
"#;

/// An operator's ban: `KEYS[1]` state, `KEYS[2]` ban key; `ARGV`: length (ms), the ban
/// channel, the message tail `limit|subject`, and how long offences are remembered (ms). A ban
/// already running longer is kept; no offence is counted. Reply: `{ms left, malformed}`.
pub(super) const BAN: &str = r#"
local malformed = 0
local function num(v)
  if not v then return nil end
  local x = tonumber(v)
  if x == nil or x ~= x or x < 0 or x == math.huge then malformed = 1; return nil end
  return x
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local st = redis.call('HMGET', KEYS[1], 'ban', 'off')
local ban = num(st[1]) or 0
local off = num(st[2]) or 0
local untl = now + tonumber(ARGV[1]) * 1000
if ban > untl then untl = ban end
local left = math.ceil((untl - now) / 1000)
redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', now), 'ban', string.format('%.3f', untl),
  'off', string.format('%d', off))
redis.call('PEXPIRE', KEYS[1], string.format('%d', left + tonumber(ARGV[4]) + 1))
redis.call('SET', KEYS[2], string.format('%d', off), 'PX', string.format('%d', left))
redis.call('PUBLISH', ARGV[2], 'ban|' .. string.format('%d', left) .. '|' .. string.format('%d', off) .. '|' .. ARGV[3])
return {left, malformed}
"#;

/// An unban: `KEYS[1]` the registry of limit names; `ARGV`: the key prefix, the subject's
/// tag, the ban channel. Deletes the subject's state and ban key under every registered
/// limit, publishes the unban, and answers how many keys it deleted.
pub(super) const UNBAN: &str = r#"
local deleted = 0
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local tail = name .. '|' .. ARGV[2]
  deleted = deleted + redis.call('DEL', ARGV[1] .. ':s:' .. tail, ARGV[1] .. ':ban:' .. tail)
end
redis.call('PUBLISH', ARGV[3], 'unban|' .. ARGV[2])
return deleted
"#;

/// What the GCRA script answered for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shared {
    /// Under the limit.
    Allowed,
    /// Banned for this many µs more; the hits were not counted.
    Banned { micros: u64, offence: u32 },
    /// A ban of this many µs started with these hits.
    BanStarted { micros: u64, offence: u32 },
    /// Over the limit; the next hit conforms in this many µs.
    Limited { micros: u64 },
}

/// What the batched GCRA script answered for one key: its answer, and whether its stored
/// state was malformed.
pub(super) type KeyAnswer = (Shared, bool);

/// A reply of the batched GCRA script for `keys` keys: whether the batch had been applied
/// before (a resend), and each key's answer (`None` for a key whose part of the reply is not
/// what the script returns). `None` when the reply as a whole is not the script's.
pub(super) fn parse_batch(reply: &Value, keys: usize) -> Option<(bool, Vec<Option<KeyAnswer>>)> {
    let Value::Array(items) = reply else {
        return None;
    };
    if items.len() != 1 + 5 * keys {
        return None;
    }
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    };
    let replayed = match int(&items[0])? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let answers = items[1..].chunks(5).map(|five| {
        let [status, micros, offence, _accepted, malformed] = five else {
            return None;
        };
        let micros = u64::try_from(int(micros)?).unwrap_or(0);
        let offence = u32::try_from(int(offence)?).unwrap_or(u32::MAX);
        let shared = match int(status)? {
            0 => Shared::Allowed,
            1 => Shared::Banned { micros, offence },
            2 => Shared::BanStarted { micros, offence },
            3 => Shared::Limited { micros },
            _ => return None,
        };
        Some((shared, int(malformed)? != 0))
    });
    Some((replayed, answers.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_and_odd_ones_do_not() {
        let reply = |v: &[i64]| Value::Array(v.iter().map(|&i| Value::Int(i)).collect());
        assert_eq!(
            parse_batch(&reply(&[0, 0, 10, 0, 1, 0, 2, 60_000_000, 3, 0, 1]), 2),
            Some((
                false,
                vec![
                    Some((Shared::Allowed, false)),
                    Some((
                        Shared::BanStarted {
                            micros: 60_000_000,
                            offence: 3
                        },
                        true
                    ))
                ]
            ))
        );
        assert_eq!(
            parse_batch(&reply(&[1, 3, 5, 0, 0, 0, 9, 0, 0, 0, 0]), 2),
            Some((
                true,
                vec![Some((Shared::Limited { micros: 5 }, false)), None]
            ))
        );
        assert_eq!(parse_batch(&reply(&[0, 0, 0, 0, 0, 0]), 2), None);
        assert_eq!(parse_batch(&reply(&[2]), 0), None);
        assert_eq!(parse_batch(&Value::Nil, 0), None);
    }
}
