//! Request framing (RFC 9112 sections 2, 5 and 7): where a request's head
//! ends, how its body is delimited (Content-Length, chunked), and whether
//! buffered bytes hold a complete request. Shared by the parser and the
//! mirror, so both read the same length out of the same bytes. All
//! arithmetic on lengths an attacker sends is checked.

use super::{Anomaly, Header};

/// Longest chunk-size line (size, extensions, CRLF) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body (neither Content-Length nor chunked).
    None,
    /// Exactly this many bytes (Content-Length; the smallest of several).
    Fixed(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// The framing facts of a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Offset of the request line (blank lines before it skipped).
    pub start: usize,
    /// Offset of the first body byte (after the empty line).
    pub body_start: usize,
    /// How the body is delimited.
    pub length: BodyLength,
    /// Content-Length / Transfer-Encoding anomalies (request smuggling).
    pub anomalies: Vec<Anomaly>,
}

/// What buffered bytes hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The head is not complete yet.
    NeedHead,
    /// The head is complete, the body not yet.
    NeedBody(Head),
    /// A complete request spans `buf[..end]` (from `head.start`).
    Complete {
        /// Its head.
        head: Head,
        /// One past its last byte.
        end: usize,
    },
    /// The chunked body is broken at `at`: the request is taken to end
    /// there (the parser flags it), what follows is read as the next one.
    Malformed {
        /// Its head.
        head: Head,
        /// Where the broken chunk framing starts.
        at: usize,
    },
    /// The head runs past `max_header_bytes` without ending.
    HeadTooLarge,
}

/// Frames the request at the start of `buf`. The answer only depends on
/// the bytes: more bytes never change a `Complete`, `Malformed` or
/// `HeadTooLarge` answer (a prefix of what made it gives the same answer or
/// `NeedHead` / `NeedBody`).
pub fn frame(buf: &[u8], max_header_bytes: usize) -> Frame {
    let Some((start, body_start)) = head_end(buf) else {
        return if buf.len() > max_header_bytes {
            Frame::HeadTooLarge
        } else {
            Frame::NeedHead
        };
    };
    if body_start > max_header_bytes {
        return Frame::HeadTooLarge;
    }
    let text = String::from_utf8_lossy(&buf[start..body_start]);
    let mut anomalies = Vec::new();
    let headers = fields(lines(&text).skip(1), &mut Vec::new());
    let length = body_length(&headers, &mut anomalies);
    let head = Head {
        start,
        body_start,
        length,
        anomalies,
    };
    let rest = &buf[body_start..];
    match length {
        BodyLength::None => Frame::Complete {
            head,
            end: body_start,
        },
        BodyLength::Fixed(n) => match usize::try_from(n) {
            Ok(n) if n <= rest.len() => Frame::Complete {
                head,
                end: body_start + n,
            },
            _ => Frame::NeedBody(head),
        },
        BodyLength::Chunked => match Chunked::new().feed(rest, &mut Vec::new(), 0) {
            Step::Done(used) => Frame::Complete {
                head,
                end: body_start + used,
            },
            Step::Malformed(at) => Frame::Malformed {
                head,
                at: body_start + at,
            },
            Step::More => Frame::NeedBody(head),
        },
    }
}

/// (start of the request line, start of the body): blank lines before the
/// request line are skipped (RFC 9112 2.2); the head ends at the first line
/// that is empty once a trailing CR is dropped (CRLF or bare LF endings).
pub fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let mut line = start;
    for nl in memchr::memchr_iter(b'\n', &buf[start..]) {
        let nl = start + nl;
        // `start` holds no CR or LF, so the request line is never empty.
        if nl == line || (nl == line + 1 && buf[line] == b'\r') {
            return Some((start, nl + 1));
        }
        line = nl + 1;
    }
    None
}

/// Optional whitespace of RFC 9110 (space and tab only: a vertical tab or a
/// form feed is no whitespace to a strict server, so it stays and shows).
const OWS: [char; 2] = [' ', '\t'];

