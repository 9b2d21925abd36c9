//! The dashboard's pure parts: sessions (expiry, eviction, CSRF tokens),
//! the cookie and form readers (never a panic, with their invariants under
//! proptest), escaping, the bans search's query and its paging, the
//! sample ring.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{
    bans::{Query, SCAN_CAP, back, search},
    form::{Form, decode, encode},
    html::esc,
    samples::{RING, Recorder, Sample, rate},
    session::{self, MAX_SESSIONS, Sessions, cookie, same_secret},
};

#[test]
fn a_session_has_its_own_csrf_token_and_expires() {
    let s = Sessions::default();
    let now = Instant::now();
    let a = s.open(now);
    let b = s.open(now);
    assert_ne!(a, b);
    assert_eq!(a.len(), 64);
    let sa = s.get(&a, now).expect("a live session");
    let sb = s.get(&b, now).expect("a live session");
    assert_ne!(sa.csrf, sb.csrf);
    assert_eq!(sa.csrf.len(), 64);
    // The store keys sessions by digest, never by the id itself.
    assert_ne!(sa.key, a);
    assert!(s.get("not-a-session", now).is_none());
    assert!(s.get(&a, now + session::LIFETIME).is_none(), "expired");
    assert!(
        s.get(&b, now + session::LIFETIME - Duration::from_secs(1))
            .is_some()
    );
    s.close(&sb);
    assert!(s.get(&b, now).is_none(), "closed");
}

#[test]
fn the_oldest_session_is_evicted_past_the_bound() {
    let s = Sessions::default();
    let t0 = Instant::now();
    let first = s.open(t0);
    let ids: Vec<String> = (1..=MAX_SESSIONS)
        .map(|i| s.open(t0 + Duration::from_millis(i as u64)))
        .collect();
    assert_eq!(s.len(), MAX_SESSIONS);
    let now = t0 + Duration::from_secs(1);
    assert!(s.get(&first, now).is_none(), "the oldest went");
    assert!(ids.iter().all(|id| s.get(id, now).is_some()));
}

#[test]
fn flash_messages_are_taken_once() {
    let s = Sessions::default();
    let now = Instant::now();
    let id = s.open(now);
    let sess = s.get(&id, now).unwrap();
    s.flash(&sess, false, "409 — nope");
    assert_eq!(s.take_flash(&sess), Some((false, "409 — nope".into())));
    assert_eq!(s.take_flash(&sess), None);
}

#[test]
fn cookies_are_read_by_exact_name_once() {
    assert_eq!(cookie("a=1; waf_ui=abc; b=2", "waf_ui"), Some("abc"));
    assert_eq!(cookie("waf_ui_login=x; waf_ui=y", "waf_ui"), Some("y"));
    assert_eq!(cookie("waf_ui=\"q\"", "waf_ui"), Some("q"));
    assert_eq!(cookie("xwaf_ui=1", "waf_ui"), None);
    assert_eq!(cookie("waf_ui=", "waf_ui"), None);
    assert_eq!(cookie("waf_ui=1; waf_ui=2", "waf_ui"), None, "ambiguous");
    assert_eq!(cookie(&"a".repeat(10_000), "waf_ui"), None);
    let set = session::session_cookie("id");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set}");
    }
}

#[test]
fn secrets_compare_whole() {
    assert!(same_secret("abc", "abc"));
    assert!(!same_secret("abc", "abd"));
    assert!(!same_secret("abc", "ab"));
    assert!(!same_secret("", "abc"));
}

#[test]
fn forms_decode_percent_plus_and_keep_order() {
    let f = Form::parse(b"a=1&b=x+y%2Fz&a=2&flag&c=%zz%4");
    assert_eq!(f.get("a"), Some("1"));
    assert_eq!(f.get("b"), Some("x y/z"));
    assert_eq!(f.get("flag"), Some(""));
    assert_eq!(f.get("c"), Some("%zz%4"));
    assert!(Form::parse(b"force=on").ticked("force"));
    assert!(!Form::parse(b"force=off").ticked("force"));
    assert_eq!(decode(b"%E2%9C%93"), "✓");
    assert_eq!(decode(b"%FF"), "\u{fffd}");
}

#[test]
fn html_is_escaped() {
    assert_eq!(
        esc("<script>\"x\" & 'y'</script>"),
        "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
    );
}

#[test]
fn going_back_stays_on_the_dashboard() {
    let f = |b: &str| Form(vec![("back".into(), b.into())]);
    assert_eq!(back(&f("/ui/bans?q=x"), "/ui/bans"), "/ui/bans?q=x");
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/ui\\..",
        "/v1/bans",
        "",
    ] {
        assert_eq!(back(&f(evil), "/ui/bans"), "/ui/bans", "{evil}");
    }
}

#[test]
fn a_bans_query_is_bounded_and_links_back_to_itself() {
    let q = Query::parse("q=203.0.113.0%2F24&after=203.0.113.5&limit=99999");
    assert_eq!(q.q, "203.0.113.0/24");
    assert_eq!(q.after, Some("203.0.113.5/32".parse().unwrap()));
    assert_eq!(q.limit, 500);
    assert_eq!(
        Query::parse(&q.link(q.after.as_ref()).replace("/ui/bans?", "")),
        q
    );
    let bad = Query::parse("after=nope&limit=-3");
    assert_eq!((bad.after, bad.limit), (None, 50));
}

