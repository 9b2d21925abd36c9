//! The XDP program's clock (jiffies x tick) and userspace's view of it: the
//! monotonic and coarse clocks, and the offset between them measured by
//! asking the kernel.

use std::time::Duration;

use aya::programs::Xdp;
use waf_common::{CLOCK_PROGRAM_NAME, map_names};

use super::{Dataplane, DataplaneError, Result, loader::program};

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock ban expiries are written
/// in (the XDP program reads its coarse variant).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Converts times to the XDP program's clock (jiffies x tick), by an offset
/// to `CLOCK_MONOTONIC` measured with [`Dataplane::calibrate_clock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelClock {
    /// Kernel clock minus `CLOCK_MONOTONIC`, in ns.
    pub offset_ns: i128,
}

impl KernelClock {
    /// Now on the program's clock.
    pub fn now(&self) -> u64 {
        (monotonic_ns() as i128 + self.offset_ns).max(0) as u64
    }

    /// `d` from now on the program's clock (never 0, which means
    /// "permanent" to the program).
    pub fn after(&self, d: Duration) -> u64 {
        self.now()
            .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
            .max(1)
    }
}

/// Resolution of the kernel's coarse monotonic clock (one scheduler tick).
pub fn coarse_resolution_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_getres writes the timespec we pass.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return 10_000_000; // HZ=100, the coarsest kernels build with
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Dataplane {
    /// Now on the XDP program's clock (jiffies x tick, ns): the clock ban
    /// expiries are written in. Asks the kernel (a BPF_PROG_TEST_RUN of a
    /// two-instruction program), so it is exact to the tick.
    pub fn kernel_now_ns(&mut self) -> Result<u64> {
        use aya::programs::{TestRun as _, TestRunOptions};
        let prog: &mut Xdp = program(&mut self.ebpf, CLOCK_PROGRAM_NAME)?;
        if prog.fd().is_err() {
            prog.load()?;
        }
        let frame = [0u8; 64];
        prog.test_run(TestRunOptions {
            data_in: Some(&frame),
            ..Default::default()
        })?;
        let jiffies = self
            .clock
            .get(&0, 0)
            .map_err(|source| DataplaneError::Map {
                name: map_names::CLOCK,
                source,
            })?;
        let tick = match self.maps.xdp_config()?.tick_ns {
            0 => coarse_resolution_ns(),
            t => t,
        };
        Ok(jiffies * tick)
    }

    /// Measures the offset between `CLOCK_MONOTONIC` and the program's clock.
    pub fn calibrate_clock(&mut self) -> Result<KernelClock> {
        let before = monotonic_ns();
        let k = self.kernel_now_ns()?;
        let after = monotonic_ns();
        let mid = before / 2 + after / 2;
        Ok(KernelClock {
            offset_ns: k as i128 - mid as i128,
        })
    }
}
