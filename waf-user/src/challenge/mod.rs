//! The invisible JavaScript challenge: a page whose script proves some
//! work (a SHA-256 proof of work), in exchange for a signed pass cookie.
//! Pure: no I/O but the key file, no async; the proxy serves what it
//! returns.
//!
//! The flow, as the proxy drives it:
//! 1. A request without a valid pass ([`Challenger::check`]) that
//!    `[challenge]` wants challenged ([`ChallengeConfig::wants`], from the
//!    [`score::bot_score`]) gets [`Challenger::issue`]'s page, with its CSP,
//!    `Cache-Control: no-store`, status 200 (or 403/429, as the caller
//!    likes).
//! 2. The page's script solves and POSTs `c`, `n`, `r` to [`VERIFY_PATH`];
//!    the proxy reads them with [`page::parse_form`] and calls
//!    [`Challenger::verify`]: on [`Pass`], `Set-Cookie` and a 303 to `r`.
//! 3. Later requests carry the cookie: [`Challenger::check`] says
//!    [`TokenCheck::Valid`].
//!
//! Stateless but for the replay set: a challenge carries its id, issue
//! time, difficulty and a binding of the client (its IPv4 address or IPv6
//! prefix, and its user agent), signed; a pass carries its expiry and the
//! same binding, signed with another key ([`token`] has the formats).
//!
//! - [`config`]: `[challenge]`; [`token`]: the key and the signed texts;
//!   [`pow`]: the work; [`page`]: the page, its CSP, the form;
//!   [`score`]: the bot score; [`replay`]: solved challenge ids.

pub mod config;
pub mod page;
pub mod pow;
pub mod replay;
pub mod score;
pub mod token;

#[cfg(test)]
mod tests;

use std::{
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime},
};

use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};

pub use config::{ChallengeConfig, ChallengeMode};
pub use replay::ReplaySet;
pub use score::{Score, Signals, bot_score, crawler_name};
pub use token::{Key, load_or_create_key};

use token::{BIND_LEN, ChallengeData, ID_LEN, MAX_CHALLENGE_TEXT, PassData, Unsigned};

/// Where the page POSTs its solution; the proxy answers it itself.
pub const VERIFY_PATH: &str = "/.well-known/waf-challenge";

/// How far in the future a challenge's issue time may be (clock steps
/// between workers).
const MAX_SKEW_SECS: u64 = 5;
/// The most pass cookies of ours read from one `Cookie` header.
const MAX_CANDIDATES: usize = 8;

/// A challenge to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The signed challenge text (base64url).
    pub challenge: String,
    /// The page.
    pub html: String,
    /// Its `Content-Security-Policy` header value.
    pub csp: String,
}

/// A solved challenge's reward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    /// The cookie's value (the signed pass).
    pub cookie_value: String,
    /// How long it lasts.
    pub max_age: Duration,
    /// The whole `Set-Cookie` header value.
    pub set_cookie: String,
}

/// Why a solution was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The challenge's signature does not match: not ours, or altered.
    Forged,
    /// Issued longer ago than `nonce_ttl` (or in the future).
    Expired,
    /// Solved from another prefix or with another user agent.
    Moved,
    /// The nonce does not give the zero bits asked for.
    WrongWork,
    /// This challenge was solved already.
    Replayed,
    /// The replay set is full of unexpired ids: try again later.
    Busy,
    /// Not a challenge or not a nonce at all.
    Malformed,
}

impl Failure {
    /// For logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            Failure::Forged => "forged",
            Failure::Expired => "expired",
            Failure::Moved => "moved",
            Failure::WrongWork => "wrong_work",
            Failure::Replayed => "replayed",
            Failure::Busy => "busy",
            Failure::Malformed => "malformed",
        }
    }
}

