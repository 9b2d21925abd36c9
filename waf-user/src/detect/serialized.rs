//! Serialized objects sent base64-encoded, maybe compressed first: a
//! Python pickle (`Y29zCnN5c3RlbQo...`, `gASV...`), a Java stream
//! gzipped as JSF writes its view state (`H4sI...`), a Ruby Marshal
//! stream (`BAhv...`), a .NET BinaryFormatter stream (`AAEAAAD/////`,
//! URL-safe `AAEAAAD_____`) and a node-serialize object (`node.rs`). The
//! raw forms and `rO0AB` are rules (`serialized-object-gadget`,
//! `java-serialized`); these are base64 letters only, so no rule reads
//! them.
//!
//! A value is decoded only when its first letters decode to a format's
//! magic bytes; the decoded bytes are then read in that format's own
//! grammar, so a base64 image, blob or token (its first bytes are no
//! such magic) is never decoded past eight letters. A pickle counts
//! when it imports a name and calls it (plain data does not); a Ruby
//! stream when it builds an object of a class that is no plain data
//! class (a Rails session hash with its flash does not). Input is
//! bounded ([`INPUT_MAX`]), so is what a compressed payload inflates to
//! ([`INFLATED_MAX`]), and each reader stops at its input's end.

mod node;

use std::io::Read;

use super::collect::Collector;
use super::kind::{Kind, Severity};
use super::normalize::sextet;
use super::rules::targets;

/// Targets that may hold a base64 serialized object.
pub const TARGETS: u16 = targets::ARGS | targets::HEADERS | targets::BODY | targets::DOC;

/// Longest value read (base64 letters).
pub const INPUT_MAX: usize = 64 * 1024;
/// Most bytes a compressed payload is inflated to.
pub const INFLATED_MAX: usize = 64 * 1024;
/// Shortest value read: a pickle that calls anything is longer.
const INPUT_MIN: usize = 16;
/// Nesting the Ruby reader follows at most.
const DEPTH_MAX: usize = 64;

/// A serialized object that runs code when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The rule id of the finding.
    pub rule: &'static str,
    /// What it builds or calls (`os.system`, `Gem::Requirement`).
    pub what: String,
}

/// The serialized object a base64 value (standard or URL-safe alphabet,
/// padded or not, wrapped in lines or quotes, a space read as the `+` a
/// form decoded it to) holds, when reading it runs code.
pub fn encoded(v: &[u8]) -> Option<Found> {
    let v = v.trim_ascii();
    let v = match v {
        [b'"' | b'\'', inner @ .., b'"' | b'\''] => inner,
        _ => v,
    };
    if v.len() < INPUT_MIN || v.len() > INPUT_MAX {
        return None;
    }
    // The first eight letters, at most six bytes, decoded in place: most
    // values are no such object, and this runs on every one.
    let (mut head, mut len) = ([0u8; 6], 0);
    decode_with(&v[..8], |b| {
        head[len] = b;
        len += 1;
    })?;
    if !magic(&head[..len]) {
        return None;
    }
    classify(&decode(v)?, true)
}

/// Adds the finding of [`encoded`] on a value's decoded text `dec`.
pub fn findings(c: &mut Collector, dec: &[u8], loc: &mut dyn FnMut() -> String, value: &str) {
    if let Some(f) = encoded(dec) {
        let kind = match f.rule {
            "java-serialized-encoded" => Kind::Java,
            _ => Kind::CodeInjection,
        };
        c.add(kind, f.rule, Severity::Critical, 1, &loc(), &f.what, value);
    }
}

/// Whether decoded bytes begin as one of the formats read here.
fn magic(head: &[u8]) -> bool {
    matches!(
        head,
        [0x80, 2..=5, ..]
            | [b'c', b'_' | b'a'..=b'z' | b'A'..=b'Z', ..]
            | [b'(', b'c' | b'i' | b'S' | b'V' | b'X' | b'U' | b'(' | b'd' | b'l', ..]
            | [0x1f, 0x8b, 8, ..]
            | [0x04, 0x08, ..]
            | [0xac, 0xed, 0x00, 0x05, ..]
            | [0x00, 0x01, 0x00, 0x00, 0x00, 0xff, ..]
    ) || zlib(head)
        || node::magic(head)
}

