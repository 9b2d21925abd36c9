//! Normalization of a value before matching: repeated URL decoding (with
//! `%uXXXX`), overlong and full-width UTF-8, HTML entities, JS and CSS
//! escapes, null bytes; then case and whitespace folding, and views for SQL
//! (comments removed) and shells (quoting tricks removed).
//!
//! Every view is built in time linear in the input.

use crate::http::target::hex_val;

/// URL-decoding rounds at most (`%25252e` needs three).
const MAX_URL_ROUNDS: usize = 3;

/// Encoding tricks seen while decoding a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// A `%` not followed by two hex digits.
    pub invalid_percent: bool,
    /// Overlong UTF-8 that decodes to a character with a meaning (`/ . \ < '`...).
    pub overlong_meta: bool,
    /// Any other overlong UTF-8 sequence.
    pub overlong: bool,
    /// `%uXXXX` encoding an ASCII character.
    pub percent_u_ascii: bool,
    /// Full-width forms of ASCII characters.
    pub fullwidth: bool,
    /// A NUL byte.
    pub null_byte: bool,
    /// Other control characters.
    pub control: bool,
    /// Still URL-encoded after one round of decoding.
    pub multi_encoded: bool,
}

/// The views of one value.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// Fully decoded, case kept.
    pub dec: Vec<u8>,
    /// `dec` lowercased, runs of whitespace and control characters folded to
    /// one space (or one `\n` when they held a line break).
    pub low: Vec<u8>,
    sql: Option<Vec<u8>>,
    cmd: Option<Vec<u8>>,
    /// Encoding tricks seen.
    pub flags: Flags,
}

impl Normalized {
    /// Normalizes a raw value; `plus` turns `+` into a space (query strings
    /// and forms).
    pub fn new(raw: &[u8], plus: bool) -> Normalized {
        let mut flags = Flags::default();
        let dec = decode(raw, plus, &mut flags);
        let low = fold(&dec);
        let sql = has_pair(&low, b'/', b'*').then(|| strip_sql_comments(&low));
        let cmd = needs_shell_view(&low).then(|| shell_view(&low));
        Normalized {
            dec,
            low,
            sql,
            cmd,
            flags,
        }
    }

    /// A value with nothing to decode (only `[A-Za-z0-9_.-]`).
    pub fn plain(raw: &[u8]) -> Normalized {
        Normalized {
            dec: raw.to_vec(),
            low: raw.to_ascii_lowercase(),
            sql: None,
            cmd: None,
            flags: Flags::default(),
        }
    }

    /// Whether the `Sql` view differs from `low`.
    pub fn has_sql_view(&self) -> bool {
        self.sql.is_some()
    }

    /// Whether the `Cmd` view differs from `low`.
    pub fn has_cmd_view(&self) -> bool {
        self.cmd.is_some()
    }

    /// `low` with SQL comments removed (`/*!50000select*/` keeps `select`).
    pub fn sql(&self) -> &[u8] {
        self.sql.as_deref().unwrap_or(&self.low)
    }

    /// `low` with shell quoting tricks removed (`c\a't'`, `$@`, `${IFS}`, `[e]`).
    pub fn cmd(&self) -> &[u8] {
        self.cmd.as_deref().unwrap_or(&self.low)
    }
}

/// Whether the two bytes `a b` follow each other somewhere in `s` (cheaper
/// than a substring search for such short needles).
pub fn has_pair(s: &[u8], a: u8, b: u8) -> bool {
    memchr::memchr_iter(a, s).any(|i| s.get(i + 1) == Some(&b))
}

/// A set of bytes as a 256-entry table, built at compile time
/// (`SET[usize::from(b)]` is one load per byte tested).
pub const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// Whether the shell view of a folded value differs from it: it holds
/// quoting, `$`, globs, braces, backticks or an empty `<()`.
fn needs_shell_view(low: &[u8]) -> bool {
    const SHELL: [bool; 256] = byte_set(b"\\'\"$^[{`");
    low.iter().any(|&b| SHELL[usize::from(b)])
        || memchr::memchr_iter(b'(', low)
            .any(|i| i > 0 && matches!(low[i - 1], b'<' | b'>') && low.get(i + 1) == Some(&b')'))
}

