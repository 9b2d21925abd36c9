//! Property tests of the normaliser: no panic on any input, bounded output,
//! idempotence of the transformations meant to be idempotent, and decoding
//! of an encoded value giving it back.

use proptest::prelude::*;

use super::{
    Flags, Normalized, base64_text, entities, escapes, fold, invisible, sql_comments, url, utf8,
};

/// The shell view is never longer than this many times the folded value,
/// plus [`SHELL_EXTRA`]: the quoting pass writes at most 3 bytes for 2
/// (`` `` `` inside a substitution), and the expansion at most twice what
/// it reads plus 4 kB (`shell_expansion.rs`).
const SHELL_GROWTH: usize = 3;
const SHELL_EXTRA: usize = 4096;

/// Pieces of encodings, whole and truncated, mixed at random so that the
/// decoders see escapes, entities and sequences far more often than
/// random bytes would give them.
const PIECES: &[&[u8]] = &[
    b"%",
    b"%2",
    b"%25",
    b"%3c",
    b"%3C",
    b"%u",
    b"%u00",
    b"%u003c",
    b"%uFF1C",
    b"%c0%af",
    b"+",
    b"&",
    b"&#",
    b"&#x",
    b"&#0000",
    b"&lt",
    b"&lt;",
    b"&amp;",
    b"&ensp;",
    b";",
    b"\\",
    b"\\x",
    b"\\u",
    b"\\u{",
    b"}",
    b"{",
    b",",
    b"[",
    b"]",
    b"$",
    b"${IFS}",
    b"$@",
    b"$a",
    b"`",
    b"``",
    b"'",
    b"\"",
    b"^",
    b"<()",
    b"/*",
    b"*/",
    b"/*!",
    b"0",
    b"9",
    b"a",
    b"f",
    b"F",
    b"x",
    b"u",
    b" ",
    b"  ",
    b"\t",
    b"\n",
    b"\r",
    b"\0",
    b"\x7f",
    b"\xc0",
    b"\xc1\x81",
    b"\xe0\x80",
    b"\xe0\x80\xae",
    b"\xef\xbc",
    b"\xef\xbc\x9c",
    b"\xe2\x80",
    b"\xe2\x80\x8b",
    b"\xe2\x91\xa0",
    b"\xc2",
    b"\xc2\xa0",
    b"\xc2\xb4",
    b"\xc2\xad",
    b"\xe2\x81\xa2",
    b"\xe5\x98\x8a",
    b"\xef\xbb\xbf",
    b"\xff",
];

/// Any bytes, up to 4 kB.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..4096)
}

/// Pieces of encodings glued together, up to about 4 kB.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(PIECES), 0..600).prop_map(|p| p.concat())
}

/// Any valid UTF-8, up to about 4 kB.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..1000).prop_map(String::from_iter)
}

/// Any of the three.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![bytes(), soup(), text().prop_map(String::into_bytes)]
}

/// `b` as `%XX`, the hex digits in upper or lower case.
fn percent(b: u8, upper: bool) -> String {
    if upper {
        format!("%{b:02X}")
    } else {
        format!("%{b:02x}")
    }
}

