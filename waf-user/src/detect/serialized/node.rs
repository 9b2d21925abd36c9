//! node-serialize objects (CVE-2017-5941): `unserialize` runs the text of
//! a string marked `_$$ND_FUNC$$_` as a function, and an exploit ends the
//! function with `()` so that it runs as it is read. The object is
//! usually sent base64-encoded in a cookie (`eyJyY2UiOiJfJCRORF9GVU5D...`),
//! where it is only letters; JSON reads `\u` escapes in it (`_$$\u004eD`).

/// The marker node-serialize looks for.
const MARKER: &[u8] = b"_$$ND_FUNC$$_";

/// Whether decoded bytes begin as node-serialize input: a JSON object, or
/// a marked string alone.
pub(super) fn magic(head: &[u8]) -> bool {
    matches!(
        head,
        [b'{', b'"' | b' ' | b'\t' | b'\r' | b'\n', ..] | [b'_', b'$', b'$', ..]
    )
}

/// Whether `b` holds a function node-serialize builds, its marker written
/// plain or with JSON `\u` escapes.
pub(super) fn function(b: &[u8]) -> bool {
    if memchr::memmem::find(b, MARKER).is_some() {
        return true;
    }
    memchr::memmem::find(b, b"\\u").is_some()
        && memchr::memmem::find(&unescape(b), MARKER).is_some()
}

/// `b` with the JSON `\uXXXX` escapes of ASCII characters decoded.
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'u')
            && let Some(cp) = b.get(i + 2..i + 6).and_then(crate::detect::normalize::hex4)
            && let Ok(c) = u8::try_from(cp)
            && c.is_ascii()
        {
            out.push(c);
            i += 6;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::encoded;

    fn b64(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn finds_node_serialize_functions_sent_base64_encoded() {
        for obj in [
            r#"{"rce":"_$$ND_FUNC$$_function(){require('child_process').exec('id')}()"}"#,
            r#"{ "username":"_$$ND_FUNC$$_function (){ return 1 }()" }"#,
            "_$$ND_FUNC$$_function()\n",
            r#"_$$\u004e\u0044_FUNC$$_\u0066unction()"#,
            r#"{"a":"_$$\u004E\u0044_FUNC$$_function(){}()"}"#,
        ] {
            let found = encoded(b64(obj).as_bytes());
            assert_eq!(
                found.map(|f| f.rule),
                Some("node-serialize-encoded"),
                "{obj}"
            );
        }
    }

    #[test]
    fn keeps_plain_base64_json_quiet() {
        for obj in [
            r#"{"user":"alice","role":"admin","exp":1700000000}"#,
            r#"{"func":"ND_FUNC","note":"$$ money $$"}"#,
            r#"{"a":"\u0041\u0042"}"#,
            "_$$ not a marker",
        ] {
            assert_eq!(encoded(b64(obj).as_bytes()), None, "{obj}");
        }
    }
}
