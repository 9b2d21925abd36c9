//! Which entry of a set of networks contains a given network, in one hash
//! lookup per prefix length in use (the allowlist check runs for every
//! ban and strike: it must not scan the list).

use std::collections::HashMap;

use ipnet::IpNet;

/// Networks with a value each, looked up by containment.
#[derive(Clone, Debug)]
pub struct PrefixIndex<V> {
    /// Per (family, prefix length): masked address -> value.
    by_len: HashMap<(u8, u8), HashMap<u128, V>>,
    /// Prefix lengths in use per family, longest first.
    lens: [Vec<u8>; 2],
}

impl<V> Default for PrefixIndex<V> {
    fn default() -> Self {
        Self {
            by_len: HashMap::new(),
            lens: [Vec::new(), Vec::new()],
        }
    }
}

fn family(n: &IpNet) -> u8 {
    match n {
        IpNet::V4(_) => 0,
        IpNet::V6(_) => 1,
    }
}

fn bits(n: &IpNet) -> u128 {
    match n {
        IpNet::V4(n) => u128::from(u32::from(n.network())),
        IpNet::V6(n) => u128::from(n.network()),
    }
}

fn mask(n: &IpNet, len: u8) -> u128 {
    let width = n.max_prefix_len();
    if len == 0 {
        return 0;
    }
    let keep = !0u128 << (width - len);
    let full = if width == 128 {
        !0u128
    } else {
        (1u128 << width) - 1
    };
    bits(n) & keep & full
}

impl<V> PrefixIndex<V> {
    /// Adds (or replaces) `net`.
    pub fn insert(&mut self, net: IpNet, v: V) {
        let net = net.trunc();
        let (f, len) = (family(&net), net.prefix_len());
        self.by_len
            .entry((f, len))
            .or_default()
            .insert(mask(&net, len), v);
        let lens = &mut self.lens[usize::from(f)];
        if !lens.contains(&len) {
            lens.push(len);
            lens.sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    /// Removes `net`; returns its value.
    pub fn remove(&mut self, net: &IpNet) -> Option<V> {
        let net = net.trunc();
        let (f, len) = (family(&net), net.prefix_len());
        let m = self.by_len.get_mut(&(f, len))?;
        let v = m.remove(&mask(&net, len))?;
        if m.is_empty() {
            self.by_len.remove(&(f, len));
            self.lens[usize::from(f)].retain(|l| *l != len);
        }
        Some(v)
    }

    /// The longest entry that contains `net` (or is it), with its value.
    pub fn containing(&self, net: &IpNet) -> Option<(IpNet, &V)> {
        let f = family(net);
        for &len in &self.lens[usize::from(f)] {
            if len > net.prefix_len() {
                continue;
            }
            let key = mask(net, len);
            if let Some(v) = self.by_len.get(&(f, len)).and_then(|m| m.get(&key)) {
                let entry = match net {
                    IpNet::V4(_) => IpNet::new(std::net::Ipv4Addr::from(key as u32).into(), len),
                    IpNet::V6(_) => IpNet::new(std::net::Ipv6Addr::from(key).into(), len),
                };
                return entry.ok().map(|e| (e, v));
            }
        }
        None
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by_len.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn finds_the_longest_containing_entry() {
        let mut p = PrefixIndex::default();
        p.insert(n("10.0.0.0/8"), "a");
        p.insert(n("10.1.0.0/16"), "b");
        p.insert(n("2001:db8::/32"), "c");
        p.insert(n("0.0.0.0/0"), "all");
        assert_eq!(
            p.containing(&n("10.1.2.3/32")),
            Some((n("10.1.0.0/16"), &"b"))
        );
        assert_eq!(
            p.containing(&n("10.2.0.0/16")),
            Some((n("10.0.0.0/8"), &"a"))
        );
        assert_eq!(
            p.containing(&n("10.0.0.0/7")),
            Some((n("0.0.0.0/0"), &"all"))
        );
        assert_eq!(
            p.containing(&n("2001:db8:1::/48")),
            Some((n("2001:db8::/32"), &"c"))
        );
        assert_eq!(p.containing(&n("2001:db9::1/128")), None);
        assert_eq!(p.remove(&n("0.0.0.0/0")), Some("all"));
        assert_eq!(p.containing(&n("11.0.0.1/32")), None);
        p.insert(n("::/0"), "v6");
        assert_eq!(p.containing(&n("::1/128")), Some((n("::/0"), &"v6")));
    }

    #[test]
    fn agrees_with_a_scan() {
        let nets: Vec<IpNet> = (0..200u32)
            .map(|i| {
                let a = std::net::Ipv4Addr::from(i.wrapping_mul(0x9e37_79b9));
                IpNet::new(a.into(), (i % 33) as u8).unwrap().trunc()
            })
            .collect();
        let mut p = PrefixIndex::default();
        for (i, net) in nets.iter().enumerate() {
            p.insert(*net, i);
        }
        for i in 0..2000u32 {
            let probe = IpNet::new(
                std::net::Ipv4Addr::from(i.wrapping_mul(0x85eb_ca6b)).into(),
                (16 + i % 17) as u8,
            )
            .unwrap()
            .trunc();
            let want = nets
                .iter()
                .filter(|e| e.contains(&probe))
                .max_by_key(|e| e.prefix_len())
                .copied();
            assert_eq!(p.containing(&probe).map(|(e, _)| e), want, "{probe}");
        }
    }
}