/// The pieces of `text` between line feeds, as `str::split('\n')` gives
/// them (the last one too, empty or not), found with a SIMD search.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain(std::iter::once(text.len()));
    ends.map(move |end| {
        let line = &text[start..end];
        start = end + 1;
        line
    })
}

/// Header fields from the lines after the request line, as the parser keeps
/// them: obsolete folding joined to the previous field, lines without a
/// colon skipped (and flagged), names and values trimmed of spaces and tabs.
pub fn fields<'a>(
    lines: impl Iterator<Item = &'a str>,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<Header> {
    let mut headers: Vec<Header> = Vec::new();
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            anomalies.push(Anomaly::ObsoleteLineFolding);
            let more = line.trim_matches(OWS);
            if let Some(last) = headers.last_mut()
                && !more.is_empty()
            {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        let colon = memchr::memchr(b':', line.as_bytes());
        // A `:` is ASCII: the split falls between characters.
        let Some((name, value)) = colon.map(|i| (&line[..i], &line[i + 1..])) else {
            anomalies.push(Anomaly::MalformedHeaderLine(
                line.chars().take(80).collect(),
            ));
            continue;
        };
        if name.ends_with(OWS) {
            anomalies.push(Anomaly::WhitespaceBeforeColon(
                name.trim_matches(OWS).chars().take(80).collect(),
            ));
        }
        headers.push(Header {
            name: name.trim_matches(OWS).to_owned(),
            value: value.trim_matches(OWS).to_owned(),
        });
    }
    headers
}

/// A Content-Length item: decimal digits only (no sign, no exponent, no
/// space), at most `i64::MAX` (servers that keep lengths in a signed 64-bit
/// integer read more as negative or refuse it: it is invalid here too).
pub fn parse_content_length(item: &str) -> Option<u64> {
    if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    item.parse::<u64>()
        .ok()
        .filter(|&n| i64::try_from(n).is_ok())
}

/// How the body is delimited, and the anomalies of the length headers:
/// several differing Content-Length values (the smallest frames the body:
/// what a server might read as the next request is then inspected as one),
/// invalid ones, a Transfer-Encoding other than a final `chunked`, and both
/// headers at once (chunked wins, as RFC 9112 6.3 says).
pub fn body_length(headers: &[Header], anomalies: &mut Vec<Anomaly>) -> BodyLength {
    let is = |h: &&Header, n: &str| h.name.eq_ignore_ascii_case(n);
    let mut cl: Option<u64> = None;
    let mut any_cl = false;
    for h in headers.iter().filter(|h| is(h, "content-length")) {
        any_cl = true;
        // "5, 5" is a list of equal values.
        for item in h.value.split(',') {
            match parse_content_length(item.trim_matches(OWS)) {
                Some(n) => {
                    if cl.is_some_and(|c| c != n)
                        && !anomalies.contains(&Anomaly::ConflictingContentLength)
                    {
                        anomalies.push(Anomaly::ConflictingContentLength);
                    }
                    cl = Some(cl.map_or(n, |c| c.min(n)));
                }
                None => anomalies.push(Anomaly::InvalidContentLength(
                    h.value.chars().take(40).collect(),
                )),
            }
        }
    }
    let tes: Vec<&str> = headers
        .iter()
        .filter(|h| is(h, "transfer-encoding"))
        .map(|h| h.value.as_str())
        .collect();
    let mut chunked = false;
    if !tes.is_empty() {
        let all = tes.join(",").to_ascii_lowercase();
        let codings: Vec<&str> = all
            .split(',')
            .map(|c| c.trim_matches(OWS))
            .filter(|c| !c.is_empty())
            .collect();
        chunked = codings.last() == Some(&"chunked");
        if !chunked || codings.len() > 1 || tes.len() > 1 {
            anomalies.push(Anomaly::UnsupportedTransferEncoding(
                all.chars().take(60).collect(),
            ));
        }
        if any_cl {
            anomalies.push(Anomaly::ContentLengthWithTransferEncoding);
        }
    }
    match (chunked, cl) {
        (true, _) => BodyLength::Chunked,
        (false, Some(n)) => BodyLength::Fixed(n),
        (false, None) => BodyLength::None,
    }
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line (kept in `size_line`).
    Size,
    /// Reading chunk data.
    Data { left: u64 },
    /// After chunk data: an optional CR, then LF.
    DataEnd { cr: bool },
    /// Reading trailer fields: `line` bytes of the current line (`only_cr`:
    /// they are one CR), `total` bytes of trailers in all.
    Trailer {
        line: usize,
        only_cr: bool,
        total: usize,
    },
    /// The body ended.
    Done,
    /// The framing is broken.
    Broken,
}