/// What a request's pass cookie is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// A pass of ours, unexpired, for this prefix and user agent.
    Valid,
    /// No cookie of that name.
    Missing,
    /// Not a pass of ours (altered, made up, or a challenge text).
    Forged,
    /// Expired.
    Expired,
    /// For another prefix or user agent.
    Moved,
}

impl TokenCheck {
    /// For logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenCheck::Valid => "valid",
            TokenCheck::Missing => "missing",
            TokenCheck::Forged => "forged",
            TokenCheck::Expired => "expired",
            TokenCheck::Moved => "moved",
        }
    }

    /// Which of two failures to report: the most credible one.
    fn rank(self) -> u8 {
        match self {
            TokenCheck::Valid => 4,
            TokenCheck::Expired => 3,
            TokenCheck::Moved => 2,
            TokenCheck::Forged => 1,
            TokenCheck::Missing => 0,
        }
    }
}

/// Issues and checks challenges and passes. One per config; shared by
/// every connection (`Send + Sync`).
#[derive(Debug)]
pub struct Challenger {
    challenge_key: hmac::Key,
    pass_key: hmac::Key,
    bind_key: hmac::Key,
    id_key: hmac::Key,
    difficulty: u8,
    token_ttl: Duration,
    nonce_ttl_secs: u64,
    cookie: String,
    secure: bool,
    v6_prefix: u8,
    replay: ReplaySet,
    rng: SystemRandom,
    counter: AtomicU64,
}

