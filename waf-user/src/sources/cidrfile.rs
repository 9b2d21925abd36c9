//! Plain CIDR list files: one IPv4/IPv6 address or CIDR per line, `#`
//! comments (a whole line or after the entry), blank lines. The format of
//! most published block lists (Spamhaus DROP, FireHOL, provider lists) and
//! of hand-kept ones.
//!
//! Entries go through the project's one address-or-CIDR parser
//! ([`crate::values::parse_net`]): a single address becomes a /32 or /128
//! and the host bits of a CIDR are cleared (`203.0.113.7/24` is
//! `203.0.113.0/24`), as everywhere else in the configuration.

use std::path::Path;

use ipnet::IpNet;

use super::SourceError;
use crate::values::parse_net;

/// Parses the text of a CIDR list file into its networks, in file order.
///
/// # Errors
///
/// The first line that is not an address or CIDR, named by its (1-based)
/// number with the offending text shown escaped and truncated.
pub fn parse(file: &Path, text: &str) -> Result<Vec<IpNet>, SourceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(net) = entry(file, n + 1, line)? {
            out.push(net);
        }
    }
    Ok(out)
}

/// Parses a CIDR list file as read from disk: like [`parse`], but the bytes
/// need not be UTF-8 as a whole.
///
/// # Errors
///
/// As [`parse`], and a line that is not UTF-8, named by its number.
pub fn parse_bytes(file: &Path, bytes: &[u8]) -> Result<Vec<IpNet>, SourceError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut out = Vec::new();
    // A final newline does not start another line (as `str::lines`).
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return Ok(out);
    }
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(line).map_err(|e| {
            SourceError::new(
                file,
                format!("line {}", n + 1),
                format!(
                    "not UTF-8 text (invalid byte at column {})",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        if let Some(net) = entry(file, n + 1, line)? {
            out.push(net);
        }
    }
    Ok(out)
}

/// The network on line `n`, or `None` for a blank or comment line.
fn entry(file: &Path, n: usize, line: &str) -> Result<Option<IpNet>, SourceError> {
    let body = line
        .split_once('#')
        .map_or(line, |(before, _)| before)
        .trim();
    if body.is_empty() {
        return Ok(None);
    }
    parse_net(body)
        .map(Some)
        .map_err(|e| SourceError::new(file, format!("line {n}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> &'static Path {
        Path::new("/etc/waf/lists/drop.txt")
    }

    fn nets(v: &[IpNet]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_entries_comments_and_blanks() {
        let text = "\u{feff}# Spamhaus DROP\n\n203.0.113.0/24 ; SBL1 # trailing\n";
        // `;` comments are not ours: the line is an error.
        let e = parse(file(), text).unwrap_err();
        assert_eq!(e.location, "line 3");
        assert!(e.message.contains("203.0.113.0/24 ;"), "{}", e.message);

        let text = "# list\r\n\r\n  203.0.113.0/24   # a comment\r\n198.51.100.7\n\
                    2001:db8::/32\n2001:db8::1#x\n\t\n192.0.2.9/24\n";
        let got = parse(file(), text).unwrap();
        assert_eq!(
            nets(&got),
            [
                "203.0.113.0/24",
                "198.51.100.7/32",
                "2001:db8::/32",
                "2001:db8::1/128",
                "192.0.2.0/24"
            ]
        );
        assert_eq!(parse_bytes(file(), text.as_bytes()).unwrap(), got);
        assert!(parse(file(), "").unwrap().is_empty());
        assert!(parse_bytes(file(), b"").unwrap().is_empty());
        assert!(parse_bytes(file(), b"\n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_text() {
        let long = format!("10.0.0.0/8\n# ok\n{}\n", "x".repeat(500));
        let e = parse(file(), &long).unwrap_err();
        assert_eq!(e.location, "line 3");
        assert!(e.message.len() < 250, "{}", e.message);
        assert!(
            e.to_string()
                .starts_with("/etc/waf/lists/drop.txt: line 3: `xxx")
        );

        for bad in [
            "10.0.0.0/33",
            "10.0.0.256",
            "fe80::1%eth0",
            "1.2.3.4:80",
            "a b",
        ] {
            let e = parse(file(), &format!("\n{bad}\n")).unwrap_err();
            assert_eq!(e.location, "line 2", "{bad}");
            assert!(e.message.contains(bad), "{bad}: {}", e.message);
        }
        // Control characters are shown escaped, never raw.
        let e = parse(file(), "1.2.3.4\u{1b}[2J\n").unwrap_err();
        assert!(!e.message.contains('\u{1b}') && e.message.contains("\\u{1b}"));

        let e = parse_bytes(file(), b"10.0.0.0/8\n10.\xff.0.0/16\n").unwrap_err();
        assert_eq!(e.location, "line 2");
        assert!(e.message.contains("not UTF-8") && e.message.contains("column 4"));
    }
}
