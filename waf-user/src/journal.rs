//! The daemon's journal: an append-only JSON-lines file in `state_dir` that
//! records every ban, unban, list change made through the API, and mode
//! change, so a restart (or a reboot, which empties the kernel maps)
//! restores exactly what was in force. Times are Unix seconds (wall clock),
//! which survive reboots; the kernel's clock does not.
//!
//! On start the journal is replayed, then rewritten as a compact snapshot
//! (written to a temporary file and renamed into place, so a crash never
//! leaves a half-written journal).

use std::{
    collections::{BTreeMap, HashMap},
    fs::{File, OpenOptions},
    io::{BufRead as _, BufReader, BufWriter, Write as _},
    path::{Path, PathBuf},
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Who made a ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum BanSource {
    /// An operator (API or CLI).
    Manual,
    /// The detection engine (HTTP attacks).
    Detection,
    /// Rate-limit strikes from the XDP program.
    RateLimit,
    /// `waf import`.
    Import,
    /// Found in the pinned kernel map with no journal record (written by a
    /// daemon that died before journaling it).
    Adopted,
}

impl BanSource {
    /// The kernel's reason code for this source.
    pub fn code(self) -> u32 {
        use waf_common::ban_reason as r;
        match self {
            Self::Manual | Self::Adopted => r::MANUAL,
            Self::Detection => r::DETECTION,
            Self::RateLimit => r::RATE_LIMIT,
            Self::Import => r::IMPORT,
        }
    }

    /// Name as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Detection => "detection",
            Self::RateLimit => "rate-limit",
            Self::Import => "import",
            Self::Adopted => "adopted",
        }
    }
}

/// A ban as the daemon knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ban {
    /// The banned address (host prefix) or prefix.
    pub net: IpNet,
    /// Why, in words.
    pub reason: String,
    /// Who made it.
    pub source: BanSource,
    /// When (Unix seconds).
    pub created: u64,
    /// Until when (Unix seconds); None: permanent.
    pub expires: Option<u64>,
    /// Which offence of this source it is (1 = first): drives escalation.
    pub offence: u32,
}

/// A list entry added through the API (config entries come from the config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRecord {
    /// The network.
    pub net: IpNet,
    /// Free text from the operator.
    #[serde(default)]
    pub comment: String,
    /// When (Unix seconds).
    pub created: u64,
}

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// The allowlist.
    Allow,
    /// The blocklist.
    Block,
}

/// Escalation memory of one source: how many bans it had, and when the
/// last one ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offences {
    /// Bans so far.
    pub count: u32,
    /// When the last ban ends or ended (Unix seconds; 0: permanent).
    pub last_end: u64,
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Record {
    /// A ban was made or updated.
    Ban(Ban),
    /// A ban was lifted (by an operator, or because it expired).
    Unban {
        /// The network.
        net: IpNet,
    },
    /// An entry was added to a list.
    ListAdd {
        /// Which list.
        list: ListKind,
        /// The entry.
        entry: ListRecord,
    },
    /// An entry was removed from a list.
    ListRemove {
        /// Which list.
        list: ListKind,
        /// The network.
        net: IpNet,
    },
    /// Escalation memory of a source.
    History {
        /// The source.
        net: IpNet,
        /// Its offences.
        offences: Offences,
    },
    /// Modes set through the API (override the config's until changed).
    Mode {
        /// Monitor mode.
        monitor: Option<bool>,
        /// Emergency mode.
        emergency: Option<bool>,
    },
}

/// Everything the journal remembers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Bans in force (possibly expired since; the caller sweeps).
    pub bans: BTreeMap<IpNet, Ban>,
    /// Allowlist entries added through the API.
    pub allow: BTreeMap<IpNet, ListRecord>,
    /// Blocklist entries added through the API.
    pub block: BTreeMap<IpNet, ListRecord>,
    /// Escalation memory.
    pub history: HashMap<IpNet, Offences>,
    /// Monitor mode override.
    pub monitor: Option<bool>,
    /// Emergency mode override.
    pub emergency: Option<bool>,
}

impl Snapshot {
    /// Applies one record.
    pub fn apply(&mut self, r: Record) {
        match r {
            Record::Ban(b) => {
                self.bans.insert(b.net, b);
            }
            Record::Unban { net } => {
                self.bans.remove(&net);
            }
            Record::ListAdd { list, entry } => {
                self.list_mut(list).insert(entry.net, entry);
            }
            Record::ListRemove { list, net } => {
                self.list_mut(list).remove(&net);
            }
            Record::History { net, offences } => {
                self.history.insert(net, offences);
            }
            Record::Mode { monitor, emergency } => {
                if monitor.is_some() {
                    self.monitor = monitor;
                }
                if emergency.is_some() {
                    self.emergency = emergency;
                }
            }
        }
    }

    fn list_mut(&mut self, list: ListKind) -> &mut BTreeMap<IpNet, ListRecord> {
        match list {
            ListKind::Allow => &mut self.allow,
            ListKind::Block => &mut self.block,
        }
    }

    /// The records that rebuild this snapshot.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        if self.monitor.is_some() || self.emergency.is_some() {
            out.push(Record::Mode {
                monitor: self.monitor,
                emergency: self.emergency,
            });
        }
        for e in self.allow.values() {
            out.push(Record::ListAdd {
                list: ListKind::Allow,
                entry: e.clone(),
            });
        }
        for e in self.block.values() {
            out.push(Record::ListAdd {
                list: ListKind::Block,
                entry: e.clone(),
            });
        }
        for (net, o) in &self.history {
            out.push(Record::History {
                net: *net,
                offences: *o,
            });
        }
        for b in self.bans.values() {
            out.push(Record::Ban(b.clone()));
        }
        out
    }
}

