//! Step 2, flood survival: does the server keep serving its users while a
//! spoofed flood of rising rate hits it?
//!
//! The users are a fixed-rate load (default 5,000 requests/s over 8
//! keep-alive connections, each request due at its time whether the last
//! one was answered or not, latency counted from when it was due), well
//! under what the server and the client can do unflooded. On two CPUs the
//! flood generator and the client share CPU 0, so a closed-loop client
//! (wrk) measures how much CPU the generator leaves it, not the server; a
//! fixed rate the client keeps up with at every flood rate measures the
//! server: the share of the requests it answers, their latency, and the
//! CPU it has left (the idle share of CPU 1, which runs its receive path
//! and the HTTP server). Each point is repeated (`--rounds`), the filters
//! interleaved, medians and spread printed.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::{
    CPU_SENDER, CPU_SERVER, FloodLab, HTTP_PORT, Options, SRV, enter,
    filters::{Family, Kit, SURVIVAL_FILTERS},
    join_gen, pin, spread,
};

/// A small keep-alive HTTP server on its own threads in a namespace, pinned
/// to one CPU (one thread per connection, as a simple app server does).
struct HttpServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn start(ns: &str, addr: SocketAddr, cpu: usize) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = ns.to_string();
        let st = stop.clone();
        let handle = std::thread::spawn(move || {
            let setup = || -> Result<TcpListener> {
                enter(&ns)?;
                pin(0, cpu);
                let l = TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Ok(l)
            };
            let listener = match setup() {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut conns = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let st = st.clone();
                        conns.push(std::thread::spawn(move || serve(s, &st)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        rx.recv()
            .map_err(|_| anyhow::anyhow!("HTTP server thread died"))??;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n";

fn serve(mut s: TcpStream, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 8192];
    let mut have = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf[have..]) {
            Ok(0) => return,
            Ok(n) => {
                have += n;
                while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    if s.write_all(RESPONSE).is_err() {
                        return;
                    }
                    buf.copy_within(end + 4..have, 0);
                    have -= end + 4;
                }
                if have == buf.len() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// What one fixed-rate load run saw.
#[derive(Default)]
struct LoadRun {
    /// Requests due in the run.
    due: u64,
    /// Answered in full.
    ok: u64,
    /// Timed out, refused or cut (the connection is made again).
    errors: u64,
    /// Answered, or due, more than [`DEADLINE`] after it was due.
    late: u64,
    /// Latencies of the answered ones, from when each was due, in µs.
    lat_us: Vec<u32>,
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// A request counts as served when answered within this of when it was
/// due.
const DEADLINE: Duration = Duration::from_secs(1);

/// One connection's share of the load: a request every `interval` from
/// `start` until `end`, one at a time.
fn load_conn(
    ns: &str,
    addr: SocketAddr,
    start: Instant,
    interval: Duration,
    end: Instant,
) -> Result<LoadRun> {
    enter(ns)?;
    pin(0, CPU_SENDER);
    // Wake-ups to the microsecond (the default slack is 50 µs).
    // SAFETY: prctl with an integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64) };
    let timeout = DEADLINE;
    let connect = || -> Option<TcpStream> {
        let s = TcpStream::connect_timeout(&addr, timeout).ok()?;
        s.set_nodelay(true).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        Some(s)
    };
    let mut run = LoadRun::default();
    let mut conn = connect();
    let mut buf = vec![0u8; 4096];
    let mut i = 0u32;
    loop {
        let due = start + interval * i;
        i += 1;
        if due >= end {
            break;
        }
        run.due += 1;
        let now = Instant::now();
        if now > due + DEADLINE {
            // Too late to be of use: not sent, not served.
            run.late += 1;
            continue;
        }
        if now < due {
            std::thread::sleep(due - now);
        }
        let Some(s) = conn.as_mut() else {
            run.errors += 1;
            conn = connect();
            continue;
        };
        let ok = s.write_all(REQUEST).is_ok() && {
            let mut have = 0;
            while have < RESPONSE.len() {
                match s.read(&mut buf[have..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => have += n,
                }
            }
            have == RESPONSE.len()
        };
        if ok {
            let lat = due.elapsed();
            if lat <= DEADLINE {
                run.ok += 1;
            } else {
                run.late += 1;
            }
            run.lat_us
                .push(lat.as_micros().min(u128::from(u32::MAX)) as u32);
        } else {
            run.errors += 1;
            conn = connect();
        }
    }
    Ok(run)
}

/// The fixed-rate load from the client namespace for `secs`.
fn http_load(lab: &FloodLab, rate: f64, conns: usize, secs: f64) -> Result<LoadRun> {
    let addr: SocketAddr = format!("{SRV}:{HTTP_PORT}").parse()?;
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..conns)
        .map(|k| {
            let ns = lab.cli.name.clone();
            // Staggered over the interval.
            let start = start + interval * k as u32 / conns as u32;
            std::thread::spawn(move || load_conn(&ns, addr, start, interval, end))
        })
        .collect();
    let mut all = LoadRun::default();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))??;
        all.due += r.due;
        all.ok += r.ok;
        all.errors += r.errors;
        all.late += r.late;
        all.lat_us.extend(r.lat_us);
    }
    Ok(all)
}

/// Idle and total jiffies of one CPU (/proc/stat).
fn cpu_times(cpu: usize) -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let name = format!("cpu{cpu} ");
    let Some(line) = text.lines().find(|l| l.starts_with(&name)) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (idle, v.iter().take(8).sum())
}

/// Connections of the fixed load.
const CONNS: usize = 8;

/// One point: served share, p99 latency, server CPU spare, flood offered.
#[derive(Clone, Copy)]
struct Point {
    offered_pps: f64,
    served_rps: f64,
    p99_ms: f64,
    spare: f64,
    /// The idle share of the client's (and generator's) CPU.
    client_spare: f64,
    errors: u64,
}

fn measure_point(
    lab: &FloodLab,
    kit: &mut Kit,
    f: super::filters::Filter,
    rate: &str,
    o: &Options,
) -> Result<Point> {
    let active = kit.activate(lab, f, Family::V4)?;
    let out = (|| -> Result<Point> {
        lab.napi_thread()?;
        let g = if rate == "0" {
            None
        } else {
            Some(lab.spawn_gen(lab.gen_opts(&[super::FLOOD_POOL], SRV, rate, o.step + 1.5)?))
        };
        std::thread::sleep(Duration::from_millis(500));
        let (c0, k0) = (cpu_times(CPU_SERVER), cpu_times(CPU_SENDER));
        let mut run = http_load(lab, o.http_rate, CONNS, o.step)?;
        let (c1, k1) = (cpu_times(CPU_SERVER), cpu_times(CPU_SENDER));
        let offered = match g {
            Some(g) => join_gen(g)?.pps,
            None => 0.0,
        };
        run.lat_us.sort_unstable();
        let p99 = run
            .lat_us
            .get((run.lat_us.len() * 99 / 100).min(run.lat_us.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0);
        let idle = |a: (u64, u64), b: (u64, u64)| {
            b.0.saturating_sub(a.0) as f64 / b.1.saturating_sub(a.1).max(1) as f64
        };
        Ok(Point {
            offered_pps: offered,
            served_rps: run.ok as f64 / o.step,
            p99_ms: if run.ok == 0 {
                f64::NAN
            } else {
                f64::from(p99) / 1e3
            },
            spare: idle(c0, c1),
            client_spare: idle(k0, k1),
            errors: run.errors,
        })
    })();
    kit.deactivate(lab, active)?;
    // Let queues drain and connections close.
    std::thread::sleep(Duration::from_millis(300));
    out
}

pub(super) fn bench_survival(lab: &FloodLab, kit: &mut Kit, o: &Options) -> Result<Value> {
    let _server = HttpServer::start(
        &lab.srv.name,
        format!("{SRV}:{HTTP_PORT}").parse()?,
        CPU_SERVER,
    )?;
    let rates: Vec<&str> = if o.quick {
        vec!["0", "1m", "4m"]
    } else {
        vec!["0", "500k", "1m", "2m", "3m", "4m"]
    };
    let filters = SURVIVAL_FILTERS;
    // points[rate][filter], one per round.
    let mut points = vec![vec![Vec::new(); filters.len()]; rates.len()];
    for round in 0..o.rounds {
        for (i, rate) in rates.iter().enumerate() {
            for k in 0..filters.len() {
                let j = (k + round + i) % filters.len();
                points[i][j].push(
                    measure_point(lab, kit, filters[j], rate, o)
                        .with_context(|| format!("{} at {rate}", filters[j].name()))?,
                );
            }
        }
        eprintln!("flood survival: round {} of {} done", round + 1, o.rounds);
    }
    println!(
        "\n## 2. Flood survival: a fixed load of {:.0} HTTP requests/s ({} connections) under a \
         spoofed UDP flood; requests/s served within 1 s of when due, p99 latency from when each was due, \
         server CPU left; medians of {} rounds (lowest-highest)\n",
        o.http_rate, CONNS, o.rounds
    );
    print!("| flood offered |");
    for f in filters {
        print!(" {} |", f.name());
    }
    println!("\n|---|---|---|---|");
    let mut rows = Vec::new();
    let mut unloaded = vec![0.0; filters.len()];
    let mut worst = vec![f64::INFINITY; filters.len()];
    for (i, rate) in rates.iter().enumerate() {
        let mut off: Vec<f64> = points[i].iter().flatten().map(|p| p.offered_pps).collect();
        print!("| {rate} ({:.2} Mpps) |", spread(&mut off).0 / 1e6);
        for (j, f) in filters.iter().enumerate() {
            let ps = &points[i][j];
            let m = |get: &dyn Fn(&Point) -> f64| {
                let mut v: Vec<f64> = ps.iter().map(get).collect();
                spread(&mut v)
            };
            let served = m(&|p| p.served_rps);
            let p99 = m(&|p| p.p99_ms);
            let spare = m(&|p| p.spare);
            let client_spare = m(&|p| p.client_spare);
            let offered = m(&|p| p.offered_pps);
            let errors: u64 = ps.iter().map(|p| p.errors).sum();
            if i == 0 {
                unloaded[j] = served.0;
            }
            let share = served.0 / unloaded[j].max(1.0);
            worst[j] = worst[j].min(share);
            print!(
                " {:.0} ({:.0}-{:.0}), p99 {:.1} ms, CPU left {:.0}% (client {:.0}%) |",
                served.0,
                served.1,
                served.2,
                p99.0,
                spare.0 * 100.0,
                client_spare.0 * 100.0
            );
            rows.push(json!({
                "filter": f.key(),
                "rate": rate,
                "offered_pps": offered.0,
                "http_rps": served.0,
                "http_rps_spread": [served.1, served.2],
                "of_unloaded": share,
                "p99_ms": if p99.0.is_nan() { Value::Null } else { json!(p99.0) },
                "server_cpu_left": spare.0,
                "client_cpu_left": client_spare.0,
                "socket_errors": errors,
            }));
        }
        println!();
    }
    let xdp = filters
        .iter()
        .position(|f| *f == super::filters::Filter::Waf)
        .expect("waf in the survival filters");
    let holds = worst[xdp] >= 0.9;
    println!(
        "\nshape: with waf XDP the served rate stays at least {:.0}% of the unloaded one up to \
         the highest flood offered (goal 90%: {}); at the highest flood: {}",
        worst[xdp] * 100.0,
        if holds { "met" } else { "NOT met" },
        filters
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let last = rows
                    .iter()
                    .rev()
                    .find(|r| r["filter"] == f.key())
                    .and_then(|r| r["of_unloaded"].as_f64())
                    .unwrap_or(0.0);
                let _ = j;
                format!("{} {:.0}%", f.name(), last * 100.0)
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(json!({
        "http_rate": o.http_rate,
        "connections": CONNS,
        "rounds": o.rounds,
        "rows": rows,
        "xdp_worst_of_unloaded": worst[xdp],
        "goal_met": holds,
    }))
}
