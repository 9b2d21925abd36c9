//! `[challenge]`: when the invisible JavaScript challenge is shown, how hard
//! it is, how long its proofs last, where its key lives and what its cookie
//! is called.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::values::{ConfigError, Dur, invalid};

/// Which requests get the challenge.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeMode {
    /// None.
    #[default]
    Off,
    /// Those whose bot score reaches `threshold`.
    Auto,
    /// Every request without a valid pass.
    All,
}

/// The bot score from which `auto` challenges and `block` routes refuse,
/// unless `threshold` says otherwise.
pub const DEFAULT_THRESHOLD: u32 = 60;

/// The challenge's config.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeConfig {
    /// Off, auto (on a bot score at or above `threshold`) or all.
    pub mode: ChallengeMode,
    /// The bot score (0..=100) from which `auto` challenges.
    pub threshold: u32,
    /// Leading zero bits the proof of work needs (1..=32): each bit doubles
    /// the browser's work (16: about 65,000 hashes, well under a second).
    pub difficulty: u8,
    /// How long a pass (the cookie) lasts.
    pub token_ttl: Dur,
    /// How long a browser has to solve one challenge.
    pub nonce_ttl: Dur,
    /// The key that signs challenges and passes (absent:
    /// `<state_dir>/challenge.key`, created on first use).
    pub key_file: Option<PathBuf>,
    /// The pass cookie's name.
    pub cookie: String,
    /// Mark the cookie `Secure` (only when clients reach waf over HTTPS).
    pub secure_cookie: bool,
    /// Verify crawlers named in the user agent (Googlebot, Bingbot, …) by
    /// forward-confirmed reverse DNS; unverified ones score as bots.
    pub verify_crawlers: bool,
    /// The DNS server that verifies crawlers: `"system"` (the host's
    /// `/etc/resolv.conf`) or a nameserver's `"IP:PORT"` (asked over UDP).
    pub resolver: String,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        Self {
            mode: ChallengeMode::Off,
            threshold: DEFAULT_THRESHOLD,
            difficulty: 16,
            token_ttl: Dur::secs(3600),
            nonce_ttl: Dur::secs(120),
            key_file: None,
            cookie: "waf_pass".into(),
            secure_cookie: false,
            verify_crawlers: true,
            resolver: "system".into(),
        }
    }
}

/// The bounds of `token_ttl`: a minute to 30 days.
const TOKEN_TTL: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(30 * 86_400));
/// The bounds of `nonce_ttl`: 5 seconds to an hour.
const NONCE_TTL: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(3600));
/// The longest cookie name.
const MAX_COOKIE_NAME: usize = 64;

impl ChallengeConfig {
    /// Checks ranges: each message names the key and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.threshold > 100 {
            return Err(invalid("challenge.threshold", self.threshold, "0 to 100"));
        }
        if !(1..=32).contains(&self.difficulty) {
            return Err(invalid(
                "challenge.difficulty",
                self.difficulty,
                "1 to 32 leading zero bits",
            ));
        }
        if !(TOKEN_TTL.0..=TOKEN_TTL.1).contains(&self.token_ttl.0) {
            return Err(invalid("challenge.token_ttl", self.token_ttl, "1m to 30d"));
        }
        if !(NONCE_TTL.0..=NONCE_TTL.1).contains(&self.nonce_ttl.0) {
            return Err(invalid("challenge.nonce_ttl", self.nonce_ttl, "5s to 1h"));
        }
        if !valid_cookie_name(&self.cookie) {
            return Err(invalid(
                "challenge.cookie",
                format!("{:?}", self.cookie.chars().take(80).collect::<String>()),
                "a cookie name of 1 to 64 characters: letters, digits and \
                 !#$%&'*+-.^_`|~ (an RFC 6265 token)",
            ));
        }
        if let Some(p) = &self.key_file
            && p.as_os_str().is_empty()
        {
            return Err(invalid(
                "challenge.key_file",
                "\"\"",
                "a file path (or leave it out: <state_dir>/challenge.key)",
            ));
        }
        if self.resolver != "system" && self.resolver.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "challenge.resolver",
                format!("{:?}", self.resolver.chars().take(80).collect::<String>()),
                "\"system\" or a nameserver's IP:PORT (e.g. \"127.0.0.1:53\", \"[::1]:53\")",
            ));
        }
        Ok(())
    }

    /// The nameserver `resolver` names (validated), or None for the
    /// system's.
    pub fn resolver_server(&self) -> Option<SocketAddr> {
        self.resolver.parse().ok()
    }

    /// Whether a request with this bot score gets the challenge (a request
    /// with a valid pass never does: check that first).
    pub fn wants(&self, bot_score: u32) -> bool {
        match self.mode {
            ChallengeMode::Off => false,
            ChallengeMode::Auto => bot_score >= self.threshold,
            ChallengeMode::All => true,
        }
    }
}

