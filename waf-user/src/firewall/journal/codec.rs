//! The journal's binary records and their framing: `[u32 length][u32
//! CRC-32][payload]`, little endian. A frame whose length or checksum does
//! not hold is damage (a torn tail after a crash, a bad sector): the reader
//! stops at it and counts what it skipped.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::firewall::types::{Ban, BanMeta, BanSource, ListKind, ListRecord, Offences};

/// The longest payload a frame may carry (a reason or comment is bounded far
/// below this).
pub const MAX_FRAME: usize = 1 << 20;
/// Bytes of framing before each payload.
pub const FRAME_HEADER: usize = 8;

/// One change to the firewall's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A ban was made or updated.
    Ban(Ban),
    /// A ban was lifted (by an operator, or because it expired).
    Unban(IpNet),
    /// Escalation memory of a source.
    History(IpNet, Offences),
    /// Escalation memory of a source forgotten.
    Forget(IpNet),
    /// An entry was added to a list through the API.
    ListAdd(ListKind, IpNet, ListRecord),
    /// An API entry was removed from a list.
    ListRemove(ListKind, IpNet),
    /// Modes set through the API (override the config's until changed).
    Mode {
        /// Monitor mode.
        monitor: Option<bool>,
        /// Emergency mode.
        emergency: Option<bool>,
    },
}

/// Records that only snapshots hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapRecord {
    /// The first record: what the snapshot covers.
    Header {
        /// Log segments up to this number are in the snapshot.
        seq: u64,
    },
    /// A reason text, referred to by bans below by its number.
    Reason(u32, Arc<str>),
    /// A ban whose reason is a number.
    Ban(IpNet, BanMeta, u32),
    /// Any other state record.
    State(Record),
    /// The last record: how many came before it (a truncated snapshot is
    /// refused).
    End(u64),
}

mod tag {
    pub const BAN: u8 = 1;
    pub const UNBAN: u8 = 2;
    pub const HISTORY: u8 = 3;
    pub const FORGET: u8 = 4;
    pub const LIST_ADD: u8 = 5;
    pub const LIST_REMOVE: u8 = 6;
    pub const MODE: u8 = 7;
    pub const HEADER: u8 = 0x40;
    pub const REASON: u8 = 0x41;
    pub const SNAP_BAN: u8 = 0x42;
    pub const END: u8 = 0x43;
}

/// The snapshot's magic bytes (inside its header record).
const MAGIC: &[u8; 8] = b"WAFSNAP2";

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The payload ended early.
    #[error("record cut short")]
    Short,
    /// An unknown tag or value.
    #[error("bad record: {0}")]
    Bad(&'static str),
}

// ---- writing ----

