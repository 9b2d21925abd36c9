//! The filters the flood steps compare, each on the server's flood link
//! in turn: no filter, an nftables netdev-ingress set, a trivial XDP_DROP,
//! the textbook XDP filter (one hash lookup of the IPv4 source), the
//! kernel project's xdp-filter (xdp-tools, loaded as its users load it,
//! through libxdp), and waf's XDP program with the flood's sources banned,
//! alone or among a million bans.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use aya::programs::{Xdp, XdpMode, xdp::XdpLinkId};
use ipnet::{IpNet, Ipv6Net};
use waf_common::{BanEntry, ban_reason, counter};
use waf_user::{
    dataplane::{AttachMode, Capacity, Dataplane, LoadOptions},
    r#gen::Tools,
};

use super::FloodLab;
use crate::unique;

/// The flood's address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    pub(super) fn key(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
    /// The server's address on the flood link.
    pub(super) fn dst(self) -> &'static str {
        match self {
            Family::V4 => super::SRV,
            Family::V6 => super::SRV6,
        }
    }
    /// The spoofed sources: 256 addresses (for IPv6 all in one /64, the
    /// key of waf's IPv6 exact bans at the default `ipv6_prefix`).
    pub(super) fn pool(self) -> &'static str {
        match self {
            Family::V4 => super::FLOOD_POOL,
            Family::V6 => super::FLOOD_POOL6,
        }
    }
    /// Every address of the pool.
    pub(super) fn addrs(self) -> Vec<IpAddr> {
        match self.pool().parse().expect("pool") {
            IpNet::V4(n) => {
                let base = u32::from(n.network());
                (0..=u32::from(n.hostmask()))
                    .map(|i| IpAddr::V4(Ipv4Addr::from(base + i)))
                    .collect()
            }
            IpNet::V6(n) => {
                let base = u128::from(n.network());
                (0..=u128::from(n.hostmask()))
                    .map(|i| IpAddr::V6(Ipv6Addr::from(base + i)))
                    .collect()
            }
        }
    }
    /// The pool's key in waf's ban maps: the pool itself for IPv4, its
    /// /64 for IPv6.
    fn ban_key(self) -> Result<IpNet> {
        let net: IpNet = self.pool().parse()?;
        Ok(match net {
            IpNet::V4(_) => net,
            IpNet::V6(n) => IpNet::V6(Ipv6Net::new(n.network(), 64)?.trunc()),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Filter {
    None,
    Nft,
    /// A program that drops everything: the cheapest an XDP filter can be.
    XdpDrop,
    /// The textbook filter: one hash lookup of the IPv4 source (IPv4 only).
    Textbook,
    /// xdp-filter from xdp-tools, `-f ipv4,ipv6`, sources by `ip -m src`.
    XdpTools,
    /// waf's program with the flood's sources banned.
    Waf,
    /// The same among 1,000,000 exact bans (half IPv4, half IPv6).
    Waf1M,
}

impl Filter {
    pub(super) fn name(self) -> &'static str {
        match self {
            Filter::None => "no filter",
            Filter::Nft => "nftables",
            Filter::XdpDrop => "XDP_DROP only",
            Filter::Textbook => "textbook XDP filter",
            Filter::XdpTools => "xdp-filter",
            Filter::Waf => "waf XDP",
            Filter::Waf1M => "waf XDP, 1M bans",
        }
    }
    pub(super) fn key(self) -> &'static str {
        match self {
            Filter::None => "none",
            Filter::Nft => "nftables",
            Filter::XdpDrop => "xdp_drop",
            Filter::Textbook => "textbook",
            Filter::XdpTools => "xdp_filter",
            Filter::Waf => "xdp",
            Filter::Waf1M => "xdp_1m",
        }
    }
    /// A label short enough for a chart's axis.
    pub(super) fn short(self) -> String {
        match self {
            Filter::None => "none",
            Filter::Nft => "nftables",
            Filter::XdpDrop => "XDP_DROP",
            Filter::Textbook => "textbook",
            Filter::XdpTools => "xdp-filter",
            Filter::Waf => "waf",
            Filter::Waf1M => "waf 1M",
        }
        .to_string()
    }
    /// Whether the filter drops in XDP (the stack never sees the flood).
    pub(super) fn is_xdp(self) -> bool {
        !matches!(self, Filter::None | Filter::Nft)
    }
    pub(super) fn serves(self, fam: Family) -> bool {
        self != Filter::Textbook || fam == Family::V4
    }
}

/// The flood step's filters.
pub(super) const DROP_FILTERS: [Filter; 7] = [
    Filter::None,
    Filter::Nft,
    Filter::XdpDrop,
    Filter::Textbook,
    Filter::XdpTools,
    Filter::Waf,
    Filter::Waf1M,
];

/// The survival step's filters.
pub(super) const SURVIVAL_FILTERS: [Filter; 3] = [Filter::None, Filter::Nft, Filter::Waf];

fn ban() -> BanEntry {
    BanEntry {
        expires_ns: 0,
        reason: ban_reason::MANUAL,
        _reserved: 0,
    }
}

/// Bans the flood's sources of both families: each IPv4 address, and the
/// IPv6 pool's /64 (one exact ban at the default `ipv6_prefix`).
fn ban_flood(dp: &mut Dataplane) -> Result<()> {
    for addr in Family::V4.addrs() {
        dp.maps.ban(IpNet::from(addr), ban())?;
    }
    dp.maps.ban(Family::V6.ban_key()?, ban())?;
    Ok(())
}

/// waf's program loaded with the flood's sources banned (not attached).
pub(super) fn load_waf() -> Result<Dataplane> {
    let mut dp = Dataplane::load(&LoadOptions::default())?;
    ban_flood(&mut dp)?;
    Ok(dp)
}

/// waf's program among 1,000,000 exact bans: 500,000 random IPv4
/// addresses and 500,000 random IPv6 /64s (none of the flood's), the
/// capacity configured for them, then the flood's sources.
pub(super) fn load_waf_1m() -> Result<Dataplane> {
    let per_family = 500_000u32;
    let mut dp = Dataplane::load(&LoadOptions {
        capacity: Capacity {
            bans: per_family,
            ..Capacity::default()
        },
        ..Default::default()
    })?;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let flood4 = Family::V4.ban_key()?;
    let flood6 = Family::V6.ban_key()?;
    let mut n = 0;
    while n < per_family {
        let a = IpAddr::V4(Ipv4Addr::from(next() as u32));
        if flood4.contains(&a) {
            continue;
        }
        dp.maps.ban(IpNet::from(a), ban())?;
        n += 1;
    }
    n = 0;
    while n < per_family {
        // A /64 inside 2001:db8::/32.
        let hi = (0x2001_0db8u128 << 96) | (u128::from(next() as u32) << 64);
        let a = IpAddr::V6(Ipv6Addr::from(hi));
        if flood6.contains(&a) {
            continue;
        }
        dp.maps.ban(IpNet::new(a, 64)?, ban())?;
        n += 1;
    }
    ban_flood(&mut dp)?;
    Ok(dp)
}

/// Filters loaded once for the whole step and attached in turn.
pub(super) struct Kit {
    tools: Tools,
    waf: Dataplane,
    waf_1m: Dataplane,
    /// Whether xdp-filter may run here (none of the host's in bpffs).
    xdp_filter: Result<XdpFilterPins, String>,
}

impl Kit {
    pub(super) fn load() -> Result<Self> {
        let mut tools = Tools::load().context("load the floor and reference programs")?;
        for addr in Family::V4.addrs() {
            if let IpAddr::V4(a) = addr {
                tools.reference_ban(a)?;
            }
        }
        let t = std::time::Instant::now();
        let waf_1m = load_waf_1m().context("load waf's program with 1,000,000 bans")?;
        println!(
            "waf's program loaded with 1,000,000 bans in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Ok(Self {
            tools,
            waf: load_waf()?,
            waf_1m,
            xdp_filter: XdpFilterPins::check(),
        })
    }

    /// Why xdp-filter is left out, if it is.
    pub(super) fn xdp_filter_missing(&self) -> Option<&str> {
        self.xdp_filter.as_ref().err().map(String::as_str)
    }

    /// waf's data plane of a filter (for its counters).
    pub(super) fn waf(&self, f: Filter) -> Option<&Dataplane> {
        match f {
            Filter::Waf => Some(&self.waf),
            Filter::Waf1M => Some(&self.waf_1m),
            _ => None,
        }
    }

    fn program(&mut self, f: Filter) -> Result<&mut Xdp> {
        Ok(match f {
            Filter::XdpDrop => self.tools.floor()?,
            Filter::Textbook => self.tools.reference()?,
            Filter::Waf => self.waf.program()?,
            Filter::Waf1M => self.waf_1m.program()?,
            _ => bail!("{} is not one of our programs", f.name()),
        })
    }

    /// Puts filter `f` on the server's flood link against floods of
    /// `fam`; [`Kit::deactivate`] takes it off.
    pub(super) fn activate(&mut self, lab: &FloodLab, f: Filter, fam: Family) -> Result<Active> {
        let mut a = Active {
            filter: f,
            link: None,
            nft: false,
            xdp_filter: false,
        };
        match f {
            Filter::None => {}
            Filter::Nft => {
                nft_load(lab, fam)?;
                a.nft = true;
            }
            Filter::XdpTools => {
                if let Err(why) = &self.xdp_filter {
                    bail!("xdp-filter: {why}");
                }
                a.xdp_filter = true;
                xdp_filter_load(lab, fam)?;
            }
            _ => {
                let ifname = lab.srv_if.clone();
                let prog = self.program(f)?;
                let id = lab
                    .srv
                    .run(|| prog.attach(&ifname, XdpMode::Driver))
                    .with_context(|| format!("attach {}", f.name()))?;
                a.link = Some(id);
            }
        }
        Ok(a)
    }

    pub(super) fn deactivate(&mut self, lab: &FloodLab, a: Active) -> Result<()> {
        if a.nft {
            nft_unload(lab);
        }
        if a.xdp_filter {
            xdp_filter_unload(lab)?;
        }
        if let Some(id) = a.link {
            self.program(a.filter)?.detach(id)?;
        }
        Ok(())
    }
}

