//! The encodings of the evasion set: what an attacker does to a payload so
//! that a filter reading the raw bytes misses it while the application
//! still reads the attack.

use super::payloads::Family;

/// A small deterministic generator (splitmix64), so the set is the same
/// on every run.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The encodings, 10 of them.
pub const ENCODINGS: &[&str] = &[
    "plain",
    "url",
    "double_url",
    "full_url",
    "percent_u",
    "overlong_utf8",
    "html_entities",
    "case",
    "obfuscated",
    "mixed",
];

/// Whether a byte is left alone by the percent encodings.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// `s` with every byte but letters, digits and `-._~` percent-encoded.
pub fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes payload `p` of family `f` with encoding `enc`; None where the
/// encoding makes no sense for the family (mixing the case of a shell
/// command or a Unix path makes it another command or path, not an
/// evasion).
pub fn encode(enc: &str, p: &str, f: &Family, rng: &mut Rng) -> Option<String> {
    Some(match enc {
        "plain" => p.to_owned(),
        "url" => url(p),
        "double_url" => url(p).replace('%', "%25"),
        "full_url" => p
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if i % 2 == 0 {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect(),
        "percent_u" => p
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else if (c as u32) < 0x10000 {
                    format!("%u{:04X}", c as u32)
                } else {
                    url(&c.to_string())
                }
            })
            .collect(),
        "overlong_utf8" => {
            if !p.bytes().any(|b| !unreserved(b) && b < 0x80) {
                return None;
            }
            p.bytes()
                .map(|b| {
                    if unreserved(b) {
                        (b as char).to_string()
                    } else if b < 0x80 {
                        format!("%{:02X}%{:02X}", 0xc0 | (b >> 6), 0x80 | (b & 0x3f))
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }
        "html_entities" => entities(p, rng)?,
        "case" => {
            if !f.case_insensitive {
                return None;
            }
            mix_case(p, rng)
        }
        "obfuscated" => obfuscate(f.name, p, rng)?,
        "mixed" => {
            let base = obfuscate(f.name, p, rng).unwrap_or_else(|| p.to_owned());
            let base = if f.case_insensitive {
                mix_case(&base, rng)
            } else {
                base
            };
            // Every other special byte percent-encoded.
            let mut out = String::new();
            let mut n = 0;
            for c in base.chars() {
                if c.is_ascii() && !unreserved(c as u8) {
                    n += 1;
                    if n % 2 == 1 {
                        out.push_str(&format!("%{:02x}", c as u8));
                        continue;
                    }
                }
                out.push(c);
            }
            out
        }
        _ => return None,
    })
}

/// Letters of `p` in random case (at least one changed).
fn mix_case(p: &str, rng: &mut Rng) -> String {
    let mut out: String = p
        .chars()
        .map(|c| {
            if rng.below(2) == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    if out == p {
        out = p.to_ascii_uppercase();
    }
    out
}

/// Named entities of some specials.
fn named(c: char) -> Option<&'static str> {
    Some(match c {
        '<' => "&lt;",
        '>' => "&gt;",
        '"' => "&quot;",
        '\'' => "&apos;",
        '&' => "&amp;",
        '(' => "&lpar;",
        ')' => "&rpar;",
        '/' => "&sol;",
        ':' => "&colon;",
        ';' => "&semi;",
        '=' => "&equals;",
        '\n' => "&NewLine;",
        '\t' => "&Tab;",
        '.' => "&period;",
        '$' => "&dollar;",
        '{' => "&lcub;",
        '}' => "&rcub;",
        '*' => "&ast;",
        '|' => "&vert;",
        _ => return None,
    })
}

/// Specials of `p` as HTML character references, each in one of the
/// forms browsers accept: decimal, hex, zero-padded, without the
/// semicolon (where the next character ends the number), named.
fn entities(p: &str, rng: &mut Rng) -> Option<String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::new();
    let mut any = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == ' ' {
            out.push(c);
            continue;
        }
        any = true;
        let next_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_hexdigit());
        let n = c as u32;
        match rng.below(5) {
            0 => out.push_str(&format!("&#{n};")),
            1 => out.push_str(&format!("&#x{n:x};")),
            2 => out.push_str(&format!("&#{n:07};")),
            3 if !next_digit => out.push_str(&format!("&#X{n:X}")),
            _ => match named(c) {
                Some(e) => out.push_str(e),
                None => out.push_str(&format!("&#{n};")),
            },
        }
    }
    any.then_some(out)
}

/// One of `options`, chosen at random.
fn pick<'a>(options: &[&'a str], rng: &mut Rng) -> &'a str {
    options[rng.below(options.len())]
}

/// Replaces each space of `p` with one of `with`.
fn spaces(p: &str, with: &[&str], rng: &mut Rng) -> String {
    let mut out = String::new();
    for c in p.chars() {
        if c == ' ' {
            out.push_str(pick(with, rng));
        } else {
            out.push(c);
        }
    }
    out
}

/// Inserts `ins` after the first character of each word of `words` in `p`.
fn split_words(p: &str, words: &[&str], ins: &str) -> String {
    let mut out = p.to_owned();
    for w in words {
        if let Some(i) = out.find(w) {
            let cut = i + 1;
            out.insert_str(cut, ins);
        }
    }
    out
}

