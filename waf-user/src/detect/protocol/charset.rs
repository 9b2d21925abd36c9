//! Charsets: the ones used to smuggle payloads past filters (UTF-7,
//! UTF-16/32, EBCDIC...) and the ones seen in real traffic, and the checks
//! of every place but Content-Type that names one: Accept, Accept-Charset,
//! X-Up-Devcap-Post-Charset, multipart parts and their `_charset_` field.

use super::K;
use crate::detect::collect::{Collector, short};
use crate::detect::kind::Severity::{Critical, Error};
use crate::http::{Body, Request, multipart};

/// Charsets used to smuggle payloads past filters (UTF-7, UTF-16/32, EBCDIC).
pub(super) fn is_evasion(c: &str) -> bool {
    let c = c.trim().trim_matches('"').to_ascii_lowercase();
    c.starts_with("utf-7")
        || c == "utf7"
        || c.starts_with("utf-16")
        || c.starts_with("utf-32")
        || c.starts_with("ucs-")
        || c.starts_with("ebcdic")
        || c.starts_with("ibm")
        || (c.starts_with("cp")
            && matches!(
                c.get(2..),
                Some(
                    "037"
                        | "500"
                        | "875"
                        | "1026"
                        | "1140"
                        | "273"
                        | "277"
                        | "278"
                        | "280"
                        | "284"
                        | "285"
                        | "297"
                        | "420"
                        | "424"
                        | "870"
                        | "871"
                        | "1047"
                )
            ))
        || c.starts_with("x-mac-")
}

/// Charsets seen in real traffic: those that read ASCII as ASCII, and
/// `iso-2022-jp` and `binary`.
pub(super) fn is_known(c: &str) -> bool {
    let c = c.trim().trim_matches('"').to_ascii_lowercase();
    crate::http::ascii_compatible_charset(&c) || matches!(c.as_str(), "iso-2022-jp" | "binary")
}

/// X-Up-Devcap-Post-Charset (a WAP gateway header some servers honour as
/// the body's charset): anything but a known, harmless charset.
pub(super) fn devcap(req: &Request, c: &mut Collector) {
    for v in req.header_all("x-up-devcap-post-charset") {
        if is_evasion(v) || !is_known(v) {
            c.add(
                K,
                "protocol-charset-evasion",
                Critical,
                1,
                "header:x-up-devcap-post-charset",
                v,
                "",
            );
        }
    }
}

/// The value after each `charset` (or `charset*`) and `=` in a header
/// value, whatever quotes or escapes are around: its text after an RFC
/// 2231 `charset'language'` prefix, up to a quote, `;`, `,` or space.
pub(super) fn named_in(v: &str) -> Vec<String> {
    let low = v.to_ascii_lowercase();
    let mut out = Vec::new();
    for (i, _) in low.match_indices("charset") {
        let rest = low[i + 7..].trim_start_matches('*').trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start().trim_start_matches(['"', '\\', '\'']);
        let end = rest
            .find([';', ',', '"', ' ', '\t', '\\'])
            .unwrap_or(rest.len());
        let token = &rest[..end];
        let token = token.rsplit('\'').next().unwrap_or(token);
        if !token.is_empty() {
            out.push(token.to_owned());
        }
    }
    out
}

/// The charset of each multipart part's Content-Type, and the value of a
/// `_charset_` field (which some frameworks apply to the other fields).
pub(super) fn multipart_parts(req: &Request, c: &mut Collector) {
    let Body::Multipart(parts) = &req.parsed_body else {
        return;
    };
    for p in parts {
        let loc = format!("multipart:{}", short(&p.name));
        // The parameter, and every charset the raw value names (RFC 2231's
        // `charset*=`, one behind an escaped quote), as for the body's.
        let ct = p.content_type.as_deref().unwrap_or("");
        for cs in multipart::param(ct, "charset")
            .into_iter()
            .chain(named_in(ct))
        {
            if is_evasion(&cs) {
                c.add(K, "protocol-multipart-charset", Critical, 1, &loc, &cs, "");
            } else if !is_known(&cs) {
                c.add(K, "protocol-multipart-charset", Error, 1, &loc, &cs, "");
            }
        }
        if p.name == "_charset_" {
            let v = String::from_utf8_lossy(&p.data);
            if !is_known(&v) {
                c.add(K, "protocol-multipart-charset", Critical, 1, &loc, &v, "");
            }
        }
    }
}

/// Accept (`charset=` parameters) and Accept-Charset (every item) asking
/// for an evasion charset, which a server may then answer and read in.
pub(super) fn accept(req: &Request, c: &mut Collector) {
    for name in ["accept", "accept-charset"] {
        for v in req.header_all(name) {
            let evasive = v
                .split([',', ';'])
                .filter_map(|p| p.trim().split_once('='))
                .any(|(k, val)| {
                    (name == "accept-charset" || k.trim().eq_ignore_ascii_case("charset"))
                        && is_evasion(val)
                })
                || (name == "accept-charset"
                    && v.split(',')
                        .any(|p| is_evasion(p.split(';').next().unwrap_or(""))));
            if evasive {
                c.add(
                    K,
                    "protocol-charset-evasion",
                    Critical,
                    1,
                    &format!("header:{name}"),
                    v,
                    "",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_evasion_charsets_from_known_ones() {
        for cs in [
            "UTF-7",
            "utf7",
            "\"utf-16le\"",
            "UTF-32",
            "ucs-2",
            "ibm037",
            "cp500",
            "x-mac-roman",
        ] {
            assert!(is_evasion(cs), "{cs}");
            assert!(!is_known(cs), "{cs}");
        }
        for cs in [
            " UTF-8 ",
            "iso-8859-1",
            "windows-1252",
            "cp1251",
            "Shift_JIS",
            "\"gbk\"",
        ] {
            assert!(is_known(cs), "{cs}");
            assert!(!is_evasion(cs), "{cs}");
        }
        // Neither: unknown charsets have their own findings.
        assert!(!is_evasion("klingon") && !is_known("klingon"));
        assert!(!is_evasion("cp12345"));
    }
}