impl Drop for Kit {
    fn drop(&mut self) {
        if let Ok(pins) = &self.xdp_filter {
            pins.clean();
        }
    }
}

/// What [`Kit::activate`] did.
pub(super) struct Active {
    pub(super) filter: Filter,
    link: Option<XdpLinkId>,
    nft: bool,
    xdp_filter: bool,
}

fn nft_load(lab: &FloodLab, fam: Family) -> Result<()> {
    let (ty, sel) = match fam {
        Family::V4 => ("ipv4_addr", "ip saddr"),
        Family::V6 => ("ipv6_addr", "ip6 saddr"),
    };
    let addrs: Vec<String> = fam.addrs().iter().map(IpAddr::to_string).collect();
    let rules = format!(
        "table netdev wafbench {{\n\
           set banned {{ type {ty}; elements = {{ {} }} }}\n\
           chain ingress {{ type filter hook ingress device \"{}\" priority -500; policy accept;\n\
             {sel} @banned counter drop\n\
           }}\n\
         }}\n",
        addrs.join(", "),
        lab.srv_if
    );
    let path = std::env::temp_dir().join(format!("{}.nft", unique("wafbench")));
    std::fs::write(&path, rules)?;
    let ok = lab
        .srv
        .try_exec(&["nft", "-f", &path.display().to_string()]);
    let _ = std::fs::remove_file(&path);
    if !ok {
        nft_unload(lab);
        bail!("nft -f failed (is nftables installed? cargo xtask setup)");
    }
    Ok(())
}

