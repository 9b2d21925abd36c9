//! Requests out of one flow's in-order bytes: framed by `http::framing`
//! (the parser's own rules), bounded in bytes buffered; a body too long to
//! buffer is skipped by its length or by following its chunks (with checked
//! arithmetic), so the next request on the flow is found where framing
//! allows; after a gap or garbage the stream resyncs on a request line.

use crate::http::framing::{self, BodyLength, Chunked, Frame, Step};

/// Methods a resync looks for (any method is read at a known boundary).
const METHODS: [&[u8]; 16] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
];

/// A request taken out of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// A complete request (or one whose framing broke: the parser flags it).
    Whole(Vec<u8>),
    /// The start of a request whose body did not fit, or whose flow ended
    /// or lost bytes before it did.
    Partial(Vec<u8>),
}

/// Body bytes of a request already handed on, still to skip.
#[derive(Debug, Default)]
enum Skip {
    #[default]
    None,
    /// This many bytes.
    Bytes(u64),
    /// Up to the end of a chunked body.
    Chunked(Box<Chunked>),
}

/// The request-level state of one flow.
#[derive(Debug, Default)]
pub struct Stream {
    buf: Vec<u8>,
    skip: Skip,
    /// Whether `buf` starts at a request boundary.
    synced: bool,
}

impl Stream {
    /// A stream at a known boundary (right after the SYN) or not.
    pub fn new(synced: bool) -> Stream {
        Stream {
            synced,
            ..Stream::default()
        }
    }

    /// Whether bytes are buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends in-order bytes (body bytes still to skip are dropped first);
    /// returns how many were dropped.
    pub fn push(&mut self, mut data: &[u8]) -> u64 {
        let mut dropped = 0u64;
        match &mut self.skip {
            Skip::None => {}
            Skip::Bytes(n) => {
                let take = usize::try_from(*n).map_or(data.len(), |n| n.min(data.len()));
                *n -= take as u64;
                dropped += take as u64;
                data = &data[take..];
                if *n == 0 {
                    self.skip = Skip::None;
                }
            }
            Skip::Chunked(dec) => match dec.feed(data, &mut Vec::new(), 0) {
                Step::More => {
                    dropped += data.len() as u64;
                    data = &[];
                }
                Step::Done(used) => {
                    dropped += used as u64;
                    data = &data[used..];
                    self.skip = Skip::None;
                }
                Step::Malformed(at) => {
                    dropped += at as u64;
                    data = &data[at..];
                    self.skip = Skip::None;
                    self.synced = false;
                }
            },
        }
        self.buf.extend_from_slice(data);
        dropped
    }

    /// `n` bytes will never be seen. Inside a body being skipped by count
    /// they are simply skipped; otherwise the buffered request is handed on
    /// as partial (when its head is complete) and the stream resyncs.
    pub fn gap(&mut self, n: u64, max_header: usize) -> (Option<Taken>, u64) {
        if let Skip::Bytes(k) = &mut self.skip
            && n <= *k
        {
            *k -= n;
            return (None, 0);
        }
        self.skip = Skip::None;
        self.synced = false;
        self.flush(max_header)
    }

    /// At the end of the flow: the buffered request as partial when its head
    /// is complete. Returns it and the bytes dropped.
    pub fn flush(&mut self, max_header: usize) -> (Option<Taken>, u64) {
        let buf = std::mem::take(&mut self.buf);
        match framing::frame(&buf, max_header) {
            Frame::NeedBody(_) | Frame::Complete { .. } | Frame::Malformed { .. } => {
                (Some(Taken::Partial(buf)), 0)
            }
            Frame::NeedHead | Frame::HeadTooLarge => (None, buf.len() as u64),
        }
    }

