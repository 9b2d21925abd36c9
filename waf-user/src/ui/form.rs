//! `application/x-www-form-urlencoded` bodies and query strings, read into
//! bounded lists of fields: percent-decoding, `+` as a space, invalid UTF-8
//! replaced, never a panic on what a client sends.

/// Fields read at most; the rest are ignored.
pub const MAX_FIELDS: usize = 64;

/// A decoded form: fields in the order they came.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Reads a form body or a query string.
    pub fn parse(raw: &[u8]) -> Self {
        Form(
            raw.split(|&b| b == b'&')
                .filter(|p| !p.is_empty())
                .take(MAX_FIELDS)
                .map(|pair| {
                    let (k, v) = match pair.iter().position(|&b| b == b'=') {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (pair, &pair[pair.len()..]),
                    };
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed; "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).map(str::trim).unwrap_or("")
    }

    /// Whether a checkbox `name` was ticked (`on`, `1`, `true`, `yes`).
    pub fn ticked(&self, name: &str) -> bool {
        matches!(self.text(name), "on" | "1" | "true" | "yes")
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one key or value (`+` is a space; a `%` without two hex
/// digits stays as it is).
pub fn decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).copied().and_then(hex_val);
                let lo = s.get(i + 2).copied().and_then(hex_val);
                if let (Some(h), Some(l)) = (hi, lo) {
                    out.push(h << 4 | l);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a value for a query string or a form (everything but
/// unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
