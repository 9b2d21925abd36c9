//! The canonical view of a request path: what a server resolves the raw
//! path to, computed once per request and read by exemptions, exclusions,
//! operator path rules and the proxy's per-path policies (never the raw
//! path).
//!
//! Steps: percent-decode once (an encoded `%` that decodes to another
//! escape is double encoding: flagged, and read a second way), refuse
//! invalid or overlong UTF-8 and flag NUL bytes, fold `\` to `/`, split `;`
//! parameters off each segment (kept), fold runs of `/`, remove dot segments
//! (RFC 3986 5.2.4). The result writes a literal `%`, `?` and `#` as
//! `%25`, `%3F` and `%23`, so it is a fixed point (the canonical form of a
//! canonical path is itself) and a valid request target.
//!
//! Servers disagree on some steps (Tomcat strips `;` parameters, nginx does
//! not; some back ends decode twice), so the view also keeps those other
//! readings. An allow-type match (exemption, exclusion, allow rule) must hold
//! for every reading; a deny-type match for any.

use super::target;

/// What the canonicalisation noticed. [`PathFlags::voids_exemptions`] says
/// which of them make every exemption and exclusion void.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathFlags {
    /// `%2f` or `%5c` in any case, at any depth of encoding (`%252f`), or
    /// an IIS `%u` form of a slash.
    pub encoded_slash: bool,
    /// A `..` that would climb above `/`.
    pub climbs_above_root: bool,
    /// A `%25XX` that decodes to another escape.
    pub double_encoded: bool,
    /// `.` or `..` segments (plain or encoded).
    pub dot_segments: bool,
    /// A backslash (folded to `/`).
    pub backslash: bool,
    /// Overlong UTF-8 in the decoded path (`%c0%ae` for `.`): refused.
    pub overlong: bool,
    /// Other invalid UTF-8 in the decoded path (or bytes the parser had to
    /// replace in the raw target): refused.
    pub invalid_utf8: bool,
    /// A NUL byte in the decoded path.
    pub nul: bool,
    /// An IIS-style `%uXXXX` escape.
    pub percent_u: bool,
    /// `;` parameters on a segment.
    pub params: bool,
    /// A segment before the last that names a server-side script
    /// (`/app.php/x.css`): servers that pass the rest as PATH_INFO run the
    /// script, whatever the path ends with.
    pub script_path_info: bool,
    /// A segment ending in a dot or a space, or made of dots and spaces
    /// only (`.. `, `...`): Windows servers strip them (`login.php.` is
    /// `login.php`, `.. ` is `..`).
    pub trailing_dot_space: bool,
}

impl PathFlags {
    /// Whether the path is too evasive to trust for an exemption or an
    /// exclusion: encoded slashes, climbing above the root, refused UTF-8,
    /// NUL bytes, `%u` escapes, a script with a PATH_INFO, Windows trailing
    /// dots and spaces void them all (the request is inspected in full).
    pub fn voids_exemptions(&self) -> bool {
        self.encoded_slash
            || self.climbs_above_root
            || self.overlong
            || self.invalid_utf8
            || self.nul
            || self.percent_u
            || self.script_path_info
            || self.trailing_dot_space
    }

    /// Whether the path is an evasion scored as a finding of its own
    /// (`protocol-path-encoded-slash`, `protocol-path-above-root`).
    pub fn is_evasion(&self) -> bool {
        self.encoded_slash || self.climbs_above_root
    }
}

/// The canonical path of a request, with the raw form, the other readings
/// servers may make, the `;` parameters and the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    /// The path as sent (before `?`).
    pub raw: String,
    /// The path percent-decoded once, nothing else (the old `Request::path`).
    pub decoded: String,
    /// The canonical path: always starts with `/`; never holds `//`, `/./`,
    /// `/../`, `\` or `;`; a literal `%`, `?`, `#` is written `%25`, `%3F`,
    /// `%23`.
    pub path: String,
    /// The `;` parameters split off segments, decoded, in order.
    pub params: Vec<String>,
    /// Other readings that differ from `path`: `;` parameters kept as part
    /// of the segment, the path decoded twice.
    pub other_readings: Vec<String>,
    /// What was noticed.
    pub flags: PathFlags,
}

/// How many rounds of decoding are searched for encoded slashes.
const MAX_DECODE_ROUNDS: usize = 4;

impl CanonicalPath {
    /// The canonical view of a request target (`/a/b?q`, `http://h/a`,
    /// `*`): the proxy calls this before it reads a body.
    pub fn from_target(target: &str) -> CanonicalPath {
        CanonicalPath::from_raw_path(target::split_target(target).0)
    }

