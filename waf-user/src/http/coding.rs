//! Request bodies sent compressed (`Content-Encoding: gzip` or `deflate`,
//! which browsers' beacons use and applications may accept): undone for
//! inspection, so a payload cannot hide in a compressed body. Bounded: at
//! most `cap` bytes come out of any stream (a small bomb cannot grow
//! past the inspection limit), at most [`MAX_CODINGS`] codings are undone.
//! What reaches the application is the body as sent.

use std::io::Read as _;

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

use super::{Anomaly, Header};

/// Most codings undone (`gzip, gzip, gzip`: more is refused as unknown).
pub const MAX_CODINGS: usize = 3;

/// A body with its codings undone.
#[derive(Debug)]
pub struct Decoded {
    /// At most `cap` bytes.
    pub bytes: Vec<u8>,
    /// More would have come out past `cap`.
    pub capped: bool,
}

/// The codings of every Content-Encoding field in the order applied
/// (`identity` dropped), lowercased.
fn codings(headers: &[Header]) -> Vec<String> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-encoding"))
        .flat_map(|h| h.value.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect()
}

/// Reads at most `cap` bytes out of `r` (and one more to know whether it
/// was cut): the bytes, whether it was cut, and whether the stream ended
/// cleanly (one that breaks off, cut short or damaged, yields what came
/// out before).
fn drain(mut r: impl std::io::Read, cap: usize) -> (Vec<u8>, bool, bool) {
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let ok = (&mut r).take(limit).read_to_end(&mut out).is_ok();
    let capped = out.len() > cap;
    out.truncate(cap);
    (out, capped, ok)
}

/// Undoes one coding; `None` for a coding this does not know.
fn undo(coding: &str, data: &[u8], cap: usize) -> Option<(Vec<u8>, bool, bool)> {
    match coding {
        "gzip" | "x-gzip" => Some(drain(GzDecoder::new(data), cap)),
        // `deflate` is zlib-wrapped by the RFC, raw by some clients.
        "deflate" => {
            let zlib = data.len() >= 2 && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
            Some(if zlib {
                drain(ZlibDecoder::new(data), cap)
            } else {
                drain(DeflateDecoder::new(data), cap)
            })
        }
        _ => None,
    }
}

/// The body with its content codings undone, or `None` when it has none
/// (or they cannot be undone: an unknown coding or a damaged stream is an
/// anomaly, and the body is inspected as sent). `incomplete`: the body is
/// cut short, so a stream that breaks off is no damage.
pub fn decode(
    headers: &[Header],
    body: &[u8],
    cap: usize,
    incomplete: bool,
    anomalies: &mut Vec<Anomaly>,
) -> Option<Decoded> {
    let list = codings(headers);
    if list.is_empty() || body.is_empty() {
        return None;
    }
    if list.len() > MAX_CODINGS {
        anomalies.push(Anomaly::UnsupportedContentEncoding(list.join(", ")));
        return None;
    }
    let mut data = body.to_vec();
    let mut capped = false;
    for c in list.iter().rev() {
        let Some((out, cut, ok)) = undo(c, &data, cap) else {
            anomalies.push(Anomaly::UnsupportedContentEncoding(c.clone()));
            return None;
        };
        if !ok && !incomplete && !cut {
            anomalies.push(Anomaly::InvalidContentEncoding(c.clone()));
            if out.is_empty() {
                return None;
            }
        }
        capped |= cut;
        data = out;
    }
    if capped {
        anomalies.push(Anomaly::ContentEncodingOverflow);
    }
    Some(Decoded {
        bytes: data,
        capped,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use proptest::prelude::*;

    use super::*;

    fn h(v: &str) -> Vec<Header> {
        vec![Header {
            name: "Content-Encoding".into(),
            value: v.into(),
        }]
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_deflate_and_stacked_codings_are_undone() {
        let text = b"{\"q\":\"' union select 1--\"}";
        let mut a = Vec::new();
        let d = decode(&h("gzip"), &gz(text), 1024, false, &mut a).unwrap();
        assert_eq!((d.bytes.as_slice(), d.capped), (&text[..], false));
        let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
        z.write_all(text).unwrap();
        let d = decode(&h("Deflate"), &z.finish().unwrap(), 1024, false, &mut a).unwrap();
        assert_eq!(d.bytes, text);
        let mut r = DeflateEncoder::new(Vec::new(), Compression::fast());
        r.write_all(text).unwrap();
        let d = decode(&h("deflate"), &r.finish().unwrap(), 1024, false, &mut a).unwrap();
        assert_eq!(d.bytes, text);
        let d = decode(&h("gzip, x-gzip"), &gz(&gz(text)), 1024, false, &mut a).unwrap();
        assert_eq!(d.bytes, text);
        assert!(a.is_empty(), "{a:?}");
        assert!(decode(&h("identity"), text, 1024, false, &mut a).is_none());
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let big = gz(&vec![b'a'; 10_000_000]);
        assert!(big.len() < 100_000, "{}", big.len());
        let mut a = Vec::new();
        let d = decode(&h("gzip"), &big, 4096, false, &mut a).unwrap();
        assert_eq!(d.bytes.len(), 4096);
        assert!(d.capped);
        assert_eq!(a, vec![Anomaly::ContentEncodingOverflow]);
    }

    #[test]
    fn unknown_too_many_or_damaged_codings_are_anomalies() {
        let mut a = Vec::new();
        assert!(decode(&h("br"), b"xyz", 1024, false, &mut a).is_none());
        assert!(decode(&h("gzip, gzip, gzip, gzip"), b"xyz", 1024, false, &mut a).is_none());
        assert!(decode(&h("gzip"), b"not gzip at all", 1024, false, &mut a).is_none());
        assert_eq!(
            a,
            vec![
                Anomaly::UnsupportedContentEncoding("br".into()),
                Anomaly::UnsupportedContentEncoding("gzip, gzip, gzip, gzip".into()),
                Anomaly::InvalidContentEncoding("gzip".into()),
            ]
        );
        // A stream cut short by the body's end gives what came out.
        let z = gz(&b"0123456789".repeat(1000));
        let mut a = Vec::new();
        let d = decode(&h("gzip"), &z[..z.len() / 2], 1 << 20, true, &mut a);
        assert!(a.is_empty());
        assert!(d.is_some_and(|d| b"0123456789".repeat(1000).starts_with(&d.bytes)));
    }

    proptest! {
        /// Any bytes under any coding list: no panic, never more than the
        /// cap, and a gzip of the bytes gives them back (cut at the cap).
        #[test]
        fn any_body_is_bounded_and_gzip_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            coding in "(gzip|deflate|br|x-gzip|identity)(, ?(gzip|deflate)){0,4}",
            cap in 1usize..4096,
        ) {
            let mut a = Vec::new();
            if let Some(d) = decode(&h(&coding), &body, cap, false, &mut a) {
                prop_assert!(d.bytes.len() <= cap);
            }
            if !body.is_empty() {
                let mut a = Vec::new();
                let d = decode(&h("gzip"), &gz(&body), cap, false, &mut a).unwrap();
                prop_assert_eq!(&d.bytes[..], &body[..body.len().min(cap)]);
                prop_assert_eq!(d.capped, body.len() > cap);
                prop_assert_eq!(a.contains(&Anomaly::ContentEncodingOverflow), d.capped);
            }
        }
    }
}