/// Whether a value holds only characters no decoder or rule cares about.
pub fn is_plain(raw: &[u8]) -> bool {
    raw.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Whether bytes look like text: no NUL, few control characters (C0, or
/// C1 as UTF-8 `C2 80..9F`, or U+FFFD from invalid UTF-8).
pub fn is_text(b: &[u8]) -> bool {
    let sample = &b[..b.len().min(4096)];
    if sample.contains(&0) {
        return false;
    }
    let mut odd = 0usize;
    for (i, &c) in sample.iter().enumerate() {
        let c1 = c == 0xC2 && sample.get(i + 1).is_some_and(|n| (0x80..0xA0).contains(n));
        let replacement =
            c == 0xEF && sample.get(i + 1) == Some(&0xBF) && sample.get(i + 2) == Some(&0xBD);
        if (c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n')) || c1 || replacement {
            odd += 1;
        }
    }
    odd * 20 <= sample.len()
}

/// Shortest and longest values tried as base64.
const BASE64_MIN: usize = 12;
const BASE64_MAX: usize = 64 * 1024;

/// The text a base64 (standard or URL-safe) value decodes to, when it is
/// printable ASCII holding code punctuation (`(`, `;`, `$`, `<`...). Such
/// text is no base64 itself, so decoding never nests.
pub fn base64_text(v: &[u8]) -> Option<String> {
    let v = v.trim_ascii();
    let body = v
        .strip_suffix(b"==")
        .or_else(|| v.strip_suffix(b"="))
        .unwrap_or(v);
    if body.len() < BASE64_MIN || v.len() > BASE64_MAX || body.len() % 4 == 1 {
        return None;
    }
    let sextet = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * (4 - chunk.len() as u32);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    let printable = out
        .iter()
        .all(|&b| (0x20..0x7F).contains(&b) || matches!(b, b'\t' | b'\r' | b'\n'));
    let code = out.iter().any(|b| {
        matches!(
            b,
            b'(' | b')' | b';' | b'{' | b'}' | b'$' | b'<' | b'>' | b'|' | b'`' | b'\'' | b'"'
        )
    });
    (printable && code)
        .then(|| String::from_utf8(out).ok())
        .flatten()
}

/// All decoders in order: URL (repeated), UTF-8 fixes, entities, escapes, NUL.
pub fn decode(raw: &[u8], plus: bool, flags: &mut Flags) -> Vec<u8> {
    let mut cur = url_round(raw, plus, true, flags).unwrap_or_else(|| raw.to_vec());
    for _ in 1..MAX_URL_ROUNDS {
        match url_round(&cur, false, false, flags) {
            Some(next) => {
                flags.multi_encoded = true;
                cur = next;
            }
            None => break,
        }
    }
    let mut cur = if cur.is_ascii() {
        if cur
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n' | 0) || b == 0x7f)
        {
            flags.control = true;
        }
        cur
    } else {
        strip_invisible(fix_utf8(&cur, flags))
    };
    for _ in 0..2 {
        if memchr::memchr(b'&', &cur).is_none() {
            break;
        }
        match html_entities(&cur) {
            Some(next) => cur = next,
            None => break,
        }
    }
    if memchr::memchr(b'\\', &cur).is_some() {
        cur = escapes(&cur);
    }
    if memchr::memchr(0, &cur).is_some() {
        flags.null_byte = true;
        cur.retain(|&b| b != 0);
    }
    cur
}

/// Removes characters that render as nothing and that parsers skip or
/// tolerate: the byte-order mark, zero-width spaces and joiners, the word
/// joiner and invisible operators, the soft hyphen (`java\u{feff}script:`,
/// `sel\u{200b}ect`).
fn strip_invisible(s: Vec<u8>) -> Vec<u8> {
    let invisible = |b: &[u8]| -> usize {
        match b {
            [0xEF, 0xBB, 0xBF, ..] => 3,
            [0xE2, 0x80, 0x8B..=0x8F, ..] => 3,
            [0xE2, 0x81, 0xA0..=0xA4, ..] => 3,
            [0xC2, 0xAD, ..] => 2,
            _ => 0,
        }
    };
    if !s
        .windows(2)
        .any(|w| matches!(w, [0xEF, 0xBB] | [0xE2, 0x80] | [0xE2, 0x81] | [0xC2, 0xAD]))
    {
        return s;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match invisible(&s[i..]) {
            0 => {
                out.push(s[i]);
                i += 1;
            }
            n => i += n,
        }
    }
    out
}

/// One round of URL decoding; None when nothing was decoded.
fn url_round(s: &[u8], plus: bool, first: bool, flags: &mut Flags) -> Option<Vec<u8>> {
    let special = |c: &u8| *c == b'%' || (plus && *c == b'+');
    if !plus && !has_escape(s) {
        if first && memchr::memchr(b'%', s).is_some() {
            flags.invalid_percent = true;
        }
        return None;
    }
    let mut i = s.iter().position(special)?;
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..i]);
    let mut changed = false;
    while i < s.len() {
        let b = s[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|&c| hex_val(c)),
                s.get(i + 2).and_then(|&c| hex_val(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                changed = true;
            } else if let Some(cp) = matches!(s.get(i + 1), Some(b'u' | b'U'))
                .then(|| s.get(i + 2..i + 6).and_then(hex4))
                .flatten()
            {
                push_percent_u(cp, &mut out, flags);
                i += 6;
                changed = true;
            } else {
                if first {
                    flags.invalid_percent = true;
                }
                out.push(b);
                i += 1;
            }
        } else if plus && b == b'+' {
            out.push(b' ');
            i += 1;
            changed = true;
        } else {
            out.push(b);
            i += 1;
        }
        // Copy the run up to the next special byte at once.
        let next = s[i..].iter().position(special).map_or(s.len(), |j| i + j);
        out.extend_from_slice(&s[i..next]);
        i = next;
    }
    changed.then_some(out)
}