fn nft_unload(lab: &FloodLab) {
    let _ = Command::new("ip")
        .args(["netns", "exec", &lab.srv.name])
        .args(["nft", "delete", "table", "netdev", "wafbench"])
        .output();
}

/// Packets the nftables rule dropped so far.
pub(super) fn nft_dropped(lab: &FloodLab) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.srv.name])
        .args(["nft", "list", "chain", "netdev", "wafbench", "ingress"])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split("counter packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Packets a filter dropped so far, where it counts them.
pub(super) fn dropped(kit: &Kit, lab: &FloodLab, f: Filter) -> Option<u64> {
    match f {
        Filter::Nft => Some(nft_dropped(lab)),
        Filter::Waf | Filter::Waf1M => kit
            .waf(f)
            .and_then(|d| d.maps.counters().ok())
            .map(|c| c[counter::BANNED as usize].packets),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// xdp-filter (xdp-tools). It keeps its maps and libxdp its dispatcher in
// the host's bpffs (/sys/fs/bpf/xdp-filter, /sys/fs/bpf/xdp), so it runs
// with only the network namespace switched (nsenter --net), and the bench
// leaves it out when the host already has xdp-filter state there.

const BPFFS: &str = "/sys/fs/bpf";

/// The bpffs entries that were there before the bench, to remove only the
/// ones it made.
pub(super) struct XdpFilterPins {
    before: Vec<PathBuf>,
    /// Whether libxdp's directory was there before.
    had_dir: bool,
}

impl XdpFilterPins {
    fn check() -> Result<Self, String> {
        let ok = Command::new("xdp-filter")
            .arg("help")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).contains("xdp-filter")
                    || String::from_utf8_lossy(&o.stderr).contains("xdp-filter")
            })
            .unwrap_or(false);
        if !ok {
            return Err("not installed (cargo xtask setup installs xdp-tools)".into());
        }
        if Path::new(BPFFS).join("xdp-filter").exists() {
            return Err(format!(
                "{BPFFS}/xdp-filter exists (the host runs xdp-filter; the bench leaves it alone)"
            ));
        }
        Ok(Self {
            before: libxdp_entries(),
            had_dir: Path::new(BPFFS).join("xdp").exists(),
        })
    }

    fn clean(&self) {
        let _ = std::fs::remove_dir_all(Path::new(BPFFS).join("xdp-filter"));
        for p in libxdp_entries() {
            if !self.before.contains(&p) {
                let _ = std::fs::remove_dir_all(&p);
                let _ = std::fs::remove_file(&p);
            }
        }
        if !self.had_dir {
            let _ = std::fs::remove_dir(Path::new(BPFFS).join("xdp"));
        }
    }
}

