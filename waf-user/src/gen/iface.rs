//! The interfaces `waf gen` sends from: index, MAC address, the neighbour
//! entry of the destination, and the driver counters (what `ethtool -S`
//! shows). Everything goes through the network namespace of the calling
//! thread (sockets, netlink, `ip` run from it), never through /sys, so the
//! generator works from a thread that entered another namespace.

use std::{
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd as _, OwnedFd},
    process::Command,
    time::{Duration, Instant},
};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use super::{GenError, Result, args::parse_mac};

/// The index of `ifname` in the calling thread's network namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(ifname).map_err(|e| GenError::Interface {
        interface: ifname.into(),
        message: match e {
            nix::Error::ENODEV => "no such interface in this network namespace".into(),
            e => format!("looking up its index: {e}"),
        },
    })
}

/// The MAC address of `ifname`.
pub fn interface_mac(ifname: &str) -> Result<[u8; 6]> {
    let err = |message: String| GenError::Interface {
        interface: ifname.into(),
        message,
    };
    let addrs =
        nix::ifaddrs::getifaddrs().map_err(|e| err(format!("reading its MAC address: {e}")))?;
    addrs
        .filter(|a| a.interface_name == ifname)
        .find_map(|a| a.address?.as_link_addr()?.addr())
        .ok_or_else(|| err("no such interface in this network namespace".into()))
}

/// The MAC of `dst` in the neighbour table of `ifname` (ARP or neighbour
/// discovery), if resolved.
fn neighbour(ifname: &str, dst: IpAddr) -> Option<[u8; 6]> {
    let out = Command::new("ip")
        .args(["neigh", "show", "to", &dst.to_string(), "dev", ifname])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return parse_mac(words.next()?).ok();
        }
    }
    None
}

/// The MAC of `dst` on `ifname`: the neighbour entry, after prompting the
/// kernel to resolve it (one UDP datagram to port 9) if there is none.
pub fn resolve_mac(ifname: &str, dst: IpAddr) -> Result<[u8; 6]> {
    if let Some(m) = neighbour(ifname, dst) {
        return Ok(m);
    }
    let bind: SocketAddr = match dst {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("valid"),
        IpAddr::V6(_) => "[::]:0".parse().expect("valid"),
    };
    if let Ok(s) = std::net::UdpSocket::bind(bind) {
        let _ = s.send_to(b"waf gen: neighbour probe", (dst, 9));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(m) = neighbour(ifname, dst) {
            return Ok(m);
        }
    }
    Err(GenError::Interface {
        interface: ifname.into(),
        message: format!("no neighbour entry for {dst}: pass --dst-mac"),
    })
}

/// `struct ifreq` with the interface name and room for the union.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// One SIOCETHTOOL call on `ifname`: `cmd` holds the command and its
/// header, sized for everything the kernel writes back (the header's counts
/// say how much that is).
fn ethtool(sock: &OwnedFd, ifname: &str, cmd: &mut [u8]) -> bool {
    let mut req = IfReq {
        name: [0; 16],
        data: [0; 24],
    };
    let n = ifname.len().min(15);
    req.name[..n].copy_from_slice(&ifname.as_bytes()[..n]);
    req.data[..8].copy_from_slice(&(cmd.as_mut_ptr() as usize as u64).to_ne_bytes());
    // SAFETY: SIOCETHTOOL reads the ifreq and the command buffer it points
    // to, and writes back as much as the command asks for: the buffers here
    // are sized for the count ETHTOOL_GSSET_INFO reported just before (a
    // driver whose count grew in between could write past it; ethtool(8)
    // has the same window).
    unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) == 0 }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// The driver counters of `ifname` (what `ethtool -S` shows), by name.
pub fn ethtool_stats(ifname: &str) -> Option<Vec<(String, u64)>> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    // struct ethtool_sset_info { u32 cmd, reserved; u64 sset_mask; u32 data[1] }
    let mut info = [0u8; 24];
    info[0..4].copy_from_slice(&ETHTOOL_GSSET_INFO.to_ne_bytes());
    info[8..16].copy_from_slice(&(1u64 << ETH_SS_STATS).to_ne_bytes());
    if !ethtool(&sock, ifname, &mut info) || u64_at(&info, 8) & (1 << ETH_SS_STATS) == 0 {
        return None;
    }
    let n = u32_at(&info, 16) as usize;
    if n == 0 || n > 4096 {
        return None;
    }
    // struct ethtool_gstrings { u32 cmd, string_set, len; u8 data[] }
    let mut strings = vec![0u8; 12 + n * ETH_GSTRING_LEN];
    strings[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
    strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
    strings[8..12].copy_from_slice(&(n as u32).to_ne_bytes());
    // struct ethtool_stats { u32 cmd, n_stats; u64 data[] }
    let mut stats = vec![0u8; 8 + 8 * n];
    stats[0..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
    stats[4..8].copy_from_slice(&(n as u32).to_ne_bytes());
    if !ethtool(&sock, ifname, &mut strings) || !ethtool(&sock, ifname, &mut stats) {
        return None;
    }
    let names = strings[12..].chunks_exact(ETH_GSTRING_LEN);
    let values = stats[8..].chunks_exact(8);
    Some(
        names
            .zip(values)
            .map(|(raw, v)| {
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                (
                    String::from_utf8_lossy(&raw[..end]).into_owned(),
                    u64_at(v, 0),
                )
            })
            .collect(),
    )
}

/// Sum of the driver counters of `ifname` whose name ends with `suffix`.
pub fn ethtool_sum(ifname: &str, suffix: &str) -> Option<u64> {
    let s = ethtool_stats(ifname)?;
    let v: Vec<u64> = s
        .iter()
        .filter(|(n, _)| n.ends_with(suffix))
        .map(|(_, v)| *v)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum())
}
