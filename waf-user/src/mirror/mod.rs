//! The passive mirror: HTTP requests reassembled from the TCP payloads the
//! XDP program samples (ports in `[mirror] ports`), inspected by the same
//! detection engine as the proxy. It cannot block a request (the packets are
//! already on their way to the server), but its detections are strikes that
//! ban the source in XDP.
//!
//! - [`reassembly`]: segments in sequence order, per flow;
//! - [`stream`]: requests out of the in-order bytes, framed by
//!   `http::framing` (the parser's rules);
//! - `config.rs`: `[mirror]`;
//! - this file: the flow table (bounded in flows, bytes and idle time;
//!   everything given up is counted) and inspection.

mod config;
pub mod reassembly;
pub mod stream;

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use waf_common::HttpSample;

pub use self::config::MirrorConfig;
use crate::detect::{Action, Engine, Verdict};
use reassembly::{Piece, Reassembly};
use stream::{Stream, Taken};

const FIN: u32 = 0x01;
const SYN: u32 = 0x02;
const RST: u32 = 0x04;

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
    order: Reassembly,
    stream: Stream,
    last_seen: Instant,
}

impl Flow {
    fn new(next_seq: u32, synced: bool, now: Instant) -> Flow {
        Flow {
            order: Reassembly::new(next_seq),
            stream: Stream::new(synced),
            last_seen: now,
        }
    }
}

/// Mirror counters.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MirrorStats {
    /// Samples fed.
    pub samples: u64,
    /// Requests reassembled and inspected.
    pub requests: u64,
    /// Of those, inspected without all their body (too long to buffer, or
    /// the flow ended or lost bytes first).
    pub partial: u64,
    /// Requests the engine would block.
    pub detections: u64,
    /// Requests that did not parse as HTTP (over the header limits: also
    /// detections).
    pub unparsable: u64,
    /// Flows evicted because the table was full.
    pub flows_evicted: u64,
    /// Flows forgotten after `flow_timeout` with data pending.
    pub flows_expired: u64,
    /// Bytes dropped: skipped bodies, unsyncable data, lost segments.
    pub bytes_dropped: u64,
    /// Flows open now.
    pub flows: u64,
}

/// One inspected request.
#[derive(Debug)]
pub struct Inspected {
    /// The flow it came on.
    pub flow: FlowKey,
    /// The engine's verdict (`partial` when the body was not all seen).
    pub verdict: Verdict,
    /// Method and target, for the log.
    pub line: String,
    /// The method as sent.
    pub method: String,
    /// The `Host` header as sent (empty when none, or unparsable).
    pub host: String,
    /// The canonical path (for a request that did not parse, the path of
    /// its request line as sent).
    pub path: String,
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

    fn max_header(&self) -> usize {
        self.engine.limits().max_header_bytes
    }

    /// Feeds one sample; returns the requests it completed (or ended),
    /// inspected.
    pub fn feed(&mut self, s: &HttpSample) -> Vec<Inspected> {
        self.stats.samples += 1;
        let key = FlowKey {
            src: addr(s.family, &s.src),
            sport: s.sport,
            dst: addr(s.family, &s.dst),
            dport: s.dport,
        };
        let now = Instant::now();
        let mut out = Vec::new();
        if s.tcp_flags & SYN != 0 {
            // A new connection: its data starts right after the SYN.
            if let Some(old) = self.flows.remove(&key) {
                self.close(key, old, &mut out);
            }
            self.make_room(&mut out);
            self.flows
                .insert(key, Flow::new(s.seq.wrapping_add(1), true, now));
            self.stats.flows = self.flows.len() as u64;
            return out;
        }
        if !self.flows.contains_key(&key) {
            self.make_room(&mut out);
            // Joined mid-stream: resync on a request line.
            self.flows.insert(key, Flow::new(s.seq, false, now));
        }
        let captured = (s.captured as usize).min(s.data.len());
        let max_pending = self.cfg.max_request_bytes;
        let Some(flow) = self.flows.get_mut(&key) else {
            return out;
        };
        flow.last_seen = now;
        let pieces = flow.order.accept(
            s.seq,
            &s.data[..captured],
            s.payload_len.max(captured as u32),
            max_pending,
        );
        for piece in pieces {
            self.piece(key, piece, &mut out);
        }
        self.take_requests(key, &mut out);
        if s.tcp_flags & (FIN | RST) != 0
            && let Some(flow) = self.flows.remove(&key)
        {
            self.close(key, flow, &mut out);
        }
        self.stats.flows = self.flows.len() as u64;
        out
    }

