//! The signed texts: the key, the challenge string, the pass token, and the
//! base64 they are written in.
//!
//! Both texts are base64url (no padding) of a fixed-length record ending in
//! an HMAC-SHA256 of the rest. Challenges and passes are signed with
//! different keys derived from the one key file (HMAC of the key with a
//! label each), and start with a different kind byte, so neither can ever
//! pass for the other; their lengths differ too.
//!
//! | record    | bytes | fields                                                    |
//! |-----------|-------|-----------------------------------------------------------|
//! | challenge | 74    | kind `C`, id (16), issued (u64 s), difficulty, bind (16), mac (32) |
//! | pass      | 57    | kind `P`, expires (u64 s), bind (16), mac (32)            |
//!
//! `bind` is a keyed hash of the client's prefix and user agent (keyed, so
//! a token does not let anyone test guesses of the client's address).

use std::{
    fmt,
    fs::{self, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use base64::Engine as _;
use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};

/// The length of the key file.
pub const KEY_LEN: usize = 32;

/// The secret that signs challenges and passes.
#[derive(Clone)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Key(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, String> {
        let mut b = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| "no randomness from the system for the challenge key".to_string())?;
        Ok(Key(b))
    }

    /// An HMAC key derived from this one for one purpose.
    pub(super) fn derive(&self, label: &[u8]) -> hmac::Key {
        let master = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let tag = hmac::sign(&master, label);
        hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Reads the key at `path`, or creates it (32 random bytes, mode 0600)
/// when there is none. Refuses a file of another length, or one that the
/// group or others may read or write.
pub fn load_or_create_key(path: &Path) -> Result<Key, String> {
    let shown = path.display();
    // Twice at most: a file created by another process between our open
    // and our create is read on the second pass.
    for _ in 0..2 {
        match fs::File::open(path) {
            Ok(f) => return read_key(f, path),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("challenge key {shown}: {e}")),
        }
        let key = Key::generate()?;
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        let mut f = match created {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("challenge key {shown}: cannot create it: {e}")),
        };
        if let Err(e) = f.write_all(&key.0).and_then(|()| f.sync_all()) {
            // A short file would be refused at every later start.
            let _ = fs::remove_file(path);
            return Err(format!("challenge key {shown}: cannot write it: {e}"));
        }
        return Ok(key);
    }
    Err(format!(
        "challenge key {shown}: created and removed by someone else meanwhile"
    ))
}

fn read_key(mut f: fs::File, path: &Path) -> Result<Key, String> {
    let shown = path.display();
    let meta = f
        .metadata()
        .map_err(|e| format!("challenge key {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("challenge key {shown}: not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "challenge key {shown}: mode {mode:04o} lets the group or others read it; \
             make it private (chmod 600 {shown})"
        ));
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(format!(
            "challenge key {shown}: {} bytes, expected {KEY_LEN}; remove it to have a new \
             one made (every pass and challenge out there is then refused)",
            meta.len()
        ));
    }
    let mut b = [0u8; KEY_LEN];
    f.read_exact(&mut b)
        .map_err(|e| format!("challenge key {shown}: {e}"))?;
    Ok(Key(b))
}

/// The kind byte of a challenge record.
const KIND_CHALLENGE: u8 = b'C';
/// The kind byte of a pass record.
const KIND_PASS: u8 = b'P';
/// HMAC-SHA256 length.
const MAC_LEN: usize = 32;
/// The binding hash length.
pub const BIND_LEN: usize = 16;
/// A challenge id's length.
pub const ID_LEN: usize = 16;
/// A challenge record's length.
pub const CHALLENGE_LEN: usize = 1 + ID_LEN + 8 + 1 + BIND_LEN + MAC_LEN;
/// A pass record's length.
pub const PASS_LEN: usize = 1 + 8 + BIND_LEN + MAC_LEN;
/// The longest challenge text accepted (its exact length is 99).
pub const MAX_CHALLENGE_TEXT: usize = 512;

/// What a challenge says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChallengeData {
    /// Random, unique: what the replay set remembers.
    pub id: [u8; ID_LEN],
    /// Unix seconds.
    pub issued: u64,
    /// Leading zero bits asked for.
    pub difficulty: u8,
    /// The client's prefix and user agent, hashed.
    pub bind: [u8; BIND_LEN],
}

/// What a pass says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassData {
    /// Unix seconds.
    pub expires: u64,
    /// The client's prefix and user agent, hashed.
    pub bind: [u8; BIND_LEN],
}

/// Why a signed text was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsigned {
    /// Not base64url of a record of the right length and kind.
    Malformed,
    /// The signature does not match.
    Forged,
}

fn seal(key: &hmac::Key, mut record: Vec<u8>) -> String {
    let tag = hmac::sign(key, &record);
    record.extend_from_slice(tag.as_ref());
    b64url_encode(&record)
}

