//! Keeping XDP programs in the kernel's XDP dispatcher, for cheap
//! BPF_PROG_TEST_RUN calls: the generator's live-frames engine, and `bench
//! xdp` (the firewall's program with the tools object's floor and reference
//! filter). The daemon never uses it.

use std::io;

use aya::programs::Xdp;

/// Keeps XDP programs in the kernel's XDP dispatcher while it lives.
///
/// Every BPF_PROG_TEST_RUN of an XDP program with `repeat > 1` adds the
/// program to the dispatcher and removes it afterwards, unless it is there
/// already; each change rewrites the dispatcher and waits for an RCU grace
/// period, about 25 ms per call on the development machine, against 22 us
/// for a call of 64 frames once the program stays there. Attaching it
/// (generic mode) to an interface keeps it there: each program gets one end
/// of a veth pair made for this in a private network namespace, which never
/// carries a packet and disappears with the last handle on it.
///
/// The generator uses it for cheap calls; `bench xdp` for calls whose
/// wall-clock time is the loop's time (sub-nanosecond figures instead of
/// the kernel's whole nanoseconds).
///
/// Best effort: without it (no `ip`, no veth) callers fall back to long
/// calls.
pub struct DispatcherHold {
    /// The private namespace; closing it lets the kernel remove it with
    /// its interfaces, which detaches the programs.
    _netns: std::fs::File,
}

impl DispatcherHold {
    /// Holds `progs` (loaded XDP programs) in the dispatcher, or says why
    /// it could not.
    pub fn new(progs: &mut [&mut Xdp]) -> io::Result<Self> {
        // The namespace is made by a thread of its own (unshare changes the
        // calling thread only); `ip` run from it inherits it.
        let made = std::thread::scope(|s| {
            s.spawn(|| -> io::Result<std::fs::File> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
                let ns = std::fs::File::open("/proc/thread-self/ns/net")?;
                for pair in 0..progs.len().div_ceil(2) {
                    let (a, b) = (format!("hold{}", 2 * pair), format!("hold{}", 2 * pair + 1));
                    let ok = std::process::Command::new("ip")
                        .args(["link", "add", &a, "type", "veth", "peer", "name", &b])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()?
                        .success();
                    if !ok {
                        return Err(io::Error::other("ip link add failed"));
                    }
                }
                for (i, prog) in progs.iter_mut().enumerate() {
                    prog.attach(&format!("hold{i}"), aya::programs::XdpMode::Skb)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                }
                Ok(ns)
            })
            .join()
        });
        match made {
            Ok(Ok(ns)) => Ok(Self { _netns: ns }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("the namespace thread panicked")),
        }
    }
}
