//! Snapshots of the bucket, for hosts that join a large fleet.
//!
//! nats-server 2.9 delivers the history of a million keys to a watch in
//! 7-9 s here, the first value after 4-5 s (`cargo xtask bench fleet`),
//! so a million shared bans would take longer than that to reach a
//! joining host one entry at a time. A
//! host that follows the bucket writes, now and then, the bucket's live
//! bans as of a revision into a JetStream object (`<bucket>_snap`, object
//! `bans`, in chunks); a joining host reads it (tens of megabytes, in
//! chunks of 128 kB), applies it in large owner commands, and watches the
//! bucket from the revision after it. The bucket stays the truth: a
//! snapshot is only a faster way to read it.
//!
//! The format is binary, versioned and checked (CRC-32); a snapshot that
//! does not decode, is for another bucket's stream, or is ahead of the
//! stream, is ignored (counted) and the host reads the bucket entry by
//! entry.
//!
//! ```text
//! "WAFSNAP1" revision:u64 written:u64 node:str8
//! origins:u32 { str8 }  reasons:u32 { str16 }
//! bans:u32 { net expires:u32 created:u32 offence:u16 source:u8 origin:u16 reason:u32 }
//! holes:u32 { net }     crc32:u32
//! net = family:u8 (4|6) prefix:u8 address (4|16 bytes)
//! ```
//!
//! Holes are keys the writer holds no value for (a ban its allowlist
//! refused, say): the reader fetches them one by one.

use std::{collections::HashMap, net::IpAddr};

use ipnet::IpNet;

use crate::firewall::BanSource;

const MAGIC: &[u8; 8] = b"WAFSNAP1";
/// The most origins (hosts) a snapshot names.
const MAX_ORIGINS: usize = 4096;

/// A ban in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapBan {
    /// Address or prefix.
    pub net: IpNet,
    /// Unix seconds (0: permanent).
    pub expires: u32,
    /// Unix seconds.
    pub created: u32,
    /// The origin's offence count.
    pub offence: u16,
    /// What made it on its origin.
    pub source: BanSource,
    /// Index into [`Snapshot::origins`].
    pub origin: u16,
    /// Index into [`Snapshot::reasons`].
    pub reason: u32,
}

/// The bucket's live bans as of a revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The bucket's stream sequence the snapshot covers.
    pub revision: u64,
    /// When it was written (Unix seconds).
    pub written: u64,
    /// The host that wrote it.
    pub node: String,
    /// Host names the bans refer to.
    pub origins: Vec<String>,
    /// Reasons the bans refer to.
    pub reasons: Vec<String>,
    /// The bans.
    pub bans: Vec<SnapBan>,
    /// Keys with a value the writer could not describe.
    pub holes: Vec<IpNet>,
}

/// Builds a [`Snapshot`], interning origins and reasons.
#[derive(Default)]
pub struct Builder {
    snap: Snapshot,
    origins: HashMap<String, u16>,
    reasons: HashMap<String, u32>,
}

impl Builder {
    /// A snapshot of `revision` written by `node` at `written`.
    pub fn new(revision: u64, written: u64, node: &str) -> Self {
        Self {
            snap: Snapshot {
                revision,
                written,
                node: cut(node, u8::MAX as usize).to_string(),
                ..Snapshot::default()
            },
            ..Self::default()
        }
    }

    /// Adds a ban; false when its origin would be one too many.
    #[allow(clippy::too_many_arguments)]
    pub fn ban(
        &mut self,
        net: IpNet,
        expires: u32,
        created: u32,
        offence: u16,
        source: BanSource,
        origin: &str,
        reason: &str,
    ) -> bool {
        let origin = cut(origin, u8::MAX as usize);
        let o = match self.origins.get(origin) {
            Some(o) => *o,
            None if self.snap.origins.len() >= MAX_ORIGINS => return false,
            None => {
                let o = self.snap.origins.len() as u16;
                self.snap.origins.push(origin.to_string());
                self.origins.insert(origin.to_string(), o);
                o
            }
        };
        let reason = cut(reason, u16::MAX as usize);
        let r = match self.reasons.get(reason) {
            Some(r) => *r,
            None => {
                let r = self.snap.reasons.len() as u32;
                self.snap.reasons.push(reason.to_string());
                self.reasons.insert(reason.to_string(), r);
                r
            }
        };
        self.snap.bans.push(SnapBan {
            net,
            expires,
            created,
            offence,
            source,
            origin: o,
            reason: r,
        });
        true
    }

