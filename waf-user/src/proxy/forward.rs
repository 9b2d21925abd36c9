//! Sending a request on to the application: the forwarding headers (the
//! client chain as the socket peer vouches for it), hop-by-hop headers
//! removed both ways, the body's inspected head followed by the rest, and
//! the proxy's own JSON error responses.

use std::{convert::Infallible, net::IpAddr};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::{
    HeaderMap, Request, Response, StatusCode,
    body::{Frame, Incoming},
    header::{self, HeaderName, HeaderValue},
    http::uri::{self, Authority, PathAndQuery},
};

use super::client::Client;

/// Errors crossing body streams.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response the proxy gives.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A response with a fixed body.
pub fn full(
    status: StatusCode,
    body: impl Into<Bytes>,
    ctype: &'static str,
) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// A request header's value as text (None when absent or not visible
/// ASCII).
pub fn header_str<B>(req: &Request<B>, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// 429 with `Retry-After` (whole seconds, at least 1).
pub fn too_many_requests(retry: std::time::Duration, id: &str) -> Response<ProxyBody> {
    let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "rate limited", id);
    if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The proxy's JSON error: `{"error": ..., "request_id": ...}`.
pub fn json_error(status: StatusCode, error: &str, id: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": error, "request_id": id}).to_string();
    let mut r = full(status, body, "application/json");
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

/// Whether a header is hop-by-hop (RFC 9110 7.6.1, and the older
/// `Keep-Alive` and `Proxy-*` ones).
fn hop_by_hop(n: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ]
    .contains(n)
        || n.as_str() == "keep-alive"
}

/// Removes hop-by-hop headers, and those `Connection` names. One pass over
/// the names (most messages have none to remove: no lookup by name).
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let gone: Vec<HeaderName> = h.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in gone.into_iter().chain(listed) {
        h.remove(n);
    }
}

/// Sets the forwarding headers the application sees: the chain a trusted
/// peer sent plus that peer (the socket address), or the peer alone; the
/// protocol a trusted peer states, else `http`.
pub fn set_forwarding(h: &mut HeaderMap, peer: IpAddr, client: &Client, id: &str) {
    let prev = h
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let xff = if client.peer_trusted && !prev.is_empty() {
        format!("{prev}, {peer}")
    } else {
        peer.to_string()
    };
    h.remove("x-forwarded-for");
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    if !client.peer_trusted {
        h.remove("forwarded");
    }
    if !(client.peer_trusted && h.contains_key("x-forwarded-proto")) {
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-request-id", v);
    }
}

/// The request body to send upstream: the chunks already read, then the
/// rest of the client's body as it comes, failing once the whole passes
/// `cap` bytes.
pub fn body_upstream(head: Vec<Bytes>, rest: Incoming, cap: Option<u64>) -> ProxyBody {
    let read: u64 = head.iter().map(|b| b.len() as u64).sum();
    let head = futures_util::stream::iter(head.into_iter().map(|b| Ok(Frame::data(b))));
    let first: ProxyBody = StreamBody::new(head).boxed();
    let second = match cap {
        Some(cap) => {
            let left = usize::try_from(cap.saturating_sub(read)).unwrap_or(usize::MAX);
            http_body_util::Limited::new(rest, left).boxed()
        }
        None => rest.map_err(|e| -> BoxError { Box::new(e) }).boxed(),
    };
    chain(first, second)
}

/// Adds the security headers a response lacks.
pub fn add_security_headers(h: &mut HeaderMap, hsts_max_age: u64, csp: &str) {
    let mut set = |name: &'static str, value: &str| {
        if !h.contains_key(name)
            && let Ok(v) = HeaderValue::from_str(value)
        {
            h.insert(name, v);
        }
    };
    if hsts_max_age > 0 {
        set(
            "strict-transport-security",
            &format!("max-age={hsts_max_age}; includeSubDomains"),
        );
    }
    set("content-security-policy", csp);
    set("x-frame-options", "DENY");
    set("x-content-type-options", "nosniff");
    set("referrer-policy", "strict-origin-when-cross-origin");
}

/// Points the request at the upstream, keeping path and query (a target
/// without a path, `*` or an authority, fails).
pub fn retarget<B>(req: &mut Request<B>, upstream: &Authority) -> Result<(), ()> {
    let pq = match req.uri().path_and_query() {
        Some(pq) if pq.as_str().starts_with('/') => pq.clone(),
        Some(_) => return Err(()),
        None => PathAndQuery::from_static("/"),
    };
    let mut parts = uri::Parts::default();
    parts.scheme = Some(uri::Scheme::HTTP);
    parts.authority = Some(upstream.clone());
    parts.path_and_query = Some(pq);
    *req.uri_mut() = hyper::Uri::from_parts(parts).map_err(|_| ())?;
    Ok(())
}

/// Two bodies, one after the other.
pub fn chain(first: ProxyBody, second: ProxyBody) -> ProxyBody {
    ChainBody {
        first: Some(first),
        second,
    }
    .boxed()
}

/// Two bodies, one after the other.
struct ChainBody {
    first: Option<ProxyBody>,
    second: ProxyBody,
}

impl hyper::body::Body for ChainBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        if let Some(first) = self.first.as_mut() {
            match std::pin::Pin::new(first).poll_frame(cx) {
                Poll::Ready(None) => self.first = None,
                other => return other,
            }
        }
        std::pin::Pin::new(&mut self.second).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.as_ref().is_none_or(|f| f.is_end_stream()) && self.second.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(addr: &str, trusted: bool) -> Client {
        Client {
            addr: addr.parse().unwrap(),
            peer_trusted: trusted,
            malformed: false,
        }
    }

    #[test]
    fn an_untrusted_peer_cannot_forge_the_chain_or_the_protocol() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("forwarded", "for=10.0.0.1".parse().unwrap());
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        set_forwarding(&mut h, peer, &client("203.0.113.9", false), "id1");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(!h.contains_key("forwarded"));
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("connection", "keep-alive, X-Secret ,x-other"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("proxy-authenticate", "Basic"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("x-kept", "3"),
            ("host", "h"),
        ] {
            h.append(HeaderName::from_static(n), v.parse().unwrap());
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn retargeting_keeps_the_path_and_query_and_refuses_others() {
        let up: Authority = "127.0.0.1:8080".parse().unwrap();
        for (target, want) in [
            ("/a/b?q=1&r", Some("http://127.0.0.1:8080/a/b?q=1&r")),
            ("http://evil.example/x?y", Some("http://127.0.0.1:8080/x?y")),
            ("/", Some("http://127.0.0.1:8080/")),
            ("*", None),
        ] {
            let mut r = Request::builder().uri(target).body(()).unwrap();
            let got = retarget(&mut r, &up).ok().map(|()| r.uri().to_string());
            assert_eq!(got.as_deref(), want, "{target}");
        }
    }

    #[test]
    fn a_trusted_peer_gets_its_chain_extended_by_itself() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "192.0.2.7".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let peer: IpAddr = "198.51.100.1".parse().unwrap();
        set_forwarding(&mut h, peer, &client("192.0.2.7", true), "id2");
        assert_eq!(h["x-forwarded-for"], "192.0.2.7, 198.51.100.1");
        assert_eq!(h["x-forwarded-proto"], "https");
    }
}
