//! Dashboard sessions: random ids kept server-side (by their SHA-256, so a
//! lookup reveals nothing through its timing), each with its CSRF token and
//! an expiry; a bounded store that evicts the oldest session first; and the
//! `Cookie` header and `Set-Cookie` values the dashboard reads and writes.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use ring::{
    digest,
    rand::{SecureRandom, SystemRandom},
};
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub const COOKIE: &str = "waf_ui";
/// The login form's double-submit cookie (a CSRF token before a session).
pub const LOGIN_COOKIE: &str = "waf_ui_login";
/// How long a session lasts after login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; a login past it evicts the oldest.
pub const MAX_SESSIONS: usize = 64;
/// `Cookie` headers longer than this are not read (no session).
pub const MAX_COOKIE_HEADER: usize = 8192;

/// A random token: 32 bytes as 64 lowercase hex digits.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // The system's random source failing leaves no safe way on: a fixed id
    // would be guessable, so stop the request (the API's panic layer
    // answers 500).
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random number generator failed");
    hex(&b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compares two secrets in constant time (for their common length; the
/// lengths themselves are not secret).
pub fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What a request with a live session carries along (a copy: the store
/// stays locked only while it is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The key of the session in the store (the SHA-256 of its id).
    pub key: String,
    /// The session's CSRF token, for forms and `X-CSRF-Token`.
    pub csrf: String,
}

#[derive(Debug)]
struct Entry {
    csrf: String,
    created: Instant,
    expires: Instant,
    /// A message for the next page shown (what the last action did).
    flash: Option<(bool, String)>,
}

/// The server-side sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

fn key_of(id: &str) -> String {
    hex(digest::digest(&digest::SHA256, id.as_bytes()).as_ref())
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; returns its id (for the cookie). The oldest
    /// session goes when [`MAX_SESSIONS`] are open.
    pub fn open(&self, now: Instant) -> String {
        let id = random_token();
        let mut map = self.lock();
        map.retain(|_, e| e.expires > now);
        while map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(
            key_of(&id),
            Entry {
                csrf: random_token(),
                created: now,
                expires: now + LIFETIME,
                flash: None,
            },
        );
        id
    }

    /// The live session of this id, if any.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let key = key_of(id);
        let mut map = self.lock();
        let e = map.get(&key)?;
        if e.expires <= now {
            map.remove(&key);
            return None;
        }
        Some(Session {
            csrf: e.csrf.clone(),
            key,
        })
    }

    /// Ends a session.
    pub fn close(&self, s: &Session) {
        self.lock().remove(&s.key);
    }

    /// Sessions open (expired ones included until they are next swept).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Leaves a message for the session's next page (`ok`: a success).
    pub fn flash(&self, s: &Session, ok: bool, msg: impl Into<String>) {
        if let Some(e) = self.lock().get_mut(&s.key) {
            e.flash = Some((ok, msg.into()));
        }
    }

    /// Takes the message left for this page, if any.
    pub fn take_flash(&self, s: &Session) -> Option<(bool, String)> {
        self.lock().get_mut(&s.key).and_then(|e| e.flash.take())
    }
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`); None when
/// absent, empty, given twice (ambiguous) or the header is too long.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    if header.len() > MAX_COOKIE_HEADER {
        return None;
    }
    let mut found = None;
    for pair in header.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if k.trim() == name {
            if found.is_some() {
                return None;
            }
            found = Some(v.trim().trim_matches('"'));
        }
    }
    found.filter(|v| !v.is_empty())
}

/// The session cookie's `Set-Cookie` value.
pub fn session_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// The login form's double-submit cookie (ten minutes).
pub fn login_cookie(token: &str) -> String {
    format!("{LOGIN_COOKIE}={token}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=600")
}

/// A `Set-Cookie` value that removes cookie `name` at `path`.
pub fn cleared(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0")
}
