//! `[[routes]]` as written in the config file: one table per route, tried
//! in file order.

use serde::{Deserialize, Deserializer};

use crate::values::Dur;

/// What a route does about the JavaScript challenge (as flask-nobot's
/// decorators): ordered from the most lenient to the strictest.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum RouteChallenge {
    /// Never challenged (an API called by programs, a health check).
    Skip,
    /// Challenged as `[challenge] mode` says (the default).
    #[default]
    Protect,
    /// Every request without a valid token is challenged.
    Challenge,
    /// A request whose bot score reaches the threshold is refused (403 and
    /// a strike), without a challenge to pass.
    Block,
}

impl RouteChallenge {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteChallenge::Skip => "skip",
            RouteChallenge::Protect => "protect",
            RouteChallenge::Challenge => "challenge",
            RouteChallenge::Block => "block",
        }
    }
}

/// A per-source request limit of a route (429 past it).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteLimit {
    /// Requests allowed per `per`.
    pub requests: u32,
    /// The period.
    pub per: Dur,
    /// Requests a source may make at once above the rate (default:
    /// `requests`).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// A byte count: an integer, or a string with a binary unit (`"64k"`,
/// `"10MiB"`, `"1m"`: k, m, g = 1024, 1024², 1024³; an optional `b`/`ib`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"1024"`, `"64k"`, `"64KiB"`, `"10MB"`, `"1g"`.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size (e.g. 1048576, \"64k\", \"10MiB\")"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => return Err(format!("{s:?}: unknown unit (use k, m or g)")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// CORS for a route: the proxy answers preflights itself and sets the
/// response headers (the application's own `Access-Control-*` headers are
/// replaced).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Allowed origins (`scheme://host[:port]`), or `["*"]` for any origin
    /// (never together with `credentials`).
    pub origins: Vec<String>,
    /// Allowed methods (default GET, HEAD, POST).
    pub methods: Vec<String>,
    /// Allowed request headers, besides the CORS-safelisted ones.
    pub headers: Vec<String>,
    /// Response headers the page may read (`Access-Control-Expose-Headers`).
    pub expose_headers: Vec<String>,
    /// Cookies and credentials allowed.
    pub credentials: bool,
    /// How long a browser may cache a preflight answer.
    pub max_age: Option<Dur>,
}

/// One `[[routes]]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// A glob on the canonical path (`*` matches any run of characters,
    /// `/` included; everything else literal), as everywhere in the config.
    pub path: String,
    /// Methods accepted (405 with `Allow` otherwise); absent: any.
    pub methods: Option<Vec<String>>,
    /// The challenge on this route.
    pub challenge: RouteChallenge,
    /// Per-source request limits on this route.
    pub rate_limits: Vec<RouteLimit>,
    /// The largest request body accepted on this route (413 past it); not
    /// the inspection limit (`[detect.limits] max_body`).
    pub max_body: Option<ByteSize>,
    /// CORS for this route.
    pub cors: Option<CorsConfig>,
    /// Hours the route is open, `"08:00-18:00"` (an end before the start
    /// wraps past midnight); absent: all day.
    pub hours: Option<String>,
    /// Days the route is open (`mon` .. `sun`); absent: every day.
    pub days: Option<Vec<String>>,
    /// The time zone of `hours` and `days` (IANA name; default UTC).
    pub timezone: Option<String>,
    /// Forwarded without inspection (nor challenge): health checks, static
    /// files. Only when every reading of the path matches and nothing
    /// voids exemptions.
    pub exempt: bool,
}
