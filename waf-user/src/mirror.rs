//! The passive mirror: HTTP requests reassembled from the TCP payloads the
//! XDP program samples (ports in `[mirror] ports`), inspected by the same
//! detection engine as the proxy. It cannot block a request (the packets are
//! already on their way to the server), but its detections are strikes that
//! ban the source in XDP.
//!
//! Reassembly is per flow (source, source port, destination, destination
//! port), ordered by TCP sequence number, bounded in flows, bytes per flow
//! and idle time; everything it gives up on is counted.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use waf_common::HttpSample;

use crate::{
    config::MirrorConfig,
    detect::{Engine, Verdict},
};

const FIN: u32 = 0x01;
const SYN: u32 = 0x02;
const RST: u32 = 0x04;
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];

/// A flow's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Client address.
    pub src: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Server address.
    pub dst: IpAddr,
    /// Server port.
    pub dport: u16,
}

struct Flow {
    next_seq: u32,
    buf: Vec<u8>,
    pending: BTreeMap<u32, Vec<u8>>,
    pending_bytes: usize,
    /// Body bytes of an oversized request still to skip.
    skip: usize,
    last_seen: Instant,
}

/// Mirror counters.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MirrorStats {
    /// Samples fed.
    pub samples: u64,
    /// Requests reassembled and inspected.
    pub requests: u64,
    /// Requests the engine would block.
    pub detections: u64,
    /// Requests that did not parse as HTTP.
    pub unparsable: u64,
    /// Flows evicted because the table was full.
    pub flows_evicted: u64,
    /// Flows forgotten after `flow_timeout` with data pending.
    pub flows_expired: u64,
    /// Bytes dropped: oversized or unsyncable data, truncated samples.
    pub bytes_dropped: u64,
    /// Flows open now.
    pub flows: u64,
}

/// One inspected request.
#[derive(Debug)]
pub struct Inspected {
    /// The flow it came on.
    pub flow: FlowKey,
    /// The engine's verdict.
    pub verdict: Verdict,
    /// Method and target, for the log.
    pub line: String,
}

/// The reassembler and its flows.
pub struct Mirror {
    cfg: MirrorConfig,
    engine: Arc<Engine>,
    flows: HashMap<FlowKey, Flow>,
    /// Counters.
    pub stats: MirrorStats,
}

fn addr(family: u32, a: &[u8; 16]) -> IpAddr {
    if family == 4 {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*a))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Where the first request line starts in `buf` (None: nowhere yet).
fn request_start(buf: &[u8]) -> Option<usize> {
    if METHODS.iter().any(|m| buf.starts_with(m)) {
        return Some(0);
    }
    let mut at = 0;
    while let Some(i) = find(&buf[at..], b"\n") {
        let line = at + i + 1;
        if METHODS.iter().any(|m| buf[line..].starts_with(m)) {
            return Some(line);
        }
        at = line;
    }
    None
}

/// How long the request at the start of `buf` is: `Some(n)` when complete,
/// `None` when more bytes are needed. `max` caps what is buffered: a request
/// longer than that is cut at `max` (and the rest skipped).
fn request_len(buf: &[u8], max: usize) -> Option<(usize, usize)> {
    let head_end = find(buf, b"\r\n\r\n").map(|i| i + 4)?;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let mut content_length = 0usize;
    let mut chunked = false;
    for line in head.lines().skip(1) {
        if let Some(v) = line.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("transfer-encoding:") {
            chunked = v.contains("chunked");
        }
    }
    if chunked {
        return match find(&buf[head_end..], b"0\r\n\r\n") {
            Some(i) => Some((head_end + i + 5, 0)),
            None if buf.len() >= max => Some((buf.len(), 0)),
            None => None,
        };
    }
    let total = head_end + content_length;
    if buf.len() >= total {
        Some((total, 0))
    } else if buf.len() >= max {
        Some((buf.len(), total - buf.len()))
    } else {
        None
    }
}

impl Mirror {
    /// A mirror inspecting with `engine`.
    pub fn new(cfg: &MirrorConfig, engine: Arc<Engine>) -> Self {
        Self {
            cfg: cfg.clone(),
            engine,
            flows: HashMap::new(),
            stats: MirrorStats::default(),
        }
    }