    /// Hands one in-order piece to the flow's stream.
    fn piece(&mut self, key: FlowKey, piece: Piece, out: &mut Vec<Inspected>) {
        let max_header = self.max_header();
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        match piece {
            Piece::Data(d) => {
                let dropped = flow.stream.push(&d);
                self.stats.bytes_dropped += dropped;
                // Take requests as they complete, so the buffer stays bounded.
                self.take_requests(key, out);
            }
            Piece::Gap(n) => {
                let (taken, dropped) = flow.stream.gap(n, max_header);
                self.stats.bytes_dropped += dropped.saturating_add(n);
                if let Some(t) = taken {
                    out.push(self.inspect(key, t));
                }
            }
        }
    }

    /// Takes and inspects every request the flow's buffer holds.
    fn take_requests(&mut self, key: FlowKey, out: &mut Vec<Inspected>) {
        let (max_request, max_header) = (self.cfg.max_request_bytes, self.max_header());
        loop {
            let Some(flow) = self.flows.get_mut(&key) else {
                return;
            };
            let (taken, dropped) = flow.stream.next(max_request, max_header);
            self.stats.bytes_dropped += dropped;
            match taken {
                Some(t) => out.push(self.inspect(key, t)),
                None => return,
            }
        }
    }

    /// Ends a flow: what it buffered is inspected as partial when the head
    /// of a request is complete.
    fn close(&mut self, key: FlowKey, mut flow: Flow, out: &mut Vec<Inspected>) {
        let (taken, dropped) = flow.stream.flush(self.max_header());
        self.stats.bytes_dropped += dropped;
        if let Some(t) = taken {
            out.push(self.inspect(key, t));
        }
    }

    fn inspect(&mut self, flow: FlowKey, taken: Taken) -> Inspected {
        self.stats.requests += 1;
        let raw = match &taken {
            Taken::Whole(r) | Taken::Partial(r) => r.as_slice(),
        };
        let line = raw
            .split(|b| *b == b'\r' || *b == b'\n')
            .find(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(&l[..l.len().min(200)]).into_owned())
            .unwrap_or_default();
        let mut words = line.split(' ');
        let (mut method, mut path) = (
            words.next().unwrap_or("").to_string(),
            words
                .next()
                .unwrap_or("")
                .split('?')
                .next()
                .unwrap_or("")
                .to_string(),
        );
        let mut host = String::new();
        let mut verdict = match crate::http::Request::parse(raw, self.engine.limits()) {
            Ok(req) => {
                method.clone_from(&req.method);
                path.clone_from(&req.canonical.path);
                host = req.header("host").unwrap_or("").to_string();
                self.engine.inspect(&req, Some(flow.src))
            }
            Err(e) => {
                self.stats.unparsable += 1;
                self.engine.refused(&e).unwrap_or_else(Verdict::pass)
            }
        };
        if matches!(taken, Taken::Partial(_)) {
            verdict.partial = true;
        }
        if verdict.partial {
            self.stats.partial += 1;
        }
        if verdict.action == Action::Block || verdict.would_block {
            self.stats.detections += 1;
        }
        Inspected {
            flow,
            verdict,
            line,
            method,
            host,
            path,
        }
    }

    /// Evicts the least recently seen flow when the table is full.
    fn make_room(&mut self, out: &mut Vec<Inspected>) {
        if self.flows.len() < self.cfg.max_flows {
            return;
        }
        if let Some(k) = self
            .flows
            .iter()
            .min_by_key(|(_, f)| f.last_seen)
            .map(|(k, _)| *k)
            && let Some(flow) = self.flows.remove(&k)
        {
            self.stats.flows_evicted += 1;
            self.close(k, flow, out);
        }
    }