    /// The canonical view of a raw path (no query).
    pub fn from_raw_path(raw: &str) -> CanonicalPath {
        if is_plain(raw) {
            return CanonicalPath {
                raw: raw.to_owned(),
                decoded: raw.to_owned(),
                path: raw.to_owned(),
                params: Vec::new(),
                other_readings: Vec::new(),
                flags: PathFlags::default(),
            };
        }
        CanonicalPath::full_steps(raw)
    }

    /// Every step of the canonicalisation, on any raw path.
    fn full_steps(raw: &str) -> CanonicalPath {
        let mut flags = PathFlags::default();
        scan_escapes(raw.as_bytes(), &mut flags);
        let once = target::percent_decode(raw.as_bytes(), false);
        let decoded = String::from_utf8_lossy(&once).into_owned();
        let text = check_utf8(&once, &mut flags);
        let primary = resolve(&text, true, &mut flags);
        let mut other_readings = Vec::new();
        if !primary.params.is_empty() {
            flags.params = true;
            let literal = resolve(&text, false, &mut flags);
            other_readings.push(literal.path);
        }
        if flags.double_encoded {
            let twice = target::percent_decode(&once, false);
            let text2 = check_utf8(&twice, &mut flags);
            let r = resolve(&text2, true, &mut flags);
            other_readings.push(r.path);
        }
        other_readings.retain(|r| *r != primary.path);
        other_readings.dedup();
        CanonicalPath {
            raw: raw.to_owned(),
            decoded,
            path: primary.path,
            params: primary.params,
            other_readings,
            flags,
        }
    }

    /// Whether a flag voids every exemption and exclusion.
    pub fn voids_exemptions(&self) -> bool {
        self.flags.voids_exemptions()
    }

    /// The canonical path, then every other reading.
    pub fn readings(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.path.as_str()).chain(self.other_readings.iter().map(String::as_str))
    }
}

/// Whether every step leaves `raw` as it is, with no flag (most paths,
/// which then skip the decoding and copies): `/`, then segments of ASCII
/// letters, digits, `-`, `_`, `~` and `.`, none empty but the last (`/a/`),
/// where a dot neither starts nor ends a segment (no dot segment, no
/// trailing dot) and only the last segment has one (no script before a
/// PATH_INFO). A property test holds it to the full steps.
fn is_plain(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let last = b.iter().rposition(|&c| c == b'/').unwrap_or(0);
    let mut prev = b'/';
    for (i, &c) in b.iter().enumerate().skip(1) {
        let ok = match c {
            b'/' => prev != b'/' && prev != b'.',
            b'.' => prev != b'/' && prev != b'.' && i > last,
            c => c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'~'),
        };
        if !ok {
            return false;
        }
        prev = c;
    }
    prev != b'.'
}

/// Flags escapes of slashes at every depth of encoding, double encoding and
/// `%u` escapes, by decoding up to [`MAX_DECODE_ROUNDS`] times.
fn scan_escapes(raw: &[u8], flags: &mut PathFlags) {
    let mut cur = raw.to_vec();
    for round in 0..MAX_DECODE_ROUNDS {
        let mut any = false;
        for i in memchr::memchr_iter(b'%', &cur) {
            let rest = &cur[i + 1..];
            if let [h, l, ..] = rest
                && let (Some(h), Some(l)) = (target::hex_val(*h), target::hex_val(*l))
            {
                any = true;
                match h << 4 | l {
                    b'/' | b'\\' => flags.encoded_slash = true,
                    b'%' if round == 0 => {
                        if let [_, _, a, b, ..] = rest
                            && target::hex_val(*a).is_some()
                            && target::hex_val(*b).is_some()
                        {
                            flags.double_encoded = true;
                        }
                    }
                    _ => {}
                }
            } else if let [u, a, b, c, d, ..] = rest
                && (*u == b'u' || *u == b'U')
                && [a, b, c, d].iter().all(|x| target::hex_val(**x).is_some())
            {
                flags.percent_u = true;
                let code: String = [a, b, c, d].iter().map(|x| **x as char).collect();
                let code = code.to_ascii_lowercase();
                if matches!(
                    code.as_str(),
                    "002f" | "005c" | "2215" | "2216" | "ff0f" | "ff3c"
                ) {
                    flags.encoded_slash = true;
                }
            }
        }
        if !any {
            break;
        }
        cur = target::percent_decode(&cur, false);
    }
}

