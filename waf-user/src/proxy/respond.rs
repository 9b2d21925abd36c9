//! Response inspection: the application's answer read for data leaks
//! (`detect/leak.rs`: database errors, stack traces, web shells, system
//! files) before the client gets it.
//!
//! The head of a textual body (`proxy.response_inspect_bytes`, 64 kB by
//! default) is held until the body ends or that many bytes arrived, as
//! ModSecurity holds a response body: an application that flushes a page
//! in parts and the error last (a slow query an injection made slower)
//! cannot get the error past the scan. `upstream_timeout` bounds the hold;
//! past it the bytes held are scanned and the rest streams unread. Event
//! streams are not held (not read at all); gzip and deflate are undone
//! for the scan. On a leak the client
//! gets 502 instead and the source a strike, as for a blocked request (in
//! passive mode the response goes through and the log says
//! `would_block`). The rest of a longer body streams on unread.
//! Requests may only ask for codings the scan can read: `Accept-Encoding`
//! is cut to gzip, deflate and identity, else a client would pick a
//! coding (`br`) the leak could hide in.

use std::{net::IpAddr, sync::atomic::Ordering, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::{
    HeaderMap, Response, StatusCode,
    body::{Body as _, Frame},
    header::{self, HeaderValue},
};

use super::{BoxError, Proxy, ProxyBody, decide::outcome, forward::json_error, log::Outcome};
use crate::{detect::Action, firewall::StrikeKind, http::CanonicalPath};

/// Codings the scan can undo (what `Accept-Encoding` is cut to).
const READABLE: [&str; 4] = ["gzip", "x-gzip", "deflate", "identity"];

/// Whether a response with these headers, to this request, has a body the
/// leak rules read: text, JSON, XML, or no type at all; not scripts,
/// styles or event streams, nor bodies in a coding the scan cannot undo.
pub fn inspectable(status: StatusCode, head_request: bool, h: &HeaderMap) -> bool {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return false;
    }
    let textual = match h.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
        None => true,
        Some(Err(_)) => false,
        Some(Ok(t)) => {
            let t = t
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            (t.starts_with("text/")
                && !matches!(
                    t.as_str(),
                    "text/css" | "text/javascript" | "text/event-stream"
                ))
                || t.ends_with("/json")
                || t.ends_with("+json")
                || t.ends_with("/xml")
                || t.ends_with("+xml")
                || t.is_empty()
        }
    };
    textual
        && h.get_all(header::CONTENT_ENCODING).iter().all(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .all(|c| c.is_empty() || READABLE.contains(&c.as_str()))
            })
        })
}

/// Cuts a request's `Accept-Encoding` to the codings the scan reads
/// (the field removed when none is left: the application then answers
/// uncompressed).
pub fn limit_accept_encoding(h: &mut HeaderMap) {
    let fields = h.get_all(header::ACCEPT_ENCODING);
    let count = fields.iter().count();
    if count == 0 {
        return;
    }
    let all: Vec<String> = fields
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let kept: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|c| {
            let name = c
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            READABLE.contains(&name.as_str())
        })
        .collect();
    if count == 1 && kept.len() == all.len() {
        return;
    }
    h.remove(header::ACCEPT_ENCODING);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join(", "))
    {
        h.insert(header::ACCEPT_ENCODING, v);
    }
}

/// Reads the head of `body`: frames until the body ends, `limit` bytes
/// came, or `hold` passed. The frames read, and whether the body ended
/// among them. A body error ends the reading (the error frame is kept, so
/// the client sees the failure as it would have).
async fn read_head(
    body: &mut ProxyBody,
    limit: usize,
    hold: Duration,
) -> (Vec<Result<Frame<Bytes>, BoxError>>, bool) {
    let deadline = tokio::time::Instant::now() + hold;
    let mut frames = Vec::new();
    let mut bytes = 0usize;
    while bytes < limit {
        if body.is_end_stream() {
            return (frames, true);
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(f))) => {
                bytes += f.data_ref().map_or(0, Bytes::len);
                frames.push(Ok(f));
            }
            Ok(Some(Err(e))) => {
                frames.push(Err(e));
                return (frames, true);
            }
            Ok(None) => return (frames, true),
            Err(_) => break,
        }
    }
    let ended = body.is_end_stream();
    (frames, ended)
}

/// What the response scan gave: the response for the client and, when a
/// rule matched, the outcome the log shows instead of the request's.
pub(super) struct Screened {
    pub response: Response<ProxyBody>,
    pub outcome: Option<Outcome>,
}

