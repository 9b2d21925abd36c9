//! The AF_PACKET engine of `waf gen`, the portable fallback: a raw packet
//! socket per sending thread that bypasses the qdisc and sends batches with
//! `sendmmsg`, the source of every frame rewritten in userspace by the same
//! rewrite as the `waf_gen` program's ([`Rewriter`]).

use std::{
    io,
    os::fd::{AsRawFd as _, OwnedFd},
    sync::atomic::Ordering,
    time::Instant,
};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use waf_common::r#gen::{GenConfig, GenState};

use super::{
    GenError, Result,
    args::GenOptions,
    frames::{Rewriter, gen_config},
    pacing::{Budget, Pacer, pin_thread},
};

/// Frames per `sendmmsg` call.
const BATCH: usize = 64;

/// A send-only AF_PACKET socket bound to `ifindex`, past the qdisc.
fn packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    // Protocol 0: send only, receive nothing.
    let sock = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: an all-zero sockaddr_ll is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind reads a sockaddr_ll of the size given. (nix builds no
    // sockaddr_ll from an index.)
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads an int of the size given. Bypassing the qdisc
    // is an optimisation only (nix has no PACKET_QDISC_BYPASS option).
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    Ok(sock)
}

/// Sends `frame` out of `ifindex` through AF_PACKET until the budget is
/// spent; returns the rewrites' state summed over the threads (frames per
/// pool).
pub(super) fn run_packet(
    opts: &GenOptions,
    frame: &[u8],
    ifindex: u32,
    budget: &Budget,
) -> Result<GenState> {
    let cfg = gen_config(opts);
    let results: Vec<io::Result<GenState>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads)
            .map(|t| s.spawn(move || send_thread(opts, cfg, frame, ifindex, budget, t)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("sending thread panicked")))
            })
            .collect()
    });
    let mut total = GenState::default();
    for r in results {
        let st = r.map_err(|e| GenError::Packet(e.to_string()))?;
        total.frames += st.frames;
        for (a, b) in total.per_pool.iter_mut().zip(st.per_pool) {
            *a += b;
        }
    }
    Ok(total)
}

/// Sending thread `t`: batches of rewritten frames until the budget is
/// spent or the run stops.
fn send_thread(
    opts: &GenOptions,
    cfg: GenConfig,
    frame: &[u8],
    ifindex: u32,
    budget: &Budget,
    t: usize,
) -> io::Result<GenState> {
    pin_thread(opts, t);
    let sock = packet_socket(ifindex)?;
    let mut rw = Rewriter::new(cfg);
    // Threads start at different points of the sequence.
    rw.state.frames = t as u64 * 7;
    let mut bufs: Vec<Vec<u8>> = vec![frame.to_vec(); BATCH];
    let mut pacer = Pacer::new(opts.rate, opts.threads, BATCH as u32, false);
    loop {
        let want = pacer.next(budget);
        if want == 0 {
            if budget.halted() || budget.time_left().is_some_and(|l| l.is_zero()) {
                break;
            }
            continue;
        }
        let n = budget.take(want.min(BATCH as u64)) as usize;
        if n == 0 {
            break;
        }
        for b in bufs.iter_mut().take(n) {
            rw.apply(b);
        }
        let t0 = Instant::now();
        let done = send_batch(&sock, &mut bufs[..n], budget)?;
        // Frames not sent go back to the budget.
        budget.give_back((n - done) as u64);
        budget.record_sent(done as u64);
        pacer.sent(done as u64, t0.elapsed());
        if done < n && budget.halted() {
            break;
        }
    }
    Ok(rw.state)
}

/// Sends `bufs` with `sendmmsg`, retrying while the device queue is full
/// (a while); returns how many went out. An interrupted call stops the run.
fn send_batch(sock: &OwnedFd, bufs: &mut [Vec<u8>], budget: &Budget) -> io::Result<usize> {
    let n = bufs.len();
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid (no name, no control data).
    let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let mut done = 0usize;
    let mut spins = 0;
    while done < n {
        // SAFETY: msgs[done..] are n - done valid headers whose iovecs point
        // into `bufs`, which outlive the call.
        let rc = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                msgs[done..].as_mut_ptr(),
                (n - done) as u32,
                0,
            )
        };
        if rc >= 0 {
            done += rc as usize;
            continue;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOBUFS) | Some(libc::EAGAIN) if spins < 1000 => {
                spins += 1;
                std::thread::yield_now();
            }
            Some(libc::EINTR) => {
                budget.stop.store(true, Ordering::Relaxed);
                break;
            }
            _ => {
                budget.abort.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    Ok(done)
}