/// A zlib stream's header (deflate, a valid check).
fn zlib(b: &[u8]) -> bool {
    matches!(b, [cmf, flg, ..] if cmf & 0x0f == 8 && cmf >> 4 <= 7
        && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

/// The format of `b` read: its object when it runs code. `outer`: the
/// bytes were not inflated yet (a compressed stream is read once).
fn classify(b: &[u8], outer: bool) -> Option<Found> {
    let found = |rule, what: &str| {
        Some(Found {
            rule,
            what: what.to_owned(),
        })
    };
    // A compressed stream is inflated once; bytes that only look like
    // one (`(S` is a zlib header too) are read as they are.
    if outer {
        let inflated = match b {
            [0x1f, 0x8b, 8, ..] => inflate(flate2::read::GzDecoder::new(b)),
            _ if zlib(b) => inflate(flate2::read::ZlibDecoder::new(b)),
            _ => None,
        };
        if let Some(inner) = inflated {
            return classify(&inner, false);
        }
    }
    match b {
        [0xac, 0xed, 0x00, 0x05, ..] => found("java-serialized-encoded", "java stream"),
        [0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, ..] => {
            found("dotnet-serialized-encoded", "BinaryFormatter stream")
        }
        [0x04, 0x08, ..] => {
            let mut r = Marshal {
                b,
                at: 2,
                class: None,
            };
            // A cut stream still names the classes read before its end.
            let _ = r.value(0);
            let class = r.class?;
            found("ruby-marshal-object", &String::from_utf8_lossy(&class))
        }
        _ if node::magic(b) => node::function(b)
            .then(|| found("node-serialize-encoded", "_$$ND_FUNC$$_"))
            .flatten(),
        _ => pickle_call(b).map(|what| Found {
            rule: "python-pickle-encoded",
            what,
        }),
    }
}

/// `r` read to its end or [`INFLATED_MAX`] bytes; None when not one
/// byte inflates.
fn inflate(r: impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    // An error part way (a cut or corrupt stream) keeps what inflated.
    let _ = r.take(INFLATED_MAX as u64).read_to_end(&mut out);
    (!out.is_empty()).then_some(out)
}

/// Base64 in either alphabet: line breaks skipped, a space read as `+`,
/// padding only at the end. None on any other byte.
fn decode(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len() / 4 * 3 + 3);
    decode_with(v, |b| out.push(b))?;
    Some(out)
}

/// [`decode`], each byte handed to `push` as it is decoded.
fn decode_with(v: &[u8], mut push: impl FnMut(u8)) -> Option<()> {
    let (mut acc, mut bits, mut pad) = (0u32, 0u32, false);
    for &c in v {
        let s = match c {
            b' ' => 62,
            b'\r' | b'\n' => continue,
            b'=' => {
                pad = true;
                continue;
            }
            _ => sextet(c)?,
        };
        if pad {
            return None;
        }
        acc = (acc << 6 | s) & 0xff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            push((acc >> bits) as u8);
        }
    }
    Some(())
}