/// Unix seconds (0 before 1970).
fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Challenger {
    /// A challenger for `cfg` (validated), signing with `key`, binding IPv6
    /// clients by their `/v6_prefix` network (at most 128).
    pub fn new(cfg: &ChallengeConfig, key: Key, v6_prefix: u8) -> Self {
        Self {
            challenge_key: key.derive(b"waf challenge v1"),
            pass_key: key.derive(b"waf pass v1"),
            bind_key: key.derive(b"waf binding v1"),
            id_key: key.derive(b"waf challenge id v1"),
            difficulty: cfg.difficulty.clamp(1, 32),
            token_ttl: Duration::from_secs(cfg.token_ttl.0.as_secs().max(1)),
            nonce_ttl_secs: cfg.nonce_ttl.0.as_secs().max(1),
            cookie: cfg.cookie.clone(),
            secure: cfg.secure_cookie,
            v6_prefix: v6_prefix.min(128),
            replay: ReplaySet::default(),
            rng: SystemRandom::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// The same with a replay set of at most `capacity` ids.
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.replay = ReplaySet::new(capacity);
        self
    }

    /// The pass cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// How many solved challenge ids are held.
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// The keyed hash of the client's prefix and user agent.
    fn bind(&self, client: IpAddr, ua: &str) -> [u8; BIND_LEN] {
        let mut ctx = hmac::Context::with_key(&self.bind_key);
        match client.to_canonical() {
            IpAddr::V4(a) => {
                ctx.update(&[4, 32]);
                ctx.update(&a.octets());
            }
            IpAddr::V6(a) => {
                let bits = u32::from(self.v6_prefix);
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                ctx.update(&[6, self.v6_prefix]);
                ctx.update(&(u128::from(a) & mask).to_be_bytes());
            }
        }
        ctx.update(ua.as_bytes());
        let mut out = [0u8; BIND_LEN];
        out.copy_from_slice(&ctx.sign().as_ref()[..BIND_LEN]);
        out
    }

    /// A fresh random id (unique and unguessable even if the system's
    /// randomness failed: a keyed hash of a counter and the time then).
    fn fresh_id(&self, now: u64) -> [u8; ID_LEN] {
        let mut id = [0u8; ID_LEN];
        if self.rng.fill(&mut id).is_err() {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let mut ctx = hmac::Context::with_key(&self.id_key);
            ctx.update(&n.to_be_bytes());
            ctx.update(&now.to_be_bytes());
            id.copy_from_slice(&ctx.sign().as_ref()[..ID_LEN]);
        }
        id
    }

    /// A challenge for this client, and its page leading back to
    /// `return_to` (a local path; anything else becomes `/`).
    pub fn issue(&self, client: IpAddr, ua: &str, return_to: &str, now: SystemTime) -> Issued {
        let now = unix(now);
        let data = ChallengeData {
            id: self.fresh_id(now),
            issued: now,
            difficulty: self.difficulty,
            bind: self.bind(client, ua),
        };
        let challenge = token::seal_challenge(&self.challenge_key, &data);
        let html = page::render(&challenge, self.difficulty, return_to);
        Issued {
            challenge,
            html,
            csp: page::csp().to_string(),
        }
    }

    /// Checks a solution; on success the pass to set. Checks, in order:
    /// the signature, the age, the binding, the work, the replay set.
    pub fn verify(
        &self,
        challenge: &str,
        nonce: &str,
        client: IpAddr,
        ua: &str,
        now: SystemTime,
    ) -> Result<Pass, Failure> {
        if challenge.len() > MAX_CHALLENGE_TEXT || pow::parse_nonce(nonce).is_none() {
            return Err(Failure::Malformed);
        }
        let c = token::open_challenge(&self.challenge_key, challenge).map_err(|e| match e {
            Unsigned::Malformed => Failure::Malformed,
            Unsigned::Forged => Failure::Forged,
        })?;
        let now = unix(now);
        let expires = c.issued.saturating_add(self.nonce_ttl_secs);
        if now > expires || c.issued > now.saturating_add(MAX_SKEW_SECS) {
            return Err(Failure::Expired);
        }
        if c.bind != self.bind(client, ua) {
            return Err(Failure::Moved);
        }
        // A challenge issued before the difficulty was raised is not enough.
        if c.difficulty < self.difficulty || !pow::is_solution(challenge, nonce, c.difficulty) {
            return Err(Failure::WrongWork);
        }
        self.replay.take(c.id, expires, now).map_err(|e| match e {
            replay::Refused::Replayed => Failure::Replayed,
            replay::Refused::Full => Failure::Busy,
        })?;
        let value = token::seal_pass(
            &self.pass_key,
            &PassData {
                expires: now.saturating_add(self.token_ttl.as_secs()),
                bind: c.bind,
            },
        );
        let set_cookie = format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.cookie,
            self.token_ttl.as_secs(),
            if self.secure { "; Secure" } else { "" }
        );
        Ok(Pass {
            cookie_value: value,
            max_age: self.token_ttl,
            set_cookie,
        })
    }

    /// What the request's `Cookie` header holds: any valid pass of ours
    /// wins; else the most credible failure (expired, then moved, then
    /// forged); at most 8 cookies of our name are read.
    pub fn check(
        &self,
        cookie_header: Option<&str>,
        client: IpAddr,
        ua: &str,
        now: SystemTime,
    ) -> TokenCheck {
        let Some(header) = cookie_header else {
            return TokenCheck::Missing;
        };
        let now = unix(now);
        let mut bind = None;
        let mut best = TokenCheck::Missing;
        let ours = header
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| name.trim() == self.cookie)
            .take(MAX_CANDIDATES);
        for (_, value) in ours {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            let verdict = match token::open_pass(&self.pass_key, value) {
                Err(_) => TokenCheck::Forged,
                // Expired, or from before `token_ttl` was shortened.
                Ok(p)
                    if p.expires <= now
                        || p.expires
                            > now.saturating_add(self.token_ttl.as_secs() + MAX_SKEW_SECS) =>
                {
                    TokenCheck::Expired
                }
                Ok(p) if p.bind != *bind.get_or_insert_with(|| self.bind(client, ua)) => {
                    TokenCheck::Moved
                }
                Ok(_) => return TokenCheck::Valid,
            };
            if verdict.rank() > best.rank() {
                best = verdict;
            }
        }
        best
    }
}