/// What a chunked decoder reports after a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// All input consumed; the body goes on.
    More,
    /// The body ended after this many bytes of the input.
    Done(usize),
    /// The framing broke at this offset of the input.
    Malformed(usize),
}

/// A resumable chunked-body decoder (sizes in hex with extensions, data,
/// CRLF or bare LF line ends, trailers up to an empty line), bounded and
/// with checked arithmetic. Feeding bytes whole or split anywhere gives the
/// same data and the same end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunked {
    state: State,
    /// The size line read so far (bounded by [`MAX_CHUNK_LINE`]).
    size_line: Vec<u8>,
    /// Data bytes seen (decoded body length), saturating.
    data_len: u64,
    /// Trailer bytes allowed.
    max_trailers: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked::new()
    }
}

impl Chunked {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Chunked {
        Chunked {
            state: State::Size,
            size_line: Vec::new(),
            data_len: 0,
            max_trailers: 64 * 1024,
        }
    }

    /// Decoded data bytes seen so far.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the decoder is past the last chunk (in the trailers or done):
    /// all the data is known.
    pub fn data_complete(&self) -> bool {
        matches!(self.state, State::Trailer { .. } | State::Done)
    }

    /// Feeds bytes; appends decoded data to `out` while it is shorter than
    /// `max_out`. After `Done` or `Malformed`, further feeds consume nothing.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, max_out: usize) -> Step {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => return Step::Done(i),
                State::Broken => return Step::Malformed(i),
                State::Size => {
                    let b = input[i];
                    i += 1;
                    if b != b'\n' {
                        if self.size_line.len() >= MAX_CHUNK_LINE {
                            return self.broken(i - 1);
                        }
                        self.size_line.push(b);
                        continue;
                    }
                    let Some(size) = chunk_size(&self.size_line) else {
                        return self.broken(i - 1);
                    };
                    self.size_line.clear();
                    self.state = if size == 0 {
                        State::Trailer {
                            line: 0,
                            only_cr: false,
                            total: 0,
                        }
                    } else {
                        State::Data { left: size }
                    };
                }
                State::Data { left } => {
                    let avail = input.len() - i;
                    let take = usize::try_from(left).map_or(avail, |l| l.min(avail));
                    let room = max_out.saturating_sub(out.len()).min(take);
                    out.extend_from_slice(&input[i..i + room]);
                    self.data_len = self.data_len.saturating_add(take as u64);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd { cr: false }
                    } else {
                        State::Data { left }
                    };
                }
                State::DataEnd { cr } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' if !cr => self.state = State::DataEnd { cr: true },
                        b'\n' => self.state = State::Size,
                        _ => return self.broken(i - 1),
                    }
                }
                State::Trailer { .. } => {
                    let b = input[i];
                    i += 1;
                    match self.trailer_byte(b) {
                        Some(true) => return Step::Done(i),
                        Some(false) => {}
                        None => return self.broken(i - 1),
                    }
                }
            }
        }
        match self.state {
            State::Done => Step::Done(i),
            State::Broken => Step::Malformed(i),
            _ => Step::More,
        }
    }

    /// One byte of the trailer section: Some(true) when it ends the body,
    /// None when the trailers run over their bound.
    fn trailer_byte(&mut self, b: u8) -> Option<bool> {
        let State::Trailer {
            line,
            only_cr,
            total,
        } = self.state
        else {
            return Some(false);
        };
        if total >= self.max_trailers {
            return None;
        }
        if b == b'\n' && (line == 0 || (line == 1 && only_cr)) {
            self.state = State::Done;
            return Some(true);
        }
        self.state = State::Trailer {
            line: if b == b'\n' { 0 } else { line + 1 },
            only_cr: line == 0 && b == b'\r',
            total: total + 1,
        };
        Some(false)
    }

    fn broken(&mut self, at: usize) -> Step {
        self.state = State::Broken;
        Step::Malformed(at)
    }
}