/// An RFC 6265 cookie name: an RFC 7230 token (visible ASCII but
/// separators), bounded.
pub fn valid_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_COOKIE_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ChallengeConfig, String> {
        let c: ChallengeConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_are_valid_and_off() {
        let c = parse("").unwrap();
        assert_eq!(c, ChallengeConfig::default());
        assert_eq!(c.mode, ChallengeMode::Off);
        assert!(!c.wants(100));
        assert_eq!(c.cookie, "waf_pass");
        assert_eq!(c.token_ttl, Dur::secs(3600));
        assert_eq!(c.nonce_ttl, Dur::secs(120));
    }

    #[test]
    fn a_full_section() {
        let c = parse(
            r#"
            mode = "auto"
            threshold = 40
            difficulty = 20
            token_ttl = "12h"
            nonce_ttl = "30s"
            key_file = "/var/lib/waf/c.key"
            cookie = "__Host-pass"
            secure_cookie = true
            "#,
        )
        .unwrap();
        assert_eq!(c.mode, ChallengeMode::Auto);
        assert!(c.wants(40) && !c.wants(39));
        assert_eq!(c.difficulty, 20);
        assert_eq!(c.token_ttl, Dur::secs(12 * 3600));
        assert_eq!(c.key_file.as_deref(), Some("/var/lib/waf/c.key".as_ref()));
        assert!(c.secure_cookie);
        let all = parse("mode = \"all\"").unwrap();
        assert!(all.wants(0));
    }

    #[test]
    fn out_of_range_values_name_the_key_and_the_range() {
        for (text, key, range) in [
            ("threshold = 101", "challenge.threshold", "0 to 100"),
            ("difficulty = 0", "challenge.difficulty", "1 to 32"),
            ("difficulty = 33", "challenge.difficulty", "1 to 32"),
            ("token_ttl = \"59s\"", "challenge.token_ttl", "1m to 30d"),
            ("token_ttl = \"31d\"", "challenge.token_ttl", "1m to 30d"),
            ("nonce_ttl = \"4s\"", "challenge.nonce_ttl", "5s to 1h"),
            ("nonce_ttl = \"2h\"", "challenge.nonce_ttl", "5s to 1h"),
            ("cookie = \"\"", "challenge.cookie", "RFC 6265"),
            ("cookie = \"a b\"", "challenge.cookie", "RFC 6265"),
            ("cookie = \"a;b\"", "challenge.cookie", "RFC 6265"),
            ("cookie = \"a=b\"", "challenge.cookie", "RFC 6265"),
            ("key_file = \"\"", "challenge.key_file", "file path"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key) && e.contains(range), "{text}: {e}");
        }
        let long = format!("cookie = \"{}\"", "a".repeat(65));
        assert!(parse(&long).unwrap_err().contains("challenge.cookie"));
        assert!(parse("cookie = \"__Secure-x\"").is_ok());
    }

    #[test]
    fn crawler_verification_and_its_resolver() {
        let c = parse("").unwrap();
        assert!(c.verify_crawlers);
        assert_eq!(c.resolver, "system");
        assert_eq!(c.resolver_server(), None);
        let c = parse("verify_crawlers = false\nresolver = \"127.0.0.1:5353\"").unwrap();
        assert!(!c.verify_crawlers);
        assert_eq!(c.resolver_server(), Some("127.0.0.1:5353".parse().unwrap()));
        let c = parse("resolver = \"[2001:db8::53]:53\"").unwrap();
        assert_eq!(
            c.resolver_server(),
            Some("[2001:db8::53]:53".parse().unwrap())
        );
        for bad in [
            "",
            "System",
            "127.0.0.1",
            "dns.example:53",
            "127.0.0.1:99999",
            "::1:53",
        ] {
            let e = parse(&format!("resolver = {bad:?}")).unwrap_err();
            assert!(
                e.contains("challenge.resolver") && e.contains("IP:PORT"),
                "{bad}: {e}"
            );
        }
        assert!(parse("verify_crawlers = \"yes\"").is_err());
    }

    #[test]
    fn unknown_keys_and_modes_are_refused() {
        assert!(parse("difficult = 3").is_err());
        assert!(parse("mode = \"sometimes\"").is_err());
    }
}