fn libxdp_entries() -> Vec<PathBuf> {
    std::fs::read_dir(Path::new(BPFFS).join("xdp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn xdp_filter(lab: &FloodLab, args: &[&str]) -> Result<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{}", lab.srv.name))
        .arg("xdp-filter")
        .args(args)
        .output()
        .context("run xdp-filter")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("xdp-filter {}: {}", args.join(" "), text.trim());
    }
    Ok(text)
}

fn xdp_filter_load(lab: &FloodLab, fam: Family) -> Result<()> {
    xdp_filter(
        lab,
        &["load", "-m", "native", "-f", "ipv4,ipv6", &lab.srv_if],
    )?;
    for addr in fam.addrs() {
        if let Err(e) = xdp_filter(lab, &["ip", "-m", "src", &addr.to_string()]) {
            let _ = xdp_filter_unload(lab);
            return Err(e);
        }
    }
    Ok(())
}

fn xdp_filter_unload(lab: &FloodLab) -> Result<()> {
    xdp_filter(lab, &["unload", &lab.srv_if]).map(drop)
}

/// waf's program with the flood's IPv4 sources banned, attached to the
/// server's link (the rate-limit and bpf_stats steps); detached on drop.
pub(super) fn attach_waf(lab: &FloodLab) -> Result<Dataplane> {
    let mut dp = load_waf()?;
    let ifname = lab.srv_if.clone();
    lab.srv
        .run(|| dp.attach(&ifname, AttachMode::Native))
        .context("attach the XDP program")?;
    Ok(dp)
}
