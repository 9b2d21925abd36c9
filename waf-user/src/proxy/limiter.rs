//! Per-source HTTP request limits: one keyed GCRA limiter (governor) per
//! configured limit, keyed by the source as the ban policy aggregates it
//! (an IPv6 client's /64 by default), matched on the canonical path.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
    state::keyed::DefaultKeyedStateStore,
};
use ipnet::IpNet;

use super::config::HttpLimit;
use crate::http::{CanonicalPath, PathGlob};

type Keyed = RateLimiter<IpNet, DefaultKeyedStateStore<IpNet>, DefaultClock>;

struct Limit {
    path: Option<PathGlob>,
    limiter: Keyed,
}

/// A limit's path as a glob: as written when it has a `*`, else a prefix.
fn path_glob(p: &str) -> Option<PathGlob> {
    let pattern = if p.contains('*') {
        p.to_string()
    } else {
        format!("{p}*")
    };
    PathGlob::new(&pattern).ok()
}

/// The proxy's request limits.
pub struct HttpLimiter {
    limits: Vec<Limit>,
    clock: DefaultClock,
}

impl HttpLimiter {
    /// Builds the limiters (the config was validated: positive rates).
    pub fn new(limits: &[HttpLimit]) -> Self {
        let limits = limits
            .iter()
            .filter_map(|l| {
                let period = l.per.0 / l.requests.max(1);
                let burst =
                    NonZeroU32::new(l.burst.unwrap_or(l.requests)).unwrap_or(NonZeroU32::MIN);
                let quota =
                    Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst);
                let path = match &l.path {
                    Some(p) => Some(path_glob(p)?),
                    None => None,
                };
                Some(Limit {
                    path,
                    limiter: RateLimiter::keyed(quota),
                })
            })
            .collect();
        Self {
            limits,
            clock: DefaultClock::default(),
        }
    }

    /// Whether any limit is configured.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Charges a request of `source` to `path` against every limit that
    /// applies (any reading of the canonical path matching); `Some(retry)`
    /// when one is exceeded.
    pub fn check(&self, source: IpNet, path: &CanonicalPath) -> Option<Duration> {
        for l in &self.limits {
            if l.path.as_ref().is_some_and(|g| !g.matches_any(path)) {
                continue;
            }
            if let Err(not_until) = l.limiter.check_key(&source) {
                return Some(not_until.wait_time_from(self.clock.now()));
            }
        }
        None
    }

    /// Forgets sources whose limits are back to full (call it now and then,
    /// off the async workers: it visits every key).
    pub fn retain_recent(&self) {
        for l in &self.limits {
            l.limiter.retain_recent();
            l.limiter.shrink_to_fit();
        }
    }

    /// Sources tracked over all limits.
    pub fn sources(&self) -> usize {
        self.limits.iter().map(|l| l.limiter.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Dur;

    #[test]
    fn per_source_and_path() {
        let l = HttpLimiter::new(&[
            HttpLimit {
                path: None,
                requests: 100,
                per: Dur::secs(1),
                burst: Some(100),
            },
            HttpLimit {
                path: Some("/login".into()),
                requests: 2,
                per: Dur::secs(60),
                burst: Some(2),
            },
        ]);
        let a: IpNet = "192.0.2.1/32".parse().unwrap();
        let b: IpNet = "192.0.2.2/32".parse().unwrap();
        let p = |t: &str| CanonicalPath::from_target(t);
        assert!(l.check(a, &p("/login")).is_none());
        assert!(
            l.check(a, &p("/static/../login?x=1")).is_none(),
            "canonical"
        );
        let retry = l.check(a, &p("//login")).expect("third login refused");
        assert!(retry > Duration::from_secs(20), "{retry:?}");
        assert!(l.check(a, &p("/home")).is_none(), "other paths still fine");
        assert!(
            l.check(b, &p("/%6cogin")).is_none(),
            "other sources have their own"
        );
        assert_eq!(l.sources(), 4, "each source in each limit");
    }
}
