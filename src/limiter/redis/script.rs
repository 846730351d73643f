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

/// The batched GCRA: counts `ARGV[1]` hits at once.
///
/// `KEYS[1]`: the key's state (a hash: `tat`, `ban`, `off`); `KEYS[2]`: its ban key (for
/// listing and late joiners). `ARGV`: hits, period (µs, may be fractional), tolerance `tau`
/// (µs), `ban_for` (ms, 0: no ban policy), growth, `max_ban` (ms), the ban channel, and the
/// message tail `limit|subject`.
///
/// Reply: `{status, micros, offence, accepted, malformed}` with status 0 allowed (micros: how
/// far the TAT is ahead), 1 banned (micros left; nothing counted), 2 ban started (its length),
/// 3 limited (micros until the next hit conforms).
pub(super) const GCRA: &str = r#"
local malformed = 0
local function num(v)
  if not v then return nil end
  local x = tonumber(v)
  if x == nil or x ~= x or x < 0 or x == math.huge then malformed = 1; return nil end
  return x
end
local function fmt(x) return string.format('%.3f', x) end
local n = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local ban_for = tonumber(ARGV[4]) * 1000
local growth = tonumber(ARGV[5])
local max_ban = tonumber(ARGV[6]) * 1000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local st = redis.call('HMGET', KEYS[1], 'tat', 'ban', 'off')
local tat = num(st[1]) or now
local ban = num(st[2]) or 0
local off = num(st[3]) or 0
if ban > now then
  return {1, math.ceil(ban - now), off, 0, malformed}
end
if tat < now then tat = now end
local fit = math.floor((tau - (tat - now)) / period) + 1
if fit < 0 then fit = 0 end
local accepted = math.min(n, fit)
tat = tat + accepted * period
if accepted < n and ban_for > 0 then
  if off > 0 and now < ban + max_ban then off = off + 1 else off = 1 end
  local len = ban_for * (growth ^ (off - 1))
  if len ~= len or len > max_ban then len = max_ban end
  ban = now + len
  redis.call('HSET', KEYS[1], 'tat', fmt(now), 'ban', fmt(ban), 'off', string.format('%d', off))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((len + max_ban) / 1000) + 1))
  local ms = string.format('%d', math.ceil(len / 1000))
  redis.call('SET', KEYS[2], string.format('%d', off), 'PX', ms)
  redis.call('PUBLISH', ARGV[7], 'ban|' .. ms .. '|' .. string.format('%d', off) .. '|' .. ARGV[8])
  return {2, math.ceil(len), off, accepted, malformed}
end
local keep = tat - now
if off > 0 and ban + max_ban - now > keep then keep = ban + max_ban - now end
redis.call('HSET', KEYS[1], 'tat', fmt(tat))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(keep / 1000) + 1))
if accepted < n then
  return {3, math.ceil(tat - now - tau), 0, accepted, malformed}
end
return {0, math.ceil(tat - now), 0, accepted, malformed}
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

/// A reply of the GCRA script, and whether the stored state was malformed; `None` when the
/// reply itself is not what the script returns.
pub(super) fn parse_gcra(reply: &Value) -> Option<(Shared, bool)> {
    let Value::Array(items) = reply else {
        return None;
    };
    let mut n = items.iter().map(|v| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    });
    let mut next = || n.next().flatten();
    let (status, micros, offence, _accepted, malformed) =
        (next()?, next()?, next()?, next()?, next()?);
    let micros = u64::try_from(micros).unwrap_or(0);
    let offence = u32::try_from(offence).unwrap_or(u32::MAX);
    let shared = match status {
        0 => Shared::Allowed,
        1 => Shared::Banned { micros, offence },
        2 => Shared::BanStarted { micros, offence },
        3 => Shared::Limited { micros },
        _ => return None,
    };
    Some((shared, malformed != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_and_odd_ones_do_not() {
        let reply = |v: &[i64]| Value::Array(v.iter().map(|&i| Value::Int(i)).collect());
        assert_eq!(
            parse_gcra(&reply(&[0, 10, 0, 1, 0])),
            Some((Shared::Allowed, false))
        );
        assert_eq!(
            parse_gcra(&reply(&[2, 60_000_000, 3, 0, 1])),
            Some((
                Shared::BanStarted {
                    micros: 60_000_000,
                    offence: 3
                },
                true
            ))
        );
        assert_eq!(
            parse_gcra(&reply(&[3, 5, 0, 0, 0])),
            Some((Shared::Limited { micros: 5 }, false))
        );
        assert_eq!(parse_gcra(&reply(&[9, 0, 0, 0, 0])), None);
        assert_eq!(parse_gcra(&reply(&[0, 0])), None);
        assert_eq!(parse_gcra(&Value::Nil), None);
    }
}