/// The size of a chunk-size line: hex digits (at most 16, so it fits in a
/// `u64`), optional spaces around them, extensions after `;` ignored.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = line.split(|&b| b == b';').next().unwrap_or(b"");
    let size = size.trim_ascii();
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let s = std::str::from_utf8(size).ok()?;
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 64 * 1024;

    proptest! {
        /// `lines` splits as `str::split('\n')` does, empty pieces and the
        /// last one included.
        #[test]
        fn lines_split_as_str_split(text in "[a\n:é\r]{0,24}") {
            let ours: Vec<&str> = lines(&text).collect();
            let std: Vec<&str> = text.split('\n').collect();
            prop_assert_eq!(ours, std);
        }
    }

    fn end(raw: &[u8]) -> Option<usize> {
        match frame(raw, MAX) {
            Frame::Complete { end, .. } => Some(end),
            _ => None,
        }
    }

    #[test]
    fn frames_heads_lengths_and_chunks() {
        assert_eq!(end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET"), Some(27));
        assert_eq!(end(b"\r\nGET / HTTP/1.1\nHost: a\n\nx"), Some(26));
        assert_eq!(end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        let post = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        assert_eq!(end(post), Some(post.len() - 3));
        assert_eq!(frame(&post[..40], MAX).clone(), frame(&post[..40], MAX));
        assert!(matches!(frame(&post[..40], MAX), Frame::NeedBody(_)));
        let ch = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nNEXT";
        assert_eq!(end(ch), Some(ch.len() - 4));
        // The data holding "0\r\n\r\n" does not end the body.
        let tricky =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n0\r\n\r\n\r\n0\r\n\r\n";
        assert_eq!(end(tricky), Some(tricky.len()));
    }

    #[test]
    fn absurd_lengths_never_overflow() {
        for cl in [
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "-1",
            "1e9",
            "+5",
            "0x10",
            "",
        ] {
            let raw = format!("POST / HTTP/1.1\r\nContent-Length: {cl}\r\n\r\nabc");
            let f = frame(raw.as_bytes(), MAX);
            assert!(!matches!(f, Frame::HeadTooLarge), "{cl}");
        }
        let mut a = Vec::new();
        let h = |v: &str| Header {
            name: "Content-Length".into(),
            value: v.into(),
        };
        assert_eq!(body_length(&[h("+5")], &mut a), BodyLength::None);
        assert!(matches!(a[0], Anomaly::InvalidContentLength(_)));
        let mut a = Vec::new();
        assert_eq!(body_length(&[h("\u{b}5")], &mut a), BodyLength::None);
        let te = Header {
            name: "Transfer-Encoding".into(),
            value: "\u{b}chunked".into(),
        };
        let mut a = Vec::new();
        assert_eq!(body_length(&[te], &mut a), BodyLength::None);
        assert!(matches!(a[0], Anomaly::UnsupportedTransferEncoding(_)));
        let mut a = Vec::new();
        assert_eq!(body_length(&[h("7"), h("5")], &mut a), BodyLength::Fixed(5));
        assert_eq!(a, [Anomaly::ConflictingContentLength]);
        let mut c = Chunked::new();
        assert_eq!(
            c.feed(b"ffffffffffffffff\r\nab", &mut Vec::new(), 0),
            Step::More
        );
        assert_eq!(c.data_len(), 2);
        assert!(matches!(
            Chunked::new().feed(b"10000000000000000\r\n", &mut Vec::new(), 0),
            Step::Malformed(_)
        ));
    }

    #[test]
    fn bounds_heads() {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(frame(&raw, 50), Frame::HeadTooLarge);
        assert_eq!(frame(&raw, 500), Frame::NeedHead);
    }
}