    /// Forgets flows idle for longer than `flow_timeout`; returns the
    /// requests they held, inspected as partial (a request whose body never
    /// comes is still inspected).
    pub fn expire(&mut self) -> Vec<Inspected> {
        let timeout: Duration = self.cfg.flow_timeout.0;
        let idle: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_seen.elapsed() >= timeout)
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for k in idle {
            if let Some(flow) = self.flows.remove(&k) {
                if !flow.stream.is_empty() || flow.order.has_pending() {
                    self.stats.flows_expired += 1;
                }
                self.close(k, flow, &mut out);
            }
        }
        self.stats.flows = self.flows.len() as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectConfig;

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
        assert_eq!(
            (
                out[0].method.as_str(),
                out[0].host.as_str(),
                out[0].path.as_str()
            ),
            ("GET", "shop", "/item")
        );
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
        // Headers that never end within the bound are not kept: inspected
        // once as they are, the rest dropped until a request line.
        let mut seq = 1u32;
        let junk = [b'a'; 500];
        m.feed(&sample(9, seq, b"GET /x HTTP/1.1\r\nX: ", 0));
        seq += 20;
        for _ in 0..4 {
            m.feed(&sample(9, seq, &junk, 0));
            seq += 500;
        }
        assert_eq!(m.stats.requests, 1, "{:?}", m.stats);
        assert!(m.stats.bytes_dropped >= 400, "{:?}", m.stats);
    }

    #[test]
    fn absurd_content_lengths_are_counted_and_the_next_request_inspected() {
        for cl in [
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775808",
            "-1",
            "1e9",
            "+5",
            "0x5",
            "5, 7",
        ] {
            let mut m = mirror();
            let mut stream =
                format!("POST /a HTTP/1.1\r\nHost: shop\r\nContent-Length: {cl}\r\n\r\nhello")
                    .into_bytes();
            stream.extend_from_slice(ATTACK);
            let mut out = m.feed(&sample(5003, 0, b"", SYN));
            for (i, chunk) in stream.chunks(7).enumerate() {
                out.extend(m.feed(&sample(5003, 1 + (i * 7) as u32, chunk, 0)));
            }
            let first = &out[0];
            assert!(first.line.starts_with("POST /a"), "{cl}");
            assert_eq!(
                first.verdict.action,
                Action::Block,
                "{cl}: {:?}",
                first.verdict
            );
            let last = out.last().expect("inspected");
            // Where the server would read the next request, it is inspected
            // (after an invalid length, the body bytes lead it).
            assert!(last.line.contains("GET /item"), "{cl}: {out:?}");
            assert_eq!(last.verdict.action, Action::Block, "{cl}");
        }
    }

    #[test]
    fn a_huge_valid_length_is_skipped_not_waited_for() {
        let engine = Arc::new(Engine::new(&DetectConfig::default()).unwrap());
        let cfg = MirrorConfig {
            max_request_bytes: 1024,
            ..Default::default()
        };
        let mut m = Mirror::new(&cfg, engine);
        let head = b"POST /up?q=1%27%20or%201=1-- HTTP/1.1\r\nHost: shop\r\nContent-Length: 1000000000000\r\n\r\n";
        let mut seq = 1u32;
        let mut out = m.feed(&sample(5004, 0, b"", SYN));
        out.extend(m.feed(&sample(5004, seq, head, 0)));
        seq += head.len() as u32;
        for _ in 0..8 {
            out.extend(m.feed(&sample(5004, seq, &[b'z'; 1000], 0)));
            seq += 1000;
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].verdict.partial);
        assert_eq!(out[0].verdict.action, Action::Block);
        assert_eq!(m.stats.partial, 1);
    }

    #[test]
    fn chunked_data_holding_the_end_marker_does_not_end_the_body() {
        let mut m = mirror();
        let mut stream =
            b"POST /a HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let smuggled =
            b"0\r\n\r\nGET /x?q=<script>alert(1)</script> HTTP/1.1\r\nHost: shop\r\n\r\n";
        stream.extend_from_slice(format!("{:x}\r\n", smuggled.len()).as_bytes());
        stream.extend_from_slice(smuggled);
        stream.extend_from_slice(b"\r\n0\r\n\r\n");
        stream.extend_from_slice(BENIGN);
        let out = m.feed(&sample(5005, 1, &stream, 0));
        let lines: Vec<&str> = out.iter().map(|r| r.line.as_str()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].starts_with("GET /item?id=42"), "{lines:?}");
    }

    #[test]
    fn a_stalled_body_is_inspected_when_the_flow_ends() {
        let mut m = mirror();
        let head = b"POST /a?q=1%27%20union%20select%20password%20from%20users-- HTTP/1.1\r\nHost: shop\r\nContent-Length: 100\r\n\r\nab";
        assert!(m.feed(&sample(5006, 1, head, 0)).is_empty());
        let out = m.feed(&sample(5006, 1 + head.len() as u32, b"", FIN));
        assert_eq!(out.len(), 1);
        assert!(out[0].verdict.partial);
        assert_eq!(out[0].verdict.action, Action::Block);
    }
}
