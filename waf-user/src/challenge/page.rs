//! The challenge page, its Content-Security-Policy, the `return_to` rule
//! and the verify form's parser.
//!
//! The page is one small HTML document (under 4 kB, no external asset, no
//! cookie needed) whose inline script searches nonces 0, 1, 2, ... until
//! SHA-256(`challenge:nonce`) starts with `difficulty` zero bits, then
//! POSTs the form `c` (challenge), `n` (nonce), `r` (return_to) to
//! [`VERIFY_PATH`]. The search runs in slices of 2,000 hashes, as many as
//! fit in 40 ms, each slice in a `setTimeout(…, 0)`, so the page stays
//! responsive. The script carries its own SHA-256 (FIPS 180-4, on the
//! ASCII bytes of its input): `crypto.subtle` exists only in secure
//! contexts and the page must work over plain HTTP too.
//!
//! The script is the same for every challenge, so the CSP names it by its
//! hash ([`csp`]); the per-request data sits in a JSON data block
//! (`<script type="application/json" id="waf-challenge">`, which no browser
//! runs) that the script reads.
//!
//! How the script is tested: `page::tests` runs it under Node.js, when
//! there is one, against stand-ins for the DOM, and checks its solution
//! with [`super::Challenger::verify`] and its SHA-256 against ring's on
//! inputs of 0 to 200 bytes; the proxy's Chromium test runs it in a real
//! browser behind the real CSP.
//!
//! The proxy serves the page with `Cache-Control: no-store` (each challenge
//! is for one client and expires).

use std::sync::LazyLock;

use ring::digest;

use super::{VERIFY_PATH, token::b64_encode};

/// The inline script: reads the data block, searches, submits.
pub const SCRIPT: &str = r#"(function(){"use strict";var K=[0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2],W=new Array(64);
function sha(s){var n=s.length,L=((n+8>>6)+1)<<4,w=new Array(L),H=[0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19],i,j,t,u,a,b,c,d,e,f,g,h;
for(i=0;i<L;i++)w[i]=0;
for(i=0;i<n;i++)w[i>>2]|=(s.charCodeAt(i)&255)<<(24-(i&3)*8);
w[n>>2]|=128<<(24-(n&3)*8);w[L-1]=n*8;
for(i=0;i<L;i+=16){a=H[0];b=H[1];c=H[2];d=H[3];e=H[4];f=H[5];g=H[6];h=H[7];
for(j=0;j<64;j++){if(j<16)W[j]=w[i+j];else{t=W[j-15];u=W[j-2];W[j]=((t>>>7|t<<25)^(t>>>18|t<<14)^t>>>3)+((u>>>17|u<<15)^(u>>>19|u<<13)^u>>>10)+W[j-7]+W[j-16]|0}
t=h+((e>>>6|e<<26)^(e>>>11|e<<21)^(e>>>25|e<<7))+(e&f^~e&g)+K[j]+W[j]|0;
u=((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+(a&b^a&c^b&c)|0;
h=g;g=f;f=e;e=d+t|0;d=c;c=b;b=a;a=t+u|0}
H[0]=H[0]+a|0;H[1]=H[1]+b|0;H[2]=H[2]+c|0;H[3]=H[3]+d|0;H[4]=H[4]+e|0;H[5]=H[5]+f|0;H[6]=H[6]+g|0;H[7]=H[7]+h|0}
return H}
var q=JSON.parse(document.getElementById("waf-challenge").textContent),p=q.c+":",z=32-q.d,x=0,F=document.getElementById("f");
function step(){var t0=Date.now(),k;do{for(k=0;k<2000;k++,x++){if(sha(p+x)[0]>>>z===0){F.elements.c.value=q.c;F.elements.n.value=""+x;F.elements.r.value=q.r;F.submit();return}}}while(Date.now()-t0<40);setTimeout(step,0)}
setTimeout(step,0)})();"#;

/// `sha256-<base64>` of [`SCRIPT`], as the CSP names it.
pub static SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "sha256-{}",
        b64_encode(digest::digest(&digest::SHA256, SCRIPT.as_bytes()).as_ref())
    )
});

static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src '{}'; style-src 'unsafe-inline'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        *SCRIPT_HASH
    )
});

/// The Content-Security-Policy header value for the page.
pub fn csp() -> &'static str {
    &CSP
}

/// The page for one challenge; `return_to` is made safe here
/// ([`safe_return_to`]).
pub fn render(challenge: &str, difficulty: u8, return_to: &str) -> String {
    let data = format!(
        "{{\"c\":{},\"d\":{},\"r\":{}}}",
        json_string(challenge),
        difficulty,
        json_string(safe_return_to(return_to))
    );
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"robots\" content=\"noindex,nofollow\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Checking your browser\u{2026}</title><style>body{{font:16px/1.5 system-ui,\
         sans-serif;color:#333;max-width:32em;margin:20vh auto;padding:0 1em;\
         text-align:center}}</style></head><body><p id=\"s\">Checking your browser\u{2026}</p>\
         <noscript><p>JavaScript is required</p></noscript>\
         <form id=\"f\" method=\"post\" action=\"{VERIFY_PATH}\">\
         <input type=\"hidden\" name=\"c\"><input type=\"hidden\" name=\"n\">\
         <input type=\"hidden\" name=\"r\"></form>\
         <script type=\"application/json\" id=\"waf-challenge\">{data}</script>\
         <script>{SCRIPT}</script></body></html>"
    )
}

/// The longest `return_to` kept.
const MAX_RETURN_TO: usize = 2048;

