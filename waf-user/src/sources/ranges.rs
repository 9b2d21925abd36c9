//! The range compiler: turns overlapping labelled networks and address
//! ranges (countries, ASNs, cloud ranges, CIDR lists, bogons) into the
//! disjoint prefixes the XDP program's longest-prefix-match sets hold, each
//! with the label of the highest-priority input covering it.
//!
//! It is a sweep over the sorted range boundaries in `u128` arithmetic (both
//! families), so a million inputs compile in a fraction of a second; the
//! output is the smallest list of prefixes giving every address its label:
//! runs of adjacent addresses with the same label are merged before they are
//! split into prefixes, so no two output prefixes are same-label siblings.

use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why an address range cannot be added to a [`Compiler`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// One end is IPv4, the other IPv6: such a range means nothing.
    #[error("address range {start} - {end} mixes IPv4 and IPv6")]
    MixedFamilies {
        /// The first address.
        start: IpAddr,
        /// The last address.
        end: IpAddr,
    },
    /// The last address is below the first: probably swapped ends.
    #[error("address range {start} - {end} ends before it starts")]
    Reversed {
        /// The first address.
        start: IpAddr,
        /// The last address.
        end: IpAddr,
    },
}

/// An address family: the number of address bits and how addresses look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// Address bits: 32 or 128.
    fn bits(self) -> u32 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }

    /// The highest address as an integer.
    fn max(self) -> u128 {
        match self {
            Self::V4 => u128::from(u32::MAX),
            Self::V6 => u128::MAX,
        }
    }

    /// The prefix starting at `addr` (an integer of this family) of
    /// `len` bits; `len` is at most `bits()` by construction.
    fn net(self, addr: u128, len: u8) -> IpNet {
        match self {
            // `addr` fits: it never exceeds `max()` for IPv4.
            Self::V4 => IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(addr as u32), len)),
            Self::V6 => IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(addr), len)),
        }
    }
}