/// The name a pickle imports and calls (`os.system`), when it is a whole
/// pickle (its opcodes valid up to a `STOP`) that does both: `GLOBAL`,
/// `STACK_GLOBAL`, `INST` or an extension code, then `REDUCE`, `OBJ`,
/// `NEWOBJ` or `INST`. Data alone (dicts, lists, strings) is none.
pub fn pickle_call(b: &[u8]) -> Option<String> {
    let mut i = 0;
    let (mut import, mut call) = (None::<String>, false);
    // The last two strings pushed: `STACK_GLOBAL` takes its names there.
    let mut strings: [&[u8]; 2] = [b"", b""];
    let line = |i: usize| -> Option<(&[u8], usize)> {
        let n = memchr::memchr(b'\n', b.get(i..)?)?;
        Some((&b[i..i + n], i + n + 1))
    };
    let sized = |i: usize, w: usize| -> Option<(&[u8], usize)> {
        let len = b.get(i..i + w)?.iter().rev().fold(0usize, |a, &x| {
            a.saturating_mul(256).saturating_add(usize::from(x))
        });
        let end = (i + w).checked_add(len)?;
        Some((b.get(i + w..end)?, end))
    };
    loop {
        let op = *b.get(i)?;
        i += 1;
        let mut text: Option<&[u8]> = None;
        i = match op {
            b'.' => break,
            b'('
            | b'0'
            | b'1'
            | b'2'
            | b'N'
            | b'Q'
            | b'a'
            | b'b'
            | b'd'
            | b'}'
            | b'e'
            | b'l'
            | b']'
            | b's'
            | b't'
            | b')'
            | b'u'
            | 0x85..=0x89
            | 0x8f..=0x91
            | 0x94
            | 0x97
            | 0x98 => i,
            b'R' | b'o' | 0x81 | 0x92 => {
                call = true;
                i
            }
            0x93 => {
                import = Some(names(strings[0], strings[1]));
                i
            }
            b'c' | b'i' => {
                let (module, next) = line(i)?;
                let (name, next) = line(next)?;
                import = Some(names(module, name));
                call |= op == b'i';
                next
            }
            b'F' | b'I' | b'L' | b'P' | b'g' | b'p' => line(i)?.1,
            b'S' | b'V' => {
                let (t, next) = line(i)?;
                text = Some(t.strip_prefix(b"'").unwrap_or(t));
                text = text.map(|t| t.strip_suffix(b"'").unwrap_or(t));
                next
            }
            b'K' | b'h' | b'q' | 0x80 => i + 1,
            0x82 => {
                import = Some("extension".into());
                i + 1
            }
            0x83 => {
                import = Some("extension".into());
                i + 2
            }
            0x84 => {
                import = Some("extension".into());
                i + 4
            }
            b'M' => i + 2,
            b'J' | b'j' | b'r' => i + 4,
            b'G' | 0x95 => i + 8,
            b'U' | b'C' | 0x8a | 0x8c => {
                let (t, next) = sized(i, 1)?;
                text = Some(t);
                next
            }
            b'T' | b'X' | b'B' | 0x8b => {
                let (t, next) = sized(i, 4)?;
                text = Some(t);
                next
            }
            0x8d | 0x8e | 0x96 => sized(i, 8)?.1,
            _ => return None,
        };
        if let Some(t) = text {
            strings = [strings[1], t];
        }
        if i > b.len() {
            return None;
        }
    }
    import.filter(|_| call)
}

/// `module.name` of an import, lossy and short.
fn names(module: &[u8], name: &[u8]) -> String {
    let cut = |s: &[u8]| String::from_utf8_lossy(&s[..s.len().min(40)]).into_owned();
    format!("{}.{}", cut(module), cut(name))
}

/// Classes of plain data a Rails session or cache holds.
const RUBY_DATA: &[&[u8]] = &[
    b"ActionDispatch::Flash::FlashHash",
    b"ActionController::Flash::FlashHash",
    b"ActiveSupport::HashWithIndifferentAccess",
    b"ActiveSupport::SafeBuffer",
    b"ActiveSupport::TimeWithZone",
    b"ActiveSupport::TimeZone",
    b"ActiveSupport::Duration",
    b"BigDecimal",
    b"Complex",
    b"Date",
    b"DateTime",
    b"Encoding",
    b"Range",
    b"Rational",
    b"Set",
    b"Time",
];

/// A reader of Ruby's Marshal format (version 4.8) that notes the first
/// class an object is built of that is no plain data class.
struct Marshal<'a> {
    b: &'a [u8],
    at: usize,
    class: Option<Vec<u8>>,
}

