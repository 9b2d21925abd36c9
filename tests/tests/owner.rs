//! The firewall's owner and journal under load, over real HTTP against the
//! real daemon: every acknowledged ban survives a kill -9 at any point of a
//! write burst, and a hundred thousand API bans while the proxy serves
//! traffic lose no ban and no response.

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use waf_tests::{Lab, TEST_TOKEN, TestDaemon, Upstream, api, http_raw, spawn_in_netns};

/// A keep-alive API client inside the server namespace's thread.
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .max_idle_connections_per_host(4)
        .build()
}

fn post_ban(a: &ureq::Agent, addr: &str) -> Result<u16, String> {
    match a
        .post("http://127.0.0.1:9876/v1/bans")
        .set("Authorization", &format!("Bearer {TEST_TOKEN}"))
        .send_json(json!({"addr": addr, "duration": "1h", "reason": "burst"}))
    {
        Ok(r) => Ok(r.status()),
        Err(ureq::Error::Status(c, _)) => Ok(c),
        Err(e) => Err(e.to_string()),
    }
}

/// Every banned address, page by page.
fn all_bans(lab: &Lab) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/bans?limit=10000&after={}", a.replace('/', "%2F")),
            None => "/v1/bans?limit=10000".to_string(),
        };
        let (code, page) = api(lab, "GET", &path, None);
        assert_eq!(code, 200, "{page}");
        for b in page["bans"].as_array().expect("a page of bans") {
            out.insert(b["addr"].as_str().unwrap_or_default().to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => return out,
        }
    }
}

fn addr(i: u32) -> String {
    Ipv4Addr::from(0x6440_0000u32 + i).to_string()
}

#[test]
fn acknowledged_bans_survive_kill_9_at_any_point_of_a_burst() {
    let lab = Lab::new();
    let mut d = TestDaemon::start(&lab, "");
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let next = Arc::new(AtomicU32::new(0));
    // Three bursts, each cut by kill -9 at a different point: once the
    // round has `acks` new acknowledgements (so a busy machine cannot make
    // a round cut before its first), and `cut_ms` later.
    for (round, acks, cut_ms) in [(0, 1usize, 0u64), (1, 40, 37), (2, 150, 111)].into_iter() {
        let before = acked.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let (acked, next, stop) = (acked.clone(), next.clone(), stop.clone());
                spawn_in_netns(&lab.srv.name, move || {
                    let a = agent();
                    while !stop.load(Ordering::Relaxed) {
                        let ip = addr(next.fetch_add(1, Ordering::Relaxed));
                        // A refusal, or the daemon dying mid-request: not
                        // acknowledged.
                        if let Ok(201) = post_ban(&a, &ip) {
                            acked.lock().unwrap().insert(ip);
                        }
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < before + acks && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(cut_ms));
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        d.spawn(&lab);
        let have = all_bans(&lab);
        let acked = acked.lock().unwrap();
        let lost: Vec<&String> = acked.difference(&have).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged bans lost after kill -9 (first: {:?})\n{}",
            lost.len(),
            acked.len(),
            lost.first(),
            d.log_text()
        );
        assert!(
            acked.len() >= before + acks,
            "round {round}: {} bans acknowledged within 60 s, {acks} wanted",
            acked.len() - before
        );
    }
}

#[test]
fn a_hundred_thousand_api_bans_while_the_proxy_serves() {
    const BANS: u32 = 100_000;
    const WORKERS: u32 = 16;
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n",
    );
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let (bad, served, failed) = std::thread::scope(|scope| {
        // Traffic through the proxy all along: every request is answered.
        let traffic = scope.spawn(|| {
            let mut served = 0u32;
            let mut failed = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let r = http_raw(
                    &lab.client,
                    &format!("{}:8080", Lab::SRV4),
                    None,
                    b"GET /hello HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
                    1,
                );
                match r {
                    Ok((200, _)) => served += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (served, failed)
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                spawn_in_netns(&lab.srv.name, move || {
                    let a = agent();
                    let mut bad = Vec::new();
                    for i in (w..BANS).step_by(WORKERS as usize) {
                        match post_ban(&a, &addr(i)) {
                            Ok(201) => {}
                            other => bad.push(format!("{}: {other:?}", addr(i))),
                        }
                    }
                    bad
                })
            })
            .collect();
        let mut bad = Vec::new();
        for w in workers {
            bad.extend(w.join().unwrap());
        }
        done.store(true, Ordering::Relaxed);
        let (served, failed) = traffic.join().unwrap();
        (bad, served, failed)
    });
    let took = started.elapsed();
    assert!(
        bad.is_empty(),
        "{} bans not acknowledged: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(served > 0, "the proxy served nothing");
    assert!(
        failed.is_empty(),
        "{} proxy requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let have = all_bans(&lab);
    let want: BTreeSet<String> = (0..BANS).map(addr).collect();
    assert_eq!(have.len(), BANS as usize, "bans in force");
    assert!(have == want, "the bans in force are exactly the ones made");
    let (_, st): (u16, Value) = api(&lab, "GET", "/v1/stats", None);
    assert_eq!(st["api_panics"], 0);
    eprintln!(
        "{BANS} API bans in {:.1} s ({:.0}/s) while the proxy served {served} requests",
        took.as_secs_f64(),
        f64::from(BANS) / took.as_secs_f64()
    );
    drop(d);
}