impl Proxy {
    /// Scans the application's response to a request for `path` from
    /// `client` (see the module's text). Responses the rules do not read
    /// pass untouched.
    pub(super) async fn screen_response(
        &self,
        resp: Response<ProxyBody>,
        head_request: bool,
        path: &CanonicalPath,
        client: IpAddr,
        id: &str,
    ) -> Screened {
        let limit = self.cfg.response_inspect_bytes;
        if limit == 0 || !inspectable(resp.status(), head_request, resp.headers()) {
            return Screened {
                response: resp,
                outcome: None,
            };
        }
        let (parts, mut body) = resp.into_parts();
        let (frames, ended) = read_head(&mut body, limit, self.cfg.upstream_timeout.0).await;
        let mut raw = Vec::new();
        for f in frames.iter().flatten() {
            if let Some(d) = f.data_ref() {
                raw.extend_from_slice(d);
            }
        }
        raw.truncate(limit);
        let headers: Vec<crate::http::Header> = parts
            .headers
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .map(|v| crate::http::Header {
                name: "content-encoding".into(),
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
            .collect();
        let mut anomalies = Vec::new();
        let decoded = crate::http::coding::decode(&headers, &raw, limit, !ended, &mut anomalies);
        let text = decoded.as_ref().map_or(&raw[..], |d| &d.bytes[..]);
        let verdict = self.engine.inspect_response(path, text);
        self.stats
            .responses_inspected
            .fetch_add(1, Ordering::Relaxed);
        let status = parts.status.as_u16();
        let rebuilt = || {
            let head = futures_util::stream::iter(frames);
            let first: ProxyBody = StreamBody::new(head).boxed();
            let body = super::forward::chain(first, body);
            Response::from_parts(parts, body)
        };
        let Some(first) = verdict.attacks.first() else {
            return Screened {
                response: rebuilt(),
                outcome: None,
            };
        };
        let reason = format!("response (rule {}): {}", first.rule, first.matched);
        // The request's method and host are not carried here.
        self.record_findings(&verdict, "", "", path, client, id);
        if verdict.action == Action::Block {
            self.stats.response_blocked.fetch_add(1, Ordering::Relaxed);
            self.strike(
                client,
                StrikeKind::Detection,
                verdict.score,
                &reason,
                std::time::Instant::now(),
            );
            return Screened {
                response: json_error(StatusCode::BAD_GATEWAY, "response withheld by waf", id),
                outcome: Some(outcome(502, "block_response", reason, verdict.score)),
            };
        }
        let label = if verdict.would_block {
            self.stats.would_block.fetch_add(1, Ordering::Relaxed);
            "would_block"
        } else {
            "pass"
        };
        Screened {
            response: rebuilt(),
            outcome: Some(outcome(status, label, reason, verdict.score).from_app(true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn textual_bodies_in_readable_codings_are_inspected() {
        let ok = StatusCode::OK;
        for t in [
            "text/html; charset=utf-8",
            "text/plain",
            "application/json",
            "application/problem+json",
            "application/xml",
            "application/soap+xml",
            "TEXT/HTML",
        ] {
            assert!(
                inspectable(ok, false, &headers(&[("content-type", t)])),
                "{t}"
            );
        }
        assert!(inspectable(ok, false, &headers(&[])));
        for t in [
            "image/png",
            "text/css",
            "text/javascript",
            "text/event-stream",
            "application/octet-stream",
            "video/mp4",
        ] {
            assert!(
                !inspectable(ok, false, &headers(&[("content-type", t)])),
                "{t}"
            );
        }
        let gz = headers(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        assert!(inspectable(ok, false, &gz));
        let br = headers(&[("content-type", "text/html"), ("content-encoding", "br")]);
        assert!(!inspectable(ok, false, &br));
        let both = headers(&[("content-encoding", "gzip"), ("content-encoding", "br")]);
        assert!(!inspectable(ok, false, &both));
        assert!(!inspectable(ok, true, &headers(&[])));
        assert!(!inspectable(StatusCode::NO_CONTENT, false, &headers(&[])));
        assert!(!inspectable(StatusCode::NOT_MODIFIED, false, &headers(&[])));
    }

    proptest::proptest! {
        /// Whatever a client sends, the application is asked only for
        /// codings the scan reads, each as the client wrote it, in order.
        #[test]
        fn accept_encoding_is_a_readable_subsequence(
            fields in proptest::collection::vec("[a-zA-Z0-9*;=., -]{0,40}", 0..4),
        ) {
            let mut h = HeaderMap::new();
            for f in &fields {
                if let Ok(v) = HeaderValue::from_str(f) {
                    h.append(header::ACCEPT_ENCODING, v);
                }
            }
            let tokens = |h: &HeaderMap| -> Vec<String> {
                h.get_all(header::ACCEPT_ENCODING)
                    .iter()
                    .flat_map(|v| v.to_str().unwrap().split(','))
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            };
            let sent = tokens(&h);
            limit_accept_encoding(&mut h);
            let kept = tokens(&h);
            proptest::prop_assert!(h.get_all(header::ACCEPT_ENCODING).iter().count() <= 1);
            let mut rest = sent.iter();
            for k in &kept {
                let name = k.split(';').next().unwrap().trim().to_ascii_lowercase();
                proptest::prop_assert!(READABLE.contains(&name.as_str()), "{k}");
                proptest::prop_assert!(rest.any(|s| s == k), "{k} not in {sent:?}");
            }
            let readable = sent
                .iter()
                .filter(|c| READABLE.contains(&c.split(';').next().unwrap().trim().to_ascii_lowercase().as_str()))
                .count();
            proptest::prop_assert_eq!(kept.len(), readable);
        }
    }

    #[test]
    fn accept_encoding_keeps_only_what_the_scan_reads() {
        let cut = |vals: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in vals {
                h.append(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            }
            limit_accept_encoding(&mut h);
            h.get_all(header::ACCEPT_ENCODING)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(cut(&["gzip, deflate, br, zstd"]), ["gzip, deflate"]);
        assert_eq!(cut(&["br;q=1.0, gzip;q=0.5"]), ["gzip;q=0.5"]);
        assert_eq!(cut(&["br"]), Vec::<String>::new());
        assert_eq!(cut(&["gzip", "br"]), ["gzip"]);
        assert_eq!(cut(&["gzip, deflate"]), ["gzip, deflate"]);
        assert_eq!(cut(&[]), Vec::<String>::new());
        assert_eq!(cut(&["*"]), Vec::<String>::new());
    }
}
