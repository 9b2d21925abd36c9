//! The firewall's journal in `state_dir`: a binary snapshot plus append-only
//! log segments, so a restart (or a reboot, which empties the kernel maps)
//! restores exactly what was in force.
//!
//! - The owner encodes records into a batch buffer ([`Journal::append`]) and
//!   hands each batch to the writer thread ([`Journal::commit`]), which
//!   writes it, runs one `fdatasync` for everything queued (group commit),
//!   and only then acknowledges the batch's callers. No fsync ever runs on
//!   an async worker or on the owner's thread.
//! - When the log outgrows the snapshot, [`Journal::compact`] starts a new
//!   segment and writes a snapshot of the state as of that point in a
//!   background thread (the state is a persistent map: the copy is O(1));
//!   segments the snapshot covers are then deleted.
//! - At start, the snapshot is read and the later segments replayed. A
//!   damaged frame (a torn tail after a crash) ends its segment: what
//!   follows it there is skipped and counted, never fatal. A journal of the
//!   earlier JSON format is migrated once.
//! - Every ban made is also appended, after its batch is acknowledged, to
//!   the ban ledger ([`ledger`]), which keeps ended bans for reports.

pub mod codec;
pub mod ledger;
mod legacy;
mod snapshot;
mod writer;

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

use self::codec::Frame;
pub use self::codec::Record;
use super::state::State;

/// What is called once a committed batch is durable (or failed to be).
pub type Ack = Box<dyn FnOnce(Result<(), String>) + Send>;

/// What reading the journal found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReplayReport {
    /// Bans read from the snapshot.
    pub snapshot_bans: u64,
    /// Log records replayed after it.
    pub records: u64,
    /// Log segments read.
    pub segments: u64,
    /// Damaged places (each ends its file's reading), with what was lost.
    pub damaged: Vec<String>,
    /// Bytes skipped after damage.
    pub skipped_bytes: u64,
    /// Records migrated from a journal of the earlier JSON format.
    pub migrated_v1: Option<u64>,
}

/// Errors and progress the writer and the compactor report.
#[derive(Debug, Default)]
pub struct JournalHealth {
    /// Failed writes, syncs or snapshots.
    pub errors: AtomicU64,
    /// The last failure, for the alarm.
    pub last_error: Mutex<Option<String>>,
    /// Snapshots written.
    pub snapshots: AtomicU64,
}

impl JournalHealth {
    fn fail(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %what, "journal");
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }
}

/// The open journal (owned by the firewall's owner).
pub struct Journal {
    dir: PathBuf,
    seq: u64,
    buf: Vec<u8>,
    /// The batch's bans for the ledger (see [`ledger`]): written out by
    /// the writer thread, off the owner's.
    ledger: Vec<crate::firewall::types::Ban>,
    tx: mpsc::Sender<writer::Msg>,
    writer: Option<JoinHandle<()>>,
    /// The writer until its thread starts (at the first commit: no thread
    /// exists before the daemon has dropped its capabilities).
    idle: Option<(writer::Writer, mpsc::Receiver<writer::Msg>)>,
    /// Log bytes written since the snapshot.
    log_bytes: u64,
    snapshot_bytes: Arc<AtomicU64>,
    compacting: Arc<AtomicBool>,
    health: Arc<JournalHealth>,
}

const SNAPSHOT: &str = "snapshot.bin";
const LEGACY: &str = "journal.jsonl";

/// The log segment file of number `seq`.
fn segment(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("journal-{seq:010}.log"))
}

