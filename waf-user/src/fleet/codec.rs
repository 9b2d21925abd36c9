//! The shared bans' wire format: one key per banned address or prefix (the
//! address in the NATS key alphabet: `:` as `-`, `/` as `_`) and a JSON
//! value with the ban's reason, source, origin host and times. Expiry
//! travels in the value (nats-server 2.9 has no per-key TTL): every host
//! expires bans itself.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{
    firewall::{Ban, BanSource, FleetBan, StrikeKind},
    values::{parse_net, show_net},
};

/// The bucket key of a ban on `net`: `198.51.100.7`, `203.0.113.0_24`,
/// `2001-db8--_64`.
pub fn key_of(net: &IpNet) -> String {
    show_net(net)
        .chars()
        .map(|c| match c {
            ':' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// The address or prefix a bucket key names; None for a key that is not
/// one ([`key_of`] reversed).
pub fn net_of(key: &str) -> Option<IpNet> {
    if key.len() > 64 || key.contains([':', '/']) {
        return None;
    }
    let text: String = key
        .chars()
        .map(|c| match c {
            '-' => ':',
            '_' => '/',
            c => c,
        })
        .collect();
    let net = parse_net(&text).ok()?;
    // Canonical keys only: one key per ban, whoever wrote it.
    (key_of(&net) == key).then_some(net)
}

/// A ban as the bucket holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SharedBan {
    /// Address or prefix (as people read it).
    pub addr: String,
    /// Why.
    pub reason: String,
    /// What made it on its origin host (`manual`, `detection`, ...).
    pub source: BanSource,
    /// The host that made it.
    pub origin: String,
    /// When (Unix seconds).
    pub created: u64,
    /// Until when (Unix seconds); 0: permanent.
    pub expires: u64,
    /// Which offence of the source on its origin host.
    pub offence: u32,
}

impl SharedBan {
    /// The value for a ban this host (`node`) made.
    pub fn of(ban: &Ban, node: &str) -> Self {
        Self {
            addr: show_net(&ban.net),
            reason: ban.meta.reason.to_string(),
            source: ban.meta.source,
            origin: node.to_string(),
            created: u64::from(ban.meta.created),
            expires: u64::from(ban.meta.expires),
            offence: u32::from(ban.meta.offence),
        }
    }

    /// The ban as the firewall applies it on another host (`adopt`: in
    /// place of that host's own ban, which lost the race for the key).
    pub fn into_fleet_ban(self, net: IpNet, adopt: bool) -> FleetBan {
        FleetBan {
            net,
            expires: self.expires,
            reason: self.reason,
            origin: self.origin,
            offence: self.offence.min(u32::from(u16::MAX)) as u16,
            adopt,
        }
    }

    /// Whether it ran out by `now` (Unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        self.expires != 0 && self.expires <= now
    }

    /// The JSON bytes.
    pub fn encode(&self) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a value; an error says what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() > 4096 {
            return Err(format!("{} bytes: more than a ban takes", b.len()));
        }
        serde_json::from_slice(b).map_err(|e| e.to_string())
    }
}

/// The subjects of strikes shared in `bucket`'s fleet: one per source,
/// `waf.strikes.<bucket>.<key>`.
pub fn strikes_subject(bucket: &str, net: Option<&IpNet>) -> String {
    match net {
        Some(n) => format!("waf.strikes.{bucket}.{}", key_of(n)),
        None => format!("waf.strikes.{bucket}.>"),
    }
}

/// A strike another host counted, as it goes on the wire (the source is in
/// the subject).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SharedStrike {
    /// The host that counted it.
    pub node: String,
    /// What for.
    pub kind: StrikeKind,
}

impl SharedStrike {
    /// The source and the strike of a message on `subject` (under
    /// [`strikes_subject`] of `bucket`); an error says what is wrong.
    pub fn decode(bucket: &str, subject: &str, b: &[u8]) -> Result<(IpNet, Self), String> {
        let prefix = format!("waf.strikes.{bucket}.");
        let key = subject
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("subject {subject:?} is not a strike's"))?;
        let net = net_of(key).ok_or_else(|| format!("{key:?} names no source"))?;
        if b.len() > 256 {
            return Err(format!("{} bytes: more than a strike takes", b.len()));
        }
        let s: Self = serde_json::from_slice(b).map_err(|e| e.to_string())?;
        if s.node.is_empty() || s.node.len() > 64 {
            return Err("no node, or a node name longer than 64 bytes".into());
        }
        Ok((net, s))
    }

    /// The JSON bytes.
    pub fn encode(&self) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::firewall::BanMeta;

    #[test]
    fn keys_round_trip_and_are_valid_nats_keys() {
        for (text, key) in [
            ("198.51.100.7", "198.51.100.7"),
            ("203.0.113.0/24", "203.0.113.0_24"),
            ("2001:db8::/64", "2001-db8--_64"),
            ("2001:db8::1", "2001-db8--1"),
            ("::ffff:192.0.2.1", "--ffff-192.0.2.1"),
        ] {
            let net = parse_net(text).unwrap();
            assert_eq!(key_of(&net), key);
            assert_eq!(net_of(key), Some(net));
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    && !key.starts_with('.')
                    && !key.ends_with('.')
            );
        }
        for bad in [
            "",
            "x",
            "198.51.100.7_32",
            "2001-DB8--1",
            "1.2.3.4/8",
            "a.b",
        ] {
            assert_eq!(net_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_round_trip() {
        let ban = Ban {
            net: parse_net("2001:db8::/64").unwrap(),
            meta: BanMeta {
                created: 10,
                expires: 0,
                offence: 2,
                source: BanSource::RateLimit,
                reason: Arc::from("rate_pps: 900"),
                origin: crate::firewall::Origin::NONE,
            },
        };
        let v = SharedBan::of(&ban, "a");
        let back = SharedBan::decode(&v.encode()).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.source, BanSource::RateLimit);
        assert!(!back.expired(u64::MAX));
        assert!(SharedBan::decode(b"{}").is_err());
        assert!(SharedBan::decode(b"not json").is_err());
    }

    #[test]
    fn strikes_round_trip_and_bad_ones_are_refused() {
        let net = parse_net("2001:db8:1::/64").unwrap();
        let subject = strikes_subject("waf-bans", Some(&net));
        assert_eq!(subject, "waf.strikes.waf-bans.2001-db8-1--_64");
        let s = SharedStrike {
            node: "a".into(),
            kind: StrikeKind::Detection,
        };
        let (n, back) = SharedStrike::decode("waf-bans", &subject, &s.encode()).unwrap();
        assert_eq!((n, back), (net, s.clone()));
        let v4 = strikes_subject("b", Some(&parse_net("192.0.2.9").unwrap()));
        assert!(SharedStrike::decode("b", &v4, &s.encode()).is_ok());
        for (bucket, subject, body) in [
            ("other", subject.as_str(), s.encode().to_vec()),
            ("waf-bans", "waf.strikes.waf-bans.x", s.encode().to_vec()),
            ("waf-bans", subject.as_str(), b"{}".to_vec()),
            (
                "waf-bans",
                subject.as_str(),
                br#"{"node":"","kind":"detection"}"#.to_vec(),
            ),
            ("waf-bans", subject.as_str(), vec![b' '; 300]),
        ] {
            assert!(
                SharedStrike::decode(bucket, subject, &body).is_err(),
                "{subject} {body:?}"
            );
        }
    }
}
