//! Normalization of a value before matching: the pipeline that chains the
//! transformations of this folder (one per file) and the views it builds.
//!
//! [`decode`] runs, in this order: URL decoding (`url.rs`, with `%uXXXX`
//! from `percent_u.rs`), repeated while something decodes, at most
//! [`MAX_URL_ROUNDS`] times; on a value that is still not ASCII, the UTF-8
//! pass (`utf8.rs`: `overlong.rs` forms and `lookalike.rs` characters) and
//! the removal of invisible characters (`invisible.rs`); HTML entities
//! (`entities.rs`, two rounds); JS and CSS escapes (`escapes.rs`); NUL bytes
//! (`control.rs`, which also notes control characters). [`Normalized::new`]
//! then folds case and whitespace (`fold.rs`) and builds two more views when
//! they differ from the folded one: SQL without comments
//! (`sql_comments.rs`) and the shell view (`shell_quoting.rs`, then
//! `shell_expansion.rs`). `base64.rs` and `classify.rs` serve the engine.
//!
//! Every view is built in time linear in the input. No transformation
//! lengthens a value except the shell view's brace expansion, which copies
//! at most 64 bytes of prefix and suffix per list item: `dec` is never
//! longer than the raw value, `low` and the SQL view never longer than
//! `dec`, the shell view never longer than 100 times `low` (property tests
//! in `props.rs`).

mod base64;
mod classify;
mod control;
mod entities;
mod escapes;
mod fold;
mod invisible;
mod lookalike;
mod overlong;
mod percent_u;
mod shell_expansion;
mod shell_quoting;
mod sql_comments;
mod url;
mod utf8;

#[cfg(test)]
mod props;

pub use self::base64::{base64_text, data_uri_text, sextet};
pub use self::classify::{byte_set, has_pair, is_plain, is_text};
pub use self::fold::fold;

use std::borrow::Cow;

use crate::http::target::hex_val;

/// URL-decoding rounds at most (`%25252e` needs three).
const MAX_URL_ROUNDS: usize = 3;

/// HTML-entity rounds at most (`&amp;lt;` needs two).
const MAX_ENTITY_ROUNDS: usize = 2;

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
    /// A `\u` escape of an ASCII letter inside a word (`\u0061lert`).
    pub escaped_letter: bool,
}

/// The views of one value, borrowed from it where they equal it (most
/// values: nothing to decode, nothing to fold).
#[derive(Debug, Clone)]
pub struct Normalized<'a> {
    /// Fully decoded, case kept.
    pub dec: Cow<'a, [u8]>,
    /// `dec` lowercased, runs of whitespace and control characters folded to
    /// one space (or one `\n` when they held a line break).
    pub low: Cow<'a, [u8]>,
    sql: Option<Vec<u8>>,
    cmd: Option<Vec<u8>>,
    /// Encoding tricks seen.
    pub flags: Flags,
}

