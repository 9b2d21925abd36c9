//! What every list, ban and source policy says about one address, and the
//! verdict the XDP program gives it (`waf lookup`, `GET /v1/lookup/{addr}`):
//! the program's order of checks, read from the published view.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{types::ListKind, view::View};
use crate::sources::SourceLookup;

/// A list entry covering the address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ListHit {
    /// The entry.
    #[schema(value_type = String)]
    pub cidr: IpNet,
    /// Where it comes from: `api`, `config`, a list file.
    pub origin: String,
}

/// A ban covering the address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BanHit {
    /// The banned address or prefix.
    #[schema(value_type = String)]
    pub net: IpNet,
    /// Why.
    pub reason: String,
    /// Expiry (Unix seconds), none: permanent.
    pub expires: Option<u64>,
}

/// The rate state the kernel keeps for the address's source key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RateHit {
    /// Packets seen in the current one-second window.
    pub window_packets: u32,
    /// Packets seen in the previous window.
    pub previous_packets: u32,
    /// Packets dropped since the last rate event.
    pub dropped: u32,
}

/// What everything says of one address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Lookup {
    /// The address asked about.
    #[schema(value_type = String)]
    pub address: IpAddr,
    /// What XDP does with its packets: `pass`, `drop`, `would_drop`
    /// (monitor mode, or a policy in monitor mode), `drop_on` (bogons:
    /// only on the interfaces named in `sources.policy.only_on`).
    pub verdict: String,
    /// Why: `allowlisted`, `emergency`, `banned`, `blocklisted`,
    /// `source_policy`, `none` (then only the rate limits apply).
    pub reason: String,
    /// The longest allowlist entry covering it.
    pub allowlist: Option<ListHit>,
    /// The longest blocklist entry covering it.
    pub blocklist: Option<ListHit>,
    /// The longest ban covering it.
    pub ban: Option<BanHit>,
    /// What the source policies say (absent: none configured).
    #[schema(value_type = Option<Object>)]
    pub sources: Option<SourceLookup>,
    /// The kernel's rate state for it, if it is tracked.
    pub rate: Option<RateHit>,
}

/// The longest entry of list `kind` covering `addr`.
fn list_hit(v: &View, kind: ListKind, addr: IpAddr) -> Option<ListHit> {
    v.list(kind)
        .into_iter()
        .filter(|e| e.cidr.contains(&addr))
        .max_by_key(|e| e.cidr.prefix_len())
        .map(|e| ListHit {
            cidr: e.cidr,
            origin: e.origin,
        })
}

/// The longest ban covering `addr`: one map lookup per prefix length.
fn ban_hit(v: &View, addr: IpAddr) -> Option<BanHit> {
    let max = IpNet::from(addr).max_prefix_len();
    (0..=max).rev().find_map(|len| {
        let net = IpNet::new(addr, len).ok()?.trunc();
        let b = v.ban(&net)?;
        Some(BanHit {
            net,
            reason: b.meta.reason.to_string(),
            expires: b.meta.expires_at(),
        })
    })
}

/// What the view says of `addr`, in the XDP program's order (rate state
/// is the caller's: it lives in the kernel).
pub fn lookup(v: &View, addr: IpAddr) -> Lookup {
    let allowlist = list_hit(v, ListKind::Allow, addr);
    let blocklist = list_hit(v, ListKind::Block, addr);
    let ban = ban_hit(v, addr);
    let sources = v.sources.as_ref().map(|p| p.lookup(addr));
    let policy = sources.as_ref().and_then(|s| s.policy.as_ref());
    let drop = if v.modes.monitor {
        "would_drop"
    } else {
        "drop"
    };
    let (verdict, reason) = if allowlist.is_some() {
        ("pass", "allowlisted")
    } else if v.modes.emergency {
        (drop, "emergency")
    } else if ban.is_some() {
        (drop, "banned")
    } else if blocklist.is_some() {
        (drop, "blocklisted")
    } else if let Some(p) = policy {
        if p.monitor {
            ("would_drop", "source_policy")
        } else if !p.only_on.is_empty() {
            (
                if v.modes.monitor { drop } else { "drop_on" },
                "source_policy",
            )
        } else {
            (drop, "source_policy")
        }
    } else {
        ("pass", "none")
    };
    Lookup {
        address: addr,
        verdict: verdict.into(),
        reason: reason.into(),
        allowlist,
        blocklist,
        ban,
        sources,
        rate: None,
    }
}
