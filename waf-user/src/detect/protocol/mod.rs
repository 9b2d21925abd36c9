//! Protocol checks: framing and encoding problems noticed by the parser,
//! checks of the method, Host, Range, Connection, Content-Type and other
//! headers, and the two attacks told by parameter names alone (session
//! fixation, remote file inclusion).
//!
//! - `anomalies.rs`: the parser's anomalies as findings.
//! - `method.rs`: methods not allowed, method overrides in parameters.
//! - `framing.rs`: bodies where none belongs, missing lengths, Range.
//! - `content_type.rs`: Content-Type parameters and syntax, text bodies
//!   without one.
//! - `charset.rs`: charsets that smuggle payloads, wherever a request names
//!   one but in Content-Type.
//! - `header_values.rs`: Host, Connection, restricted headers, fetch
//!   metadata, Accept-Encoding, missing User-Agent and Accept.
//! - `cookie.rs`: quoted cookie values that swallow the cookies after them.
//! - `session.rs`, `rfi.rs`: session fixation and remote file inclusion
//!   through parameter names (and `rfi.rs` any URL to a public address).

mod anomalies;
mod charset;
mod content_type;
mod cookie;
mod framing;
mod header_values;
mod method;
mod rfi;
mod session;

pub use anomalies::anomalies;
pub use rfi::{public_ip_url, rfi_parameters};
pub use session::session_fixation;

use super::collect::Collector;
use super::kind::Kind;
use crate::http::Request;

/// The kind of the findings of this module (but session fixation and RFI).
const K: Kind = Kind::Protocol;

/// Checks the method and headers. The checks run in this order, which is
/// the order of their findings in the verdict.
pub fn headers(req: &Request, allowed_methods: &[String], c: &mut Collector) {
    method::not_allowed(req, allowed_methods, c);
    header_values::host_is_ip(req, c);
    framing::get_with_body(req, c);
    framing::missing_length(req, c);
    framing::range(req, c);
    header_values::connection(req, c);
    content_type::parameters(req, c);
    charset::devcap(req, c);
    charset::multipart_parts(req, c);
    header_values::restricted(req, c);
    method::overrides(req, c);
    charset::accept(req, c);
    content_type::malformed(req, c);
    content_type::missing(req, c);
    header_values::fetch_metadata(req, c);
    header_values::accept_encoding(req, c);
    header_values::missing_user_agent_and_accept(req, c);
    cookie::quoted_span(req, c);
}