impl<'a> Normalized<'a> {
    /// Normalizes a raw value; `plus` turns `+` into a space (query strings
    /// and forms).
    pub fn new(raw: &'a [u8], plus: bool) -> Normalized<'a> {
        let mut flags = Flags::default();
        let dec = decode(raw, plus, &mut flags);
        let low = match &dec {
            Cow::Borrowed(d) if fold::is_folded(d) => Cow::Borrowed(*d),
            d => Cow::Owned(fold(d)),
        };
        let sql = has_pair(&low, b'/', b'*').then(|| sql_comments::strip(&low));
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
    pub fn plain(raw: &'a [u8]) -> Normalized<'a> {
        Normalized {
            dec: Cow::Borrowed(raw),
            low: if raw.iter().any(u8::is_ascii_uppercase) {
                Cow::Owned(raw.to_ascii_lowercase())
            } else {
                Cow::Borrowed(raw)
            },
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

/// All decoders in order: URL (repeated), UTF-8 fixes and invisible
/// characters, entities, escapes, NUL; notes what it saw in `flags`.
pub fn decode<'a>(raw: &'a [u8], plus: bool, flags: &mut Flags) -> Cow<'a, [u8]> {
    let mut cur = url::round(raw, plus, true, flags).map_or(Cow::Borrowed(raw), Cow::Owned);
    for _ in 1..MAX_URL_ROUNDS {
        match url::round(&cur, false, false, flags) {
            Some(next) => {
                flags.multi_encoded = true;
                cur = Cow::Owned(next);
            }
            None => break,
        }
    }
    flags.control |= control::has_control(&cur);
    if !cur.is_ascii() {
        cur = Cow::Owned(invisible::strip(utf8::fold_forms(&cur, flags)));
    }
    // Bytes past ASCII before entities and escapes, when the value has
    // either: those decoders add such bytes only for characters they
    // write, and never remove raw ones.
    // (Counted only past ASCII: most values have no such byte, and the
    // count is then 0 without a pass.)
    let high = |s: &[u8]| {
        if s.is_ascii() {
            0
        } else {
            s.iter().map(|&b| usize::from(b >> 7)).sum()
        }
    };
    let high_before = memchr::memchr2(b'&', b'\\', &cur).map(|_| high(&cur));
    for _ in 0..MAX_ENTITY_ROUNDS {
        if memchr::memchr(b'&', &cur).is_none() {
            break;
        }
        match entities::decode(&cur) {
            Some(next) => cur = Cow::Owned(next),
            None => break,
        }
    }
    if memchr::memchr(b'\\', &cur).is_some() {
        cur = Cow::Owned(escapes::decode(&cur, &mut flags.escaped_letter));
    }
    // `&#22026;`, `\u560a`: a character reference or escape names a
    // look-alike (U+560A, which servers that keep a code point's low byte
    // read as a line feed) or an invisible character as well as a raw one:
    // what they wrote is folded as raw characters were.
    if high_before.is_some_and(|before| high(&cur) > before) {
        cur = Cow::Owned(invisible::strip(utf8::fold_forms(&cur, flags)));
    }
    if memchr::memchr(0, &cur).is_some() {
        cur = Cow::Owned(control::strip_nul(cur.into_owned(), flags));
    }
    cur
}

/// Whether the shell view of a folded value differs from it: it holds
/// quoting, `$`, globs, braces, backticks or an empty `<()`.
fn needs_shell_view(low: &[u8]) -> bool {
    const SHELL: [bool; 256] = byte_set(b"\\'\"$^[{`");
    low.iter().any(|&b| SHELL[usize::from(b)])
        || memchr::memchr_iter(b'(', low)
            .any(|i| i > 0 && matches!(low[i - 1], b'<' | b'>') && low.get(i + 1) == Some(&b')'))
}

/// The shell view: what shells ignore removed in two passes, quoting first
/// (`shell_quoting.rs`), then expansion of globs and brace lists
/// (`shell_expansion.rs`).
fn shell_view(low: &[u8]) -> Vec<u8> {
    shell_expansion::expand(&shell_quoting::unquote(low))
}

/// The full stops URL parsers map to `.` in a host (UTS #46), in UTF-8:
/// U+3002 IDEOGRAPHIC, U+FF0E FULLWIDTH and U+FF61 HALFWIDTH IDEOGRAPHIC.
pub(crate) const FULL_STOPS: [[u8; 3]; 3] =
    [[0xE3, 0x80, 0x82], [0xEF, 0xBC, 0x8E], [0xEF, 0xBD, 0xA1]];

/// The value of four hex digits (either case); None if one is not hex.
#[inline]
pub(crate) fn hex4(h: &[u8]) -> Option<u32> {
    h.iter()
        .try_fold(0u32, |acc, &c| hex_val(c).map(|v| acc << 4 | u32::from(v)))
}

/// Appends a code point as UTF-8 (surrogates and values past U+10FFFF as
/// U+FFFD).
#[inline]
pub(crate) fn push_char(cp: u32, out: &mut Vec<u8>) {
    let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// `s` with every find of `next` replaced by `with` and the text between
/// finds copied whole; None when there is no find. `next(from)` gives the
/// start and the length (above 0) of the first find at or after `from`.
pub fn replace_finds(
    s: &[u8],
    with: &[u8],
    next: impl Fn(usize) -> Option<(usize, usize)>,
) -> Option<Vec<u8>> {
    let mut find = next(0)?;
    let mut out = Vec::with_capacity(s.len());
    let mut from = 0;
    loop {
        let (at, len) = find;
        debug_assert!(at >= from && len > 0);
        out.extend_from_slice(&s[from..at]);
        out.extend_from_slice(with);
        from = at + len;
        match next(from) {
            Some(f) => find = f,
            None => break,
        }
    }
    out.extend_from_slice(&s[from..]);
    Some(out)
}

/// Whether an ASCII byte means something to an interpreter (an evasion
/// that hides one of these is worth a finding).
#[inline]
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
    fn stops_url_decoding_after_three_rounds() {
        let (s, f) = dec("%2525252e");
        assert_eq!(s, "%2e");
        assert!(f.multi_encoded);
        let (s, f) = dec("%2e");
        assert_eq!(s, ".");
        assert!(!f.multi_encoded);
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
    fn chains_transformations_in_order() {
        // URL decoding comes first: an encoded entity is an entity.
        assert_eq!(dec("%26lt%3Bscript").0, "<script");
        // Entities come before escapes: an entity can spell a backslash.
        assert_eq!(dec("&bsol;x3c").0, "<");
        // Three entity rounds are one too many.
        assert_eq!(dec("&amp;amp;lt;").0, "&lt;");
        // Escapes do not feed URL decoding again.
        assert_eq!(dec("\\x253c").0, "%3c");
        // Invisible characters go before entities are decoded.
        assert_eq!(dec("&l\u{200b}t;").0, "<");
        // A NUL from any decoder is removed last, and noted.
        let (s, f) = dec("a&#0;b\\x00c%00d");
        assert_eq!(s, "abcd");
        assert!(f.null_byte);
    }

    #[test]
    fn notes_control_characters_but_not_tab_or_line_breaks() {
        assert!(dec("a%01b").1.control);
        assert!(dec("a%7fb").1.control);
        assert!(dec("caf\u{e9}%1b").1.control);
        assert!(!dec("a%09b%0d%0a").1.control);
        assert!(!dec("caf\u{e9}\tx").1.control);
    }

    #[test]
    fn removes_nulls_and_folds() {
        let n = Normalized::new(b"SeL%00eCt\t\t X\r\nY", false);
        assert_eq!(&*n.low, b"select x\ny");
        assert!(n.flags.null_byte);
    }

    #[test]
    fn keeps_plus_outside_forms() {
        assert_eq!(&*Normalized::new(b"a+b", false).dec, b"a+b");
        assert_eq!(&*Normalized::new(b"a%2bb", true).dec, b"a+b");
    }

    #[test]
    fn views_borrow_the_value_when_they_equal_it() {
        let n = Normalized::new(b"a=1;b c", false);
        assert!(matches!(n.dec, Cow::Borrowed(_)) && matches!(n.low, Cow::Borrowed(_)));
        let n = Normalized::new(b"A%20b", false);
        assert!(matches!(n.dec, Cow::Owned(_)));
        assert_eq!(&*n.low, b"a b");
        let n = Normalized::new(b"Ab  c", false);
        assert!(matches!(n.dec, Cow::Borrowed(_)));
        assert_eq!(&*n.low, b"ab c");
        assert!(matches!(Normalized::plain(b"abc").low, Cow::Borrowed(_)));
        assert_eq!(&*Normalized::plain(b"aBc").low, b"abc");
    }

    #[test]
    fn plain_values_are_only_lowercased() {
        let n = Normalized::plain(b"Select_1.x-Y");
        assert_eq!(&*n.dec, b"Select_1.x-Y");
        assert_eq!(&*n.low, b"select_1.x-y");
        assert!(!n.has_sql_view() && !n.has_cmd_view());
        assert_eq!(n.flags, Flags::default());
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
    fn builds_views_only_when_they_differ() {
        let n = Normalized::new(b"select a from b", false);
        assert!(!n.has_sql_view() && !n.has_cmd_view());
        assert_eq!(n.sql(), &*n.low);
        assert_eq!(n.cmd(), &*n.low);
        assert!(Normalized::new(b"a/*b*/", false).has_sql_view());
        assert!(Normalized::new(b"a<()b", false).has_cmd_view());
        assert!(!Normalized::new(b"f(x)", false).has_cmd_view());
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
            let n = Normalized::new(s, true);
            assert!(n.dec.len() <= s.len(), "{s:?} grew");
        }
    }
}