#[test]
fn the_ring_keeps_an_hour_and_gives_rates() {
    let r = Recorder::default();
    for t in 0..(RING as u64 + 100) {
        let mut s = Sample {
            t: 1_000 + t,
            ..Sample::default()
        };
        s.packets[0] = t * 10;
        s.requests[1] = t;
        r.push(s);
    }
    let all = r.points_since(0);
    assert_eq!(all.len(), RING - 1, "an hour of points from the ring");
    assert!(
        all.iter()
            .all(|p| p.packets[0] == 10.0 && p.requests[1] == 1.0)
    );
    let last = r.last().unwrap().t;
    assert_eq!(r.points_since(last - 3).len(), 3);
    assert!(r.points_since(last).is_empty());
    // Counters that went back (a reload) count as zero, not as a wrap.
    let a = Sample {
        t: 5,
        packets: [7; 16],
        requests: [7; 3],
    };
    let b = Sample {
        t: 7,
        ..Sample::default()
    };
    assert!(rate(&a, &b).packets.iter().all(|&x| x == 0.0));
}

/// A view with `n` bans of 10.x.y.z, one in 1000 with reason "needle".
fn view_with(n: u32) -> crate::firewall::View {
    use std::sync::Arc;

    use crate::firewall::{BanMeta, BanSource, Origin};
    let (plain, needle): (Arc<str>, Arc<str>) = ("plain".into(), "a needle here".into());
    let mut v = crate::firewall::View::default();
    for i in 0..n {
        let net: ipnet::IpNet = ipnet::Ipv4Net::new((0x0a00_0000 + i).into(), 32)
            .unwrap()
            .into();
        let meta = BanMeta {
            created: 1,
            expires: 0,
            offence: 1,
            source: BanSource::Manual,
            reason: if i % 1000 == 999 {
                needle.clone()
            } else {
                plain.clone()
            },
            origin: Origin::NONE,
        };
        v.bans.insert(net, meta);
        v.counts.add(&net);
    }
    v
}

#[test]
fn a_search_reads_one_page_or_a_bounded_scan() {
    let n = SCAN_CAP as u32 + 50_000;
    let v = view_with(n);
    let q = |raw: &str| Query::parse(raw);
    // All: one page and a cursor.
    let f = search(&v, &q("limit=20"));
    assert_eq!((f.bans.len(), f.total), (20, u64::from(n)));
    assert_eq!(f.bans[0].addr, "10.0.0.0");
    let next = f.next.clone().unwrap();
    assert_eq!(next, "10.0.0.19");
    let f2 = search(&v, &q(&format!("limit=20&after={next}")));
    assert_eq!(f2.bans[0].addr, "10.0.0.20");
    // A prefix: the bans inside it, from its first address.
    let f = search(&v, &q("q=10.0.1.0%2F24&limit=500"));
    assert_eq!(f.kind, "prefix");
    assert_eq!(f.bans.len(), 256);
    assert!(f.bans.iter().all(|b| b.addr.starts_with("10.0.1.")));
    assert_eq!(f.next, None);
    // An address: itself.
    let f = search(&v, &q("q=10.0.0.5"));
    assert_eq!(f.bans.len(), 1);
    // A reason: at most SCAN_CAP read, then a cursor to go on.
    let f = search(&v, &q("q=NEEDLE&limit=500"));
    assert_eq!(f.kind, "reason");
    assert_eq!(f.scanned, SCAN_CAP);
    assert_eq!(f.bans.len(), SCAN_CAP / 1000);
    assert!(f.bans.iter().all(|b| b.reason == "a needle here"));
    let more = f.next.clone().expect("more to scan");
    let f = search(&v, &q(&format!("q=needle&limit=500&after={more}")));
    assert_eq!(f.scanned, 50_000);
    assert_eq!(f.bans.len(), 50);
    assert_eq!(f.next, None);
}

proptest! {
    #[test]
    fn the_form_reader_never_panics_and_is_bounded(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
        let f = Form::parse(&raw);
        prop_assert!(f.0.len() <= super::form::MAX_FIELDS);
        let amps = raw.iter().filter(|&&b| b == b'&').count();
        prop_assert!(f.0.len() <= amps + 1);
    }

    #[test]
    fn encoding_round_trips_through_the_form_reader(k in "[a-z_]{1,8}", v in any::<String>()) {
        let raw = format!("{}={}", encode(&k), encode(&v));
        let f = Form::parse(raw.as_bytes());
        prop_assert_eq!(f.get(&k), Some(v.as_str()));
        prop_assert!(encode(&v).bytes().all(|b| b.is_ascii_graphic() && b != b'&' && b != b'='));
    }

    #[test]
    fn the_cookie_reader_never_panics_and_returns_a_part_of_the_header(h in any::<String>(), name in "[a-z_]{1,8}") {
        if let Some(v) = cookie(&h, &name) {
            prop_assert!(!v.is_empty());
            prop_assert!(h.contains(v));
            prop_assert!(!v.contains(';'));
        }
    }

    #[test]
    fn a_cookie_set_among_others_is_found(
        id in "[0-9a-f]{64}",
        others in proptest::collection::vec(("[a-z]{1,6}", "[A-Za-z0-9]{0,10}"), 0..6),
    ) {
        let mut parts: Vec<String> = others.iter().filter(|(k, _)| k != "waf_ui")
            .map(|(k, v)| format!("{k}={v}")).collect();
        let at = parts.len() / 2;
        parts.insert(at, format!("waf_ui={id}"));
        let joined = parts.join("; ");
        prop_assert_eq!(cookie(&joined, "waf_ui"), Some(id.as_str()));
    }

    #[test]
    fn escaped_text_has_no_markup(s in any::<String>()) {
        let e = esc(&s);
        prop_assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
    }

    #[test]
    fn a_bans_query_never_panics(raw in any::<String>()) {
        let q = Query::parse(&raw);
        prop_assert!((1..=500).contains(&q.limit));
        prop_assert!(q.q.chars().count() <= 256);
    }
}
