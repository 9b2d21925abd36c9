//! Source policies in the kernel: the compiled prefixes of `[sources]`
//! written into the source-policy set, swapped without a gap, and the
//! interfaces bogons are dropped on.

use std::sync::Arc;

use ipnet::IpNet;
use waf_common::SourceEntry;

use super::{bans::Firewall, error::FirewallError};
use crate::{dataplane::DataplaneError, sources::SourcePolicy};

impl Firewall {
    /// Puts `policy` in force (None: no source policy), through
    /// `CidrSet::replace`: the new prefixes go in before the old ones
    /// leave, so at every moment an address has the old verdict or the new
    /// one, never neither; when the set cannot hold both at once, the stale
    /// prefixes leave first (logged).
    /// Refused, with the policy in force unchanged, when the new one does
    /// not fit the set, names an interface that does not exist, or is an
    /// allow-only policy while the allowlist is empty.
    pub(super) fn set_sources(
        &mut self,
        policy: Option<Arc<SourcePolicy>>,
    ) -> Result<(), FirewallError> {
        let want: &[(IpNet, SourceEntry)] = policy.as_deref().map_or(&[], |p| p.entries());
        if let Some(p) = &policy
            && !p.config().allow_countries.is_empty()
            && self.protect.is_empty()
        {
            return Err(FirewallError::AllowOnlyLockout);
        }
        let ifaces: Vec<u32> = match &policy {
            Some(p) => p
                .bogon_interfaces()
                .iter()
                .map(|name| {
                    nix::net::if_::if_nametoindex(name.as_str()).map_err(|e| {
                        DataplaneError::Invalid(format!(
                            "sources.block_bogons names interface {name:?}: {e}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        // Too many for the set (refused before any write) or a trie found
        // full: say which key sizes it; any other error as it is.
        let r = self.dp.maps.sources.replace(want).map_err(|e| match e {
            DataplaneError::Invalid(_) | DataplaneError::MapFull { .. } => {
                DataplaneError::Invalid(format!(
                    "the source policies do not fit ({e}): raise [capacity] sources / sources_v6"
                ))
            }
            other => other,
        })?;
        if r.gap {
            tracing::warn!(
                removed = r.removed,
                "the source-policy set could not hold the old and the new policy at once: \
                 the old prefixes left before the new ones came in"
            );
        }
        // Bogon interfaces: the new ones in, then the others out.
        let map = &mut self.dp.maps.bogon_ifaces;
        for i in &ifaces {
            map.insert(i, 1, 0).map_err(|source| DataplaneError::Map {
                name: waf_common::map_names::SRC_IFACES,
                source,
            })?;
        }
        let old: Vec<u32> = map.keys().filter_map(Result::ok).collect();
        for i in old.into_iter().filter(|i| !ifaces.contains(i)) {
            let _ = map.remove(&i);
        }
        tracing::info!(
            prefixes = want.len(),
            written = r.written,
            removed = r.removed,
            "source policies in force"
        );
        self.sources = policy;
        Ok(())
    }
}
