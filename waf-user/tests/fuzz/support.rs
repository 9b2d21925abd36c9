//! The runner shared by the targets: case count and time budget from the
//! environment, batches with fresh random seeds, one summary line per run
//! (read by `cargo xtask fuzz`).

use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases of one target when `WAF_FUZZ_CASES` is not set.
const DEFAULT_CASES: u64 = 256;
/// Cases per batch (each batch has its own seed).
const BATCH: u64 = 20_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `test` on values of `strategy`: `WAF_FUZZ_CASES` cases (default
/// 256) or until `WAF_FUZZ_SECONDS` have passed. Panics with the smallest
/// failing input found; prints `fuzz NAME: cases N seconds S failures 0`.
pub fn run<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let cases = env_u64("WAF_FUZZ_CASES").unwrap_or(DEFAULT_CASES).max(1);
    let budget = env_u64("WAF_FUZZ_SECONDS").map(Duration::from_secs);
    let start = Instant::now();
    let mut done = 0u64;
    while done < cases && budget.is_none_or(|b| start.elapsed() < b) {
        let n = (cases - done).min(BATCH);
        let mut runner = TestRunner::new(Config {
            cases: u32::try_from(n).unwrap_or(u32::MAX),
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            println!(
                "fuzz {name}: cases {} seconds {:.2} failures 1",
                done,
                start.elapsed().as_secs_f64()
            );
            panic!("fuzz {name}: {e}");
        }
        done += n;
    }
    println!(
        "fuzz {name}: cases {done} seconds {:.2} failures 0",
        start.elapsed().as_secs_f64()
    );
}

/// Fails the case with a message unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(proptest::test_runner::TestCaseError::fail(format!($($msg)+)));
        }
    };
}