fn put_net(out: &mut Vec<u8>, n: &IpNet) {
    match n {
        IpNet::V4(n) => {
            out.extend_from_slice(&[4, n.prefix_len()]);
            out.extend_from_slice(&n.addr().octets());
        }
        IpNet::V6(n) => {
            out.extend_from_slice(&[6, n.prefix_len()]);
            out.extend_from_slice(&n.addr().octets());
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Texts are bounded long before this; cut at a char boundary if not.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_meta(out: &mut Vec<u8>, m: &BanMeta) {
    out.extend_from_slice(&m.created.to_le_bytes());
    out.extend_from_slice(&m.expires.to_le_bytes());
    out.extend_from_slice(&m.offence.to_le_bytes());
    out.push(m.source.to_byte());
}

/// A fleet ban's origin, after the ban's other fields (fleet bans only, so
/// records written before fleet sources existed read as they were).
fn put_origin(out: &mut Vec<u8>, m: &BanMeta) {
    if m.source == BanSource::Fleet {
        put_str(out, m.origin.name().as_deref().unwrap_or(""));
    }
}

fn opt_bool(b: Option<bool>) -> u8 {
    match b {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

fn encode_record(out: &mut Vec<u8>, r: &Record) {
    match r {
        Record::Ban(b) => {
            out.push(tag::BAN);
            put_net(out, &b.net);
            put_meta(out, &b.meta);
            put_str(out, &b.meta.reason);
            put_origin(out, &b.meta);
        }
        Record::Unban(n) => {
            out.push(tag::UNBAN);
            put_net(out, n);
        }
        Record::History(n, o) => {
            out.push(tag::HISTORY);
            put_net(out, n);
            out.extend_from_slice(&o.count.to_le_bytes());
            out.extend_from_slice(&o.last_end.to_le_bytes());
            for t in o.recent {
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
        Record::Forget(n) => {
            out.push(tag::FORGET);
            put_net(out, n);
        }
        Record::ListAdd(k, n, e) => {
            out.push(tag::LIST_ADD);
            out.push(list_byte(*k));
            put_net(out, n);
            out.extend_from_slice(&e.created.to_le_bytes());
            put_str(out, &e.comment);
        }
        Record::ListRemove(k, n) => {
            out.push(tag::LIST_REMOVE);
            out.push(list_byte(*k));
            put_net(out, n);
        }
        Record::Mode { monitor, emergency } => {
            out.extend_from_slice(&[tag::MODE, opt_bool(*monitor), opt_bool(*emergency)]);
        }
    }
}

fn encode_snap(out: &mut Vec<u8>, r: &SnapRecord) {
    match r {
        SnapRecord::Header { seq } => {
            out.push(tag::HEADER);
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&seq.to_le_bytes());
        }
        SnapRecord::Reason(id, text) => {
            out.push(tag::REASON);
            out.extend_from_slice(&id.to_le_bytes());
            put_str(out, text);
        }
        SnapRecord::Ban(net, meta, reason) => {
            out.push(tag::SNAP_BAN);
            put_net(out, net);
            put_meta(out, meta);
            out.extend_from_slice(&reason.to_le_bytes());
            put_origin(out, meta);
        }
        SnapRecord::State(r) => encode_record(out, r),
        SnapRecord::End(n) => {
            out.push(tag::END);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn list_byte(k: ListKind) -> u8 {
    match k {
        ListKind::Allow => 0,
        ListKind::Block => 1,
    }
}

/// Appends `payload_of` framed: length, checksum, payload.
fn frame(out: &mut Vec<u8>, payload_of: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    payload_of(out);
    let len = (out.len() - start - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends one framed log record.
pub fn write_record(out: &mut Vec<u8>, r: &Record) {
    frame(out, |o| encode_record(o, r));
}

/// Appends one framed snapshot record.
pub fn write_snap(out: &mut Vec<u8>, r: &SnapRecord) {
    frame(out, |o| encode_snap(o, r));
}

// ---- reading ----

/// A cursor over one payload.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.b.len() < n {
            return Err(CodecError::Short);
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn net(&mut self) -> Result<IpNet, CodecError> {
        let fam = self.u8()?;
        let len = self.u8()?;
        match fam {
            4 => {
                let a: [u8; 4] = self.arr()?;
                Ipv4Net::new(Ipv4Addr::from(a), len)
                    .map(|n| IpNet::V4(n.trunc()))
                    .map_err(|_| CodecError::Bad("IPv4 prefix length"))
            }
            6 => {
                let a: [u8; 16] = self.arr()?;
                Ipv6Net::new(Ipv6Addr::from(a), len)
                    .map(|n| IpNet::V6(n.trunc()))
                    .map_err(|_| CodecError::Bad("IPv6 prefix length"))
            }
            _ => Err(CodecError::Bad("address family")),
        }
    }

    fn str(&mut self) -> Result<Arc<str>, CodecError> {
        let n = usize::from(self.u16()?);
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(Arc::from)
            .map_err(|_| CodecError::Bad("text is not UTF-8"))
    }

    /// The origin [`put_origin`] wrote (fleet bans only).
    fn origin(&mut self, source: BanSource) -> Result<crate::firewall::Origin, CodecError> {
        if source != BanSource::Fleet {
            return Ok(crate::firewall::Origin::NONE);
        }
        let o = self.str()?;
        Ok(crate::firewall::Origin::of_opt(
            (!o.is_empty()).then_some(&*o),
        ))
    }

    fn meta_fields(&mut self) -> Result<(u32, u32, u16, BanSource), CodecError> {
        let created = self.u32()?;
        let expires = self.u32()?;
        let offence = self.u16()?;
        let source = BanSource::from_byte(self.u8()?).ok_or(CodecError::Bad("ban source"))?;
        Ok((created, expires, offence, source))
    }

    fn list(&mut self) -> Result<ListKind, CodecError> {
        match self.u8()? {
            0 => Ok(ListKind::Allow),
            1 => Ok(ListKind::Block),
            _ => Err(CodecError::Bad("list")),
        }
    }

    fn opt_bool(&mut self) -> Result<Option<bool>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(false)),
            2 => Ok(Some(true)),
            _ => Err(CodecError::Bad("mode flag")),
        }
    }

    fn done<T>(&self, v: T) -> Result<T, CodecError> {
        if self.b.is_empty() {
            Ok(v)
        } else {
            Err(CodecError::Bad("trailing bytes"))
        }
    }
}

fn decode_state(tag: u8, r: &mut Reader<'_>) -> Result<Record, CodecError> {
    let rec = match tag {
        tag::BAN => {
            let net = r.net()?;
            let (created, expires, offence, source) = r.meta_fields()?;
            let reason = r.str()?;
            let origin = r.origin(source)?;
            Record::Ban(Ban {
                net,
                meta: BanMeta {
                    created,
                    expires,
                    offence,
                    source,
                    reason,
                    origin,
                },
            })
        }
        tag::UNBAN => Record::Unban(r.net()?),
        tag::HISTORY => {
            let net = r.net()?;
            let count = r.u16()?;
            let last_end = r.u32()?;
            let mut recent = [0u32; 4];
            for t in &mut recent {
                *t = r.u32()?;
            }
            Record::History(
                net,
                Offences {
                    count,
                    last_end,
                    recent,
                },
            )
        }
        tag::FORGET => Record::Forget(r.net()?),
        tag::LIST_ADD => {
            let kind = r.list()?;
            let net = r.net()?;
            let created = r.u32()?;
            let comment = r.str()?;
            Record::ListAdd(kind, net, ListRecord { comment, created })
        }
        tag::LIST_REMOVE => {
            let kind = r.list()?;
            Record::ListRemove(kind, r.net()?)
        }
        tag::MODE => Record::Mode {
            monitor: r.opt_bool()?,
            emergency: r.opt_bool()?,
        },
        _ => return Err(CodecError::Bad("unknown record")),
    };
    r.done(rec)
}

/// Decodes one log payload.
pub fn decode_record(payload: &[u8]) -> Result<Record, CodecError> {
    let mut r = Reader { b: payload };
    let tag = r.u8()?;
    decode_state(tag, &mut r)
}

/// Decodes one snapshot payload.
pub fn decode_snap(payload: &[u8]) -> Result<SnapRecord, CodecError> {
    let mut r = Reader { b: payload };
    let rec = match r.u8()? {
        tag::HEADER => {
            if &r.arr::<8>()? != MAGIC {
                return Err(CodecError::Bad("not a waf snapshot of this format"));
            }
            SnapRecord::Header { seq: r.u64()? }
        }
        tag::REASON => {
            let id = r.u32()?;
            SnapRecord::Reason(id, r.str()?)
        }
        tag::SNAP_BAN => {
            let net = r.net()?;
            let (created, expires, offence, source) = r.meta_fields()?;
            let reason = r.u32()?;
            let origin = r.origin(source)?;
            let meta = BanMeta {
                created,
                expires,
                offence,
                source,
                reason: Arc::from(""),
                origin,
            };
            SnapRecord::Ban(net, meta, reason)
        }
        tag::END => SnapRecord::End(r.u64()?),
        t => return decode_state(t, &mut r).map(SnapRecord::State),
    };
    r.done(rec)
}

/// The outcome of reading frames from a buffer.
pub enum Frame<'a> {
    /// A good payload, and the offset after it.
    Good(&'a [u8], usize),
    /// The buffer ends here.
    End,
    /// Damage at this offset: a bad length or checksum, or a cut frame.
    Damaged,
}

/// Reads the frame at `at` in `buf`.
pub fn next_frame(buf: &[u8], at: usize) -> Frame<'_> {
    if at >= buf.len() {
        return Frame::End;
    }
    let Some(head) = buf.get(at..at + FRAME_HEADER) else {
        return Frame::Damaged;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 || len > MAX_FRAME {
        return Frame::Damaged;
    }
    let start = at + FRAME_HEADER;
    let Some(payload) = buf.get(start..start + len) else {
        return Frame::Damaged;
    };
    if crc32fast::hash(payload) != crc {
        return Frame::Damaged;
    }
    Frame::Good(payload, start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        vec![
            Record::Ban(Ban {
                net: net("192.0.2.1/32"),
                meta: BanMeta {
                    created: 1,
                    expires: 0,
                    offence: 3,
                    source: BanSource::RateLimit,
                    reason: Arc::from("rate limit: 900 packets/s"),
                    origin: crate::firewall::Origin::NONE,
                },
            }),
            Record::Ban(Ban {
                net: net("198.51.100.0/24"),
                meta: BanMeta {
                    created: 2,
                    expires: 90,
                    offence: 1,
                    source: BanSource::Fleet,
                    reason: Arc::from("manual"),
                    origin: crate::firewall::Origin::of("node-a"),
                },
            }),
            Record::Unban(net("2001:db8::/64")),
            Record::History(
                net("2001:db8::/64"),
                Offences {
                    count: 2,
                    last_end: 9,
                    recent: [8, 7, 0, 0],
                },
            ),
            Record::Forget(net("198.51.100.0/24")),
            Record::ListAdd(
                ListKind::Block,
                net("203.0.113.0/24"),
                ListRecord {
                    comment: Arc::from("ünïcode"),
                    created: 5,
                },
            ),
            Record::ListRemove(ListKind::Allow, net("10.0.0.0/8")),
            Record::Mode {
                monitor: Some(true),
                emergency: None,
            },
        ]
    }

    #[test]
    fn every_record_round_trips() {
        let mut buf = Vec::new();
        for r in records() {
            write_record(&mut buf, &r);
        }
        let mut at = 0;
        let mut back = Vec::new();
        while let Frame::Good(p, next) = next_frame(&buf, at) {
            back.push(decode_record(p).unwrap());
            at = next;
        }
        assert_eq!(back, records());
        assert_eq!(at, buf.len());
    }

    #[test]
    fn damage_is_found_at_every_cut_and_flip() {
        let mut buf = Vec::new();
        write_record(&mut buf, &records()[0]);
        for cut in 1..buf.len() {
            assert!(
                matches!(next_frame(&buf[..cut], 0), Frame::Damaged),
                "{cut}"
            );
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x20;
            assert!(
                !matches!(next_frame(&bad, 0), Frame::Good(..)),
                "flip at {i} not seen"
            );
        }
    }

    #[test]
    fn a_bad_payload_is_an_error_not_a_panic() {
        for p in [&[][..], &[1], &[1, 9, 0], &[0x42, 4, 33, 1, 2, 3, 4], &[99]] {
            assert!(decode_record(p).is_err(), "{p:?}");
            assert!(decode_snap(p).is_err(), "{p:?}");
        }
    }
}
