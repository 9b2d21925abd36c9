//! Other hosts' strikes into this host's windows: a subscription to every
//! source's strike subject of the bucket's fleet; each message from
//! another host becomes an owner op that counts in the window (it never
//! bans by itself). Messages arrive in bursts; each burst is one owner
//! command. Bad messages are counted and dropped.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt as _;

use super::{
    FleetLink, bump,
    codec::{SharedStrike, strikes_subject},
};
use crate::firewall::{Handle, fleet::FleetOp};

/// Strike messages handed to the owner in one command at most.
const CHUNK: usize = 1024;

/// Follows other hosts' strikes for as long as the daemon runs.
pub(super) async fn run(link: Arc<FleetLink>, client: async_nats::Client, fw: Handle) {
    let subject = strikes_subject(&link.cfg.bucket, None);
    loop {
        match client.subscribe(subject.clone()).await {
            Ok(sub) => {
                let mut sub = sub.ready_chunks(CHUNK);
                while let Some(msgs) = sub.next().await {
                    let ops: Vec<FleetOp> = msgs
                        .iter()
                        .filter_map(|m| link.strike_op(m.subject.as_str(), &m.payload))
                        .collect();
                    if ops.is_empty() {
                        continue;
                    }
                    let n = ops.len() as u64;
                    match fw.fleet(ops).await {
                        Ok(_) => {
                            link.counters
                                .strikes_received
                                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => {
                            bump(&link.counters.errors);
                            tracing::error!(error = %e, "fleet: the firewall did not take other hosts' strikes");
                        }
                    }
                }
                tracing::warn!("fleet: the strikes subscription ended; subscribing again");
            }
            Err(e) => {
                bump(&link.counters.errors);
                tracing::warn!(error = %e, "fleet: cannot subscribe to the fleet's strikes; retrying");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl FleetLink {
    /// The op for one strike message; None for this host's own or a bad
    /// one (counted).
    fn strike_op(&self, subject: &str, payload: &[u8]) -> Option<FleetOp> {
        match SharedStrike::decode(&self.cfg.bucket, subject, payload) {
            Ok((_, s)) if s.node == self.cfg.node => None,
            Ok((net, s)) => Some(FleetOp::Strike {
                source: net.addr(),
                kind: s.kind,
            }),
            Err(e) => {
                bump(&self.counters.strikes_bad);
                tracing::debug!(subject, error = %e, "fleet: a strike message that is no strike; ignored");
                None
            }
        }
    }
}
