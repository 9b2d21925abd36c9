//! Behaviour: the monitors (`[monitors.*]`) and the anomaly model
//! (`[anomaly]`), fed by every request and by the status it got. What they
//! find is a strike through the owner (kind `behavior` or `anomaly`), or a
//! ban at once for a monitor whose `action` is `ban`; the owner alone turns
//! strikes into bans, and the allowlist still wins. The request that trips
//! a banning monitor before it is forwarded (a trap path, a filled hidden
//! field, a form posted too fast, impossible headers, one call too many) is
//! refused here with 403: the ban is already on its way to XDP.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use hyper::{Request, StatusCode, body::Incoming, header};

use super::{
    Proxy, ProxyBody,
    decide::outcome,
    forward::{header_str, json_error},
    log::Outcome,
};
use crate::{
    anomaly::{AnomalyMode, Observation, Tracker},
    firewall::{Strike, StrikeKind},
    http::CanonicalPath,
    monitors::{Hit, MonitorAction, Monitors, RequestFacts},
};

/// The monitors, as metrics name them.
pub(super) const MONITORS: [&str; 6] = [
    "usage",
    "not_found",
    "auth_failures",
    "server_errors",
    "honeypot",
    "headers",
];

/// The behaviour layers the proxy runs (both off by default).
#[derive(Default)]
pub(super) struct Behaviour {
    /// The monitors, when any is configured (shared with the inspection,
    /// which may run on the blocking pool).
    pub monitors: Option<Arc<Monitors>>,
    /// The anomaly model's tracker, when `[anomaly] mode` is not off.
    pub anomaly: Option<Arc<Tracker>>,
    /// `enforce`: flags are strikes (`monitor`: logged and counted).
    pub enforce: bool,
    /// Hits per monitor, in the order of [`MONITORS`].
    pub hits: [AtomicU64; 6],
}

/// One request as the response hook reads it.
pub(super) struct Seen<'a> {
    /// The client.
    pub client: IpAddr,
    /// Method as sent.
    pub method: &'a str,
    /// The canonical path.
    pub path: &'a CanonicalPath,
    /// User-Agent.
    pub ua: &'a str,
    /// Declared body length.
    pub bytes: u64,
}

impl Proxy {
    /// Runs the monitors and the anomaly model with `monitors` (None: none
    /// configured) and `anomaly` (None: off).
    pub fn with_behaviour(
        mut self,
        monitors: Option<Monitors>,
        anomaly: Option<Arc<Tracker>>,
        mode: AnomalyMode,
    ) -> Self {
        self.behaviour = Behaviour {
            monitors: monitors.map(Arc::new),
            anomaly,
            enforce: mode == AnomalyMode::Enforce,
            hits: Default::default(),
        };
        self
    }

    /// The monitors' verdict on a request before anything else reads it:
    /// its hits are struck; one whose action is `ban` refuses the request.
    pub(super) fn monitor_request(
        &self,
        req: &Request<Incoming>,
        path: &CanonicalPath,
        client: IpAddr,
        id: &str,
    ) -> Option<(hyper::Response<ProxyBody>, Outcome)> {
        let m = self.behaviour.monitors.as_ref()?;
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let facts = RequestFacts {
            method: req.method().as_str(),
            path: &path.path,
            http10: req.version() == hyper::Version::HTTP_10,
            headers: &headers,
            referer: header_str(req, header::REFERER),
        };
        let hits = m.on_request(self.source(client), Instant::now(), &facts);
        self.refuse_on(hits, client, id)
    }

    /// Strikes `hits`; the first that bans refuses the request.
    pub(super) fn refuse_on(
        &self,
        hits: Vec<Hit>,
        client: IpAddr,
        id: &str,
    ) -> Option<(hyper::Response<ProxyBody>, Outcome)> {
        let banned = self.strike_hits(hits, client)?;
        let r = json_error(StatusCode::FORBIDDEN, "blocked by waf", id);
        Some((r, outcome(403, "behavior", banned, 0)))
    }