/// Decodes and checks the signature; returns the signed part.
fn open(key: &hmac::Key, text: &str, len: usize) -> Result<Vec<u8>, Unsigned> {
    // base64url of `len` bytes has exactly this many characters.
    if text.len() != (len * 4).div_ceil(3) {
        return Err(Unsigned::Malformed);
    }
    let raw = b64url_decode(text).ok_or(Unsigned::Malformed)?;
    if raw.len() != len {
        return Err(Unsigned::Malformed);
    }
    let (body, tag) = raw.split_at(len - MAC_LEN);
    hmac::verify(key, body, tag).map_err(|_| Unsigned::Forged)?;
    Ok(body.to_vec())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Signs a challenge.
pub fn seal_challenge(key: &hmac::Key, c: &ChallengeData) -> String {
    let mut r = Vec::with_capacity(CHALLENGE_LEN);
    r.push(KIND_CHALLENGE);
    r.extend_from_slice(&c.id);
    r.extend_from_slice(&c.issued.to_be_bytes());
    r.push(c.difficulty);
    r.extend_from_slice(&c.bind);
    seal(key, r)
}

/// Reads a challenge signed with `key`.
pub fn open_challenge(key: &hmac::Key, text: &str) -> Result<ChallengeData, Unsigned> {
    let b = open(key, text, CHALLENGE_LEN)?;
    if b[0] != KIND_CHALLENGE {
        return Err(Unsigned::Malformed);
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&b[1..1 + ID_LEN]);
    let mut bind = [0u8; BIND_LEN];
    bind.copy_from_slice(&b[1 + ID_LEN + 9..]);
    Ok(ChallengeData {
        id,
        issued: u64_at(&b, 1 + ID_LEN),
        difficulty: b[1 + ID_LEN + 8],
        bind,
    })
}

/// Signs a pass.
pub fn seal_pass(key: &hmac::Key, p: &PassData) -> String {
    let mut r = Vec::with_capacity(PASS_LEN);
    r.push(KIND_PASS);
    r.extend_from_slice(&p.expires.to_be_bytes());
    r.extend_from_slice(&p.bind);
    seal(key, r)
}

/// Reads a pass signed with `key`.
pub fn open_pass(key: &hmac::Key, text: &str) -> Result<PassData, Unsigned> {
    let b = open(key, text, PASS_LEN)?;
    if b[0] != KIND_PASS {
        return Err(Unsigned::Malformed);
    }
    let mut bind = [0u8; BIND_LEN];
    bind.copy_from_slice(&b[9..]);
    Ok(PassData {
        expires: u64_at(&b, 1),
        bind,
    })
}

/// Standard base64 with padding (the CSP hash).
pub fn b64_encode(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// base64url without padding.
pub fn b64url_encode(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Decodes base64url without padding, strictly (the engine refuses
/// padding, and bits past the last byte that are not zero), so each byte
/// string has one text only.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("waf-challenge-{}-{name}", std::process::id()));
        let _ = fs::remove_file(&d);
        d
    }

    #[test]
    fn base64_known_answers() {
        for (raw, std, url) in [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
            ("fooba", "Zm9vYmE=", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ] {
            assert_eq!(b64_encode(raw.as_bytes()), std);
            assert_eq!(b64url_encode(raw.as_bytes()), url);
            assert_eq!(b64url_decode(url).unwrap(), raw.as_bytes());
        }
        assert_eq!(b64_encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(b64url_encode(&[0xfb, 0xff]), "-_8");
        // Non-zero bits past the end, padding, other alphabets: refused.
        for bad in ["Zh", "Zm9", "Zg==", "Z", "+/8", "Zm9v!"] {
            assert_eq!(b64url_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_round_trip_and_keep_their_kinds_apart() {
        let k = Key::from_bytes([7; 32]);
        let (kc, kp) = (k.derive(b"c"), k.derive(b"p"));
        let c = ChallengeData {
            id: [1; 16],
            issued: 1_800_000_000,
            difficulty: 16,
            bind: [2; 16],
        };
        let text = seal_challenge(&kc, &c);
        assert_eq!(text.len(), 99);
        assert_eq!(open_challenge(&kc, &text), Ok(c));
        assert_eq!(open_challenge(&kp, &text), Err(Unsigned::Forged));
        assert_eq!(open_pass(&kp, &text), Err(Unsigned::Malformed));
        let p = PassData {
            expires: 1_800_003_600,
            bind: [2; 16],
        };
        let pt = seal_pass(&kp, &p);
        assert_eq!(pt.len(), 76);
        assert_eq!(open_pass(&kp, &pt), Ok(p));
        assert_eq!(open_pass(&kc, &pt), Err(Unsigned::Forged));
        assert_eq!(open_challenge(&kc, &pt), Err(Unsigned::Malformed));
        assert!(format!("{k:?}").len() < 10);
    }

    #[test]
    fn a_key_file_is_made_private_and_read_back() {
        let p = tmp("new");
        let k = load_or_create_key(&p).unwrap();
        let meta = fs::metadata(&p).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        assert_eq!(load_or_create_key(&p).unwrap().0, k.0);
        fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_readable_or_misshapen_key_file_is_refused() {
        let p = tmp("open");
        fs::write(&p, [1u8; 32]).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_key(&p).unwrap_err();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_or_create_key(&p).unwrap().0, [1u8; 32]);
        fs::write(&p, [1u8; 31]).unwrap();
        let e = load_or_create_key(&p).unwrap_err();
        assert!(e.contains("31 bytes, expected 32"), "{e}");
        fs::write(&p, [1u8; 33]).unwrap();
        assert!(load_or_create_key(&p).is_err());
        fs::remove_file(&p).unwrap();
        let dir = tmp("dir");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(load_or_create_key(&dir).is_err());
        fs::remove_dir(&dir).unwrap();
        let missing_parent = tmp("none").join("x.key");
        assert!(
            load_or_create_key(&missing_parent)
                .unwrap_err()
                .contains("cannot create")
        );
    }
}
