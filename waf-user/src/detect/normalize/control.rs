//! Control characters and NUL bytes: C0 controls other than tab, CR and
//! LF, and DEL, are noted; NUL bytes are noted and removed (`sel%00ect`).

use super::Flags;

/// Whether a byte is a control character worth a note (NUL has its own).
fn is_control(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n' | 0) || b == 0x7f
}

/// Whether a value holds a control character other than tab, CR, LF, NUL.
pub(super) fn has_control(s: &[u8]) -> bool {
    s.iter().any(|&b| is_control(b))
}

/// Removes NUL bytes and notes them.
pub(super) fn strip_nul(mut s: Vec<u8>, flags: &mut Flags) -> Vec<u8> {
    if memchr::memchr(0, &s).is_some() {
        flags.null_byte = true;
        s.retain(|&b| b != 0);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_c0_and_del_but_tab_cr_lf_and_nul() {
        let controls: Vec<u8> = (0..=255u8).filter(|&b| is_control(b)).collect();
        let mut want: Vec<u8> = (1..0x20).filter(|b| ![9, 10, 13].contains(b)).collect();
        want.push(0x7f);
        assert_eq!(controls, want);
        assert!(has_control(b"a\x1bb"));
        assert!(!has_control(b"a\tb\r\n\0\x80\xff"));
    }

    #[test]
    fn removes_nul_bytes_anywhere() {
        let mut f = Flags::default();
        assert_eq!(strip_nul(b"\0se\0\0lect\0".to_vec(), &mut f), b"select");
        assert!(f.null_byte);
        let mut f = Flags::default();
        assert_eq!(strip_nul(b"select".to_vec(), &mut f), b"select");
        assert!(!f.null_byte);
    }
}
