//! The command line of `waf gen`: the arguments as clap takes them
//! ([`GenArgs`], all text) and their checks, which give the run's
//! configuration ([`GenOptions`]) or one line saying what is wrong.

use std::{net::IpAddr, time::Duration};

use ipnet::IpNet;
use waf_common::r#gen::MAX_POOLS;

use super::{
    GenError, Result,
    frames::{MAX_FRAME, min_frame},
    live::MAX_BATCH,
};
use crate::values::Dur;

/// What `waf gen` accepts on the command line. Values are taken as text and
/// checked by [`GenArgs::resolve`], so every bad value gets one clear line.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(
    about = "Send a bounded flood of frames out of an interface (load-testing the filter)",
    long_about = "Send a bounded flood of frames out of an interface, with source addresses \
                  spread over CIDR pools (spoofed, as attacks are) and valid checksums. \
                  --proto http sends TCP segments carrying an HTTP GET without any handshake: \
                  it is a flood tool, not an HTTP client. Only send to hosts you own."
)]
pub struct GenArgs {
    /// Interface to send from.
    #[arg(long, short)]
    pub interface: String,
    /// Destination address (IPv4 or IPv6; sets the family).
    #[arg(long)]
    pub dst: String,
    /// Destination MAC (default: the neighbour entry of --dst on the interface).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// Source pool, a CIDR or an address (repeat for several; default
    /// 203.0.113.0/24 or 2001:db8:ffff::/64).
    #[arg(long)]
    pub src: Vec<String>,
    /// Legitimate source pool mixed into the flood (repeat for several).
    #[arg(long)]
    pub legit: Vec<String>,
    /// Percent of frames from the --legit pools (default 10 when given).
    #[arg(long)]
    pub legit_share: Option<String>,
    /// udp, syn (TCP SYN) or http (TCP segment with an HTTP GET, no handshake).
    #[arg(long, default_value = "udp")]
    pub proto: String,
    /// Destination port (default 9 for udp, 80 for syn and http).
    #[arg(long)]
    pub dport: Option<String>,
    /// Fixed source port (default: spread over 1024-33791).
    #[arg(long)]
    pub sport: Option<String>,
    /// Frame size in bytes without the FCS (60-1514; default 64, or the
    /// smallest frame that holds the headers).
    #[arg(long)]
    pub size: Option<String>,
    /// Frames per second, or `max`.
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// Stop after sending for this long, counted from the first frame: whole
    /// seconds or a number with ms, s, m, h or d (10s, 500ms, 2m).
    #[arg(long)]
    pub duration: Option<String>,
    /// Stop after this many frames.
    #[arg(long)]
    pub count: Option<String>,
    /// live (XDP live frames), packet (AF_PACKET) or auto (live, else packet).
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// Sending threads (each on its own CPU; default 1).
    #[arg(long, default_value = "1")]
    pub threads: String,
    /// Pin the sending threads to these CPUs (comma separated).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Live-frames batch size (1-256).
    #[arg(long, default_value = "64")]
    pub batch: String,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Layer 4 of the generated frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP SYNs.
    Syn,
    /// TCP segments (PSH|ACK) carrying an HTTP GET, without a handshake.
    Http,
}

/// Send rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// As fast as the engine goes.
    Max,
    /// Frames per second (all threads together).
    Pps(u64),
}

/// Which sending engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Live frames if the kernel can, else AF_PACKET.
    Auto,
    /// BPF_PROG_TEST_RUN with XDP live frames.
    Live,
    /// AF_PACKET with `sendmmsg`.
    Packet,
}

/// A checked generator configuration.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Interface to send from.
    pub interface: String,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination MAC (None: resolve the neighbour).
    pub dst_mac: Option<[u8; 6]>,
    /// Attacking source pools.
    pub src: Vec<IpNet>,
    /// Legitimate source pools.
    pub legit: Vec<IpNet>,
    /// Share of frames from `legit`, 0.0..=1.0.
    pub legit_share: f64,
    /// Layer 4.
    pub proto: Proto,
    /// Destination port.
    pub dport: u16,
    /// Fixed source port (None: spread).
    pub sport: Option<u16>,
    /// Frame size without FCS.
    pub size: usize,
    /// Rate.
    pub rate: Rate,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Engine.
    pub engine: Engine,
    /// Sending threads.
    pub threads: usize,
    /// CPUs to pin the threads to (empty: no pinning).
    pub cpus: Vec<usize>,
    /// Live-frames batch size.
    pub batch: u32,
    /// Print a progress line every second.
    pub progress: bool,
}

