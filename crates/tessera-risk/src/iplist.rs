//! Operator lists of addresses: anonymizers (Tor exit nodes, VPN and hosting
//! ranges) and known-malicious addresses, as text files the operator keeps
//! (reloaded by the service when they change).
//!
//! One address or CIDR range per line; `#` starts a comment; blank lines are
//! skipped; anything after the address (separated by whitespace) is a label
//! kept for the evidence. A file is read whole or refused with the first bad
//! line's number (the list in use then stays as it was). Ranges are merged and
//! looked up by binary search.

use std::net::IpAddr;

use ipnet::IpNet;

/// The most entries a list holds, and the longest line.
pub const MAX_ENTRIES: usize = 2_000_000;
pub const MAX_LINE: usize = 512;
/// The longest label kept.
const MAX_LABEL: usize = 64;

/// Why a list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A list of address ranges, each with its label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList {
    /// Merged, sorted, disjoint: (first, last, label index).
    v4: Vec<(u32, u32, u32)>,
    v6: Vec<(u128, u128, u32)>,
    labels: Vec<String>,
}

impl IpList {
    /// Reads a list file.
    pub fn parse(text: &str) -> Result<IpList, ListError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut labels: Vec<String> = vec![String::new()];
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let refuse = |message: String| ListError { line, message };
            if raw.len() > MAX_LINE {
                return Err(refuse(format!("longer than {MAX_LINE} bytes")));
            }
            let content = raw.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let mut parts = content.split_whitespace();
            let address = parts.next().unwrap_or_default();
            let label: String = parts
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_LABEL)
                .collect();
            let net = match address.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match address.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(refuse(format!(
                            "{:?} is not an IP address or CIDR range",
                            address.chars().take(60).collect::<String>()
                        )));
                    }
                },
            };
            if v4.len() + v6.len() >= MAX_ENTRIES {
                return Err(refuse(format!("more than {MAX_ENTRIES} entries")));
            }
            let label_index = match labels.iter().position(|l| *l == label) {
                Some(at) => at,
                None if labels.len() < 1024 => {
                    labels.push(label);
                    labels.len() - 1
                }
                None => 0,
            } as u32;
            match net.trunc() {
                IpNet::V4(net) => v4.push((
                    u32::from(net.network()),
                    u32::from(net.broadcast()),
                    label_index,
                )),
                IpNet::V6(net) => v6.push((
                    u128::from(net.network()),
                    u128::from(net.broadcast()),
                    label_index,
                )),
            }
        }
        Ok(IpList {
            v4: merge(v4),
            v6: merge(v6),
            labels,
        })
    }

    /// How many ranges the list holds after merging.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of the range holding `ip` (empty when the line had none), or
    /// `None` when no range holds it. An IPv4 address mapped into IPv6
    /// (`::ffff:a.b.c.d`) is found by an IPv4 line as well as an IPv6 one.
    pub fn find(&self, ip: IpAddr) -> Option<&str> {
        let label = match ip {
            IpAddr::V4(v4) => lookup(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .and_then(|v4| lookup(&self.v4, u32::from(v4)))
                .or_else(|| lookup(&self.v6, u128::from(v6))),
        }?;
        Some(self.labels.get(label as usize).map_or("", String::as_str))
    }
}

/// Sorts and merges overlapping ranges (the first range's label wins where
/// they overlap), and adjacent ones with the same label.
fn merge<T: Copy + Ord + num::Step>(mut ranges: Vec<(T, T, u32)>) -> Vec<(T, T, u32)> {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T, u32)> = Vec::with_capacity(ranges.len());
    for (first, last, label) in ranges {
        match merged.last_mut() {
            Some(previous)
                if first <= previous.1
                    || (T::follows(previous.1, first) && label == previous.2) =>
            {
                if last > previous.1 {
                    previous.1 = last;
                }
            }
            _ => merged.push((first, last, label)),
        }
    }
    merged
}

fn lookup<T: Copy + Ord>(ranges: &[(T, T, u32)], ip: T) -> Option<u32> {
    let at = ranges.partition_point(|(first, _, _)| *first <= ip);
    let (_, last, label) = ranges.get(at.checked_sub(1)?)?;
    (ip <= *last).then_some(*label)
}

/// Adjacency of integers, for merging.
mod num {
    pub trait Step {
        /// Whether `next` is `this + 1`.
        fn follows(this: Self, next: Self) -> bool;
    }
    impl Step for u32 {
        fn follows(this: u32, next: u32) -> bool {
            this.checked_add(1) == Some(next)
        }
    }
    impl Step for u128 {
        fn follows(this: u128, next: u128) -> bool {
            this.checked_add(1) == Some(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn lists_read_and_answer() {
        let list = IpList::parse(
            "# Tor exits\n185.220.101.7 tor\n\n203.0.113.0/24  hosting: example\n203.0.114.0/24\n2001:db8::/32 vpn # trailing\n10.0.0.5/8\n",
        )
        .unwrap_or_default();
        assert_eq!(list.find(ip("185.220.101.7")), Some("tor"));
        assert_eq!(list.find(ip("185.220.101.8")), None);
        assert_eq!(list.find(ip("203.0.113.255")), Some("hosting: example"));
        // Adjacent ranges keep their own labels.
        assert_eq!(list.find(ip("203.0.114.9")), Some(""));
        assert_eq!(list.find(ip("2001:db8:1::1")), Some("vpn"));
        assert_eq!(list.find(ip("::ffff:185.220.101.7")), Some("tor"));
        // A host address with a prefix is its network.
        assert_eq!(list.find(ip("10.255.255.255")), Some(""));
        assert_eq!(list.find(ip("11.0.0.0")), None);
        assert_eq!(list.len(), 5);
        // Overlapping and adjacent ranges of one label merge.
        let merged = IpList::parse("10.0.0.0/24\n10.0.1.0/24\n10.0.0.128/25\n").unwrap_or_default();
        assert_eq!(merged.len(), 1);
    }

    #[test]
    fn bad_lines_refuse_the_file() {
        let refused = IpList::parse("1.2.3.4\nnot-an-ip\n").unwrap_err();
        assert_eq!(refused.line, 2);
        assert!(refused.to_string().contains("not an IP address"));
        assert!(IpList::parse(&"1".repeat(MAX_LINE + 1)).is_err());
        assert!(IpList::parse("1.2.3.4/33").is_err());
        assert!(IpList::parse("").unwrap_or_default().is_empty());
    }

    #[test]
    fn the_whole_space_is_one_range() {
        let list = IpList::parse("0.0.0.0/0\n::/0\n").unwrap_or_default();
        assert!(list.find(ip("255.255.255.255")).is_some());
        assert!(list.find(ip("ffff::1")).is_some());
        // A mapped address is found by an IPv6 range that holds it too.
        let mapped = IpList::parse("::ffff:0:0/96\n").unwrap_or_default();
        assert!(mapped.find(ip("::ffff:1.2.3.4")).is_some());
        assert!(mapped.find(ip("1.2.3.4")).is_none());
    }
}