/// Standard base64 with padding.
fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn never_panics_and_never_grows(raw in input(), plus in any::<bool>()) {
        let n = Normalized::new(&raw, plus);
        prop_assert!(n.dec.len() <= raw.len(), "dec {} > raw {}", n.dec.len(), raw.len());
        prop_assert!(n.low.len() <= n.dec.len());
        prop_assert!(n.sql().len() <= n.low.len());
        prop_assert!(n.cmd().len() <= SHELL_GROWTH * n.low.len() + SHELL_EXTRA);
        if let Some(t) = base64_text(&raw) {
            prop_assert!(t.len() <= raw.len());
        }
    }

    #[test]
    fn folding_is_idempotent(raw in input()) {
        let once = fold(&raw);
        prop_assert_eq!(fold(&once), once);
        // What `Normalized` borrows instead of folding is what folding
        // leaves as it is.
        if fold::is_folded(&raw) {
            prop_assert_eq!(fold(&raw), raw.clone());
        }
    }

    #[test]
    fn removing_sql_comments_is_idempotent(raw in input()) {
        let once = sql_comments::strip(&raw);
        prop_assert_eq!(sql_comments::strip(&once), once);
    }

    #[test]
    fn utf8_forms_and_invisible_characters_go_in_one_pass(s in text()) {
        let mut f = Flags::default();
        let once = invisible::strip(utf8::fold_forms(s.as_bytes(), &mut f));
        let twice = invisible::strip(utf8::fold_forms(&once, &mut Flags::default()));
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn utf8_forms_and_invisible_characters_as_byte_at_a_time(raw in input()) {
        let mut f = Flags::default();
        let mut g = Flags::default();
        let folded = utf8::fold_forms(&raw, &mut f);
        prop_assert_eq!(&folded, &byte_at_a_time_fold(&raw, &mut g));
        prop_assert_eq!(f, g);
        prop_assert_eq!(invisible::strip(folded.clone()), byte_at_a_time_strip(&folded));
    }

    #[test]
    fn url_decoding_gives_encoded_bytes_back(
        data in prop::collection::vec((any::<u8>(), any::<bool>(), any::<bool>()), 1..2000),
        plus in any::<bool>(),
    ) {
        let plain: Vec<u8> = data.iter().map(|&(b, _, _)| b).collect();
        let mut encoded = Vec::new();
        for &(b, encode, upper) in &data {
            if encode || b == b'%' || b == b'+' {
                encoded.extend_from_slice(percent(b, upper).as_bytes());
            } else {
                encoded.push(b);
            }
        }
        let mut f = Flags::default();
        let decoded = url::round(&encoded, plus, true, &mut f).unwrap_or(encoded);
        prop_assert_eq!(decoded, plain);
        prop_assert!(!f.invalid_percent);
    }

    #[test]
    fn percent_u_decoding_gives_characters_back(c in any::<char>(), upper in any::<bool>()) {
        prop_assume!(u32::from(c) <= 0xFFFF);
        let hex = format!("{:04x}", u32::from(c));
        let hex = if upper { hex.to_uppercase() } else { hex };
        let mut f = Flags::default();
        let out = url::round(format!("a%u{hex}b").as_bytes(), false, true, &mut f);
        prop_assert_eq!(out, Some(format!("a{c}b").into_bytes()));
        prop_assert_eq!(f.percent_u_ascii, c.is_ascii());
    }

    #[test]
    fn entity_decoding_gives_characters_back(c in any::<char>(), zeros in 0usize..20) {
        let cp = u32::from(c);
        let pad = "0".repeat(zeros);
        for form in [
            format!("&#{pad}{cp};"),
            format!("&#{pad}{cp}"),
            format!("&#x{pad}{cp:x};"),
            format!("&#X{pad}{cp:X}"),
        ] {
            let out = entities::decode(form.as_bytes());
            prop_assert_eq!(out, Some(c.to_string().into_bytes()), "{}", form);
        }
    }

    /// A character written as a reference or an escape reads as the raw
    /// character does, look-alikes folded and invisible ones removed
    /// (`&#22026;` and `\\u560a` are the line feed U+560A stands for).
    #[test]
    fn references_and_escapes_read_as_the_raw_character(c in any::<char>()) {
        let read = |s: String| super::decode(s.as_bytes(), false, &mut Flags::default()).into_owned();
        let alone = read(c.to_string());
        // What decodes further once folded (`＼`, `＆`, `％`) is left out.
        prop_assume!(!alone.iter().any(|b| matches!(b, b'\\' | b'&' | b'%')));
        let cp = u32::from(c);
        let raw = read(format!("<{c}>"));
        prop_assert_eq!(&read(format!("<&#{cp};>")), &raw, "entity {}", cp);
        prop_assert_eq!(&read(format!("<\\u{{{cp:x}}}>")), &raw, "escape {}", cp);
    }

    #[test]
    fn escape_decoding_gives_characters_back(c in any::<char>()) {
        let cp = u32::from(c);
        let want = format!("<{c}>");
        prop_assert_eq!(escapes::decode(format!("<\\u{{{cp:x}}}>").as_bytes(), &mut false), want.as_bytes());
        if cp <= 0xFFFF {
            prop_assert_eq!(escapes::decode(format!("<\\u{cp:04X}>").as_bytes(), &mut false), want.as_bytes());
        }
        if cp <= 0xFF {
            prop_assert_eq!(escapes::decode(format!("<\\x{cp:02x}>").as_bytes(), &mut false), want.as_bytes());
        }
    }

    #[test]
    fn the_pipeline_gives_percent_encoded_text_back(
        s in "[ -$'-\\[\\]-~]{0,300}",
        upper in any::<bool>(),
    ) {
        let encoded: String = s.bytes().map(|b| percent(b, upper)).collect();
        let mut f = Flags::default();
        prop_assert_eq!(super::decode(encoded.as_bytes(), true, &mut f), s.as_bytes());
        prop_assert!(!f.multi_encoded && !f.invalid_percent);
    }

    #[test]
    fn base64_decoding_gives_code_like_text_back(
        s in "[ -~]{8,300}",
        at in any::<prop::sample::Index>(),
    ) {
        let mut text = s;
        text.insert(at.index(text.len() + 1), ';');
        prop_assert_eq!(base64_text(base64_encode(text.as_bytes()).as_bytes()), Some(text));
    }
}

#[test]
fn brace_lists_grow_the_shell_view_within_its_bound() {
    let affix = "w".repeat(32);
    let raw = format!("{affix}{{{}}}{affix} ", ",".repeat(250)).repeat(3);
    let n = Normalized::new(raw.as_bytes(), false);
    // The first list is written with its affixes (251 items of 64 bytes
    // and a space each) only if that fits: 16.3 kB does not fit within
    // twice the 948 bytes plus 4 kB, so each list splits without them.
    assert_eq!(n.cmd().len(), 3 * (32 + 251 + 1 + 32 + 1));
    assert!(n.cmd().len() <= SHELL_GROWTH * n.low.len() + SHELL_EXTRA);
}

/// [`utf8::fold_forms`] as it was written first, a byte at a time: the
/// reference its run copying must agree with.
fn byte_at_a_time_fold(s: &[u8], flags: &mut Flags) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] < 0x80 {
            out.push(s[i]);
            i += 1;
        } else if let Some((cp, len)) = super::overlong::at(&s[i..], flags) {
            super::push_char(cp, &mut out);
            i += len;
        } else if let Some((ascii, len)) = super::lookalike::at(&s[i..], flags) {
            out.push(ascii);
            i += len;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// [`invisible::strip`] a byte at a time, from the characters it names.
fn byte_at_a_time_strip(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let n = match &s[i..] {
            [0xEF, 0xBB, 0xBF, ..]
            | [0xE2, 0x80, 0x8B..=0x8F, ..]
            | [0xE2, 0x81, 0xA0..=0xA4, ..] => 3,
            [0xC2, 0xAD, ..] => 2,
            _ => 0,
        };
        if n == 0 {
            out.push(s[i]);
            i += 1;
        } else {
            i += n;
        }
    }
    out
}
