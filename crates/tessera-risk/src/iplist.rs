//! Operator lists of addresses: anonymizers (Tor exit nodes, VPN and hosting
//! ranges) and known-malicious addresses, as text files the operator keeps
//! (reloaded by the service when they change).
//!
//! One address or CIDR range per line; `#` starts a comment; blank lines are
//! skipped; anything after the address (separated by whitespace) is a label
//! kept for the evidence. A file is read whole or refused with the first bad
//! line's number (the list in use then stays as it was). Ranges are merged and
//! looked up by binary search.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// The most entries a list holds, and the longest line.
pub const MAX_ENTRIES: usize = 2_000_000;
pub const MAX_LINE: usize = 512;
/// The longest label kept, and how many distinct labels a list keeps.
const MAX_LABEL: usize = 64;
const MAX_LABELS: usize = 1024;

/// An IPv6 range inside `::ffff:0:0/96` as the IPv4 range it maps (clients are
/// looked up as IPv4 whichever way they came).
fn as_v4(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(mapped) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped);
    }
    net
}

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
        let mut label_indexes: HashMap<String, u32> = HashMap::from([(String::new(), 0)]);
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
            // Past MAX_LABELS distinct labels, later ones are kept without theirs.
            let label_index = match label_indexes.get(&label) {
                Some(at) => *at,
                None if labels.len() < MAX_LABELS => {
                    let at = labels.len() as u32;
                    label_indexes.insert(label.clone(), at);
                    labels.push(label);
                    at
                }
                None => 0,
            };
            match as_v4(net.trunc()) {
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

/// Turns the listed ranges into sorted, disjoint pieces, each with the label of
/// the most specific range holding it (CIDR ranges are nested or apart), and
/// joins neighbouring pieces of one label.
fn merge<T: Copy + Ord + num::Step>(mut ranges: Vec<(T, T, u32)>) -> Vec<(T, T, u32)> {
    // Outer ranges before the ranges they hold.
    ranges.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut pieces: Vec<(T, T, u32)> = Vec::with_capacity(ranges.len());
    // The ranges holding the current position, innermost last.
    let mut open: Vec<(T, T, u32)> = Vec::new();
    // Where the next piece starts (None: at the next range's start).
    let mut cursor: Option<T> = None;
    let emit =
        |pieces: &mut Vec<(T, T, u32)>, first: T, last: T, label: u32| match pieces.last_mut() {
            Some(previous) if previous.2 == label && T::follows(previous.1, first) => {
                previous.1 = last;
            }
            _ => pieces.push((first, last, label)),
        };
    // Closes the open ranges that end before `until` (None: all of them).
    let close = |pieces: &mut Vec<(T, T, u32)>,
                 open: &mut Vec<(T, T, u32)>,
                 cursor: &mut Option<T>,
                 until: Option<T>| {
        while let Some(&(_, last, label)) = open.last() {
            if until.is_some_and(|u| last >= u) {
                break;
            }
            if let Some(from) = *cursor
                && from <= last
            {
                emit(pieces, from, last, label);
            }
            open.pop();
            *cursor = T::next(last);
            if cursor.is_none() {
                open.clear();
            }
        }
    };
    for range in ranges {
        close(&mut pieces, &mut open, &mut cursor, Some(range.0));
        if let Some(&(_, last, label)) = open.last() {
            if range.1 <= last && range.0 >= open.last().map_or(range.0, |o| o.0) {
                // Nested: the piece of the outer range before it.
                if let Some(from) = cursor
                    && from < range.0
                    && let Some(before) = T::prev(range.0)
                {
                    emit(&mut pieces, from, before, label);
                }
            }
            // A duplicate of an open range adds nothing.
            if range.0 == open.last().map_or(range.0, |o| o.0) && range.1 == last {
                continue;
            }
        }
        cursor = Some(range.0);
        open.push(range);
    }
    close(&mut pieces, &mut open, &mut cursor, None);
    pieces
}

fn lookup<T: Copy + Ord>(ranges: &[(T, T, u32)], ip: T) -> Option<u32> {
    let at = ranges.partition_point(|(first, _, _)| *first <= ip);
    let (_, last, label) = ranges.get(at.checked_sub(1)?)?;
    (ip <= *last).then_some(*label)
}

/// Adjacency of integers, for merging.
mod num {
    pub trait Step: Sized {
        /// Whether `next` is `this + 1`.
        fn follows(this: Self, next: Self) -> bool;
        fn next(this: Self) -> Option<Self>;
        fn prev(this: Self) -> Option<Self>;
    }
    impl Step for u32 {
        fn follows(this: u32, next: u32) -> bool {
            this.checked_add(1) == Some(next)
        }
        fn next(this: u32) -> Option<u32> {
            this.checked_add(1)
        }
        fn prev(this: u32) -> Option<u32> {
            this.checked_sub(1)
        }
    }
    impl Step for u128 {
        fn follows(this: u128, next: u128) -> bool {
            this.checked_add(1) == Some(next)
        }
        fn next(this: u128) -> Option<u128> {
            this.checked_add(1)
        }
        fn prev(this: u128) -> Option<u128> {
            this.checked_sub(1)
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
    fn the_most_specific_range_names_an_address() {
        let list = IpList::parse(
            "10.0.0.0/8 big\n10.0.0.0/24 small\n10.1.2.3 host\n10.1.2.3 host\n10.255.255.255 last\n",
        )
        .unwrap_or_default();
        assert_eq!(list.find(ip("10.0.0.9")), Some("small"));
        assert_eq!(list.find(ip("10.0.1.0")), Some("big"));
        assert_eq!(list.find(ip("10.1.2.3")), Some("host"));
        assert_eq!(list.find(ip("10.1.2.2")), Some("big"));
        assert_eq!(list.find(ip("10.1.2.4")), Some("big"));
        assert_eq!(list.find(ip("10.255.255.255")), Some("last"));
        assert_eq!(list.find(ip("10.255.255.254")), Some("big"));
        assert_eq!(list.find(ip("11.0.0.0")), None);
        let top =
            IpList::parse("0.0.0.0/0 all\n255.255.255.255 top\n::/0 six\n").unwrap_or_default();
        assert_eq!(top.find(ip("255.255.255.255")), Some("top"));
        assert_eq!(top.find(ip("255.255.255.254")), Some("all"));
        assert_eq!(top.find(ip("ffff::")), Some("six"));
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
        // An IPv6 line inside ::ffff:0:0/96 is the IPv4 range it maps.
        let mapped = IpList::parse("::ffff:1.2.3.0/120 mapped\n").unwrap_or_default();
        assert_eq!(mapped.find(ip("1.2.3.4")), Some("mapped"));
        assert_eq!(mapped.find(ip("::ffff:1.2.3.4")), Some("mapped"));
    }
}