    /// Adds a key the reader must fetch itself.
    pub fn hole(&mut self, net: IpNet) {
        self.snap.holes.push(net);
    }

    /// The snapshot, its bans and holes in address order (a reader
    /// applies them in that order: its ordered maps stay in cache).
    pub fn finish(mut self) -> Snapshot {
        self.snap.bans.sort_unstable_by_key(|b| b.net);
        self.snap.holes.sort_unstable();
        self.snap
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put_net(out: &mut Vec<u8>, net: &IpNet) {
    match net.addr() {
        IpAddr::V4(a) => {
            out.extend_from_slice(&[4, net.prefix_len()]);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.extend_from_slice(&[6, net.prefix_len()]);
            out.extend_from_slice(&a.octets());
        }
    }
}

impl Snapshot {
    /// The bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.bans.len() * 36 + self.holes.len() * 18);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.revision.to_le_bytes());
        out.extend_from_slice(&self.written.to_le_bytes());
        let node = cut(&self.node, u8::MAX as usize);
        out.push(node.len() as u8);
        out.extend_from_slice(node.as_bytes());
        out.extend_from_slice(&(self.origins.len() as u32).to_le_bytes());
        for o in &self.origins {
            let o = cut(o, u8::MAX as usize);
            out.push(o.len() as u8);
            out.extend_from_slice(o.as_bytes());
        }
        out.extend_from_slice(&(self.reasons.len() as u32).to_le_bytes());
        for r in &self.reasons {
            let r = cut(r, u16::MAX as usize);
            out.extend_from_slice(&(r.len() as u16).to_le_bytes());
            out.extend_from_slice(r.as_bytes());
        }
        out.extend_from_slice(&(self.bans.len() as u32).to_le_bytes());
        for b in &self.bans {
            put_net(&mut out, &b.net);
            out.extend_from_slice(&b.expires.to_le_bytes());
            out.extend_from_slice(&b.created.to_le_bytes());
            out.extend_from_slice(&b.offence.to_le_bytes());
            out.push(b.source.to_byte());
            out.extend_from_slice(&b.origin.to_le_bytes());
            out.extend_from_slice(&b.reason.to_le_bytes());
        }
        out.extend_from_slice(&(self.holes.len() as u32).to_le_bytes());
        for h in &self.holes {
            put_net(&mut out, h);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a snapshot; an error says what is wrong (never a panic, and
    /// never more memory than the input's size warrants).
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < MAGIC.len() + 4 || &b[..MAGIC.len()] != MAGIC {
            return Err("not a waf snapshot (magic)".into());
        }
        let (body, crc) = b.split_at(b.len() - 4);
        let crc = u32::from_le_bytes(crc.try_into().map_err(|_| "crc")?);
        if crc32fast::hash(body) != crc {
            return Err("checksum mismatch: damaged or cut short".into());
        }
        let mut r = Reader {
            b: &body[MAGIC.len()..],
        };
        let revision = r.u64()?;
        let written = r.u64()?;
        let node = r.str8()?;
        let n = r.count(2)?;
        if n > MAX_ORIGINS {
            return Err(format!("{n} origins: more than {MAX_ORIGINS}"));
        }
        let origins = (0..n).map(|_| r.str8()).collect::<Result<Vec<_>, _>>()?;
        let n = r.count(2)?;
        let reasons = (0..n).map(|_| r.str16()).collect::<Result<Vec<_>, _>>()?;
        let n = r.count(23)?;
        let mut bans = Vec::with_capacity(n);
        for i in 0..n {
            let net = r.net()?;
            let expires = r.u32()?;
            let created = r.u32()?;
            let offence = r.u16()?;
            let source =
                BanSource::from_byte(r.u8()?).ok_or_else(|| format!("ban {i}: unknown source"))?;
            let origin = r.u16()?;
            let reason = r.u32()?;
            if usize::from(origin) >= origins.len() || reason as usize >= reasons.len() {
                return Err(format!("ban {i}: origin or reason out of range"));
            }
            bans.push(SnapBan {
                net,
                expires,
                created,
                offence,
                source,
                origin,
                reason,
            });
        }
        let n = r.count(6)?;
        let holes = (0..n).map(|_| r.net()).collect::<Result<Vec<_>, _>>()?;
        if !r.b.is_empty() {
            return Err(format!("{} bytes after the end", r.b.len()));
        }
        Ok(Self {
            revision,
            written,
            node,
            origins,
            reasons,
            bans,
            holes,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.b.len() < n {
            return Err("cut short".into());
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().map_err(|_| "u16")?,
        ))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "u32")?,
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "u64")?,
        ))
    }