/// The segment numbers in `dir`, ascending.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let Some(n) = name.to_str() else { continue };
        if let Some(seq) = n
            .strip_prefix("journal-")
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Journal {
    /// Reads `state_dir`'s journal (none yet: an empty state), and opens a
    /// new log segment for what comes next.
    pub fn open(dir: &Path) -> io::Result<(Self, State, ReplayReport)> {
        std::fs::create_dir_all(dir)?;
        let mut report = ReplayReport::default();
        let legacy = dir.join(LEGACY);
        let snap_path = dir.join(SNAPSHOT);
        let (mut state, covered, snap_bytes) = if !snap_path.exists() && legacy.exists() {
            let (state, n) = legacy::migrate(&legacy)?;
            report.migrated_v1 = Some(n);
            let bytes = snapshot::write(dir, 0, &state)?;
            std::fs::rename(&legacy, dir.join("journal.jsonl.migrated"))?;
            sync_dir(dir);
            (state, 0, bytes)
        } else {
            snapshot::read(&snap_path, &mut report)?
        };
        report.snapshot_bans = state.bans.len() as u64;
        let mut log_bytes = 0;
        let mut last = covered;
        for seq in segments(dir)? {
            if seq <= covered {
                let _ = std::fs::remove_file(segment(dir, seq));
                continue;
            }
            log_bytes += replay_segment(&segment(dir, seq), &mut state, &mut report)?;
            report.segments += 1;
            last = seq;
        }
        // Never append after a possibly torn tail: a fresh segment.
        let seq = last + 1;
        let health = Arc::new(JournalHealth::default());
        let (tx, rx) = mpsc::channel();
        let file = writer::open_segment(&segment(dir, seq))?;
        sync_dir(dir);
        let w = writer::Writer {
            dir: dir.to_path_buf(),
            file,
            health: health.clone(),
            ledger: ledger::Writer::new(dir),
        };
        Ok((
            Self {
                dir: dir.to_path_buf(),
                seq,
                buf: Vec::with_capacity(64 * 1024),
                ledger: Vec::new(),
                tx,
                writer: None,
                idle: Some((w, rx)),
                log_bytes,
                snapshot_bytes: Arc::new(AtomicU64::new(snap_bytes)),
                compacting: Arc::new(AtomicBool::new(false)),
                health,
            },
            state,
            report,
        ))
    }

    /// Encodes `r` into the current batch.
    pub fn append(&mut self, r: &Record) {
        codec::write_record(&mut self.buf, r);
        if let Record::Ban(b) = r
            && ledger::wants(b)
        {
            self.ledger.push(b.clone());
        }
    }

    /// Bytes appended since the last commit.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Starts the writer's thread if it has not started yet.
    fn start_writer(&mut self) {
        let Some((w, rx)) = self.idle.take() else {
            return;
        };
        match std::thread::Builder::new()
            .name("waf-journal".into())
            .spawn(move || w.run(rx))
        {
            Ok(h) => self.writer = Some(h),
            Err(e) => self
                .health
                .fail(format!("starting the journal writer: {e}")),
        }
    }

    /// Hands the batch to the writer; `acks` run once it is durable (after
    /// everything committed before it).
    pub fn commit(&mut self, acks: Vec<Ack>) {
        if self.buf.is_empty() && acks.is_empty() {
            return;
        }
        self.start_writer();
        self.log_bytes += self.buf.len() as u64;
        let bytes = std::mem::replace(&mut self.buf, Vec::with_capacity(64 * 1024));
        let ledger = std::mem::take(&mut self.ledger);
        if let Err(mpsc::SendError(writer::Msg::Batch { acks, .. })) =
            self.tx.send(writer::Msg::Batch {
                bytes,
                ledger,
                acks,
            })
        {
            self.health.fail("the journal writer has stopped".into());
            for a in acks {
                a(Err("the journal writer has stopped".into()));
            }
        }
    }

    /// Whether the log has outgrown the snapshot enough to rewrite it.
    pub fn wants_compaction(&self) -> bool {
        let snap = self.snapshot_bytes.load(Ordering::Relaxed);
        !self.compacting.load(Ordering::Relaxed)
            && self.log_bytes > (4 << 20)
            && self.log_bytes > snap
    }

    /// Starts a new segment and writes a snapshot of `state` (the state
    /// after everything committed so far) in the background; the segments
    /// it covers are deleted once it is durable.
    pub fn compact(&mut self, state: State) {
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let covered = self.seq;
        self.seq += 1;
        self.log_bytes = 0;
        let _ = self
            .tx
            .send(writer::Msg::Rotate(segment(&self.dir, self.seq)));
        let dir = self.dir.clone();
        let done = self.compacting.clone();
        let health = self.health.clone();
        let bytes = self.snapshot_bytes.clone();
        let spawned = std::thread::Builder::new()
            .name("waf-snapshot".into())
            .spawn(move || {
                match snapshot::write(&dir, covered, &state) {
                    Ok(n) => {
                        bytes.store(n, Ordering::Relaxed);
                        health.snapshots.fetch_add(1, Ordering::Relaxed);
                        if let Ok(all) = segments(&dir) {
                            for s in all.into_iter().filter(|s| *s <= covered) {
                                let _ = std::fs::remove_file(segment(&dir, s));
                            }
                        }
                    }
                    Err(e) => health.fail(format!("writing the snapshot: {e}")),
                }
                done.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            self.health
                .fail(format!("starting the snapshot writer: {e}"));
            self.compacting.store(false, Ordering::Release);
        }
    }

    /// Whether a snapshot is being written now.
    pub fn compacting(&self) -> bool {
        self.compacting.load(Ordering::Relaxed)
    }

    /// Errors and snapshots so far.
    pub fn health(&self) -> &Arc<JournalHealth> {
        &self.health
    }

    /// Blocks until everything committed so far is durable.
    pub fn flush(&mut self) {
        let (tx, rx) = mpsc::channel();
        self.commit(vec![Box::new(move |r| {
            let _ = tx.send(r);
        })]);
        let _ = rx.recv();
    }

    /// Blocks until a compaction in progress is done (tests, shutdown).
    pub fn wait_compaction(&self) {
        while self.compacting.load(Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Bytes the journal takes on disk now.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| {
                        let n = e.file_name();
                        let n = n.to_string_lossy();
                        n == SNAPSHOT || (n.starts_with("journal-") && n.ends_with(".log"))
                    })
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.idle.is_some() && self.buf.is_empty() {
            return;
        }
        self.flush();
        let _ = self.tx.send(writer::Msg::Stop);
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
        self.wait_compaction();
    }
}

/// Replays one segment into `state`; returns its size.
fn replay_segment(path: &Path, state: &mut State, report: &mut ReplayReport) -> io::Result<u64> {
    let buf = std::fs::read(path)?;
    let mut at = 0;
    loop {
        match codec::next_frame(&buf, at) {
            Frame::End => break,
            Frame::Good(payload, next) => {
                match codec::decode_record(payload) {
                    Ok(r) => {
                        state.apply(r);
                        report.records += 1;
                    }
                    Err(e) => report
                        .damaged
                        .push(format!("{} at byte {at}: {e}", path.display())),
                }
                at = next;
            }
            Frame::Damaged => {
                let lost = buf.len() - at;
                report.skipped_bytes += lost as u64;
                report.damaged.push(format!(
                    "{} at byte {at}: damaged frame, {lost} bytes skipped",
                    path.display()
                ));
                break;
            }
        }
    }
    Ok(buf.len() as u64)
}

#[cfg(test)]
mod tests;