/// The decoded bytes as text. Invalid UTF-8 is refused: flagged (overlong
/// forms apart) and replaced by U+FFFD, so the text keeps a mark that no
/// exemption is written for (and the flag voids them anyway). NUL bytes are
/// flagged.
fn check_utf8(bytes: &[u8], flags: &mut PathFlags) -> String {
    if bytes.contains(&0) {
        flags.nul = true;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            if s.contains('\u{FFFD}') {
                // The parser replaced bytes of the raw target: whatever they
                // were (overlong dots...), this path is not to be trusted.
                flags.invalid_utf8 = true;
            }
            s.to_owned()
        }
        Err(_) => {
            if has_overlong(bytes) {
                flags.overlong = true;
            } else {
                flags.invalid_utf8 = true;
            }
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

/// Whether bytes hold an overlong UTF-8 lead: C0/C1, E0 80-9F, F0 80-8F.
fn has_overlong(b: &[u8]) -> bool {
    b.windows(2).any(|w| {
        matches!(w[0], 0xC0 | 0xC1)
            || (w[0] == 0xE0 && (0x80..=0x9F).contains(&w[1]))
            || (w[0] == 0xF0 && (0x80..=0x8F).contains(&w[1]))
    }) || b.last().is_some_and(|&l| matches!(l, 0xC0 | 0xC1))
}

/// A resolved reading.
struct Resolved {
    path: String,
    params: Vec<String>,
}

/// Folds `\`, splits parameters (when `strip_params`), folds `//`, removes
/// dot segments, and writes `%` as `%25`.
fn resolve(text: &str, strip_params: bool, flags: &mut PathFlags) -> Resolved {
    let folded;
    let text = if text.contains('\\') {
        flags.backslash = true;
        folded = text.replace('\\', "/");
        folded.as_str()
    } else {
        text
    };
    let mut stack: Vec<&str> = Vec::new();
    let mut params = Vec::new();
    let mut trailing_slash = false;
    let body = text.strip_prefix('/').unwrap_or(text);
    for segment in body.split('/') {
        let name = match segment.split_once(';') {
            Some((name, p)) if strip_params => {
                params.push(p.to_owned());
                name
            }
            _ => segment,
        };
        trailing_slash = false;
        match name {
            "" => trailing_slash = true,
            "." => {
                flags.dot_segments = true;
                trailing_slash = true;
            }
            ".." => {
                flags.dot_segments = true;
                if stack.pop().is_none() {
                    flags.climbs_above_root = true;
                }
                trailing_slash = true;
            }
            _ => stack.push(name),
        }
    }
    for (i, name) in stack.iter().enumerate() {
        if i + 1 < stack.len() && names_script(name) {
            flags.script_path_info = true;
        }
        if name.ends_with(['.', ' ']) {
            flags.trailing_dot_space = true;
        }
    }
    let mut path = String::with_capacity(text.len() + 1);
    for s in &stack {
        path.push('/');
        push_escaped(&mut path, s);
    }
    if trailing_slash || stack.is_empty() {
        path.push('/');
    }
    Resolved { path, params }
}

/// Whether a segment names a server-side script by its extension.
fn names_script(name: &str) -> bool {
    const SCRIPTS: [&str; 19] = [
        "php", "php3", "php4", "php5", "php7", "php8", "phtml", "phar", "jsp", "jspx", "asp",
        "aspx", "ashx", "asmx", "cgi", "pl", "py", "cfm", "shtml",
    ];
    name.rsplit_once('.').is_some_and(|(_, ext)| {
        SCRIPTS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(ext.trim_end_matches([' ', '.'])))
    })
}

/// Appends a segment with `%`, `?` and `#` written `%25`, `%3F` and `%23`
/// (so decoding it again is a no-op, and the path stays a path when used
/// as a request target).
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(raw: &str) -> CanonicalPath {
        CanonicalPath::from_raw_path(raw)
    }

    #[test]
    fn resolves_dot_segments_slashes_and_backslashes() {
        for (raw, want) in [
            ("/", "/"),
            ("", "/"),
            ("/a/b/c", "/a/b/c"),
            ("/a//b///c/", "/a/b/c/"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/static/../login", "/login"),
            ("/static/%2e%2e/login", "/login"),
            ("/static/.%2e/login", "/login"),
            ("/static/%2E%2E/login", "/login"),
            ("/static\\..\\login", "/login"),
            ("/static%5c..%5clogin", "/login"),
            ("/static%2f..%2flogin", "/login"),
            ("/static/..;/login", "/login"),
            ("/a;jsessionid=1/b;x=2", "/a/b"),
            ("/a%20b", "/a b"),
            ("/100%25", "/100%25"),
            ("/x%3fy", "/x%3Fy"),
            ("/x%23y", "/x%23y"),
            ("*", "/*"),
        ] {
            assert_eq!(c(raw).path, want, "{raw}");
        }
    }

    #[test]
    fn flags_what_it_sees() {
        assert!(c("/a%2fb").flags.encoded_slash);
        assert!(c("/a%2Fb").flags.encoded_slash);
        assert!(c("/a%5Cb").flags.encoded_slash);
        assert!(c("/a%252fb").flags.encoded_slash);
        assert!(c("/a%25252Fb").flags.encoded_slash);
        assert!(c("/a%u002fb").flags.encoded_slash);
        assert!(!c("/a/b").flags.encoded_slash);
        assert!(c("/../etc/passwd").flags.climbs_above_root);
        assert!(c("/a/../../etc").flags.climbs_above_root);
        assert!(!c("/a/../etc").flags.climbs_above_root);
        assert!(c("/a/%252e%252e/b").flags.double_encoded);
        assert!(!c("/100%25").flags.double_encoded);
        assert!(c("/a/./b").flags.dot_segments);
        assert!(c("/a\\b").flags.backslash);
        assert!(c("/%c0%ae%c0%ae/x").flags.overlong);
        assert!(c("/%ff/x").flags.invalid_utf8);
        assert!(c("/a\u{FFFD}b").flags.invalid_utf8);
        assert!(c("/a%00.css").flags.nul);
        assert!(c("/a%u0041").flags.percent_u);
        assert!(c("/a;b").flags.params);
        assert!(c("/app.php/x.css").flags.script_path_info);
        assert!(!c("/x/app.php").flags.script_path_info);
        assert!(c("/login.php./x").flags.trailing_dot_space);
        assert!(c("/static/.. /login").flags.trailing_dot_space);
        for voids in [
            "/a%2fb",
            "/../x",
            "/%c0%ae",
            "/%00",
            "/%ff",
            "/%u002e",
            "/a.PHP/b.css",
            "/a.css.",
            "/a.css%20",
        ] {
            assert!(c(voids).voids_exemptions(), "{voids}");
        }
        for fine in ["/a/../b", "/a//b", "/a\\b", "/a;b", "/a%2541"] {
            assert!(!c(fine).voids_exemptions(), "{fine}");
        }
    }

    #[test]
    fn keeps_other_readings() {
        let p = c("/static/..;/login");
        assert_eq!(p.path, "/login");
        assert_eq!(p.other_readings, ["/static/..;/login"]);
        assert_eq!(p.params, [""]);
        let p = c("/static/%252e%252e/login");
        assert_eq!(p.path, "/static/%252e%252e/login");
        assert_eq!(p.other_readings, ["/login"]);
        assert_eq!(c("/a/b").other_readings, Vec::<String>::new());
    }

    #[test]
    fn plain_paths_are_the_common_ones() {
        for plain in [
            "/",
            "/a",
            "/a/",
            "/api/v1/users",
            "/static/app.min.js",
            "/~x/a-b_c",
        ] {
            assert!(is_plain(plain), "{plain}");
        }
        for not in [
            "",
            "*",
            "a",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/.a",
            "/a.",
            "/a..b",
            "/v1.2/x",
            "/app.php/x",
            "/a%20",
            "/a;b",
            "/a\\b",
            "/a b",
            "/\u{e9}",
        ] {
            assert!(!is_plain(not), "{not}");
        }
    }

    proptest::proptest! {
        /// The shortcut gives what the full steps give, on paths drawn from
        /// its own alphabet (and the bytes next to it) and on plain-looking
        /// ones.
        #[test]
        fn the_shortcut_is_the_full_steps(
            raw in "[/a-zA-Z0-9._~%;\\-]{0,24}",
            shaped in "(/[a-z0-9_~-]{0,6}(\\.(php|jsp|js|[a-z ]{0,3}))?){0,4}/?",
        ) {
            for r in [&raw, &shaped] {
                let fast = CanonicalPath::from_raw_path(r);
                proptest::prop_assert_eq!(&fast, &CanonicalPath::full_steps(r), "{}", r);
                if is_plain(r) {
                    proptest::prop_assert_eq!(&fast.path, r);
                }
            }
        }
    }

    #[test]
    fn is_a_fixed_point() {
        for raw in [
            "/a/%252e/b",
            "/x;y/../z",
            "/%2e%2e/%2f",
            "/a%25%32%66",
            "//..//.",
            "/%c0%ae",
        ] {
            let once = c(raw).path;
            assert_eq!(c(&once).path, once, "{raw}");
        }
    }
}
