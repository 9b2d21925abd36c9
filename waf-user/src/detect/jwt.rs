//! JSON Web Tokens in any value (an `Authorization: Bearer` header, a
//! cookie, a parameter): a token whose header names the algorithm `none`
//! asks the server to accept it unsigned (CVE-2015-9235 and its kin), and
//! the header's `kid` (a key id some servers read as a file name or put
//! into a query) and `jku`/`x5u` (a URL some servers fetch keys from) are
//! values the server reads: they are read as parameters.

use base64::Engine as _;

/// Longest token header read (encoded).
const HEADER_MAX: usize = 4096;

/// Most tokens read from one value (as many as parameters a request may
/// have; a value with more is reported as such, see [`headers`]).
pub const TOKENS_MAX: usize = 1024;

/// What a token's header holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// The `alg` it names, when it is `none` in any letter case.
    pub alg_none: Option<String>,
    /// `kid`, `jku` and `x5u` values, with their names.
    pub values: Vec<(&'static str, String)>,
}

/// The headers of the tokens in `v` (`eyJ...` with at least two dots
/// after it), decoded; tokens whose header is no JSON object are skipped.
/// The flag says that more than [`TOKENS_MAX`] tokens were left unread.
pub fn headers(v: &[u8]) -> (Vec<Header>, bool) {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&v[from..], b"eyJ").map(|i| from + i) {
        if out.len() == TOKENS_MAX {
            return (out, true);
        }
        let len = v[at..]
            .iter()
            .take_while(|&&c| {
                c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'=' | b'+' | b'/')
            })
            .count();
        let token = &v[at..at + len];
        from = at + len.max(1);
        if token.iter().filter(|&&c| c == b'.').count() < 2 {
            continue;
        }
        let head = &token[..memchr::memchr(b'.', token).unwrap_or(token.len())];
        if let Some(h) = header(head) {
            out.push(h);
        }
    }
    (out, false)
}

/// One encoded header, decoded and read.
fn header(encoded: &[u8]) -> Option<Header> {
    if encoded.len() > HEADER_MAX {
        return None;
    }
    let trimmed: Vec<u8> = encoded
        .iter()
        .filter(|&&c| c != b'=')
        .map(|&c| match c {
            b'+' => b'-',
            b'/' => b'_',
            c => c,
        })
        .collect();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&trimmed)
        .ok()?;
    let serde_json::Value::Object(map) = serde_json::from_slice(&json).ok()? else {
        return None;
    };
    let mut h = Header::default();
    if let Some(serde_json::Value::String(alg)) = map.get("alg")
        && alg.trim().eq_ignore_ascii_case("none")
    {
        h.alg_none = Some(alg.clone());
    }
    for name in ["kid", "jku", "x5u"] {
        if let Some(serde_json::Value::String(s)) = map.get(name) {
            h.values.push((name, s.clone()));
        }
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn token(header: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(header),
            e.encode(r#"{"sub":"admin"}"#)
        )
    }

    #[test]
    fn alg_none_in_any_case_is_named() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = token(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let (h, _) = headers(format!("Bearer {t}").as_bytes());
            assert_eq!(h.len(), 1, "{alg}");
            assert_eq!(h[0].alg_none.as_deref(), Some(alg));
        }
        let t = token(r#"{"alg":"HS256","typ":"JWT"}"#);
        assert_eq!(headers(t.as_bytes()).0[0].alg_none, None);
    }

    #[test]
    fn key_ids_and_key_urls_are_returned() {
        let t = token(r#"{"alg":"HS256","kid":"../../dev/null","jku":"http://127.0.0.1/k"}"#);
        let (h, _) = headers(t.as_bytes());
        assert_eq!(
            h[0].values,
            [
                ("kid", "../../dev/null".to_owned()),
                ("jku", "http://127.0.0.1/k".to_owned())
            ]
        );
        // Standard base64 with padding, as some clients write it.
        let std = base64::engine::general_purpose::STANDARD.encode(r#"{"alg":"none"}"#);
        let (h, _) = headers(format!("{std}.e30.").as_bytes());
        assert_eq!(h[0].alg_none.as_deref(), Some("none"));
    }

    #[test]
    fn more_tokens_than_read_are_reported() {
        let one = token(r#"{"alg":"HS256"}"#);
        let many = |n: usize| vec![one.as_str(); n].join(" ");
        let (h, overflow) = headers(many(TOKENS_MAX).as_bytes());
        assert_eq!((h.len(), overflow), (TOKENS_MAX, false));
        let (h, overflow) = headers(many(TOKENS_MAX + 1).as_bytes());
        assert_eq!((h.len(), overflow), (TOKENS_MAX, true));
    }

    #[test]
    fn what_is_no_token_is_skipped() {
        for v in [
            "eyJ",
            "eyJhbGciOiJub25lIn0",
            "eyJhbGciOiJub25lIn0.e30",
            "eyJ!!.a.b",
            "text eyJzzz.a.b",
        ] {
            assert!(headers(v.as_bytes()).0.is_empty(), "{v}");
        }
    }

    proptest! {
        /// Any bytes: no panic, at most TOKENS_MAX headers.
        #[test]
        fn any_bytes_are_read_safely(v in proptest::collection::vec(
            prop_oneof![Just(b'e'), Just(b'y'), Just(b'J'), Just(b'.'), Just(b'='), any::<u8>()],
            0..200,
        )) {
            prop_assert!(headers(&v).0.len() <= TOKENS_MAX);
        }
    }
}
