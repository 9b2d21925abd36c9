//! The body meter: how many bytes of a body being read count against
//! `max_body`. File contents of a multipart body do not (they are inspected
//! up to `max_file_inspect` bytes each); everything else does. The proxy
//! feeds it the growing buffer and decides, when the count passes the limit,
//! to reject the request or inspect what it has (`partial`).

use super::{Limits, body::mime_of, multipart};

/// Counts, incrementally, the bytes of a body that count against
/// `max_body`.
#[derive(Debug, Clone)]
pub struct BodyMeter {
    /// `--boundary` of a multipart body; None: every byte counts.
    delim: Option<Vec<u8>>,
    /// Where the scan resumes: the start of the current part's headers, or
    /// of its content once they are read.
    pos: usize,
    /// Whether the current part is a file (None: its headers are not read).
    in_file: Option<bool>,
    /// Counted bytes before `pos`.
    counted: u64,
    /// Whether the closing delimiter was seen.
    ended: bool,
    max_body: u64,
}

impl BodyMeter {
    /// A meter for a body of this Content-Type.
    pub fn new(content_type: Option<&str>, limits: &Limits) -> BodyMeter {
        let delim = content_type
            .filter(|c| mime_of(c).starts_with("multipart/"))
            .and_then(multipart::boundary)
            .map(|b| format!("--{b}").into_bytes());
        BodyMeter {
            delim,
            pos: 0,
            in_file: Some(false),
            counted: 0,
            ended: false,
            max_body: limits.max_body as u64,
        }
    }

    /// Bytes of `body` that count against `max_body`. `body` is the whole
    /// buffer read so far; each call must pass the previous buffer plus
    /// what was read since (the scan resumes where it stopped).
    pub fn counted(&mut self, body: &[u8]) -> u64 {
        let Some(delim) = self.delim.clone() else {
            return body.len() as u64;
        };
        if self.pos > body.len() {
            // Not the same buffer: start over.
            *self = BodyMeter {
                pos: 0,
                in_file: Some(false),
                counted: 0,
                ended: false,
                ..self.clone()
            };
        }
        while !self.ended {
            match self.in_file {
                None => {
                    let Some((_, start)) = super::multipart::find_blank_line(&body[self.pos..])
                    else {
                        break;
                    };
                    let head = String::from_utf8_lossy(&body[self.pos..self.pos + start]);
                    self.in_file = Some(multipart::is_file_head(&head));
                    self.counted += start as u64;
                    self.pos += start;
                }
                Some(file) => {
                    let Some(at) = next_delimiter(body, self.pos, &delim) else {
                        // Resume near the end next time (a delimiter may
                        // straddle it, with the LF before it).
                        let safe = body.len().saturating_sub(delim.len() + 1).max(self.pos);
                        if !file {
                            self.counted += (safe - self.pos) as u64;
                        }
                        self.pos = safe;
                        break;
                    };
                    // The delimiter line must be complete to know what follows.
                    let Some(nl) = memchr::memchr(b'\n', &body[at..]) else {
                        if !file {
                            self.counted += (at - self.pos) as u64;
                            self.pos = at;
                        }
                        break;
                    };
                    let line_end = at + nl + 1;
                    let data = (at - self.pos) as u64;
                    let data = if file { 0 } else { data };
                    self.counted += data + (line_end - at) as u64;
                    self.ended = body[at + delim.len()..].starts_with(b"--");
                    self.pos = line_end;
                    self.in_file = None;
                }
            }
        }
        let rest = (body.len() - self.pos) as u64;
        match self.in_file {
            Some(true) if !self.ended => self.counted,
            _ => self.counted + rest,
        }
    }

    /// Whether the counted bytes pass `max_body`.
    pub fn over_limit(&mut self, body: &[u8]) -> bool {
        self.counted(body) > self.max_body
    }
}

/// How many bytes of a complete or partial body count against `max_body`
/// (one-shot [`BodyMeter`]).
pub fn counted_len(content_type: Option<&str>, body: &[u8], limits: &Limits) -> u64 {
    BodyMeter::new(content_type, limits).counted(body)
}

/// The first delimiter at or after `from`: at the body's start or right
/// after a LF.
fn next_delimiter(body: &[u8], from: usize, delim: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(delim);
    let mut at = from;
    while let Some(i) = finder.find(&body[at..]) {
        let p = at + i;
        if p == 0 || body[p - 1] == b'\n' {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=b";

    #[test]
    fn file_contents_do_not_count() {
        let file = vec![b'x'; 5000];
        let mut body =
            b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\n\r\n"
                .to_vec();
        let head = body.len();
        body.extend_from_slice(&file);
        body.extend_from_slice(
            b"\r\n--b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nhello\r\n--b--\r\n",
        );
        let l = Limits::default();
        let n = counted_len(Some(CT), &body, &l);
        // The CRLF before a delimiter belongs to the content.
        assert_eq!(n, (body.len() - file.len() - 2) as u64);
        // Byte by byte gives the same count, and never more than the total.
        let mut m = BodyMeter::new(Some(CT), &l);
        for k in 0..=body.len() {
            let c = m.counted(&body[..k]);
            assert!(c <= k as u64);
            if k > head && k <= head + file.len() {
                assert_eq!(c, head as u64, "{k}");
            }
        }
        assert_eq!(m.counted(&body), n);
        assert_eq!(
            counted_len(Some("text/plain"), &body, &l),
            body.len() as u64
        );
    }
}