    /// Strikes (or bans) for each hit; the reason of the first that bans.
    fn strike_hits(&self, hits: Vec<Hit>, client: IpAddr) -> Option<String> {
        let mut banned = None;
        for hit in hits {
            let ban = hit.action == MonitorAction::Ban;
            let reason = format!("{}: {}", hit.monitor, hit.evidence);
            self.behaviour_hit(client, hit.monitor, &reason, ban);
            if ban && banned.is_none() {
                banned = Some(reason);
            }
        }
        banned
    }

    fn behaviour_hit(&self, client: IpAddr, monitor: &str, reason: &str, ban: bool) {
        self.stats.monitor_hits.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = MONITORS.iter().position(|m| *m == monitor) {
            self.behaviour.hits[i].fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(remote = %client, monitor, ban, reason, "behaviour monitor");
        self.strikes.strike(Strike {
            source: client,
            kind: StrikeKind::Behavior,
            score: 0,
            evidence: reason.chars().take(256).collect(),
            decided: Some(Instant::now()),
            ban,
        });
    }

    /// After the answer: the statuses the monitors count (the application's
    /// only: our own refusals are strikes already) and the anomaly model's
    /// window of the source.
    pub(super) fn observe(&self, seen: &Seen<'_>, o: &Outcome) {
        let now = Instant::now();
        let source = self.source(seen.client);
        if let Some(m) = &self.behaviour.monitors
            && o.upstream
        {
            let hits = m.on_response(source, now, seen.method, &seen.path.path, o.status);
            self.strike_hits(hits, seen.client);
        }
        let Some(t) = &self.behaviour.anomaly else {
            return;
        };
        let obs = Observation {
            method: seen.method,
            path: &seen.path.path,
            status: o.status,
            user_agent: seen.ua,
            bytes: seen.bytes,
        };
        let Some(flag) = t.observe(source, now, &obs) else {
            return;
        };
        self.stats.anomaly_flagged.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(remote = %seen.client, score = flag.score, enforce = self.behaviour.enforce, evidence = %flag.evidence, "anomalous source");
        if self.behaviour.enforce {
            self.strikes.strike(Strike {
                source: seen.client,
                kind: StrikeKind::Anomaly,
                score: 0,
                evidence: flag.evidence.chars().take(256).collect(),
                decided: Some(now),
                ban: false,
            });
        }
    }

    /// Forgets idle sources (the janitor, every 10 s).
    pub(super) fn behaviour_retain(&self) {
        let now = Instant::now();
        if let Some(m) = &self.behaviour.monitors {
            m.retain_recent(now);
        }
        if let Some(t) = &self.behaviour.anomaly {
            t.retain_recent(now);
        }
    }
}

impl Behaviour {
    /// Hits per monitor, and the anomaly tracker's figures.
    pub(super) fn families(&self) -> Vec<crate::telemetry::Family> {
        use crate::telemetry::{Family, MetricKind};
        let mut out = vec![Family::by(
            "waf_http_monitor_hits",
            "Behaviour monitor hits (strikes or bans), by monitor.",
            MetricKind::Counter,
            "monitor",
            MONITORS
                .iter()
                .zip(&self.hits)
                .map(|(m, n)| (*m, n.load(Ordering::Relaxed))),
        )];
        if let Some(t) = &self.anomaly {
            out.push(Family::by(
                "waf_anomaly_windows",
                "Source windows the anomaly model scored, and flagged.",
                MetricKind::Counter,
                "outcome",
                [
                    ("scored", t.stats.scored.load(Ordering::Relaxed)),
                    ("flagged", t.stats.flagged.load(Ordering::Relaxed)),
                ],
            ));
            out.push(Family::one(
                "waf_anomaly_sources",
                "Sources the anomaly model holds a window of.",
                MetricKind::Gauge,
                t.tracked() as u64,
            ));
        }
        out
    }

    /// For `waf stats`: sources held by the monitors and the model.
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "monitor_sources": self.monitors.as_ref().map_or(0, |m| m.tracked()),
            "anomaly_sources": self.anomaly.as_ref().map_or(0, |t| t.tracked()),
            "anomaly_mode": match (&self.anomaly, self.enforce) {
                (None, _) => "off",
                (Some(_), true) => "enforce",
                (Some(_), false) => "monitor",
            },
        })
    }
}