    /// Feeds one sample; returns the requests it completed, inspected.
    pub fn feed(&mut self, s: &HttpSample) -> Vec<Inspected> {
        self.stats.samples += 1;
        let key = FlowKey {
            src: addr(s.family, &s.src),
            sport: s.sport,
            dst: addr(s.family, &s.dst),
            dport: s.dport,
        };
        let now = Instant::now();
        if s.tcp_flags & SYN != 0 {
            // A new connection: its data starts right after the SYN.
            self.flows.remove(&key);
            if self.flows.len() >= self.cfg.max_flows {
                self.evict_oldest();
            }
            self.flows.insert(
                key,
                Flow {
                    next_seq: s.seq.wrapping_add(1),
                    buf: Vec::new(),
                    pending: BTreeMap::new(),
                    pending_bytes: 0,
                    skip: 0,
                    last_seen: now,
                },
            );
            self.stats.flows = self.flows.len() as u64;
            return Vec::new();
        }
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= self.cfg.max_flows {
                self.evict_oldest();
            }
            self.flows.insert(
                key,
                Flow {
                    next_seq: s.seq,
                    buf: Vec::new(),
                    pending: BTreeMap::new(),
                    pending_bytes: 0,
                    skip: 0,
                    last_seen: now,
                },
            );
        }
        let captured = (s.captured as usize).min(s.data.len());
        let data = &s.data[..captured];
        let truncated = captured < s.payload_len as usize;
        let max = self.cfg.max_request_bytes;
        let flow = self.flows.get_mut(&key).expect("inserted above");
        flow.last_seen = now;
        let delta = s.seq.wrapping_sub(flow.next_seq) as i32;
        if delta == 0 {
            append(flow, data, &mut self.stats);
            if truncated {
                // A gap we cannot fill: inspect what we have, then resync.
                self.stats.bytes_dropped += u64::from(s.payload_len) - captured as u64;
                flow.next_seq = s.seq.wrapping_add(s.payload_len);
            } else {
                flow.next_seq = s.seq.wrapping_add(captured as u32);
            }
            while let Some(seg) = flow.pending.remove(&flow.next_seq) {
                flow.pending_bytes -= seg.len();
                flow.next_seq = flow.next_seq.wrapping_add(seg.len() as u32);
                append(flow, &seg, &mut self.stats);
            }
        } else if delta > 0 {
            // Out of order: keep it for later, within bounds.
            if flow.pending_bytes + data.len() <= max && !truncated {
                flow.pending_bytes += data.len();
                flow.pending.insert(s.seq, data.to_vec());
            } else {
                self.stats.bytes_dropped += data.len() as u64;
            }
        } else {
            // A retransmission of what we already have: use only what is new.
            let old = (-delta) as usize;
            if old < data.len() {
                append(flow, &data[old..], &mut self.stats);
                flow.next_seq = s.seq.wrapping_add(captured as u32);
            }
        }
        let mut out = Vec::new();
        loop {
            let flow = self.flows.get_mut(&key).expect("present");
            match request_start(&flow.buf) {
                Some(0) => {}
                Some(at) => {
                    self.stats.bytes_dropped += at as u64;
                    flow.buf.drain(..at);
                }
                None => {
                    // Keep a tail that may hold the start of a method name.
                    let keep = flow.buf.len().min(8);
                    let drop = flow.buf.len() - keep;
                    self.stats.bytes_dropped += drop as u64;
                    flow.buf.drain(..drop);
                    break;
                }
            }
            let Some((len, skip)) = request_len(&flow.buf, max) else {
                if flow.buf.len() >= max {
                    self.stats.bytes_dropped += flow.buf.len() as u64;
                    flow.buf.clear();
                }
                break;
            };
            let raw: Vec<u8> = flow.buf.drain(..len).collect();
            flow.skip = skip;
            out.push(self.inspect(key, &raw));
        }
        if s.tcp_flags & (FIN | RST) != 0 {
            self.flows.remove(&key);
        }
        self.stats.flows = self.flows.len() as u64;
        out
    }

    fn inspect(&mut self, flow: FlowKey, raw: &[u8]) -> Inspected {
        self.stats.requests += 1;
        let line = raw
            .split(|b| *b == b'\r' || *b == b'\n')
            .next()
            .map(|l| String::from_utf8_lossy(&l[..l.len().min(200)]).into_owned())
            .unwrap_or_default();
        let verdict = match crate::http::Request::parse(raw, self.engine.limits()) {
            Ok(req) => self.engine.inspect(&req, Some(flow.src)),
            Err(_) => {
                self.stats.unparsable += 1;
                Verdict::pass()
            }
        };
        if verdict.action == crate::detect::Action::Block || verdict.would_block {
            self.stats.detections += 1;
        }
        Inspected {
            flow,
            verdict,
            line,
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(k) = self
            .flows
            .iter()
            .min_by_key(|(_, f)| f.last_seen)
            .map(|(k, _)| *k)
        {
            self.flows.remove(&k);
            self.stats.flows_evicted += 1;
        }
    }

    /// Forgets flows idle for longer than `flow_timeout`.
    pub fn expire(&mut self) {
        let timeout: Duration = self.cfg.flow_timeout.0;
        let before = self.flows.len();
        let mut dropped = 0u64;
        self.flows.retain(|_, f| {
            let keep = f.last_seen.elapsed() < timeout;
            if !keep && (!f.buf.is_empty() || !f.pending.is_empty()) {
                dropped += 1;
            }
            keep
        });
        self.stats.flows_expired += dropped;
        let _ = before;
        self.stats.flows = self.flows.len() as u64;
    }
}