/// Whether `s` holds at least one valid `%XX` or `%uXXXX` escape.
fn has_escape(s: &[u8]) -> bool {
    memchr::memchr_iter(b'%', s).any(|i| {
        let hex = |k: usize| s.get(i + k).is_some_and(u8::is_ascii_hexdigit);
        (hex(1) && hex(2)) || (matches!(s.get(i + 1), Some(b'u' | b'U')) && (2..6).all(hex))
    })
}

fn hex4(h: &[u8]) -> Option<u32> {
    h.iter()
        .try_fold(0u32, |acc, &c| hex_val(c).map(|v| acc << 4 | u32::from(v)))
}

fn push_percent_u(cp: u32, out: &mut Vec<u8>, flags: &mut Flags) {
    if cp < 0x80 {
        flags.percent_u_ascii = true;
    }
    if (0xFF01..=0xFF5E).contains(&cp) {
        flags.fullwidth = true;
    }
    push_char(cp, out);
}

/// Appends a code point as UTF-8 (invalid ones as U+FFFD).
fn push_char(cp: u32, out: &mut Vec<u8>) {
    let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Whether an ASCII byte means something to an interpreter.
fn is_meta(b: u8) -> bool {
    matches!(
        b,
        b'/' | b'\\'
            | b'.'
            | b'<'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b';'
            | b'|'
            | b'&'
            | b':'
            | b'('
            | b')'
            | b'='
            | b'`'
    )
}

/// Decodes overlong UTF-8 to ASCII, maps full-width ASCII forms and
/// typographic quotes to ASCII, and notes control characters.
fn fix_utf8(s: &[u8], flags: &mut Flags) -> Vec<u8> {
    if s.is_ascii() {
        if s.iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n' | 0) || b == 0x7f)
        {
            flags.control = true;
        }
        return s.to_vec();
    }
    let cont = |i: usize| s.get(i).is_some_and(|&b| (0x80..0xC0).contains(&b));
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        // Overlong two-byte form of an ASCII character.
        if (b == 0xC0 || b == 0xC1) && cont(i + 1) {
            let c = ((b & 0x1F) << 6) | (s[i + 1] & 0x3F);
            note_overlong(c, flags);
            out.push(c);
            i += 2;
            continue;
        }
        // Overlong three-byte form (E0 80..9F xx).
        if b == 0xE0 && s.get(i + 1).is_some_and(|&c| (0x80..0xA0).contains(&c)) && cont(i + 2) {
            let cp = (u32::from(s[i + 1] & 0x3F) << 6) | u32::from(s[i + 2] & 0x3F);
            if cp < 0x80 {
                note_overlong(cp as u8, flags);
                out.push(cp as u8);
            } else {
                flags.overlong = true;
                push_char(cp, &mut out);
            }
            i += 3;
            continue;
        }
        // Full-width ASCII forms U+FF01..U+FF5E.
        if b == 0xEF && cont(i + 2) {
            let cp = match s.get(i + 1) {
                Some(0xBC) => Some(0xFF00 + u32::from(s[i + 2] - 0x80)),
                Some(0xBD) => Some(0xFF40 + u32::from(s[i + 2] - 0x80)),
                _ => None,
            };
            if let Some(cp) = cp.filter(|cp| (0xFF01..=0xFF5E).contains(cp)) {
                // CJK text uses full-width punctuation (`，`, `：`): only
                // the forms of meta characters are an evasion.
                let ascii = (cp - 0xFEE0) as u8;
                flags.fullwidth |=
                    is_meta(ascii) && !matches!(ascii, b',' | b':' | b'(' | b')' | b'.');
                out.push(ascii);
                i += 3;
                continue;
            }
        }
        // Enclosed alphanumerics: circled digits and letters (`①②⑦`, `ⓛ`).
        if b == 0xE2 && cont(i + 1) && cont(i + 2) {
            let cp = 0x2000 + (u32::from(s[i + 1] & 0x3F) << 6) + u32::from(s[i + 2] & 0x3F);
            let ascii = match cp {
                0x2460..=0x2468 => Some(b'1' + (cp - 0x2460) as u8),
                0x24EA => Some(b'0'),
                0x24B6..=0x24CF => Some(b'a' + (cp - 0x24B6) as u8),
                0x24D0..=0x24E9 => Some(b'a' + (cp - 0x24D0) as u8),
                _ => None,
            };
            if let Some(a) = ascii {
                flags.fullwidth = true;
                out.push(a);
                i += 3;
                continue;
            }
        }
        // The acute accent, used as a quote (`1´ or ´1´=´1`).
        if b == 0xC2 && s.get(i + 1) == Some(&0xB4) {
            out.push(b'\'');
            i += 2;
            continue;
        }
        // U+560A and U+560D: servers that keep the low byte of a code point
        // read them as LF and CR (header injection past UTF-8 filters).
        if b == 0xE5 && s.get(i + 1) == Some(&0x98) && matches!(s.get(i + 2), Some(0x8A | 0x8D)) {
            out.push(if s[i + 2] == 0x8A { b'\n' } else { b'\r' });
            i += 3;
            continue;
        }
        // Typographic quotes.
        if b == 0xE2 && s.get(i + 1) == Some(&0x80) {
            match s.get(i + 2) {
                Some(0x98..=0x9B) => {
                    out.push(b'\'');
                    i += 3;
                    continue;
                }
                Some(0x9C..=0x9F) => {
                    out.push(b'"');
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        if b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n' | 0) || b == 0x7f {
            flags.control = true;
        }
        out.push(b);
        i += 1;
    }
    out
}

fn note_overlong(c: u8, flags: &mut Flags) {
    if is_meta(c) {
        flags.overlong_meta = true;
    } else {
        flags.overlong = true;
    }
}

/// Named entities worth knowing (those that spell code).
const ENTITIES: &[(&[u8], u32)] = &[
    (b"lt", 0x3C),
    (b"gt", 0x3E),
    (b"amp", 0x26),
    (b"quot", 0x22),
    (b"apos", 0x27),
    (b"nbsp", 0x20),
    (b"tab", 0x09),
    (b"newline", 0x0A),
    (b"colon", 0x3A),
    (b"lpar", 0x28),
    (b"rpar", 0x29),
    (b"sol", 0x2F),
    (b"bsol", 0x5C),
    (b"lcub", 0x7B),
    (b"rcub", 0x7D),
    (b"lbrace", 0x7B),
    (b"rbrace", 0x7D),
    (b"lsqb", 0x5B),
    (b"rsqb", 0x5D),
    (b"lbrack", 0x5B),
    (b"rbrack", 0x5D),
    (b"semi", 0x3B),
    (b"comma", 0x2C),
    (b"period", 0x2E),
    (b"excl", 0x21),
    (b"quest", 0x3F),
    (b"num", 0x23),
    (b"dollar", 0x24),
    (b"percnt", 0x25),
    (b"equals", 0x3D),
    (b"plus", 0x2B),
    (b"grave", 0x60),
    (b"hat", 0x5E),
    (b"ast", 0x2A),
    (b"vert", 0x7C),
    (b"verbar", 0x7C),
    (b"lowbar", 0x5F),
    (b"hyphen", 0x2D),
    (b"commat", 0x40),
];

/// Decodes `&lt;`, `&#60;`, `&#x3c;` (with or without `;`, any number of
/// leading zeros); None when nothing was decoded.
fn html_entities(s: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for amp in memchr::memchr_iter(b'&', s) {
        if amp < copied {
            continue;
        }
        let Some((cp, len)) = entity_at(&s[amp + 1..]) else {
            continue;
        };
        let o = out.get_or_insert_with(|| Vec::with_capacity(s.len()));
        o.extend_from_slice(&s[copied..amp]);
        push_char(cp, o);
        copied = amp + 1 + len;
    }
    let mut o = out?;
    o.extend_from_slice(&s[copied..]);
    Some(o)
}

/// The code point and length of an entity body after `&`.
fn entity_at(s: &[u8]) -> Option<(u32, usize)> {
    if s.first() == Some(&b'#') {
        let (hex, start) = match s.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let mut j = start;
        let mut cp: u32 = 0;
        while let Some(&c) = s.get(j) {
            let d = if hex {
                hex_val(c).map(u32::from)
            } else {
                c.is_ascii_digit().then(|| u32::from(c - b'0'))
            };
            let Some(d) = d else { break };
            cp = cp
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(d)
                .min(0x11_0000);
            j += 1;
        }
        if j == start {
            return None;
        }
        if s.get(j) == Some(&b';') {
            j += 1;
        }
        return Some((cp, j));
    }
    let name_len = s
        .iter()
        .take(8)
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let name = &s[..name_len];
    let &(_, cp) = ENTITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    if s.get(name_len) == Some(&b';') {
        Some((cp, name_len + 1))
    } else if matches!(
        name.to_ascii_lowercase().as_slice(),
        b"lt" | b"gt" | b"amp" | b"quot"
    ) {
        Some((cp, name_len))
    } else {
        None
    }
}

/// Decodes JS escapes (`\x3c`, `\u003c`, `\u{3c}`) and CSS escapes (`\3c `)
/// that yield printable ASCII. Other backslashes stay.
fn escapes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        match escape_at(&s[i + 1..]) {
            Some((cp, len)) => {
                push_char(cp, &mut out);
                i += 1 + len;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out
}

fn escape_at(s: &[u8]) -> Option<(u32, usize)> {
    match s.first()? {
        b'x' => {
            let cp = (u32::from(hex_val(*s.get(1)?)?) << 4) | u32::from(hex_val(*s.get(2)?)?);
            Some((cp, 3))
        }
        b'u' if s.get(1) == Some(&b'{') => {
            let end = s.iter().take(10).position(|&c| c == b'}')?;
            let cp = s[2..end]
                .iter()
                .try_fold(0u32, |a, &c| hex_val(c).map(|v| (a << 4) | u32::from(v)))?;
            (end > 2).then_some((cp, end + 1))
        }
        b'u' => Some((hex4(s.get(1..5)?)?, 5)),
        c if c.is_ascii_hexdigit() => {
            let n = s
                .iter()
                .take(6)
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            let cp = s[..n]
                .iter()
                .fold(0u32, |a, &c| (a << 4) | u32::from(hex_val(c).unwrap_or(0)));
            if !(0x20..0x7F).contains(&cp) || n < 2 {
                return None;
            }
            let len = if s.get(n) == Some(&b' ') { n + 1 } else { n };
            Some((cp, len))
        }
        _ => None,
    }
}

/// Lowercases ASCII and folds runs of whitespace/control characters (and
/// non-breaking spaces) into one space, or one `\n` if the run had a break.
pub fn fold(s: &[u8]) -> Vec<u8> {
    // Most values have single spaces only: lowercasing is all there is.
    let mut special = false;
    let mut prev_space = false;
    for &b in s {
        let space = b == b' ';
        special |= (b < 0x20) | (b == 0x7f) | (b == 0xC2) | (space & prev_space);
        prev_space = space;
    }
    if !special {
        return s.to_ascii_lowercase();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        // Copy the run up to the next whitespace, control or NBSP lead byte
        // at once, then lowercase it in place.
        let run = s[i..]
            .iter()
            .position(|&b| b <= 0x20 || b == 0x7f || b == 0xC2)
            .map_or(s.len(), |j| i + j);
        if run > i {
            let start = out.len();
            out.extend_from_slice(&s[i..run]);
            out[start..].make_ascii_lowercase();
            i = run;
            continue;
        }
        if s[i] == 0xC2 && s.get(i + 1) != Some(&0xA0) {
            out.push(0xC2);
            i += 1;
            continue;
        }
        let mut newline = false;
        while i < s.len() {
            let c = s[i];
            if c <= 0x20 || c == 0x7f {
                newline |= c == b'\n' || c == b'\r';
                i += 1;
            } else if c == 0xC2 && s.get(i + 1) == Some(&0xA0) {
                i += 2;
            } else {
                break;
            }
        }
        out.push(if newline { b'\n' } else { b' ' });
    }
    out
}

/// Replaces SQL block comments by a space; MySQL `/*!50000 ... */` keeps
/// its content.
fn strip_sql_comments(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
            if s.get(i + 2) == Some(&b'!') {
                i += 3;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(b' ');
                continue;
            }
            match memchr::memmem::find(&s[i + 2..], b"*/") {
                Some(j) => i += 2 + j + 2,
                None => i = s.len(),
            }
            out.push(b' ');
            continue;
        }
        if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
            out.push(b' ');
            i += 2;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Removes what shells ignore, in two passes. First quoting: backslashes,
/// quotes, `^`, empty backticks, `$'..'`, special parameters (`$@`, `$*`,
/// `$1`, `$$`...), `${IFS}` (as a space), empty process substitutions
/// `<()`, and variables that are most likely unset (`c$u\at`, `$x cmd`).
/// Then expansion: one-letter globs `[e]` and brace lists `c{a,oun}t`.
fn shell_view(s: &[u8]) -> Vec<u8> {
    expand_shell(&unquote_shell(s))
}

/// Whether a byte can be part of a shell word next to a variable.
fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-')
}

/// Length of `$name` or `${name}` at the start of `s` (0 if none).
fn variable_len(s: &[u8]) -> usize {
    if s.get(1) == Some(&b'{') {
        let n = s[2..]
            .iter()
            .take(32)
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        if n > 0 && s.get(2 + n) == Some(&b'}') && !s[2].is_ascii_digit() {
            return n + 3;
        }
        return 0;
    }
    match s.get(1) {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
            1 + s[1..]
                .iter()
                .take(32)
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count()
        }
        _ => 0,
    }
}

/// The quoting pass of [`shell_view`].
fn unquote_shell(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut ticks = 0usize;
    while i < s.len() {
        let b = s[i];
        match b {
            b'\\' | b'\'' | b'"' | b'^' => i += 1,
            // An empty pair outside a substitution is nothing; inside one
            // it closes it and opens the next.
            b'`' if s.get(i + 1) == Some(&b'`') => {
                if ticks % 2 == 1 {
                    out.extend_from_slice(b"` `");
                    ticks += 2;
                }
                i += 2;
            }
            b'`' => {
                ticks += 1;
                out.push(b);
                i += 1;
            }
            b'<' | b'>' if s.get(i + 1) == Some(&b'(') && s.get(i + 2) == Some(&b')') => i += 3,
            b'$' => {
                let rest = &s[i + 1..];
                if rest.starts_with(b"{ifs") {
                    let end = memchr::memchr(b'}', rest).map_or(rest.len(), |j| j + 1);
                    out.push(b' ');
                    i += 1 + end;
                } else if rest.starts_with(b"ifs") {
                    out.push(b' ');
                    i += 4;
                    if s.get(i) == Some(&b'$') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        i += 2;
                    }
                } else if matches!(
                    rest.first(),
                    Some(b'@' | b'*' | b'0'..=b'9' | b'!' | b'-' | b'_' | b'#' | b'?' | b'$')
                ) {
                    i += 2;
                } else if matches!(rest.first(), Some(b'\'' | b'"')) {
                    i += 1;
                } else if rest.starts_with(b"()") {
                    i += 3;
                } else if rest.starts_with(b"{}") || rest.starts_with(b"{@}") {
                    i += if rest[1] == b'}' { 3 } else { 4 };
                } else {
                    let n = variable_len(&s[i..]);
                    let inside = out.last().is_some_and(|&c| word_byte(c));
                    let alone = n > 0
                        && out.last().is_none_or(|&c| {
                            matches!(c, b' ' | b';' | b'|' | b'&' | b'`' | b'(' | b'\n')
                        })
                        && s.get(i + n).is_some_and(|&c| c == b' ');
                    if n > 0 && (inside || alone) {
                        i += n;
                    } else {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Longest prefix or suffix glued to a brace list.
const BRACE_AFFIX: usize = 32;

/// The expansion pass of [`shell_view`].
fn expand_shell(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match b {
            // An HTML entity left undecoded (`&ensp;`) is not a separator.
            b'&' if entity_len(&s[i..]) > 0 => {
                out.push(b' ');
                i += entity_len(&s[i..]);
            }
            b'[' => match one_letter_class(&s[i..]) {
                Some((c, len)) => {
                    out.push(c);
                    i += len;
                }
                None => {
                    out.push(b);
                    i += 1;
                }
            },
            b'{' => match brace_list(&s[i..]) {
                Some(len) => {
                    let keep = out.len()
                        - out
                            .iter()
                            .rev()
                            .take(BRACE_AFFIX)
                            .take_while(|&&c| word_byte(c))
                            .count();
                    let prefix = out.split_off(keep);
                    let after = i + len;
                    let suffix_len = s[after..]
                        .iter()
                        .take(BRACE_AFFIX)
                        .take_while(|&&c| word_byte(c))
                        .count();
                    let suffix = &s[after..after + suffix_len];
                    let mut first = true;
                    for item in s[i + 1..i + len - 1].split(|&c| c == b',') {
                        if item.is_empty() && prefix.is_empty() && suffix.is_empty() {
                            continue;
                        }
                        if !first {
                            out.push(b' ');
                        }
                        first = false;
                        out.extend_from_slice(&prefix);
                        out.extend_from_slice(item);
                        out.extend_from_slice(suffix);
                    }
                    i = after + suffix_len;
                }
                None => {
                    out.push(b);
                    i += 1;
                }
            },
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Length of a named entity `&name;` at the start of `s` (0 if none).
fn entity_len(s: &[u8]) -> usize {
    let n = s
        .iter()
        .skip(1)
        .take(10)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if n >= 2 && s.get(n + 1) == Some(&b';') {
        n + 2
    } else {
        0
    }
}

/// `[e]` or `[e//]`: one letter (slashes ignored) in brackets.
fn one_letter_class(s: &[u8]) -> Option<(u8, usize)> {
    let end = s.iter().take(8).position(|&c| c == b']')?;
    let mut letters = s[1..end].iter().filter(|&&c| c != b'/');
    let c = *letters.next()?;
    (letters.next().is_none() && c.is_ascii_alphanumeric()).then_some((c, end + 1))
}

/// `{cat,/etc/passwd}`: the length of a brace list without spaces.
fn brace_list(s: &[u8]) -> Option<usize> {
    let end = s.iter().take(256).position(|&c| c == b'}')?;
    let inner = &s[1..end];
    let ok = inner.contains(&b',')
        && inner.iter().all(|&c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b',' | b'/' | b'.' | b'-' | b'_' | b'~' | b'*' | b'?')
        });
    ok.then_some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> (String, Flags) {
        let n = Normalized::new(s.as_bytes(), true);
        (String::from_utf8_lossy(&n.dec).into_owned(), n.flags)
    }

    #[test]
    fn decodes_url_repeatedly_and_percent_u() {
        assert_eq!(dec("%253Cscript%253E").0, "<script>");
        assert_eq!(dec("a+b").0, "a b");
        let (s, f) = dec("%u003cx%uFF0F");
        assert_eq!(s, "<x/");
        assert!(f.percent_u_ascii && f.fullwidth);
        assert!(dec("100%").1.invalid_percent);
    }

    #[test]
    fn decodes_overlong_utf8() {
        let (s, f) = dec("..%c0%af..%c0%afetc");
        assert_eq!(s, "../../etc");
        assert!(f.overlong_meta);
    }

    #[test]
    fn decodes_entities_and_escapes() {
        assert_eq!(dec("&lt;script&gt;").0, "<script>");
        assert_eq!(dec("&#x24;&#00000000000123;jndi").0, "${jndi");
        assert_eq!(dec("&amp;lt;").0, "<");
        assert_eq!(dec("\\x3cscript\\u003e").0, "<script>");
        assert_eq!(dec("\\6a\\61vascript").0, "javascript");
        assert_eq!(dec("c:\\windows\\dev").0, "c:\\windows\\dev");
        assert_eq!(dec("AT&T").0, "AT&T");
    }

    #[test]
    fn removes_nulls_and_folds() {
        let n = Normalized::new(b"SeL%00eCt\t\t X\r\nY", false);
        assert_eq!(n.low, b"select x\ny");
        assert!(n.flags.null_byte);
    }

    #[test]
    fn builds_sql_and_shell_views() {
        let n = Normalized::new(b"1/**/UNION/*!50000SELECT*/", false);
        assert_eq!(n.sql(), b"1 union select ");
        let n = Normalized::new(b";c\\a't' /e[t]c/pas\"\"swd${IFS}x", false);
        assert_eq!(n.cmd(), b";cat /etc/passwd x");
        let n = Normalized::new(b"{cat,/etc/passwd}", false);
        assert_eq!(n.cmd(), b"cat /etc/passwd");
        let n = Normalized::new(b"c{a,oun}t x;{l,-lh}s", false);
        assert_eq!(n.cmd(), b"cat count x;ls -lhs");
        let n = Normalized::new(b";cat$u /etc$u/pa$@ss$$wd;$a id {,$'whoami',}", false);
        assert_eq!(n.cmd(), b";cat /etc/passwd; id whoami");
        let n = Normalized::new(b"pi<()ng pi``ng", false);
        assert_eq!(n.cmd(), b"ping ping");
    }

    #[test]
    fn decodes_base64_code_only() {
        assert_eq!(
            base64_text(b"d2hpbGUodHJ1ZSk7Cg==").as_deref(),
            Some("while(true);\n")
        );
        assert_eq!(base64_text(b"aGVsbG8gd29ybGQgYWdhaW4="), None);
        assert_eq!(base64_text(b"not base64 at all!"), None);
        assert_eq!(base64_text(b"AAECAwQFBgcICQoL"), None);
    }

    #[test]
    fn never_panics_on_truncated_sequences() {
        for s in [
            &b"%"[..],
            b"%u12",
            b"\\u{",
            b"\\x4",
            b"&#",
            b"&#x",
            b"\xc0",
            b"\xef\xbc",
            b"\xe0\x80",
            b"[",
            b"{",
            b"$",
        ] {
            let _ = Normalized::new(s, true);
        }
    }
}