/// The family's own obfuscations: what its interpreter ignores or
/// rewrites (comments, separators, quoting, nested lookups); None where
/// the family has none that keeps the payload working.
pub fn obfuscate(family: &str, p: &str, rng: &mut Rng) -> Option<String> {
    let out = match family {
        "sqli" => {
            let s = spaces(p, &["/**/", "\t", "\n", "/*x*/", "\u{b}"], rng);
            s.replace("SELECT", "/*!50000SELECT*/")
                .replace("UNION", "UNION/**/DISTINCT")
                .replace("OR ", "||")
        }
        "xss" => {
            // `/` separates attributes in a tag; in script it divides.
            let with: &[&str] = if p.starts_with('<') {
                &["/", "\t", "\n", "\u{c}"]
            } else {
                &["\t", "\n", "\u{c}"]
            };
            let s = spaces(p, with, rng);
            s.replace("javascript:", "java\tscript:")
                .replace("alert(", "top['al'+'ert'](")
                .replace("prompt(", "window['pro'+'mpt'](")
        }
        "cmdi" => {
            let s = split_words(
                p,
                &[
                    "cat",
                    "whoami",
                    "uname",
                    "curl",
                    "wget",
                    "chmod",
                    "ping",
                    "powershell",
                    "type",
                ],
                "''",
            );
            let s = spaces(&s, &["${IFS}", "$IFS$9", "\t"], rng);
            s.replace("/etc/passwd", "/e??/pa??wd")
                .replace("id", "i\\d")
        }
        // A third of the paths with the mathematical slashes Windows'
        // best-fit tables read as `/` and `\\` (U+2215, U+2216).
        "lfi" if p.len().is_multiple_of(3) && (p.contains("../") || p.contains("..\\")) => {
            p.replace("../", "..\u{2215}").replace("..\\", "..\u{2216}")
        }
        "lfi" => {
            let s = p
                .replace("../", "..././")
                .replace("..\\", "..\\\\")
                .replace("/etc/", "/etc//./");
            if s == p { p.replace('/', "//") } else { s }
        }
        // The address as an integer, or with the full stops URL parsers
        // read as dots (U+3002, U+FF0E, U+FF61).
        "rfi" => p
            .replace(
                "203.0.113.9",
                if p.contains("shell") {
                    "3405803785"
                } else {
                    "203\u{3002}0\u{ff0e}113\u{ff61}9"
                },
            )
            .replace("198.51.100.3", "0xc6.0x33.0x64.0x3")
            .replace("evil.example", "evil.example."),
        "ssrf" => {
            // IPv6 literals in their other valid spellings.
            let s = if p.contains('[') {
                p.replace("::ffff:127.0.0.1", "::ffff:7f00:1")
                    .replace("[::1]", "[0:0:0:0:0:0:0:1]")
                    .replace("fd00:ec2::254", "fd00:0ec2:0:0:0:0:0:254")
            } else {
                p.replace(
                    "127.0.0.1",
                    pick(&["0x7f.0.0.1", "0177.0.0.01", "127.000.000.1"], rng),
                )
            };
            let s = s
                .replace(
                    "169.254.169.254",
                    if p.contains("/iam/") {
                        "169\u{3002}254\u{3002}169\u{3002}254"
                    } else {
                        "0xa9fea9fe"
                    },
                )
                .replace("localhost", "LocalHost.")
                .replace("10.0.0.5", "012.0.0.05");
            if s == p {
                p.replacen("://", "://app.example.test@", 1)
            } else {
                s
            }
        }
        "xxe" => spaces(p, &["\n", "\t", "  "], rng).replace("SYSTEM", "SYSTEM\n"),
        "nosql" => {
            if !p.contains('$') {
                return None;
            }
            p.replace('$', "\\u0024")
        }
        // Spaces where engines allow them: not inside an opener (`*{`).
        "ssti" => p
            .replace("{{", "{{ ")
            .replace("}}", " }}")
            .replace("*{", "\u{1}")
            .replace('*', " * ")
            .replace('\u{1}', "*{")
            .replace(".__", " . __"),
        "crlf" => p.replace("\r\n", "\n"),
        "code" => p
            .replace("system(", "system (")
            .replace("eval(", "eval/**/(")
            .replace("passthru(", "PassThru(")
            .replace("phpinfo(", "PHPinfo (")
            .replace("assert(", "assert\t(")
            .replace("__import__(", "__import__ (")
            .replace("exec(", "exec (")
            .replace("print(", "print (")
            .replace("md5(", "md5 ("),
        "java" => p
            .replace("${jndi:", "${${::-j}${::-n}di:")
            .replace("(#", "( #")
            .replace("exec(", "exec (")
            .replace("Runtime", "Run\\u0074ime"),
        // The full stops URL parsers read as dots; the scheme in capitals.
        "open_redirect" => p
            .replace("evil.example", "evil\u{3002}example")
            .replace("203.0.113.9", "3405803785")
            .replace("https:", "HTTPS:"),
        // JSON's escapes in the keys a JSON parser reads back, spaces
        // between the brackets of a form name.
        "prototype_pollution" => {
            if p.starts_with(['{', '[']) {
                p.replace("__proto__", "\\u005f_proto__")
                    .replace("\"constructor\"", "\"\\u0063onstructor\"")
            } else {
                p.replace("][", "] [")
            }
        }
        // The header in standard base64 with its padding, as some
        // libraries write it.
        "jwt" => {
            use base64::Engine as _;
            let (head, rest) = p.split_once('.')?;
            let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(head)
                .ok()?;
            let std = base64::engine::general_purpose::STANDARD.encode(json);
            format!("{std}.{rest}")
        }
        _ => return None,
    };
    (out != p).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_encodes_a_slash_as_c0_af() {
        let f = &super::super::payloads::FAMILIES[3];
        let out = encode("overlong_utf8", "../", f, &mut Rng(1)).unwrap();
        assert_eq!(out, "..%C0%AF");
    }

    #[test]
    fn entities_decode_back_to_the_payload() {
        let mut rng = Rng(7);
        for _ in 0..50 {
            let out = entities("<a href='x'>(1);", &mut rng).unwrap();
            assert!(!out.contains('<') && !out.contains('\''), "{out}");
        }
    }
}
