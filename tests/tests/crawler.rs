//! Crawler verification end to end, in network namespaces: a tiny
//! authoritative DNS server in the server's namespace answers the daemon's
//! PTR and A queries from tables; a request whose user agent says Googlebot
//! reaches the application only from an address whose reverse name is under
//! `googlebot.com` and whose forward lookup gives the address back. A
//! look-alike domain, a forward lookup that gives another address, and a
//! server that never answers all leave the request scored as a bot: the
//! challenge page (403), within a few seconds.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use waf_tests::{Lab, Netns, TestDaemon, Upstream, http_raw, spawn_in_netns};

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const DNS: &str = "127.0.0.1:5353";

/// The attacker's extra addresses: one per case, so that no case reads
/// another's cached verdict.
const FAKE_DOMAIN4: &str = "192.0.2.66";
const WRONG_FORWARD4: &str = "192.0.2.67";
const SILENT4: &str = "192.0.2.68";

fn server() -> String {
    format!("{}:8080", Lab::SRV4)
}

fn get(path: &str, ua: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: shop\r\nUser-Agent: {ua}\r\nAccept: text/html\r\n\
         Accept-Language: en\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// `d.c.b.a.in-addr.arpa` for `a.b.c.d`.
fn reverse_name(ip: &str) -> String {
    let ip: Ipv4Addr = ip.parse().unwrap();
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.in-addr.arpa")
}

/// A UDP DNS server answering PTR and A queries from its tables; a query
/// for a name in neither table gets no answer at all. Stops on drop.
struct TinyDns {
    /// Every query received, as `TYPE name`.
    queries: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

/// A parsed question: the name (lowercase, no trailing dot), its type, and
/// where the question section ends.
fn parse_question(msg: &[u8]) -> Option<(String, u16, usize)> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // No compression in a question; at most 63 bytes a label.
        if len > 63 {
            return None;
        }
        let label = msg.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    let _qclass = msg.get(at + 2..at + 4)?;
    Some((labels.join("."), qtype, at + 4))
}

fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;

/// The response to `query`, or None to stay silent.
fn answer(
    query: &[u8],
    ptr: &HashMap<String, String>,
    a: &HashMap<String, Ipv4Addr>,
) -> Option<Vec<u8>> {
    let (name, qtype, end) = parse_question(query)?;
    let rdatas: Vec<Vec<u8>> = match (ptr.get(&name), a.get(&name)) {
        (None, None) => return None,
        (Some(target), _) if qtype == TYPE_PTR => vec![encode_name(target)],
        (_, Some(ip)) if qtype == TYPE_A => vec![ip.octets().to_vec()],
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[..2]); // id
    // QR, the query's opcode and RD, AA; RA; NOERROR.
    out.push(0x80 | (query[2] & 0x79) | 0x04);
    out.push(0x80);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(rdatas.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end]);
    for rdata in rdatas {
        out.extend_from_slice(&[0xc0, 0x0c]); // the question's name
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // IN
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

impl TinyDns {
    /// Listens on `addr` in namespace `ns`.
    fn start(ns: &Netns, addr: &str, ptr: &[(&str, &str)], a: &[(&str, &str)]) -> Self {
        let addr: SocketAddr = addr.parse().unwrap();
        let ptr: HashMap<String, String> = ptr
            .iter()
            .map(|(ip, name)| (reverse_name(ip), name.to_string()))
            .collect();
        let a: HashMap<String, Ipv4Addr> = a
            .iter()
            .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
            .collect();
        let queries: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (log, stop2) = (queries.clone(), stop.clone());
        spawn_in_netns(&ns.name, move || {
            let sock = UdpSocket::bind(addr).expect("bind the DNS server");
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let query = &buf[..n];
                if let Some((name, qtype, _)) = parse_question(query) {
                    log.lock().unwrap().push(format!("{qtype} {name}"));
                }
                if let Some(resp) = answer(query, &ptr, &a) {
                    let _ = sock.send_to(&resp, from);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the DNS server listening");
        Self { queries, stop }
    }

    fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for TinyDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Adds `addr`/24 to the attacker's interface (the one with its address).
fn add_attacker_address(lab: &Lab, addr: &str) {
    let out = lab.attacker.exec(&["ip", "-o", "-4", "addr", "show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let iface = text
        .lines()
        .find(|l| l.contains(&format!("inet {}/", Lab::ATTACKER4)))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("the attacker's interface: {text}"))
        .to_string();
    lab.attacker
        .exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", &iface]);
}

#[test]
fn crawlers_are_verified_by_forward_confirmed_reverse_dns() {
    let lab = Lab::new();
    add_attacker_address(&lab, WRONG_FORWARD4);
    add_attacker_address(&lab, SILENT4);
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let dns = TinyDns::start(
        &lab.srv,
        DNS,
        &[
            (Lab::CLIENT4, "crawl-192-0-2-10.googlebot.com"),
            // Ends with "googlebot.com" as text, but under evil.example (whose
            // owner also makes the forward lookup agree).
            (FAKE_DOMAIN4, "crawl.googlebot.com.evil.example"),
            // A real-looking name whose forward lookup gives another address.
            (WRONG_FORWARD4, "crawl-x.googlebot.com"),
            // SILENT4: no answer at all.
        ],
        &[
            ("crawl-192-0-2-10.googlebot.com", Lab::CLIENT4),
            ("crawl.googlebot.com.evil.example", FAKE_DOMAIN4),
            ("crawl-x.googlebot.com", "192.0.2.99"),
        ],
    );
    let d = TestDaemon::start(
        &lab,
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"off\"\n\n\
             [challenge]\nmode = \"auto\"\ndifficulty = 12\nverify_crawlers = true\n\
             resolver = \"{DNS}\"\n"
        ),
    );
    let context = |what: &str| {
        format!(
            "{what}; DNS queries: {:?}; daemon log:\n{}",
            dns.queries(),
            d.log_text()
        )
    };
    let send = |ns: &Netns, src: Option<&str>| {
        let start = Instant::now();
        let r = http_raw(ns, &server(), src, &get("/shop", GOOGLEBOT), 1);
        (r, start.elapsed())
    };

    // The real crawler: verified, it reaches the application.
    let served = app.served.load(Ordering::SeqCst);
    let (r, _) = send(&lab.client, None);
    let (code, body) = r.unwrap_or_else(|e| panic!("{}", context(&format!("client: {e}"))));
    assert_eq!(
        code,
        200,
        "{}",
        context(&format!("verified Googlebot: {body}"))
    );
    assert_eq!(body, "hello");
    assert_eq!(app.served.load(Ordering::SeqCst), served + 1);
    let q = dns.queries();
    assert!(
        q.contains(&format!("{TYPE_PTR} {}", reverse_name(Lab::CLIENT4)))
            && q.contains(&format!("{TYPE_A} crawl-192-0-2-10.googlebot.com")),
        "{}",
        context("the PTR then the A lookup")
    );
    // Again: the cached verdict, no new query.
    let asked = dns.queries().len();
    let (r, _) = send(&lab.client, None);
    assert_eq!(r.unwrap().0, 200, "{}", context("verified again"));
    assert_eq!(app.served.load(Ordering::SeqCst), served + 2);
    assert_eq!(dns.queries().len(), asked, "{}", context("cached"));

    // A look-alike domain: the challenge page, and no forward lookup.
    let served = app.served.load(Ordering::SeqCst);
    let (r, _) = send(&lab.attacker, Some(FAKE_DOMAIN4));
    let (code, body) = r.unwrap_or_else(|e| panic!("{}", context(&format!("attacker: {e}"))));
    assert_eq!(
        code,
        403,
        "{}",
        context(&format!("look-alike domain: {body}"))
    );
    assert!(body.contains("waf-challenge"), "{body}");
    let q = dns.queries();
    assert!(
        q.contains(&format!("{TYPE_PTR} {}", reverse_name(FAKE_DOMAIN4))),
        "{}",
        context("the look-alike's PTR lookup")
    );
    assert!(
        !q.iter().any(|l| l.ends_with("evil.example")),
        "{}",
        context("no forward lookup of a name outside the crawler's domains")
    );

    // The right domain, but its forward lookup gives another address.
    let (r, _) = send(&lab.attacker, Some(WRONG_FORWARD4));
    let (code, body) = r.unwrap_or_else(|e| panic!("{}", context(&format!("attacker: {e}"))));
    assert_eq!(
        code,
        403,
        "{}",
        context(&format!("forward mismatch: {body}"))
    );
    assert!(body.contains("waf-challenge"), "{body}");
    assert!(
        dns.queries()
            .contains(&format!("{TYPE_A} crawl-x.googlebot.com")),
        "{}",
        context("the forward lookup of crawl-x.googlebot.com")
    );

    // No answer at all: the resolver times out, and the request still gets
    // its answer within a few seconds.
    let (r, took) = send(&lab.attacker, Some(SILENT4));
    let (code, body) =
        r.unwrap_or_else(|e| panic!("{}", context(&format!("no DNS answer: {e} after {took:?}"))));
    assert_eq!(code, 403, "{}", context(&format!("no DNS answer: {body}")));
    assert!(body.contains("waf-challenge"), "{body}");
    assert!(
        took < Duration::from_secs(5),
        "{}",
        context(&format!("answered after {took:?}"))
    );
    assert!(
        dns.queries()
            .contains(&format!("{TYPE_PTR} {}", reverse_name(SILENT4))),
        "{}",
        context("the silent address's PTR lookup")
    );
    // None of the impostors reached the application.
    assert_eq!(app.served.load(Ordering::SeqCst), served);
}

#[test]
fn the_dns_server_encodes_what_it_is_told() {
    // A query for 10.2.0.192.in-addr.arpa PTR, as a resolver sends it.
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend(encode_name("10.2.0.192.in-addr.arpa"));
    q.extend_from_slice(&[0, 12, 0, 1]);
    let (name, qtype, end) = parse_question(&q).unwrap();
    assert_eq!(
        (name.as_str(), qtype, end),
        ("10.2.0.192.in-addr.arpa", 12, q.len())
    );
    let ptr = HashMap::from([(name.clone(), "crawl.googlebot.com".to_string())]);
    let resp = answer(&q, &ptr, &HashMap::new()).unwrap();
    assert_eq!(&resp[..2], &[0x12, 0x34]);
    assert_eq!(resp[2] & 0x80, 0x80, "a response");
    assert_eq!(resp[2] & 0x01, 0x01, "RD echoed");
    assert_eq!(u16::from_be_bytes([resp[6], resp[7]]), 1, "one answer");
    assert!(resp.ends_with(&encode_name("crawl.googlebot.com")));
    // Unknown: silence.
    assert!(answer(&q, &HashMap::new(), &HashMap::new()).is_none());
    // A known name, another type: an empty NOERROR.
    let mut aaaa = q.clone();
    let n = aaaa.len();
    aaaa[n - 3] = 28;
    let resp = answer(&aaaa, &ptr, &HashMap::new()).unwrap();
    assert_eq!(u16::from_be_bytes([resp[6], resp[7]]), 0);
}