    /// A count of items of at least `min` bytes each: no larger than what
    /// is left could hold.
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() {
            return Err(format!("{n} items cannot fit in {} bytes", self.b.len()));
        }
        Ok(n)
    }

    fn str8(&mut self) -> Result<String, String> {
        let n = usize::from(self.u8()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "not UTF-8".into())
    }

    fn str16(&mut self) -> Result<String, String> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "not UTF-8".into())
    }

    fn net(&mut self) -> Result<IpNet, String> {
        let family = self.u8()?;
        let prefix = self.u8()?;
        let addr = match family {
            4 => IpAddr::from(<[u8; 4]>::try_from(self.take(4)?).map_err(|_| "v4")?),
            6 => IpAddr::from(<[u8; 16]>::try_from(self.take(16)?).map_err(|_| "v6")?),
            f => return Err(format!("address family {f}")),
        };
        let net = IpNet::new(addr, prefix).map_err(|_| format!("prefix /{prefix}"))?;
        if net.trunc() != net {
            return Err(format!("{net}: host bits set"));
        }
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Snapshot {
        let mut b = Builder::new(42, 1_700_000_000, "a");
        for (i, n) in ["192.0.2.1/32", "2001:db8::/64", "203.0.113.0/24"]
            .iter()
            .enumerate()
        {
            let origin = if i == 1 { "b" } else { "a" };
            assert!(b.ban(
                n.parse().unwrap(),
                i as u32 * 100,
                7,
                i as u16 + 1,
                BanSource::Detection,
                origin,
                "detection: sqli"
            ));
        }
        b.hole("198.51.100.0/24".parse().unwrap());
        b.finish()
    }

    #[test]
    fn snapshots_round_trip_and_intern() {
        let s = sample();
        assert_eq!(s.origins, ["a", "b"]);
        assert_eq!(s.reasons, ["detection: sqli"]);
        let bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), s);
    }

    #[test]
    fn damage_is_an_error() {
        let bytes = sample().encode();
        for cut in [0, 8, 20, bytes.len() - 1] {
            assert!(Snapshot::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(Snapshot::decode(&flipped).unwrap_err().contains("checksum"));
    }

    #[test]
    fn origins_are_bounded() {
        let mut b = Builder::new(1, 1, "a");
        let net: IpNet = "192.0.2.1/32".parse().unwrap();
        for i in 0..MAX_ORIGINS {
            assert!(b.ban(net, 0, 0, 1, BanSource::Manual, &i.to_string(), "r"));
        }
        assert!(!b.ban(net, 0, 0, 1, BanSource::Manual, "one more", "r"));
    }

    fn arb_net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<[u8; 4]>(), 0u8..=32)
                .prop_map(|(a, p)| IpNet::new(IpAddr::from(a), p).unwrap().trunc()),
            (any::<[u8; 16]>(), 0u8..=128)
                .prop_map(|(a, p)| IpNet::new(IpAddr::from(a), p).unwrap().trunc()),
        ]
    }

    proptest! {
        /// Whatever goes in comes out; any bytes give a snapshot or an
        /// error, never a panic; a snapshot re-encodes to the same bytes.
        #[test]
        fn any_snapshot_round_trips(
            bans in proptest::collection::vec(
                (arb_net(), any::<u32>(), any::<u32>(), any::<u16>(), 0u8..6, "[a-c]{1,3}", ".{0,40}"),
                0..40,
            ),
            holes in proptest::collection::vec(arb_net(), 0..5),
            revision in any::<u64>(),
        ) {
            let mut b = Builder::new(revision, 9, "node");
            for (net, e, c, o, s, origin, reason) in &bans {
                let source = BanSource::from_byte(*s).unwrap_or(BanSource::Manual);
                prop_assert!(b.ban(*net, *e, *c, *o, source, origin, reason));
            }
            for h in &holes {
                b.hole(*h);
            }
            let s = b.finish();
            let bytes = s.encode();
            let back = Snapshot::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(back.encode(), bytes);
        }

        #[test]
        fn any_bytes_decode_or_err(mut bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Snapshot::decode(&bytes);
            // With a valid frame around them, too.
            let mut framed = MAGIC.to_vec();
            framed.append(&mut bytes);
            let crc = crc32fast::hash(&framed);
            framed.extend_from_slice(&crc.to_le_bytes());
            let _ = Snapshot::decode(&framed);
        }
    }
}
