//! Reads a journal of the earlier format (`journal.jsonl`, one JSON record a
//! line) so it can be migrated once into the binary journal. Unreadable
//! lines are skipped and logged, as that format's reader did.

use std::{
    io::{self, BufRead as _, BufReader},
    path::Path,
    sync::Arc,
};

use ipnet::IpNet;
use serde::Deserialize;

use super::codec::Record;
use crate::firewall::{
    state::State,
    types::{Ban, BanMeta, BanSource, ListKind, ListRecord, Offences},
};

#[derive(Deserialize)]
struct V1Ban {
    net: IpNet,
    reason: String,
    source: BanSource,
    created: u64,
    expires: Option<u64>,
    offence: u32,
}

#[derive(Deserialize)]
struct V1List {
    net: IpNet,
    #[serde(default)]
    comment: String,
    created: u64,
}

#[derive(Deserialize)]
struct V1Offences {
    count: u32,
    last_end: u64,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum V1 {
    Ban(V1Ban),
    Unban {
        net: IpNet,
    },
    ListAdd {
        list: ListKind,
        entry: V1List,
    },
    ListRemove {
        list: ListKind,
        net: IpNet,
    },
    History {
        net: IpNet,
        offences: V1Offences,
    },
    Mode {
        monitor: Option<bool>,
        emergency: Option<bool>,
    },
}

fn t32(t: u64) -> u32 {
    t.min(u64::from(u32::MAX)) as u32
}

fn convert(r: V1) -> Record {
    match r {
        V1::Ban(b) => Record::Ban(Ban {
            net: b.net.trunc(),
            meta: BanMeta {
                created: t32(b.created),
                expires: b.expires.map(|e| t32(e).max(1)).unwrap_or(0),
                offence: b.offence.min(u32::from(u16::MAX)) as u16,
                source: b.source,
                reason: Arc::from(b.reason.as_str()),
                origin: crate::firewall::Origin::NONE,
            },
        }),
        V1::Unban { net } => Record::Unban(net.trunc()),
        V1::ListAdd { list, entry } => Record::ListAdd(
            list,
            entry.net.trunc(),
            ListRecord {
                comment: Arc::from(entry.comment.as_str()),
                created: t32(entry.created),
            },
        ),
        V1::ListRemove { list, net } => Record::ListRemove(list, net.trunc()),
        V1::History { net, offences } => Record::History(
            net.trunc(),
            Offences {
                count: offences.count.min(u32::from(u16::MAX)) as u16,
                last_end: t32(offences.last_end),
                recent: [0; 4],
            },
        ),
        V1::Mode { monitor, emergency } => Record::Mode { monitor, emergency },
    }
}

/// Reads the JSON-lines journal at `path` into a state; returns it and the
/// number of records read.
pub fn migrate(path: &Path) -> io::Result<(State, u64)> {
    let f = std::fs::File::open(path)?;
    let mut state = State::default();
    let mut n = 0;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(line = i + 1, "skipped a journal line that is not UTF-8");
                continue;
            }
            Err(e) => return Err(e),
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<V1>(&line) {
            Ok(r) => {
                let r = convert(r);
                // A ban's offence lived in history records too; the ban
                // itself now carries it while it is in force.
                if let Record::Ban(b) = &r {
                    state.history.remove(&b.net);
                }
                state.apply(r);
                n += 1;
            }
            Err(e) => {
                tracing::warn!(line = i + 1, error = %e, "skipped an unreadable journal line")
            }
        }
    }
    // Escalation memory of sources still banned lives in their bans.
    let banned: Vec<IpNet> = state
        .history
        .keys()
        .filter(|k| state.bans.contains_key(*k))
        .copied()
        .collect();
    for k in banned {
        state.history.remove(&k);
    }
    Ok((state, n))
}
