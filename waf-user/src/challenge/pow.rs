//! The proof of work: a nonce such that SHA-256 of `challenge:nonce` starts
//! with `difficulty` zero bits. The browser searches (see
//! [`super::page`]); the server checks with one hash.

use ring::digest;

/// The longest nonce: `u64::MAX` has 20 digits.
pub const MAX_NONCE_DIGITS: usize = 20;

/// Reads a nonce: 1 to 20 ASCII digits that fit a `u64`.
pub fn parse_nonce(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_NONCE_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The number of leading zero bits of `hash`.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for &b in hash {
        if b != 0 {
            return n + b.leading_zeros();
        }
        n += 8;
    }
    n
}

/// SHA-256 of `challenge:nonce`.
pub fn work_hash(challenge: &str, nonce: u64) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(challenge.as_bytes());
    ctx.update(b":");
    ctx.update(nonce.to_string().as_bytes());
    ctx.finish()
}

/// Whether `nonce` (as the decimal text given) solves `challenge`.
pub fn is_solution(challenge: &str, nonce_text: &str, difficulty: u8) -> bool {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(challenge.as_bytes());
    ctx.update(b":");
    ctx.update(nonce_text.as_bytes());
    leading_zero_bits(ctx.finish().as_ref()) >= u32::from(difficulty)
}

/// The first nonce from 0 that solves `challenge`, trying at most `tries`:
/// what the page's script does, for tests and tools.
pub fn solve(challenge: &str, difficulty: u8, tries: u64) -> Option<u64> {
    (0..tries)
        .find(|&n| leading_zero_bits(work_hash(challenge, n).as_ref()) >= u32::from(difficulty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bits_are_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
        assert_eq!(leading_zero_bits(&[]), 0);
    }

    #[test]
    fn nonces_are_bounded_decimal_text() {
        assert_eq!(parse_nonce("0"), Some(0));
        assert_eq!(parse_nonce("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "18446744073709551616",
            "000000000000000000001",
            "-1",
            "+1",
            " 1",
            "1e3",
            "١",
        ] {
            assert_eq!(parse_nonce(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_found_solution_checks_and_its_neighbours_mostly_do_not() {
        let c = "some-challenge";
        let n = solve(c, 8, 1 << 16).unwrap();
        assert!(is_solution(c, &n.to_string(), 8));
        assert!(leading_zero_bits(work_hash(c, n).as_ref()) >= 8);
        // The first solution: nothing below it solves.
        assert!((0..n).all(|m| !is_solution(c, &m.to_string(), 8)));
        // Known answer: SHA-256("abc") starts 0xba.
        assert!(is_solution("abc", "", 0));
        assert_eq!(
            digest::digest(&digest::SHA256, b"abc").as_ref()[..2],
            [0xba, 0x78]
        );
    }
}
