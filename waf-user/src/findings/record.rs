//! One finding as the store keeps it: who sent what, where the rule
//! matched, and what the proxy did. Every text field comes from the
//! request, so each is cut to a bound with control characters blanked
//! before it is queued, and is data (escaped JSON) wherever it goes later.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::detect::{Finding, Verdict, verdict::truncate};

/// Longest snippet (matched text, raw value) kept, in characters.
pub const SNIPPET: usize = 200;
/// Longest path kept, in characters.
pub const PATH: usize = 512;
/// Longest host kept, in characters.
pub const HOST: usize = 128;
/// Longest location (`query:id`, `json:$.a.b`) kept, in characters.
pub const LOCATION: usize = 160;
/// Longest rule id kept, in characters.
pub const RULE: usize = 64;
/// Findings of one request that are stored (the verdict holds up to 32).
pub const PER_REQUEST: usize = 8;

/// A stored finding. Fields added after the first release carry a serde
/// default, so records already on disk still decode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FindingRecord {
    /// The store's id: grows with each finding; `before` pages by it.
    pub id: u64,
    /// When (Unix milliseconds).
    pub time_ms: u64,
    /// The client address.
    pub source: String,
    /// The method as sent.
    pub method: String,
    /// The `Host` header as sent.
    pub host: String,
    /// The canonical path.
    pub path: String,
    /// The attack family (`sqli`, `xss`...).
    pub kind: String,
    /// Where, in full: `query:id`, `json:$.user.name`, `header:user-agent`, `path`.
    pub location: String,
    /// The part of the request: `query`, `body`, `json`, `header`, `cookie`, `path`...
    pub part: String,
    /// The parameter, header or cookie name (empty for the path).
    pub param: String,
    /// The rule id (usable in exclusions).
    pub rule: String,
    /// The matched text, normalised (canonical form), truncated.
    pub snippet: String,
    /// The value as received (raw form), truncated; empty when it equals the snippet.
    pub raw: String,
    /// The request's anomaly score.
    pub score: u32,
    /// What the proxy did: `block`, `would_block`, `pass` (the mirror
    /// never blocks: its detections are `would_block`).
    pub verdict: String,
    /// The request id (as in the access log and the `X-Request-Id` header;
    /// empty for the mirror's findings).
    pub request_id: String,
    /// Who inspected the request: `proxy` (inline) or `mirror` (passive,
    /// reassembled from sampled packets). Records written before this field
    /// existed are the proxy's.
    #[serde(default = "proxy_origin")]
    pub origin: String,
    /// Passed findings of the same source, rule and path that the store's
    /// sampling skipped since the last one kept (`[findings] keep =
    /// "sampled"`); 0 otherwise.
    #[serde(default)]
    pub repeats: u64,
}

fn proxy_origin() -> String {
    Origin::Proxy.as_str().to_string()
}

/// Who inspected a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The inline proxy (it blocks).
    Proxy,
    /// The passive mirror (it cannot block; it strikes).
    Mirror,
}

impl Origin {
    /// The label in records and counters: `proxy`, `mirror`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Proxy => "proxy",
            Origin::Mirror => "mirror",
        }
    }
}

/// What the proxy (or the mirror) knows of the request a verdict is about.
pub struct RequestFacts<'a> {
    /// Who inspected it.
    pub origin: Origin,
    /// The client.
    pub source: IpAddr,
    /// Method as sent.
    pub method: &'a str,
    /// `Host` as sent.
    pub host: &'a str,
    /// The canonical path.
    pub path: &'a str,
    /// The request id (empty for the mirror).
    pub request_id: &'a str,
}

/// The part and the name of a location: `query:id` is (`query`, `id`),
/// `path` is (`path`, ``).
pub fn split_location(location: &str) -> (&str, &str) {
    location.split_once(':').unwrap_or((location, ""))
}

/// The label of a verdict in the store: `block`, `would_block` or `pass`.
/// The mirror sees requests already on their way: what the engine would
/// block is `would_block` there.
pub fn verdict_label(v: &Verdict, origin: Origin) -> &'static str {
    match v.action {
        crate::detect::Action::Block if origin == Origin::Mirror => "would_block",
        crate::detect::Action::Block => "block",
        crate::detect::Action::Pass if v.would_block => "would_block",
        crate::detect::Action::Pass => "pass",
    }
}

impl FindingRecord {
    /// The records of a verdict's findings (the first [`PER_REQUEST`]), id
    /// 0 until the store's writer numbers them.
    pub fn from_verdict(v: &Verdict, req: &RequestFacts, time_ms: u64) -> Vec<FindingRecord> {
        let verdict = verdict_label(v, req.origin);
        v.attacks
            .iter()
            .take(PER_REQUEST)
            .map(|f| FindingRecord::one(f, v.score, verdict, req, time_ms))
            .collect()
    }

    fn one(
        f: &Finding,
        score: u32,
        verdict: &str,
        req: &RequestFacts,
        time_ms: u64,
    ) -> FindingRecord {
        let location = truncate(&f.location, LOCATION);
        let (part, param) = split_location(&location);
        FindingRecord {
            id: 0,
            time_ms,
            source: req.source.to_string(),
            method: truncate(req.method, 16),
            host: truncate(req.host, HOST),
            path: truncate(req.path, PATH),
            kind: f.kind.name().to_string(),
            part: part.to_string(),
            param: param.to_string(),
            location: location.clone(),
            rule: truncate(&f.rule, RULE),
            snippet: truncate(&f.matched, SNIPPET),
            raw: truncate(&f.value, SNIPPET),
            score,
            verdict: verdict.to_string(),
            request_id: truncate(req.request_id, 32),
            origin: req.origin.as_str().to_string(),
            repeats: 0,
        }
    }
}

/// Which findings a reader wants (every field given must hold).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The client address, exactly.
    pub source: Option<String>,
    /// The rule id, exactly.
    pub rule: Option<String>,
    /// A prefix of the canonical path.
    pub path: Option<String>,
    /// The attack family, exactly.
    pub kind: Option<String>,
    /// At or after this time (Unix milliseconds).
    pub since_ms: Option<u64>,
    /// The request's verdict label ([`verdict_label`]), exactly.
    pub verdict: Option<String>,
    /// Who inspected it (`proxy`, `mirror`), exactly.
    pub origin: Option<String>,
}

impl Filter {
    /// Whether a record passes the filter.
    pub fn matches(&self, r: &FindingRecord) -> bool {
        self.source.as_ref().is_none_or(|s| *s == r.source)
            && self.rule.as_ref().is_none_or(|s| *s == r.rule)
            && self
                .path
                .as_ref()
                .is_none_or(|p| r.path.starts_with(p.as_str()))
            && self.kind.as_ref().is_none_or(|k| *k == r.kind)
            && self.since_ms.is_none_or(|t| r.time_ms >= t)
            && self.verdict.as_ref().is_none_or(|v| *v == r.verdict)
            && self.origin.as_ref().is_none_or(|o| *o == r.origin)
    }
}
