//! The journal's writer thread: appends batches to the current log segment,
//! one `fdatasync` for all batches queued together (group commit), then
//! runs their acknowledgements.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
};

use super::{Ack, JournalHealth, sync_dir};

/// What the owner sends the writer.
pub enum Msg {
    /// Encoded records, and who to tell when they are durable.
    Batch {
        /// The records.
        bytes: Vec<u8>,
        /// Their bans for the ban ledger.
        ledger: Vec<crate::firewall::types::Ban>,
        /// Run after the sync.
        acks: Vec<Ack>,
    },
    /// Close the current segment (synced) and continue in this one.
    Rotate(PathBuf),
    /// Sync and stop.
    Stop,
}

/// Opens (creating) a segment for appending.
pub fn open_segment(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer's state.
pub struct Writer {
    /// The journal directory (synced after a new segment appears).
    pub dir: PathBuf,
    /// The current segment.
    pub file: File,
    /// Where failures are reported.
    pub health: Arc<JournalHealth>,
    /// The ban ledger.
    pub ledger: super::ledger::Writer,
}

impl Writer {
    /// Runs until `Stop` or until the owner's side is gone.
    pub fn run(mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            let mut msgs = vec![first];
            while let Ok(m) = rx.try_recv() {
                msgs.push(m);
            }
            let mut acks: Vec<Ack> = Vec::new();
            let mut ledger = Vec::new();
            let mut dirty = false;
            let mut failed: Option<String> = None;
            let mut stop = false;
            for m in msgs {
                match m {
                    Msg::Batch {
                        bytes,
                        ledger: l,
                        acks: a,
                    } => {
                        ledger.extend(l);
                        if !bytes.is_empty() {
                            if let Err(e) = self.file.write_all(&bytes) {
                                failed = Some(format!("writing the log: {e}"));
                            }
                            dirty = true;
                        }
                        acks.extend(a);
                    }
                    Msg::Rotate(path) => {
                        if dirty && let Err(e) = self.file.sync_data() {
                            failed = Some(format!("syncing the log: {e}"));
                        }
                        dirty = false;
                        match open_segment(&path) {
                            Ok(f) => {
                                self.file = f;
                                sync_dir(&self.dir);
                            }
                            Err(e) => {
                                failed = Some(format!("opening {}: {e}", path.display()));
                            }
                        }
                    }
                    Msg::Stop => stop = true,
                }
            }
            if dirty && let Err(e) = self.file.sync_data() {
                failed = Some(format!("syncing the log: {e}"));
            }
            if let Some(f) = &failed {
                self.health.fail(f.clone());
            }
            for a in acks {
                a(match &failed {
                    None => Ok(()),
                    Some(f) => Err(f.clone()),
                });
            }
            // After the acknowledgements, and not synced on its own: the
            // ledger is an account, never on a ban's critical path.
            if !ledger.is_empty() {
                let mut lines = Vec::with_capacity(ledger.len() * 160);
                for b in &ledger {
                    super::ledger::line(&mut lines, b);
                }
                self.ledger.write(&lines);
            }
            if stop {
                break;
            }
        }
    }
}