/// `return_to` if it is a local path (one `/` then visible ASCII, no
/// backslash: not `//host`, not `/\host`, no scheme, no control or space
/// character a browser would strip), else `/`. Apply it to the form's `r`
/// again before redirecting: it is attacker-controlled both ways.
pub fn safe_return_to(s: &str) -> &str {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_RETURN_TO
        && b[0] == b'/'
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && b.iter().all(|&c| (0x21..=0x7e).contains(&c) && c != b'\\');
    if ok { s } else { "/" }
}

/// A JSON string that is also safe inside a `<script>` element and an
/// HTML attribute: everything but letters, digits and a few marks as
/// `\uXXXX`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "/-_.:?=,;~!*()@$+%".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.push('"');
    out
}

/// The largest verify form read.
pub const MAX_FORM: usize = 4096;

/// Reads the verify POST (`application/x-www-form-urlencoded`): the
/// challenge, the nonce and the return path (made safe; `/` when absent).
/// `None` for a body over [`MAX_FORM`], bad percent-encoding, text that is
/// not UTF-8, a field given twice, or `c` or `n` missing. Other fields are
/// ignored.
pub fn parse_form(body: &[u8]) -> Option<(String, String, String)> {
    if body.len() > MAX_FORM {
        return None;
    }
    let (mut c, mut n, mut r) = (None, None, None);
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let slot = match decode(k)?.as_str() {
            "c" => &mut c,
            "n" => &mut n,
            "r" => &mut r,
            _ => continue,
        };
        if slot.replace(decode(v)?).is_some() {
            return None;
        }
    }
    let r = r.map_or("/".to_string(), |r| safe_return_to(&r).to_string());
    Some((c?, n?, r))
}

/// Percent- and `+`-decoding to UTF-8.
fn decode(s: &[u8]) -> Option<String> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(*s.get(i + 1)?)?;
                let lo = hex(*s.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text between `open` and the next `</script>`.
    fn between<'a>(html: &'a str, open: &str) -> &'a str {
        let at = html.find(open).expect(open) + open.len();
        let len = html[at..].find("</script>").expect("</script>");
        &html[at..at + len]
    }

    #[test]
    fn the_page_is_small_self_contained_and_names_its_script_in_the_csp() {
        let html = render("abc-_123", 16, "/account?x=1");
        assert!(html.len() < 4096, "{}", html.len());
        assert!(html.contains("Checking your browser"));
        assert!(html.contains("<noscript><p>JavaScript is required</p></noscript>"));
        assert!(html.contains("action=\"/.well-known/waf-challenge\""));
        assert!(!html.contains("src=") && !html.contains("href="));
        let script = between(&html, "<script>");
        assert_eq!(script, SCRIPT);
        let hash = b64_encode(digest::digest(&digest::SHA256, script.as_bytes()).as_ref());
        assert!(csp().contains(&format!("script-src 'sha256-{hash}'")));
        assert_eq!(hash.len(), 44);
        assert!(csp().starts_with("default-src 'none'; "));
        for part in [
            "style-src 'unsafe-inline'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp().contains(part), "{part}");
        }
        let data = between(&html, "id=\"waf-challenge\">");
        assert_eq!(data, r#"{"c":"abc-_123","d":16,"r":"/account?x=1"}"#);
        assert!(!SCRIPT.contains("</"));
    }

    #[test]
    fn return_to_is_a_local_path_or_slash() {
        for ok in ["/", "/a/b?c=d&e=%2F#f", "/.well-known/x", "/a//b"] {
            assert_eq!(safe_return_to(ok), ok);
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "https://evil.example/",
            "evil.example",
            "/\t/evil.example",
            "/a\nb",
            "/a b",
            "/a\\b",
            "/caf\u{e9}",
        ] {
            assert_eq!(safe_return_to(bad), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(&format!("/{}", "a".repeat(3000))), "/");
    }

    #[test]
    fn no_return_to_reaches_the_page_unescaped() {
        let evil = "/</script><script>alert(1)</script>";
        let html = render("c", 8, evil);
        assert!(!html.contains("alert(1)</script>"));
        assert_eq!(html.matches("<script").count(), 2);
        assert_eq!(html.matches("</script>").count(), 2);
        let data = between(&html, "id=\"waf-challenge\">");
        assert!(!data.contains('<') && !data.contains('>'), "{data}");
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["r"], evil);
        for (given, kept) in [
            ("javascript:alert(1)", "/"),
            ("//evil.example", "/"),
            ("/\"'&<>", "/\"'&<>"),
        ] {
            let html = render("c", 8, given);
            let data = between(&html, "id=\"waf-challenge\">");
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["r"], kept);
            assert!(!data.contains(['\'', '&', '<', '>'].as_slice()), "{data}");
        }
        assert!(!render("c", 8, "javascript:alert(1)").contains("javascript"));
        assert!(!render("c", 8, "//evil.example").contains("evil"));
    }

    #[test]
    fn the_form_is_read_strictly() {
        let f = |s: &str| parse_form(s.as_bytes());
        assert_eq!(
            f("c=abc-_&n=123&r=%2Fa%3Fb%3D1"),
            Some(("abc-_".into(), "123".into(), "/a?b=1".into()))
        );
        assert_eq!(
            f("n=1&c=x&other=y"),
            Some(("x".into(), "1".into(), "/".into()))
        );
        assert_eq!(
            f("c=a+b&n=1&r=//evil"),
            Some(("a b".into(), "1".into(), "/".into()))
        );
        assert_eq!(f("c=x&n="), Some(("x".into(), "".into(), "/".into())));
        for bad in [
            "",
            "c=x",
            "n=1",
            "c=x&c=y&n=1",
            "c=%zz&n=1",
            "c=%4&n=1",
            "c=%ff&n=1",
        ] {
            assert_eq!(f(bad), None, "{bad}");
        }
        let long = format!("c={}&n=1", "a".repeat(MAX_FORM));
        assert_eq!(f(&long), None);
    }
}