fn arg_err(flag: &str, value: &str, what: &str) -> GenError {
    GenError::Arg(format!("--{flag} {value}: {what}"))
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff` (or with dashes).
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || {
        arg_err(
            "dst-mac",
            s,
            "expected a MAC address like 02:00:00:00:00:01",
        )
    };
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// Parses `--rate`: a positive number of frames per second (`k`/`m`
/// suffixes allowed: `500k`, `2m`) or `max`.
pub fn parse_rate(s: &str) -> Result<Rate> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let n = parse_count_like(s).ok_or_else(|| {
        arg_err(
            "rate",
            s,
            "expected frames per second (e.g. 100000, 500k, 2m) or `max`",
        )
    })?;
    if n == 0 {
        return Err(arg_err(
            "rate",
            s,
            "must be at least 1 frame per second (or `max`)",
        ));
    }
    Ok(Rate::Pps(n))
}

fn parse_count_like(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1_000),
        'm' | 'M' => (&s[..s.len() - 1], 1_000_000),
        'g' | 'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let num = num.replace('_', "");
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mul);
    }
    let f: f64 = num.parse().ok()?;
    if !f.is_finite() || f < 0.0 || f * mul as f64 > u64::MAX as f64 / 2.0 {
        return None;
    }
    Some((f * mul as f64).round() as u64)
}

/// Parses a source pool: a CIDR or a bare address (one source).
pub fn parse_pool(flag: &str, s: &str) -> Result<IpNet> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        arg_err(
            flag,
            s,
            "expected a CIDR (198.51.100.0/24, 2001:db8::/64) or an address",
        )
    })
}

fn parse_num<T: std::str::FromStr>(flag: &str, s: &str, what: &str) -> Result<T> {
    s.trim().parse().map_err(|_| arg_err(flag, s, what))
}

/// Parses `--duration` in the project's one duration grammar
/// ([`Dur`]: whole seconds or a number with ms, s, m, h or d).
fn parse_duration(s: &str) -> Result<Duration> {
    let Dur(d) = s.parse().map_err(|e: String| arg_err("duration", s, &e))?;
    if d.is_zero() {
        return Err(arg_err("duration", s, "must be longer than zero"));
    }
    Ok(d)
}

/// Parses `--count`: a positive number of frames (`k`/`m` suffixes allowed).
fn parse_count(s: &str) -> Result<u64> {
    let n =
        parse_count_like(s).ok_or_else(|| arg_err("count", s, "expected a number of frames"))?;
    if n == 0 {
        return Err(arg_err("count", s, "must be at least 1"));
    }
    Ok(n)
}

/// `--dst` and `--dst-mac`.
struct Destination {
    dst: IpAddr,
    dst_mac: Option<[u8; 6]>,
}

/// `--src`, `--legit` and `--legit-share`.
struct Pools {
    src: Vec<IpNet>,
    legit: Vec<IpNet>,
    legit_share: f64,
}

/// `--proto`, `--dport`, `--sport` and `--size`.
struct Shape {
    proto: Proto,
    dport: u16,
    sport: Option<u16>,
    size: usize,
}

/// `--rate`, `--duration` and `--count`.
struct Bounds {
    rate: Rate,
    duration: Option<Duration>,
    count: Option<u64>,
}

/// `--engine`, `--threads`, `--cpus` and `--batch`.
struct Sending {
    engine: Engine,
    threads: usize,
    cpus: Vec<usize>,
    batch: u32,
}

impl GenArgs {
    /// Checks every value and returns the configuration, or one line saying
    /// what is wrong.
    pub fn resolve(&self) -> Result<GenOptions> {
        if self.interface.is_empty() || self.interface.len() > 15 || self.interface.contains('/') {
            return Err(arg_err(
                "interface",
                &self.interface,
                "not an interface name",
            ));
        }
        let Destination { dst, dst_mac } = self.destination()?;
        let Pools {
            src,
            legit,
            legit_share,
        } = self.pools(dst)?;
        let Shape {
            proto,
            dport,
            sport,
            size,
        } = self.shape(dst)?;
        let Bounds {
            rate,
            duration,
            count,
        } = self.bounds()?;
        let Sending {
            engine,
            threads,
            cpus,
            batch,
        } = self.sending()?;
        Ok(GenOptions {
            interface: self.interface.clone(),
            dst,
            dst_mac,
            src,
            legit,
            legit_share,
            proto,
            dport,
            sport,
            size,
            rate,
            duration,
            count,
            engine,
            threads,
            cpus,
            batch,
            progress: !self.quiet,
        })
    }

    fn destination(&self) -> Result<Destination> {
        let dst = self.dst.trim().parse().map_err(|_| {
            arg_err(
                "dst",
                &self.dst,
                "expected an IPv4 or IPv6 address (e.g. 192.0.2.1, 2001:db8::1)",
            )
        })?;
        let dst_mac = self.dst_mac.as_deref().map(parse_mac).transpose()?;
        Ok(Destination { dst, dst_mac })
    }

    fn pools(&self, dst: IpAddr) -> Result<Pools> {
        let parse = |flag: &str, list: &[String]| -> Result<Vec<IpNet>> {
            list.iter().map(|s| parse_pool(flag, s)).collect()
        };
        let mut src = parse("src", &self.src)?;
        if src.is_empty() {
            src.push(match dst {
                IpAddr::V4(_) => "203.0.113.0/24".parse().expect("valid"),
                IpAddr::V6(_) => "2001:db8:ffff::/64".parse().expect("valid"),
            });
        }
        let legit = parse("legit", &self.legit)?;
        for (flag, net) in src
            .iter()
            .map(|n| ("src", n))
            .chain(legit.iter().map(|n| ("legit", n)))
        {
            if net.addr().is_ipv4() != dst.is_ipv4() {
                return Err(arg_err(
                    flag,
                    &net.to_string(),
                    &format!("not of the family of --dst {dst}"),
                ));
            }
        }
        if src.len() + legit.len() > MAX_POOLS {
            return Err(GenError::Arg(format!(
                "{} source pools: at most {MAX_POOLS} (--src and --legit together)",
                src.len() + legit.len()
            )));
        }
        let legit_share = self.legit_share(!legit.is_empty())?;
        Ok(Pools {
            src,
            legit,
            legit_share,
        })
    }

    /// The share of legitimate frames, 0.0..=1.0 (10% by default when
    /// there are legitimate pools).
    fn legit_share(&self, has_legit: bool) -> Result<f64> {
        let Some(s) = &self.legit_share else {
            return Ok(if has_legit { 0.1 } else { 0.0 });
        };
        let p: f64 = parse_num("legit-share", s, "expected a percentage (0-100)")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(arg_err("legit-share", s, "must be between 0 and 100"));
        }
        if !has_legit && p > 0.0 {
            return Err(arg_err("legit-share", s, "needs at least one --legit pool"));
        }
        Ok(p / 100.0)
    }

    fn shape(&self, dst: IpAddr) -> Result<Shape> {
        let proto = match self.proto.as_str() {
            "udp" => Proto::Udp,
            "syn" => Proto::Syn,
            "http" => Proto::Http,
            other => return Err(arg_err("proto", other, "expected udp, syn or http")),
        };
        let port = "expected a port number (0-65535)";
        let dport = match &self.dport {
            Some(s) => parse_num("dport", s, port)?,
            None => match proto {
                Proto::Udp => 9,
                Proto::Syn | Proto::Http => 80,
            },
        };
        let sport = self
            .sport
            .as_deref()
            .map(|s| parse_num::<u16>("sport", s, port))
            .transpose()?;
        let min = min_frame(dst, proto);
        let size: usize = match &self.size {
            Some(s) => parse_num("size", s, "expected a frame size in bytes")?,
            None => min.max(64),
        };
        if size < min || size > MAX_FRAME {
            return Err(arg_err(
                "size",
                &size.to_string(),
                &format!(
                    "must be between {min} and {MAX_FRAME} bytes for {} over {}",
                    proto.name(),
                    if dst.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
            ));
        }
        Ok(Shape {
            proto,
            dport,
            sport,
            size,
        })
    }

    fn bounds(&self) -> Result<Bounds> {
        let rate = parse_rate(&self.rate)?;
        let duration = self.duration.as_deref().map(parse_duration).transpose()?;
        let count = self.count.as_deref().map(parse_count).transpose()?;
        if duration.is_none() && count.is_none() {
            return Err(GenError::Arg(
                "give --duration or --count (or both): the generator always stops by itself".into(),
            ));
        }
        Ok(Bounds {
            rate,
            duration,
            count,
        })
    }

    fn sending(&self) -> Result<Sending> {
        let engine = match self.engine.as_str() {
            "auto" => Engine::Auto,
            "live" | "xdp" => Engine::Live,
            "packet" | "af_packet" => Engine::Packet,
            other => return Err(arg_err("engine", other, "expected auto, live or packet")),
        };
        let threads: usize = parse_num("threads", &self.threads, "expected a number of threads")?;
        let most = 4 * std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads == 0 || threads > most {
            return Err(arg_err(
                "threads",
                &self.threads,
                &format!("must be between 1 and {most}"),
            ));
        }
        let cpus = match &self.cpus {
            None => Vec::new(),
            Some(s) => s
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n < 1024)
                        .ok_or_else(|| arg_err("cpus", s, "expected CPU numbers like 0,1"))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let batch: u32 = parse_num("batch", &self.batch, "expected a batch size (1-256)")?;
        if batch == 0 || batch > MAX_BATCH {
            return Err(arg_err("batch", &self.batch, "must be between 1 and 256"));
        }
        Ok(Sending {
            engine,
            threads,
            cpus,
            batch,
        })
    }
}

impl Proto {
    /// The name `--proto` takes.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Syn => "syn",
            Proto::Http => "http",
        }
    }
}

/// Arguments as a test gives them: an IPv4 UDP run of 10 frames out of
/// `veth0`, with `extra` (flag, value) pairs on top.
#[cfg(test)]
pub(super) fn test_args(extra: &[(&str, &str)]) -> GenArgs {
    let mut a = GenArgs {
        interface: "veth0".into(),
        dst: "192.0.2.1".into(),
        proto: "udp".into(),
        rate: "max".into(),
        engine: "auto".into(),
        threads: "1".into(),
        batch: "64".into(),
        count: Some("10".into()),
        ..Default::default()
    };
    for (k, v) in extra {
        let v = v.to_string();
        match *k {
            "dst" => a.dst = v,
            "src" => a.src.push(v),
            "legit" => a.legit.push(v),
            "legit-share" => a.legit_share = Some(v),
            "proto" => a.proto = v,
            "size" => a.size = Some(v),
            "rate" => a.rate = v,
            "count" => a.count = Some(v),
            "nocount" => a.count = None,
            "duration" => a.duration = Some(v),
            "dst-mac" => a.dst_mac = Some(v),
            "batch" => a.batch = v,
            "cpus" => a.cpus = Some(v),
            "sport" => a.sport = Some(v),
            _ => panic!("{k}"),
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(extra: &[(&str, &str)]) -> String {
        let e = test_args(extra)
            .resolve()
            .expect_err("must be refused")
            .to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn bad_arguments_get_one_line_errors() {
        assert!(err(&[("rate", "fast")]).contains("--rate fast"));
        assert!(err(&[("rate", "0")]).contains("at least 1"));
        assert!(err(&[("size", "20")]).contains("between 60 and 1514"));
        assert!(err(&[("size", "9000")]).contains("between"));
        assert!(err(&[("dst", "2001:db8::1"), ("size", "60")]).contains("between 62"));
        assert!(err(&[("proto", "icmp")]).contains("udp, syn or http"));
        assert!(err(&[("src", "2001:db8::/64")]).contains("family"));
        assert!(err(&[("src", "300.1.1.0/24")]).contains("CIDR"));
        assert!(err(&[("nocount", "")]).contains("--duration or --count"));
        assert!(err(&[("duration", "soon")]).contains("--duration soon"));
        assert!(err(&[("duration", "0")]).contains("longer than zero"));
        assert!(err(&[("duration", "1.5s")]).contains("whole seconds"));
        assert!(err(&[("dst-mac", "02:00:00")]).contains("MAC"));
        assert!(err(&[("batch", "1000")]).contains("between 1 and 256"));
        assert!(err(&[("legit-share", "50")]).contains("--legit"));
        assert!(err(&[("cpus", "a,b")]).contains("--cpus"));
        assert!(err(&[("count", "0")]).contains("at least 1"));
    }

    #[test]
    fn good_arguments_resolve() {
        let o = test_args(&[
            ("rate", "2.5m"),
            ("duration", "1500ms"),
            ("legit", "192.0.2.0/28"),
            ("dst-mac", "02:00:00:00:00:0a"),
            ("cpus", "0,1"),
        ])
        .resolve()
        .unwrap();
        assert_eq!(o.rate, Rate::Pps(2_500_000));
        assert_eq!(o.duration, Some(Duration::from_millis(1500)));
        assert_eq!(o.count, Some(10));
        assert_eq!(o.src, vec!["203.0.113.0/24".parse::<IpNet>().unwrap()]);
        assert!((o.legit_share - 0.1).abs() < 1e-9);
        assert_eq!(o.dst_mac, Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(o.cpus, vec![0, 1]);
        assert_eq!(o.dport, 9);
    }

    #[test]
    fn durations_take_the_config_grammar() {
        for (text, want) in [
            ("2", Duration::from_secs(2)),
            ("90s", Duration::from_secs(90)),
            ("250ms", Duration::from_millis(250)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
        ] {
            let o = test_args(&[("duration", text)]).resolve().unwrap();
            assert_eq!(o.duration, Some(want), "{text}");
        }
    }
}