impl Marshal<'_> {
    fn byte(&mut self) -> Option<u8> {
        let c = *self.b.get(self.at)?;
        self.at += 1;
        Some(c)
    }

    /// A packed integer.
    fn int(&mut self) -> Option<i64> {
        let c = self.byte()? as i8;
        Some(match c {
            0 => 0,
            5..=127 => i64::from(c) - 5,
            -128..=-5 => i64::from(c) + 5,
            1..=4 => (0..c).try_fold(0i64, |a, k| Some(a | i64::from(self.byte()?) << (8 * k)))?,
            _ => {
                let n = -c;
                let v =
                    (0..n).try_fold(0i64, |a, k| Some(a | i64::from(self.byte()?) << (8 * k)))?;
                v - (1i64 << (8 * n))
            }
        })
    }

    /// A count of items: each takes a byte at least.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.int()?).ok()?;
        (n <= self.b.len() - self.at).then_some(n)
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let n = self.count()?;
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }

    /// A symbol or a link to one; a new symbol's name.
    fn symbol(&mut self) -> Option<Option<Vec<u8>>> {
        match self.byte()? {
            b':' => Some(Some(self.bytes()?.to_vec())),
            b';' => self.int().map(|_| None),
            _ => None,
        }
    }

    /// A class named by a symbol: noted when it is no data class.
    fn class_symbol(&mut self) -> Option<()> {
        if let Some(name) = self.symbol()? {
            self.note(name);
        }
        Some(())
    }

    /// Notes a class name (a constant's: `Gem::Requirement`) unless it
    /// is a data class.
    fn note(&mut self, name: Vec<u8>) {
        let constant = name.first().is_some_and(u8::is_ascii_uppercase)
            && name
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':');
        if self.class.is_none() && constant && !RUBY_DATA.contains(&name.as_slice()) {
            self.class = Some(name);
        }
    }

    fn pairs(&mut self, depth: usize) -> Option<()> {
        for _ in 0..self.count()? {
            self.value(depth)?;
            self.value(depth)?;
        }
        Some(())
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > DEPTH_MAX {
            return None;
        }
        let d = depth + 1;
        match self.byte()? {
            b'0' | b'T' | b'F' => {}
            b'i' | b'@' | b';' => {
                self.int()?;
            }
            b':' | b'"' | b'f' => {
                self.bytes()?;
            }
            b'l' => {
                self.byte()?;
                let shorts = self.count()?;
                let end = self.at.checked_add(shorts.checked_mul(2)?)?;
                self.b.get(..end)?;
                self.at = end;
            }
            b'/' => {
                self.bytes()?;
                self.byte()?;
            }
            b'I' => {
                self.value(d)?;
                self.pairs(d)?;
            }
            b'[' => {
                for _ in 0..self.count()? {
                    self.value(d)?;
                }
            }
            b'{' => self.pairs(d)?,
            b'}' => {
                self.pairs(d)?;
                self.value(d)?;
            }
            b'o' | b'S' => {
                self.class_symbol()?;
                self.pairs(d)?;
            }
            b'u' => {
                self.class_symbol()?;
                self.bytes()?;
            }
            b'U' | b'C' | b'e' | b'd' => {
                self.class_symbol()?;
                self.value(d)?;
            }
            b'c' | b'm' | b'M' => {
                let name = self.bytes()?.to_vec();
                self.note(name);
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(b).unwrap();
        w.finish().unwrap()
    }

    fn rule(v: &str) -> Option<&'static str> {
        encoded(v.as_bytes()).map(|f| f.rule)
    }

    /// `pickle.dumps(os.system-calling object, protocol=4)` and friends.
    const PICKLE_4: &[u8] = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
    const PICKLE_2: &[u8] =
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
    const PICKLE_0_INST: &[u8] = b"(S'id'\nios\nsystem\np0\n.";
    /// `pickle.dumps({"user": "bob", "ids": [1, 2]}, protocol=4)`.
    const PICKLE_DATA: &[u8] = b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04user\x94\x8c\x03bob\x94\x8c\x03ids\x94]\x94(K\x01K\x02eu.";

    #[test]
    fn pickles_that_import_and_call_are_found() {
        assert_eq!(
            rule("Y29zCnN5c3RlbQooUydpZCcKdFIu"),
            Some("python-pickle-encoded")
        );
        for p in [PICKLE_4, PICKLE_2, PICKLE_0_INST] {
            let f = encoded(b64(p).as_bytes()).unwrap_or_else(|| panic!("{p:?}"));
            assert!(f.what.ends_with(".system"), "{f:?}");
        }
        assert_eq!(pickle_call(PICKLE_4).as_deref(), Some("posix.system"));
        // URL-safe, unpadded, a form's `+` read as a space, quoted.
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(PICKLE_4);
        assert!(encoded(url.as_bytes()).is_some());
        assert!(encoded(format!("\"{}\"", b64(PICKLE_2).replace('+', " ")).as_bytes()).is_some());
        assert_eq!(encoded(b64(PICKLE_DATA).as_bytes()), None);
        assert_eq!(pickle_call(PICKLE_DATA), None);
        // Cut before its STOP: no pickle.
        assert_eq!(pickle_call(&PICKLE_4[..PICKLE_4.len() - 1]), None);
    }

    #[test]
    fn compressed_java_and_other_platforms_are_found() {
        let java = b"\xac\xed\x00\x05sr\x00\x11java.util.HashMap";
        assert_eq!(rule(&b64(&gzip(java))), Some("java-serialized-encoded"));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(PICKLE_0_INST).unwrap();
        assert_eq!(
            rule(&b64(&z.finish().unwrap())),
            Some("python-pickle-encoded")
        );
        assert_eq!(
            rule("AAEAAAD_____AQAAAAAAAAAMAgAAAF5NaWNyb3NvZnQ"),
            Some("dotnet-serialized-encoded")
        );
        // `Marshal.dump(Gem::Requirement.allocate)`-style, and a nested one.
        let f = encoded(b"BAhvOhVHZW06OlJlcXVpcmVtZW50BjoQQHJlcXVpcmVtZW50cw==");
        assert_eq!(f.unwrap().what, "Gem::Requirement");
        let nested = b"\x04\x08[\x07o:\x08Set\x06:\n@hash}\x00Fo:\x0dNet::FTP\x00";
        assert_eq!(encoded(b64(nested).as_bytes()).unwrap().what, "Net::FTP");
        // A gzipped text file, and a gzip of nothing known.
        assert_eq!(rule(&b64(&gzip(b"hello world, hello world"))), None);
    }

    #[test]
    fn data_images_and_tokens_are_none() {
        // A Rails session hash: strings, symbols, its flash.
        let session = b"\x04\x08{\x07I\"\x0fsession_id\x06:\x06ETI\"%0123456789abcdef0123456789abcdef\x06;\x00TI\"\nflash\x06;\x00To:%ActionDispatch::Flash::FlashHash\x07:\n@usedo:\x08Set\x06:\n@hash{\x00:\x0c@closedF";
        assert_eq!(encoded(b64(session).as_bytes()), None);
        for v in [
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
            "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.abc",
            "YWxpY2VAZXhhbXBsZS5jb20=",
            "H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==",
            "categorization",
            "BAh7BkkiCGZvbwY6BkVUSSIIYmFyBjsAVA==",
        ] {
            assert_eq!(encoded(v.as_bytes()), None, "{v}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = encoded(&b);
            let _ = pickle_call(&b);
            let _ = classify(&b, true);
        }

        #[test]
        fn never_panics_on_base64_of_any_bytes_behind_a_magic(
            magic in prop::sample::select(vec![
                &b"\x80\x04"[..], b"cos\n", b"(S", b"\x1f\x8b\x08", b"\x04\x08",
                b"\xac\xed\x00\x05", b"\x78\x9c", b"\x00\x01\x00\x00\x00\xff\xff\xff\xff",
            ]),
            tail in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut b = magic.to_vec();
            b.extend(tail);
            let _ = encoded(b64(&b).as_bytes());
        }

        #[test]
        fn inflation_is_bounded(n in 0usize..300_000) {
            let out = inflate(flate2::read::GzDecoder::new(&gzip(&vec![b'a'; n])[..]));
            prop_assert!(out.map_or(0, |o| o.len()) <= INFLATED_MAX);
        }

        #[test]
        fn decoding_is_standard_base64(b in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assert_eq!(decode(b64(&b).as_bytes()), Some(b));
        }
    }
}
