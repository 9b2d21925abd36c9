//! Anomaly scoring: an unsupervised model of how sources behave, learned
//! from an access log of ordinary traffic (`waf learn`), that flags a
//! source whose window of requests looks like few of the windows it
//! learned from. Pure: no I/O but the baseline file, no async; the proxy
//! feeds the [`Tracker`] and acts on its [`Flag`]s.
//!
//! What it reads of a source (an address, or an IPv6 /64) over a window
//! (`[anomaly] window`, 5 minutes): the request rate, the distinct paths,
//! the share of 4xx and of 404 answers, the entropy of the site sections
//! asked for, the distinct user agents, the share of methods other than
//! GET/HEAD, the mean request body, the share of static assets
//! ([`features::NAMES`]; counts log-scaled). A window is scored when its
//! count reaches `min_requests` and each time it doubles
//! ([`features`]).
//!
//! A second, long window (`long_window`, an hour; first read at
//! `long_min_requests`, 5) has its own model in the same baseline: it sees
//! the sources too slow for the first window, such as a prober sending a
//! request every few minutes.
//!
//! What it cannot see: a source that sends fewer than `long_min_requests`
//! in a long window, and one that behaves like the traffic it learned
//! from (a scraper as slow and as broad as a search engine's crawler, an
//! attacker spread over many addresses). Those are for the detection
//! engine, rate limits and the challenge.
//!
//! - [`config`]: `[anomaly]`; [`features`]: windows and their features;
//!   [`model`]: the forest and the baseline file; [`tracker`]: the live
//!   side (bounded, sharded), and relearning; [`logline`]: the access
//!   log's formats; [`replay`]: logs replayed, to learn and to score.

pub mod config;
pub mod features;
pub mod logline;
pub mod model;
pub mod replay;
pub mod tracker;

#[cfg(test)]
mod tests;

pub use config::{AnomalyConfig, AnomalyMode};
pub use features::{NAMES, Params, Vector};
pub use model::{Model, TrainedOn};
pub use tracker::{MAX_SOURCES, Tracker};

/// One request, as the tracker reads it.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The method as sent.
    pub method: &'a str,
    /// The canonical path (`http::CanonicalPath::path`).
    pub path: &'a str,
    /// The status the client got.
    pub status: u16,
    /// Its user agent (empty when none).
    pub user_agent: &'a str,
    /// The request body's declared length (0 when unknown).
    pub bytes: u64,
}

/// A source whose window scored at or above the threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    /// The isolation-forest score (0..1).
    pub score: f64,
    /// The window it was read over (`window` or `long_window`), seconds.
    pub window_secs: u64,
    /// The features that stood out most against the baseline's medians
    /// (name, value), the furthest first.
    pub top: Vec<(&'static str, f64)>,
    /// One line for logs: `anomaly 0.71: distinct_paths=143 (p50 4),
    /// share_4xx=0.93 (p50 0.00)`.
    pub evidence: String,
}