/// The open journal.
pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
    /// Records appended since the last compaction.
    pub appended: u64,
}

/// What reading a journal found besides the snapshot.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Lines replayed.
    pub records: u64,
    /// Lines that could not be parsed (skipped, counted, logged): e.g. the
    /// torn last line of a crash.
    pub bad_lines: Vec<(u64, String)>,
}

impl Journal {
    /// The journal file in `state_dir`.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("journal.jsonl")
    }

    /// Reads `state_dir`'s journal (none yet: an empty snapshot), rewrites it
    /// compacted, and opens it for appending.
    pub fn open(state_dir: &Path) -> std::io::Result<(Self, Snapshot, ReplayReport)> {
        std::fs::create_dir_all(state_dir)?;
        let path = Self::path_in(state_dir);
        let mut snap = Snapshot::default();
        let mut report = ReplayReport::default();
        match File::open(&path) {
            Ok(f) => {
                for (i, line) in BufReader::new(f).lines().enumerate() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Record>(&line) {
                        Ok(r) => {
                            snap.apply(r);
                            report.records += 1;
                        }
                        Err(e) => report.bad_lines.push((i as u64 + 1, e.to_string())),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Rewrite only when replaying found dead weight (lifted bans,
        // superseded records, unreadable lines): a journal that is already
        // compact is left alone, which keeps start-up fast.
        let live = snap.records().len() as u64;
        if report.records > live + live / 4 + 64 || !report.bad_lines.is_empty() || live == 0 {
            Self::write_snapshot(&path, &snap)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok((
            Self {
                path,
                out: BufWriter::new(f),
                appended: 0,
            },
            snap,
            report,
        ))
    }

    fn write_snapshot(path: &Path, snap: &Snapshot) -> std::io::Result<()> {
        let tmp = path.with_extension("jsonl.tmp");
        {
            let mut w = BufWriter::new(File::create(&tmp)?);
            for r in snap.records() {
                serde_json::to_writer(&mut w, &r)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Appends one record (written through to the OS at once; `sync` makes
    /// it durable across power loss).
    pub fn append(&mut self, r: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, r)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        self.appended += 1;
        Ok(())
    }

    /// Appends many records with one flush.
    pub fn append_all<'a>(
        &mut self,
        rs: impl IntoIterator<Item = &'a Record>,
    ) -> std::io::Result<()> {
        for r in rs {
            serde_json::to_writer(&mut self.out, r)?;
            self.out.write_all(b"\n")?;
            self.appended += 1;
        }
        self.out.flush()
    }

    /// fsyncs what was appended.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// Rewrites the journal as `snap` and continues appending to it.
    pub fn compact(&mut self, snap: &Snapshot) -> std::io::Result<()> {
        self.out.flush()?;
        Self::write_snapshot(&self.path, snap)?;
        let f = OpenOptions::new().append(true).open(&self.path)?;
        self.out = BufWriter::new(f);
        self.appended = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("waf-journal-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn ban(net: &str, expires: Option<u64>) -> Ban {
        Ban {
            net: net.parse().unwrap(),
            reason: "test".into(),
            source: BanSource::Manual,
            created: 1_700_000_000,
            expires,
            offence: 1,
        }
    }

    #[test]
    fn replays_compacts_and_survives_a_torn_line() {
        let dir = tmpdir("replay");
        {
            let (mut j, snap, _) = Journal::open(&dir).unwrap();
            assert_eq!(snap, Snapshot::default());
            j.append(&Record::Ban(ban("192.0.2.1/32", None))).unwrap();
            j.append(&Record::Ban(ban("2001:db8::/64", Some(1_800_000_000))))
                .unwrap();
            j.append(&Record::Ban(ban("192.0.2.2/32", None))).unwrap();
            j.append(&Record::Unban {
                net: "192.0.2.2/32".parse().unwrap(),
            })
            .unwrap();
            j.append(&Record::ListAdd {
                list: ListKind::Allow,
                entry: ListRecord {
                    net: "10.0.0.0/8".parse().unwrap(),
                    comment: "office".into(),
                    created: 1,
                },
            })
            .unwrap();
            j.append(&Record::Mode {
                monitor: None,
                emergency: Some(true),
            })
            .unwrap();
        }
        // A crash in the middle of a write leaves a torn last line.
        let path = Journal::path_in(&dir);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"op\":\"ban\",\"net\":\"19");
        std::fs::write(&path, text).unwrap();

        let (_, snap, report) = Journal::open(&dir).unwrap();
        assert_eq!(report.bad_lines.len(), 1);
        assert_eq!(snap.bans.len(), 2);
        assert!(snap.bans.contains_key(&"2001:db8::/64".parse().unwrap()));
        assert!(!snap.bans.contains_key(&"192.0.2.2/32".parse().unwrap()));
        assert_eq!(snap.allow.len(), 1);
        assert_eq!(snap.emergency, Some(true));
        // Compacted: one line per live fact, and the torn line is gone.
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 4, "mode + allow + 2 bans");
        let (_, again, report) = Journal::open(&dir).unwrap();
        assert!(report.bad_lines.is_empty());
        assert_eq!(again, snap);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
