//! Rule lookup through the compiled snapshot agrees with a naive linear matcher.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use actix_bouncer::clock::{Clock, ManualClock};
use actix_bouncer::{NewRule, Rule, RuleAction, RuleTarget, Rules};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Spec {
    target: RuleTarget,
    allow: bool,
    ttl: Option<u64>,
}

fn v4_net() -> impl Strategy<Value = IpNet> {
    // A small address space (10.0.0.0/12) so that prefixes nest and collide often.
    (0u32..(1 << 20), 12u8..=32).prop_map(|(bits, len)| {
        let addr = Ipv4Addr::from((10u32 << 24) | bits);
        IpNet::V4(Ipv4Net::new(addr, len).unwrap().trunc())
    })
}

fn v6_net() -> impl Strategy<Value = IpNet> {
    (0u64..(1 << 24), 32u8..=128).prop_map(|(bits, len)| {
        let addr =
            Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(bits) << 72) | u128::from(bits));
        IpNet::V6(Ipv6Net::new(addr, len).unwrap().trunc())
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    let target = prop_oneof![
        6 => v4_net().prop_map(RuleTarget::Network),
        2 => v6_net().prop_map(RuleTarget::Network),
        1 => (0u8..20).prop_map(|u| RuleTarget::User(format!("u{u}"))),
    ];
    (
        target,
        prop::bool::weighted(0.2),
        prop::option::weighted(0.4, 1u64..100),
    )
        .prop_map(|(target, allow, ttl)| Spec { target, allow, ttl })
}

fn matches(rule: &Rule, ip: IpAddr, user: Option<&str>) -> bool {
    match &rule.target {
        RuleTarget::Network(net) => net.contains(&ip),
        RuleTarget::User(u) => Some(u.as_str()) == user,
        _ => false,
    }
}

fn prefix(rule: &Rule) -> i32 {
    match &rule.target {
        RuleTarget::Network(net) => i32::from(net.prefix_len()),
        RuleTarget::User(_) => -1, // user rules rank after every network
        _ => i32::MIN,
    }
}

/// Probe addresses: inside, at the edges of, and just outside every network.
fn probes(rules: &[Rule], extra: &[u32]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = extra
        .iter()
        .map(|b| IpAddr::V4(Ipv4Addr::from((10u32 << 24) | (b & 0xf_ffff))))
        .collect();
    for rule in rules.iter().take(400) {
        if let RuleTarget::Network(net) = &rule.target {
            match net {
                IpNet::V4(n) => {
                    let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                    for a in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)] {
                        out.push(IpAddr::V4(a.into()));
                    }
                }
                IpNet::V6(n) => {
                    let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                    for a in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)] {
                        out.push(IpAddr::V6(a.into()));
                    }
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn snapshot_lookup_agrees_with_a_linear_scan(
        specs in prop::collection::vec(spec(), 1000..3000),
        elapsed in 0u64..120,
        extra in prop::collection::vec(any::<u32>(), 200),
        user in prop::option::of(0u8..25),
    ) {
        let clock = ManualClock::new();
        let rules = Rules::with_clock(Arc::new(clock.clone()));
        let new: Vec<NewRule> = specs
            .iter()
            .map(|s| {
                let action = if s.allow { RuleAction::Allow } else { RuleAction::Block };
                let mut rule = NewRule::new(action, s.target.clone());
                if let Some(ttl) = s.ttl {
                    rule = rule.expires_after(Duration::from_secs(ttl));
                }
                rule
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let all = runtime.block_on(rules.add_many(new)).unwrap();
        clock.advance(Duration::from_secs(elapsed));
        let now = clock.wall();
        let user = user.map(|u| format!("u{u}"));
        let user = user.as_deref();

        for ip in probes(&all, &extra) {
            let got = rules.check(ip, user);
            let active: Vec<&Rule> = all
                .iter()
                .filter(|r| r.is_active_at(now) && matches(r, ip, user))
                .collect();
            let any_allow = active.iter().any(|r| r.action == RuleAction::Allow);
            prop_assert_eq!(got.allow.is_some(), any_allow, "allow for {}", ip);
            if let Some(id) = got.allow {
                prop_assert!(active.iter().any(|r| r.id == id && r.action == RuleAction::Allow));
                continue;
            }
            let blocks: Vec<&&Rule> = active.iter().filter(|r| r.action == RuleAction::Block).collect();
            match got.block {
                None => prop_assert!(blocks.is_empty(), "missed a block for {}", ip),
                Some(id) => {
                    let chosen = blocks.iter().find(|r| r.id == id);
                    prop_assert!(chosen.is_some(), "{} blocked by a rule that does not match", ip);
                    let chosen = chosen.unwrap();
                    let longest = blocks.iter().map(|r| prefix(r)).max().unwrap();
                    prop_assert_eq!(prefix(chosen), longest, "not the longest prefix for {}", ip);
                    prop_assert_eq!(got.block_expires, chosen.expires);
                }
            }
        }
    }
}