    /// Takes the next request out of the buffer, if one is there (complete,
    /// or as much as `max_request` bytes allow). Returns it and the bytes
    /// dropped on the way (garbage before a request line).
    pub fn next(&mut self, max_request: usize, max_header: usize) -> (Option<Taken>, u64) {
        let mut dropped = 0u64;
        if !self.synced {
            match resync_point(&self.buf) {
                Some(p) => {
                    dropped += p as u64;
                    self.buf.drain(..p);
                    self.synced = true;
                }
                None => {
                    // Keep a tail that may hold the start of a method name.
                    let drop = self.buf.len().saturating_sub(16);
                    self.buf.drain(..drop);
                    return (None, dropped + drop as u64);
                }
            }
        }
        let header_bound = max_header.min(max_request);
        match framing::frame(&self.buf, header_bound) {
            Frame::NeedHead => (None, dropped),
            Frame::HeadTooLarge => {
                // The parser refuses it with the same limit: the engine
                // turns that into a finding. Resync after it.
                self.synced = false;
                (Some(Taken::Whole(std::mem::take(&mut self.buf))), dropped)
            }
            Frame::Complete { end, .. } => {
                (Some(Taken::Whole(self.buf.drain(..end).collect())), dropped)
            }
            Frame::Malformed { at, .. } => {
                self.synced = false;
                (Some(Taken::Whole(self.buf.drain(..at).collect())), dropped)
            }
            Frame::NeedBody(head) if self.buf.len() >= max_request => {
                let buf = std::mem::take(&mut self.buf);
                let have = (buf.len() - head.body_start) as u64;
                self.skip = match head.length {
                    BodyLength::Fixed(n) => Skip::Bytes(n.saturating_sub(have)),
                    BodyLength::Chunked => {
                        let mut dec = Chunked::new();
                        let _ = dec.feed(&buf[head.body_start..], &mut Vec::new(), 0);
                        Skip::Chunked(Box::new(dec))
                    }
                    BodyLength::None => Skip::None,
                };
                (Some(Taken::Partial(buf)), dropped)
            }
            Frame::NeedBody(_) => (None, dropped),
        }
    }
}

/// Where a request line starts in bytes of unknown alignment: a known
/// method followed by a space and a target (`/`, `*` or an absolute URL).
fn resync_point(buf: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(b" ");
    finder.find_iter(buf).find_map(|sp| {
        let target = buf.get(sp + 1).copied();
        if !matches!(target, Some(b'/' | b'*' | b'h' | b'H')) {
            return None;
        }
        METHODS
            .iter()
            .find(|m| sp + 1 >= m.len() && &buf[sp + 1 - m.len()..=sp] == **m)
            .map(|m| sp + 1 - m.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resyncs_on_a_method_anywhere() {
        assert_eq!(resync_point(b"GET / HTTP/1.1"), Some(0));
        assert_eq!(resync_point(b"xGET /a HTTP/1.1"), Some(1));
        assert_eq!(resync_point(b"body\r\nPOST /x HTTP/1.1"), Some(6));
        assert_eq!(resync_point(b"I GET it"), None);
    }

    #[test]
    fn skips_long_bodies_by_length_and_by_chunks() {
        let mut s = Stream::new(true);
        s.push(b"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789");
        let (t, _) = s.next(48, 1024);
        assert!(matches!(t, Some(Taken::Partial(_))));
        let rest = [b'x'; 90];
        assert_eq!(s.push(&rest), 90);
        s.push(b"GET /b HTTP/1.1\r\n\r\n");
        let (t, _) = s.next(48, 1024);
        assert_eq!(t, Some(Taken::Whole(b"GET /b HTTP/1.1\r\n\r\n".to_vec())));
        let mut s = Stream::new(true);
        s.push(b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123456789");
        assert!(matches!(s.next(56, 1024).0, Some(Taken::Partial(_))));
        s.push(b"0123456789012345678901\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
        assert_eq!(
            s.next(56, 1024).0,
            Some(Taken::Whole(b"GET /c HTTP/1.1\r\n\r\n".to_vec()))
        );
    }
}