fn append(flow: &mut Flow, data: &[u8], stats: &mut MirrorStats) {
    let skip = flow.skip.min(data.len());
    flow.skip -= skip;
    stats.bytes_dropped += skip as u64;
    flow.buf.extend_from_slice(&data[skip..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Action, DetectConfig};

    fn sample(sport: u16, seq: u32, data: &[u8], flags: u32) -> HttpSample {
        let mut s = HttpSample {
            kind: waf_common::event_kind::HTTP_SAMPLE,
            family: 4,
            src: [0; 16],
            dst: [0; 16],
            sport,
            dport: 80,
            seq,
            tcp_flags: flags,
            payload_len: data.len() as u32,
            captured: data.len() as u32,
            _reserved: 0,
            data: [0; waf_common::SAMPLE_MAX],
        };
        s.src[..4].copy_from_slice(&[198, 51, 100, 7]);
        s.dst[..4].copy_from_slice(&[192, 0, 2, 1]);
        s.data[..data.len()].copy_from_slice(data);
        s
    }

    fn mirror() -> Mirror {
        let engine = Arc::new(Engine::new(&DetectConfig::default()).unwrap());
        Mirror::new(&MirrorConfig::default(), engine)
    }

    const ATTACK: &[u8] =
        b"GET /item?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: shop\r\n\r\n";
    const BENIGN: &[u8] =
        b"GET /item?id=42 HTTP/1.1\r\nHost: shop\r\nUser-Agent: Mozilla/5.0\r\n\r\n";

    #[test]
    fn a_request_split_over_segments_and_reordered_is_detected() {
        let mut m = mirror();
        let (a, b) = ATTACK.split_at(17);
        let (b, c) = b.split_at(30);
        let base = 1000;
        // The SYN gives the first sequence number.
        assert!(m.feed(&sample(5000, base - 1, b"", SYN)).is_empty());
        // Third piece first, then the first, then a retransmission, then the second.
        assert!(
            m.feed(&sample(5000, base + (a.len() + b.len()) as u32, c, 0))
                .is_empty()
        );
        assert!(m.feed(&sample(5000, base, a, 0)).is_empty());
        assert!(m.feed(&sample(5000, base, a, 0)).is_empty());
        let out = m.feed(&sample(5000, base + a.len() as u32, b, 0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].verdict.action, Action::Block, "{:?}", out[0].verdict);
        assert_eq!(out[0].flow.src, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(out[0].line.starts_with("GET /item"));
        assert_eq!(m.stats.requests, 1);
        assert_eq!(m.stats.detections, 1);
    }

    #[test]
    fn keep_alive_requests_and_bodies() {
        let mut m = mirror();
        let post = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nuser=admin&pass=' or '1'='1";
        let mut stream = BENIGN.to_vec();
        stream.extend_from_slice(post);
        stream.extend_from_slice(BENIGN);
        let mut out = Vec::new();
        for (i, chunk) in stream.chunks(40).enumerate() {
            out.extend(m.feed(&sample(5001, 7 + (i * 40) as u32, chunk, 0)));
        }
        let actions: Vec<Action> = out.iter().map(|r| r.verdict.action).collect();
        assert_eq!(actions, [Action::Pass, Action::Block, Action::Pass]);
        // FIN closes the flow.
        m.feed(&sample(5001, 7 + stream.len() as u32, b"", FIN));
        assert_eq!(m.stats.flows, 0);
    }

    #[test]
    fn joining_mid_stream_resyncs_on_the_next_request_line() {
        let mut m = mirror();
        let mut stream = b"tail of some earlier body\r\n".to_vec();
        stream.extend_from_slice(ATTACK);
        let out = m.feed(&sample(5002, 1, &stream, 0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].verdict.action, Action::Block);
        assert!(m.stats.bytes_dropped >= 27);
    }

    #[test]
    fn bounded_flows_and_bytes() {
        let engine = Arc::new(Engine::new(&DetectConfig::default()).unwrap());
        let cfg = MirrorConfig {
            max_flows: 2,
            max_request_bytes: 1024,
            ..Default::default()
        };
        let mut m = Mirror::new(&cfg, engine);
        for port in 1..=5 {
            m.feed(&sample(port, 1, b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
        }
        assert_eq!(m.stats.flows, 2);
        assert_eq!(m.stats.flows_evicted, 3);
        // Headers that never end within the bound are dropped, not kept.
        let mut seq = 1u32;
        let junk = [b'a'; 500];
        m.feed(&sample(9, seq, b"GET /x HTTP/1.1\r\nX: ", 0));
        seq += 20;
        for _ in 0..4 {
            m.feed(&sample(9, seq, &junk, 0));
            seq += 500;
        }
        assert!(m.stats.bytes_dropped >= 1000, "{:?}", m.stats);
    }
}
