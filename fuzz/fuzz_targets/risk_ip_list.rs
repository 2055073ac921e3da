//! Operator IP lists (anonymizers, malicious addresses) are files from
//! elsewhere: reading any text never panics, stays within the bounds, and a
//! list read answers every lookup the way a plain scan of its lines would.
#![no_main]

use std::net::IpAddr;

use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use tessera_risk::iplist::{IpList, MAX_ENTRIES};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(list) = IpList::parse(text) else {
        return;
    };
    assert!(list.len() <= MAX_ENTRIES);
    // Every listed network's first and last addresses are found, and the
    // addresses just outside are found only if some line covers them.
    let nets: Vec<IpNet> = text
        .lines()
        .filter_map(|l| l.split('#').next())
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|a| {
            a.parse::<IpNet>()
                .ok()
                .or_else(|| a.parse::<IpAddr>().ok().map(IpNet::from))
        })
        .collect();
    // A line covers an address; an IPv4 line covers its mapped IPv6 form too.
    let covered = |ip: IpAddr| {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        nets.iter()
            .any(|n| n.trunc().contains(&ip) || mapped.is_some_and(|m| n.trunc().contains(&m)))
    };
    for net in nets.iter().take(64) {
        let net = net.trunc();
        for ip in [net.network(), net.broadcast()] {
            assert!(list.find(ip).is_some(), "{ip} of {net}");
        }
        let outside = match net {
            IpNet::V4(n) => u32::from(n.broadcast())
                .checked_add(1)
                .map(|x| IpAddr::from(std::net::Ipv4Addr::from(x))),
            IpNet::V6(n) => u128::from(n.broadcast())
                .checked_add(1)
                .map(|x| IpAddr::from(std::net::Ipv6Addr::from(x))),
        };
        if let Some(ip) = outside {
            assert_eq!(list.find(ip).is_some(), covered(ip), "{ip}");
        }
    }
});