/// An address as (family, integer).
fn split_addr(addr: IpAddr) -> (Family, u128) {
    match addr {
        IpAddr::V4(a) => (Family::V4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (Family::V6, u128::from(a)),
    }
}

/// One input: the inclusive integer range, its priority and its label.
#[derive(Debug, Clone, Copy)]
struct Span<L> {
    start: u128,
    end: u128,
    priority: u32,
    label: L,
}

/// Collects labelled networks and ranges and compiles them into disjoint
/// labelled prefixes.
///
/// Every address gets the label of the input with the highest priority that
/// covers it; **among inputs of equal priority the one added last wins** (so
/// a later, more specific list can override an earlier one without a
/// priority of its own). Addresses no input covers are absent from the
/// output. Labels are compared with `Eq` only: two inputs with equal labels
/// are interchangeable, and adjacent addresses with equal labels are
/// aggregated into as few prefixes as possible.
#[derive(Debug, Clone)]
pub struct Compiler<L> {
    v4: Vec<Span<L>>,
    v6: Vec<Span<L>>,
}

impl<L> Default for Compiler<L> {
    fn default() -> Self {
        Self {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

impl<L: Copy + Eq> Compiler<L> {
    /// An empty compiler.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of inputs added so far (both families).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every address of `net` (its host bits are ignored:
    /// `10.0.0.1/8` is `10.0.0.0/8`).
    pub fn add_net(&mut self, net: IpNet, priority: u32, label: L) {
        let (family, start) = split_addr(net.network());
        let (_, end) = split_addr(net.broadcast());
        self.push(family, start, end, priority, label);
    }

    /// Adds the addresses `start..=end` of one family.
    ///
    /// # Errors
    ///
    /// When the ends are of different families or `end` is below `start`.
    pub fn add_range(
        &mut self,
        start: IpAddr,
        end: IpAddr,
        priority: u32,
        label: L,
    ) -> Result<(), RangeError> {
        let (family, s) = split_addr(start);
        let (end_family, e) = split_addr(end);
        if family != end_family {
            return Err(RangeError::MixedFamilies { start, end });
        }
        if e < s {
            return Err(RangeError::Reversed { start, end });
        }
        self.push(family, s, e, priority, label);
        Ok(())
    }

    fn push(&mut self, family: Family, start: u128, end: u128, priority: u32, label: L) {
        let span = Span {
            start,
            end,
            priority,
            label,
        };
        match family {
            Family::V4 => self.v4.push(span),
            Family::V6 => self.v6.push(span),
        }
    }

    /// The disjoint prefixes with their labels, sorted by address, IPv4
    /// then IPv6; no two of them are siblings with the same label.
    pub fn compile(self) -> Vec<(IpNet, L)> {
        let mut out = Vec::new();
        sweep(&self.v4, Family::V4, &mut out);
        sweep(&self.v6, Family::V6, &mut out);
        out
    }
}

/// Compiles one family's spans into `out`: walks the boundaries in address
/// order keeping the covering spans in a max-heap of (priority, index) with
/// lazy deletion, merges consecutive segments with equal winning labels and
/// splits each merged run into prefixes.
fn sweep<L: Copy + Eq>(spans: &[Span<L>], family: Family, out: &mut Vec<(IpNet, L)>) {
    if spans.is_empty() {
        return;
    }
    let max = family.max();
    let mut starts: Vec<(u128, usize)> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.start, i))
        .collect();
    // A span ending at the top of the address space never stops covering.
    let mut stops: Vec<(u128, usize)> = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.end < max)
        .map(|(i, s)| (s.end + 1, i))
        .collect();
    starts.sort_unstable_by_key(|&(at, _)| at);
    stops.sort_unstable_by_key(|&(at, _)| at);

    let mut heap: BinaryHeap<(u32, usize)> = BinaryHeap::with_capacity(spans.len());
    let mut gone = vec![false; spans.len()];
    let (mut i, mut j) = (0, 0);
    // The run being built: its first address and its label.
    let mut run: Option<(u128, L)> = None;
    loop {
        let at = match (starts.get(i), stops.get(j)) {
            (Some(&(a, _)), Some(&(b, _))) => a.min(b),
            (Some(&(a, _)), None) => a,
            (None, Some(&(b, _))) => b,
            (None, None) => break,
        };
        while let Some(&(_, k)) = stops.get(j).filter(|&&(b, _)| b == at) {
            gone[k] = true;
            j += 1;
        }
        while let Some(&(_, k)) = starts.get(i).filter(|&&(a, _)| a == at) {
            heap.push((spans[k].priority, k));
            i += 1;
        }
        while heap.peek().is_some_and(|&(_, k)| gone[k]) {
            heap.pop();
        }
        let label = heap.peek().map(|&(_, k)| spans[k].label);
        if run.is_some_and(|(_, l)| Some(l) == label) {
            continue;
        }
        if let Some((first, l)) = run.take() {
            // `at` > `first`: the run began at an earlier boundary.
            emit(first, at - 1, family, l, out);
        }
        run = label.map(|l| (at, l));
    }
    if let Some((first, l)) = run {
        emit(first, max, family, l, out);
    }
}

/// Pushes the prefixes covering `first..=last` with `label`.
fn emit<L: Copy>(first: u128, last: u128, family: Family, label: L, out: &mut Vec<(IpNet, L)>) {
    split(first, last, family.bits(), |addr, len| {
        out.push((family.net(addr, len), label));
    });
}

/// Calls `f(addr, len)` for each prefix of the classic greedy split of
/// `first..=last` (`first <= last`, both below 2^`bits`): at each step the
/// largest aligned block that starts at the current address and does not
/// pass `last`. That is the smallest exact cover: at most 2 * `bits`
/// prefixes, no two of them siblings.
fn split(first: u128, last: u128, bits: u32, mut f: impl FnMut(u128, u8)) {
    let mut at = first;
    loop {
        let rest = last - at; // addresses left, minus one
        // The largest k with 2^k - 1 <= rest.
        let fits = if rest == u128::MAX {
            128
        } else {
            127 - (rest + 1).leading_zeros()
        };
        let k = fits.min(at.trailing_zeros()).min(bits);
        // k <= bits <= 128, so the length fits a u8.
        f(at, (bits - k) as u8);
        let end = if k == 128 {
            u128::MAX
        } else {
            at + ((1u128 << k) - 1)
        };
        if end >= last {
            break;
        }
        at = end + 1;
    }
}

/// The prefixes covering exactly `start..=end`, in address order: the
/// classic range-to-CIDR split, at most 64 prefixes for IPv4 and 256 for
/// IPv6. Empty when the ends are of different families or `end` is below
/// `start` (what [`Compiler::add_range`] reports as a [`RangeError`]).
pub fn range_to_prefixes(start: IpAddr, end: IpAddr) -> Vec<IpNet> {
    let (family, s) = split_addr(start);
    let (end_family, e) = split_addr(end);
    let mut out = Vec::new();
    if family == end_family && s <= e {
        split(s, e, family.bits(), |addr, len| {
            out.push(family.net(addr, len))
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn show(out: &[(IpNet, char)]) -> Vec<String> {
        out.iter().map(|(n, l)| format!("{n} {l}")).collect()
    }

    #[test]
    fn whole_spaces_and_the_top_end() {
        assert_eq!(
            range_to_prefixes(a("0.0.0.0"), a("255.255.255.255")),
            [n("0.0.0.0/0")]
        );
        assert_eq!(
            range_to_prefixes(a("::"), a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            [n("::/0")]
        );
        assert_eq!(
            range_to_prefixes(a("255.255.255.254"), a("255.255.255.255")),
            [n("255.255.255.254/31")]
        );
        assert_eq!(
            range_to_prefixes(a("::1"), a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).len(),
            128
        );
        assert_eq!(
            range_to_prefixes(a("10.0.0.1"), a("10.0.0.1")),
            [n("10.0.0.1/32")]
        );
        assert_eq!(
            range_to_prefixes(a("10.0.0.1"), a("10.0.0.6")),
            [
                n("10.0.0.1/32"),
                n("10.0.0.2/31"),
                n("10.0.0.4/31"),
                n("10.0.0.6/32")
            ]
        );
        assert!(range_to_prefixes(a("10.0.0.2"), a("10.0.0.1")).is_empty());
        assert!(range_to_prefixes(a("10.0.0.2"), a("::1")).is_empty());
        let mut c = Compiler::new();
        c.add_net(n("0.0.0.0/0"), 0, 'a');
        c.add_net(n("::/0"), 0, 'b');
        c.add_net(n("255.255.255.255/32"), 1, 'c');
        let out = c.compile();
        assert_eq!(out.len(), 34, "{:?}", show(&out));
        assert_eq!(out[32], (n("255.255.255.255/32"), 'c'));
        assert_eq!(out[33], (n("::/0"), 'b'));
    }

    #[test]
    fn ranges_are_checked() {
        let mut c = Compiler::new();
        assert_eq!(
            c.add_range(a("10.0.0.2"), a("10.0.0.1"), 0, 'x'),
            Err(RangeError::Reversed {
                start: a("10.0.0.2"),
                end: a("10.0.0.1")
            })
        );
        let e = c.add_range(a("10.0.0.1"), a("::1"), 0, 'x').unwrap_err();
        assert_eq!(
            e.to_string(),
            "address range 10.0.0.1 - ::1 mixes IPv4 and IPv6"
        );
        assert!(c.is_empty());
        c.add_range(a("10.0.0.0"), a("10.0.0.255"), 0, 'x').unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.compile(), [(n("10.0.0.0/24"), 'x')]);
    }

    #[test]
    fn priorities_then_the_later_input_win() {
        let mut c = Compiler::new();
        c.add_net(n("10.1.0.0/16"), 2, 'b');
        c.add_net(n("10.0.0.0/8"), 1, 'a');
        c.add_net(n("10.2.0.0/16"), 1, 'c'); // same priority as 'a', later: wins
        c.add_net(n("10.2.0.0/24"), 1, 'a'); // later still: wins over 'c'
        assert_eq!(
            show(&c.compile()).join(", "),
            "10.0.0.0/16 a, 10.1.0.0/16 b, 10.2.0.0/24 a, 10.2.1.0/24 c, 10.2.2.0/23 c, \
             10.2.4.0/22 c, 10.2.8.0/21 c, 10.2.16.0/20 c, 10.2.32.0/19 c, 10.2.64.0/18 c, \
             10.2.128.0/17 c, 10.3.0.0/16 a, 10.4.0.0/14 a, 10.8.0.0/13 a, 10.16.0.0/12 a, \
             10.32.0.0/11 a, 10.64.0.0/10 a, 10.128.0.0/9 a"
        );
    }

    #[test]
    fn same_label_neighbours_aggregate() {
        let mut c = Compiler::new();
        c.add_net(n("192.0.2.128/25"), 0, 'x');
        c.add_net(n("192.0.2.0/25"), 5, 'x');
        c.add_net(n("2001:db8::/33"), 0, 'x');
        c.add_net(n("2001:db8:8000::/33"), 0, 'x');
        c.add_net(n("2001:db8:1::/48"), 9, 'x'); // covered, same label: no split
        c.add_range(a("198.51.100.0"), a("198.51.100.99"), 0, 'y')
            .unwrap();
        c.add_range(a("198.51.100.100"), a("198.51.100.255"), 0, 'y')
            .unwrap();
        assert_eq!(
            show(&c.compile()),
            ["192.0.2.0/24 x", "198.51.100.0/24 y", "2001:db8::/32 x"]
        );
        assert!(Compiler::<u8>::new().compile().is_empty());
    }

    // -- property tests ------------------------------------------------

    /// An input of the property tests: a family, an inclusive integer range,
    /// a priority and a label.
    #[derive(Debug, Clone, Copy)]
    struct In {
        v6: bool,
        start: u128,
        end: u128,
        net: bool,
        priority: u32,
        label: u8,
    }

    fn fam(v6: bool) -> Family {
        if v6 { Family::V6 } else { Family::V4 }
    }

    /// Addresses clustered near 0, near the top and in one random spot, so
    /// that inputs overlap.
    fn arb_addr(v6: bool) -> impl Strategy<Value = u128> {
        let max = fam(v6).max();
        prop_oneof![
            0u128..300,
            (0u128..300).prop_map(move |d| max - d),
            (0u128..300).prop_map(move |d| (max / 3) + d),
            any::<u128>().prop_map(move |x| x & max),
        ]
    }

    fn arb_input() -> impl Strategy<Value = In> {
        (any::<bool>(), any::<bool>(), 0u32..3, 0u8..3).prop_flat_map(
            |(v6, net, priority, label)| {
                let bits = fam(v6).bits() as u8;
                (
                    arb_addr(v6),
                    arb_addr(v6),
                    prop_oneof![bits - 9..=bits, 0..=bits],
                )
                    .prop_map(move |(x, y, len)| {
                        let (start, end) = if net {
                            let host = fam(v6).bits() - u32::from(len);
                            let mask = if host == 128 {
                                u128::MAX
                            } else {
                                (1u128 << host) - 1
                            };
                            (x & !mask, x | mask)
                        } else {
                            (x.min(y), x.max(y))
                        };
                        In {
                            v6,
                            start,
                            end,
                            net,
                            priority,
                            label,
                        }
                    })
            },
        )
    }

    fn build(inputs: &[In]) -> Vec<(IpNet, u8)> {
        let mut c = Compiler::new();
        for i in inputs {
            let f = fam(i.v6);
            if i.net {
                let len = f.bits() - (i.end - i.start).count_ones();
                c.add_net(f.net(i.start, len as u8), i.priority, i.label);
            } else {
                let (s, e) = (
                    f.net(i.start, f.bits() as u8).addr(),
                    f.net(i.end, f.bits() as u8).addr(),
                );
                c.add_range(s, e, i.priority, i.label).unwrap();
            }
        }
        c.compile()
    }

    /// The label of the highest-priority (then latest) input covering `at`.
    fn model(inputs: &[In], v6: bool, at: u128) -> Option<u8> {
        inputs
            .iter()
            .enumerate()
            .filter(|(_, i)| i.v6 == v6 && i.start <= at && at <= i.end)
            .max_by_key(|(k, i)| (i.priority, *k))
            .map(|(_, i)| i.label)
    }

    fn ends(net: &IpNet) -> (bool, u128, u128) {
        let (_, s) = split_addr(net.network());
        let (_, e) = split_addr(net.broadcast());
        (matches!(net, IpNet::V6(_)), s, e)
    }

    proptest! {
        /// The output is sorted and disjoint, every probe gets the model's
        /// label, and no two same-label outputs are siblings.
        #[test]
        fn compiles_like_the_model(
            inputs in proptest::collection::vec(arb_input(), 0..24),
            extra in proptest::collection::vec((any::<bool>(), any::<u128>()), 0..16),
        ) {
            let out = build(&inputs);
            for w in out.windows(2) {
                let (f0, _, e0) = ends(&w[0].0);
                let (f1, s1, _) = ends(&w[1].0);
                prop_assert!((f0, e0) < (f1, s1), "{:?} then {:?}", w[0], w[1]);
            }
            let mut probes: Vec<(bool, u128)> = vec![(false, 0), (false, u128::from(u32::MAX)), (true, 0), (true, u128::MAX)];
            for i in &inputs {
                let max = fam(i.v6).max();
                for p in [i.start, i.end, i.start.saturating_sub(1), i.end.saturating_add(1).min(max)] {
                    probes.push((i.v6, p));
                }
            }
            probes.extend(extra.iter().map(|&(v6, x)| (v6, x & fam(v6).max())));
            for (v6, at) in probes {
                let found: Vec<u8> = out
                    .iter()
                    .filter(|(net, _)| { let (f, s, e) = ends(net); f == v6 && s <= at && at <= e })
                    .map(|&(_, l)| l)
                    .collect();
                prop_assert!(found.len() <= 1);
                prop_assert_eq!(found.first().copied(), model(&inputs, v6, at), "at {} (v6 {})", at, v6);
            }
            let index: HashMap<IpNet, u8> = out.iter().copied().collect();
            for (net, l) in &out {
                if net.prefix_len() == 0 {
                    continue;
                }
                let (v6, s, _) = ends(net);
                let f = fam(v6);
                let sibling = f.net(s ^ (1u128 << (f.bits() - u32::from(net.prefix_len()))), net.prefix_len());
                prop_assert_ne!(index.get(&sibling), Some(l), "{} and {} both {}", net, sibling, l);
            }
        }

        /// `range_to_prefixes` covers exactly the range, in order, with at
        /// most 2 * bits prefixes and no siblings.
        #[test]
        fn splits_ranges_exactly(v6 in any::<bool>(), x in any::<u128>(), y in any::<u128>(), near in 0u8..4) {
            let f = fam(v6);
            let (mut x, mut y) = (x & f.max(), y & f.max());
            match near {
                0 => x = 0,
                1 => y = f.max(),
                2 => (x, y) = (0, f.max()),
                _ => {}
            }
            let (s, e) = (x.min(y), x.max(y));
            let bits = f.bits() as u8;
            let out = range_to_prefixes(f.net(s, bits).addr(), f.net(e, bits).addr());
            prop_assert!(!out.is_empty() && out.len() <= 2 * f.bits() as usize);
            let spans: Vec<(u128, u128)> = out.iter().map(|n| { let (_, s, e) = ends(n); (s, e) }).collect();
            prop_assert_eq!(spans[0].0, s);
            prop_assert_eq!(spans[spans.len() - 1].1, e);
            for w in spans.windows(2) {
                prop_assert_eq!(w[0].1 + 1, w[1].0);
            }
            let total = spans.iter().try_fold(0u128, |t, (s, e)| t.checked_add(e - s)?.checked_add(1));
            prop_assert_eq!(total, (e - s).checked_add(1));
            for w in out.windows(2) {
                prop_assert!(w[0].supernet() != w[1].supernet() || w[0].prefix_len() != w[1].prefix_len());
            }
        }
    }

    /// Compiles 1,000,000 networks and prints the time, for random
    /// overlapping networks and for a database-like input (disjoint sorted
    /// networks plus overlapping ranges): run with `cargo test --release
    /// -p waf-user --lib sources::ranges -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing: run in release with --ignored --nocapture"]
    fn compiles_a_million_networks() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let v4 = |a: u32, len: u8| IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), len)).trunc();
        let v6 = |a: u128, len: u8| IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(a), len)).trunc();
        let mut random = Compiler::new();
        for k in 0..1_000_000u32 {
            let r = next();
            let (label, priority) = ((r % 250) as u16, (r >> 8) as u32 % 3);
            let net = if k % 4 == 0 {
                v6(
                    (u128::from(next()) << 64) | u128::from(next()),
                    16 + (next() % 49) as u8,
                )
            } else {
                v4(next() as u32, 8 + (next() % 25) as u8)
            };
            random.add_net(net, priority, label);
        }
        let mut db = Compiler::new();
        for k in 0..700_000u32 {
            db.add_net(v4(k << 10, 22 + (k % 3) as u8), 1, (next() % 250) as u16);
        }
        for k in 0..250_000u128 {
            db.add_net(
                v6((0x2000 << 112) | (k << 84), 36 + (k % 8) as u8),
                1,
                (next() % 250) as u16,
            );
        }
        for _ in 0..50_000 {
            db.add_net(v4(next() as u32, 12 + (next() % 21) as u8), 2, 999);
        }
        for (name, c) in [("random", random), ("database-like", db)] {
            let t = std::time::Instant::now();
            let out = c.compile();
            let took = t.elapsed();
            println!(
                "{name}: compiled 1,000,000 networks into {} prefixes in {took:?}",
                out.len()
            );
        }
    }
}
