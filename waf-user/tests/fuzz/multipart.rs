//! Target `multipart`: the multipart parser and the body meter. Any bytes:
//! no panic, bounded parts, and the meter gives the same count fed whole or
//! grown in pieces. Generated bodies: every part comes back with its name,
//! file name and content.

use proptest::prelude::*;
use waf_user::http::{BodyMeter, Limits, counted_len, multipart};

use crate::{check, support};

#[derive(Debug, Clone)]
struct GenPart {
    name: String,
    filename: Option<String>,
    data: Vec<u8>,
}

fn part() -> impl Strategy<Value = GenPart> {
    (
        "[a-z]{1,8}",
        prop::option::of("[a-z]{1,8}\\.(jpg|php|txt)"),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(name, filename, data)| GenPart {
            name,
            filename,
            data,
        })
}

fn body(boundary: &str, parts: &[GenPart]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                p.name
            )
            .as_bytes(),
        );
        if let Some(f) = &p.filename {
            b.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        b.extend_from_slice(b"\r\n\r\n");
        b.extend_from_slice(&p.data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

fn input() -> impl Strategy<Value = (String, Vec<GenPart>, Vec<u8>, Vec<usize>)> {
    (
        "[A-Za-z0-9]{8,20}",
        prop::collection::vec(part(), 0..5),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(1usize..80, 1..6),
    )
}

#[test]
fn fuzz_multipart() {
    let limits = Limits {
        max_body: 256,
        max_file_inspect: 64,
        ..Limits::default()
    };
    support::run("multipart", input(), |(boundary, parts, noise, steps)| {
        let ct = format!("multipart/form-data; boundary={boundary}");
        let generated = body(&boundary, &parts);
        for b in [generated.as_slice(), noise.as_slice()] {
            let mut an = Vec::new();
            let m = multipart::parse(b, &boundary, &limits, &mut an);
            for p in &m.parts {
                check!(
                    p.data.len() + p.tail.len() <= p.data_len.max(p.data.len()),
                    "kept more than the part"
                );
                if p.filename.is_some() {
                    check!(
                        p.data.len() + p.tail.len() <= limits.max_file_inspect,
                        "file over its budget"
                    );
                }
            }
            let n = counted_len(Some(&ct), b, &limits);
            check!(n <= b.len() as u64, "counted more than the body");
            let mut meter = BodyMeter::new(Some(&ct), &limits);
            let (mut k, mut i) = (0usize, 0usize);
            while k < b.len() {
                k = (k + steps[i % steps.len()]).min(b.len());
                i += 1;
                let c = meter.counted(&b[..k]);
                check!(c <= k as u64, "counted {c} of {k}");
            }
            check!(
                meter.counted(b) == n,
                "grown count {} != whole {n}",
                meter.counted(b)
            );
        }
        // Generated parts come back (their data never holds the delimiter).
        let boundary_hit = parts
            .iter()
            .any(|p| memchr::memmem::find(&p.data, boundary.as_bytes()).is_some());
        if !boundary_hit {
            let big = Limits::default();
            let m = multipart::parse(&generated, &boundary, &big, &mut Vec::new());
            check!(
                m.parts.len() == parts.len(),
                "{} parts of {}",
                m.parts.len(),
                parts.len()
            );
            for (got, want) in m.parts.iter().zip(&parts) {
                check!(
                    got.name == want.name && got.filename == want.filename,
                    "names differ"
                );
                check!(got.data == want.data, "data differs for {}", want.name);
            }
            let files: usize = parts
                .iter()
                .filter(|p| p.filename.is_some())
                .map(|p| p.data.len())
                .sum();
            let n = counted_len(Some(&ct), &generated, &big);
            check!(
                n + files as u64 <= generated.len() as u64,
                "file bytes counted"
            );
        }
        Ok(())
    });
}
