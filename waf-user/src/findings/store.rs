//! The findings store: segment files in `state_dir/findings/`, each named
//! by the id of its first record, written by one thread of its own (the
//! proxy queues records and never waits: a full queue drops and counts),
//! with the oldest segments deleted past the cap. Read newest first, a
//! page at a time, from the files (readers never talk to the writer),
//! through an index of blocks of records that readers build from the files
//! ([`index`]): a page reads the blocks below its cursor that can hold a
//! match, not whole segments.

mod index;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fs,
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
};

use self::index::{Block, SegmentIndex, Step};
use super::{
    codec::{self, End},
    record::{Filter, FindingRecord},
};

/// Records the queue holds before it drops (a few seconds at 10k/minute,
/// far more under a burst).
const QUEUE: usize = 16_384;
/// Segments in a full store (the cap is spread over this many files).
const SEGMENTS: u64 = 8;
/// The smallest segment.
const MIN_SEGMENT: u64 = 64 * 1024;
/// The file name suffix of a segment.
const SUFFIX: &str = ".seg";

/// What the store counts (shown in `/v1/stats` and `/metrics`).
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Records written.
    pub written: AtomicU64,
    /// Records dropped because the writer fell behind.
    pub dropped: AtomicU64,
    /// Segment files found damaged when read (the rest of each skipped).
    pub corrupt: AtomicU64,
    /// Write errors (disk full, permissions).
    pub write_errors: AtomicU64,
}

/// The store: a sender to the writer thread, and the reader of the files.
pub struct Store {
    reader: Arc<Reader>,
    tx: mpsc::SyncSender<FindingRecord>,
    /// Counters.
    pub stats: Arc<StoreStats>,
}

/// The segments of a directory, by first id, oldest first.
fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let id = name.to_str()?.strip_suffix(SUFFIX)?.parse::<u64>().ok()?;
            Some((id, e.path()))
        })
        .collect();
    out.sort_unstable_by_key(|(id, _)| *id);
    out
}

/// Reads at most `max` bytes of a file (a missing file reads as empty: the
/// writer may have deleted it since the listing).
fn read_capped(path: &Path, max: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(max).read_to_end(&mut buf);
    }
    buf
}

impl Store {
    /// Opens (creates) the store in `dir` with a cap of `max_bytes`, and
    /// starts its writer. A torn last record (a crash mid-write) is cut off.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Store> {
        fs::create_dir_all(dir)?;
        let segment_max = (max_bytes / SEGMENTS).max(MIN_SEGMENT);
        let stats = Arc::new(StoreStats::default());
        let mut next_id = 1;
        if let Some((first, path)) = segments(dir).pop() {
            let d = codec::decode(&read_capped(&path, MAX_SEGMENT_READ));
            if d.end != End::Clean {
                tracing::warn!(segment = %path.display(), end = ?d.end, "findings store: cut a damaged tail");
                if d.end == End::Corrupt {
                    stats.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(d.valid_len as u64)?;
            }
            next_id = d.records.last().map_or(first, |r| r.id + 1).max(first);
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let mut w = Writer {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_max,
            next_id,
            file: None,
            stats: stats.clone(),
        };
        std::thread::Builder::new()
            .name("waf-findings".into())
            .spawn(move || w.run(rx))?;
        let reader = Arc::new(Reader::new(dir, stats.clone()));
        // Index what is on disk now, so the first filtered page is quick.
        let warm = reader.clone();
        std::thread::Builder::new()
            .name("waf-findings-index".into())
            .spawn(move || drop(warm.refresh()))?;
        Ok(Store { reader, tx, stats })
    }

    /// Queues records (numbered by the writer); never waits.
    pub fn record(&self, records: Vec<FindingRecord>) {
        for r in records {
            if self.tx.try_send(r).is_err() {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Up to `limit` records that pass `filter`, newest first, with ids
    /// below `before`; and the cursor of the next page (None: no more).
    pub fn page(
        &self,
        filter: &Filter,
        limit: usize,
        before: Option<u64>,
    ) -> (Vec<FindingRecord>, Option<u64>) {
        self.reader.page(filter, limit, before)
    }

    /// The record with this id, if the store still holds it.
    pub fn get(&self, id: u64) -> Option<FindingRecord> {
        let (mut found, _) = self.page(&Filter::default(), 1, id.checked_add(1));
        found.pop().filter(|r| r.id == id)
    }

    /// Hands every record at or after `since_ms` to `visit`, newest
    /// first, at most `max`; answers how many, and whether `max` cut the
    /// walk short (for reports).
    pub fn scan(
        &self,
        since_ms: u64,
        max: usize,
        mut visit: impl FnMut(&FindingRecord),
    ) -> (u64, bool) {
        let (mut n, mut capped) = (0u64, false);
        let since = Filter {
            since_ms: Some(since_ms),
            ..Filter::default()
        };
        self.reader.walk(
            None,
            |b| index::page_step(&since, b),
            |r| {
                if r.time_ms < since_ms {
                    return false;
                }
                if n as usize >= max {
                    capped = true;
                    return false;
                }
                n += 1;
                visit(&r);
                true
            },
        );
        (n, capped)
    }
}

/// The read side: the segment files and their index (see [`index`]),
/// shared by every reader; the writer never touches it.
pub struct Reader {
    dir: PathBuf,
    index: Mutex<HashMap<u64, Arc<SegmentIndex>>>,
    stats: Arc<StoreStats>,
}

/// Reads `len` bytes at `at` (fewer when the file is shorter now).
fn read_at(file: &fs::File, at: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt as _;
    let mut buf = vec![0; len.min(MAX_SEGMENT_READ) as usize];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.truncate(got);
    buf
}

impl Reader {
    /// A reader of the segments in `dir`; `stats` counts damage met.
    pub fn new(dir: &Path, stats: Arc<StoreStats>) -> Reader {
        Reader {
            dir: dir.to_path_buf(),
            index: Mutex::default(),
            stats,
        }
    }

    fn damaged(&self, path: &Path) {
        self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(segment = %path.display(), "findings store: a damaged segment (the rest of it skipped)");
    }

    /// The segments now, oldest first, each with its index brought up to
    /// the file's length (the bytes appended since the last call are read;
    /// a file shorter than its index is indexed again).
    pub fn refresh(&self) -> Vec<(u64, PathBuf, Arc<SegmentIndex>)> {
        let segs = segments(&self.dir);
        let mut map = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|first, _| segs.iter().any(|(f, _)| f == first));
        let mut out = Vec::with_capacity(segs.len());
        for (first, path) in segs {
            let Ok(file) = fs::File::open(&path) else {
                continue;
            };
            let len = file.metadata().map_or(0, |m| m.len()).min(MAX_SEGMENT_READ);
            let entry = map.entry(first).or_default();
            if len < entry.indexed {
                *entry = Arc::default();
            }
            if !entry.damaged && len > entry.indexed {
                let tail = read_at(&file, entry.indexed, len - entry.indexed);
                if Arc::make_mut(entry).extend(&tail) {
                    self.damaged(&path);
                }
            }
            out.push((first, path, entry.clone()));
        }
        out
    }

    /// Up to `limit` records that pass `filter`, newest first, with ids
    /// below `before`, and the next page's cursor: what a scan of every
    /// decoded segment would give, reading only the blocks that can hold
    /// them.
    pub fn page(
        &self,
        filter: &Filter,
        limit: usize,
        before: Option<u64>,
    ) -> (Vec<FindingRecord>, Option<u64>) {
        let mut out = Vec::new();
        let mut next = None;
        self.walk(
            before,
            |b| index::page_step(filter, b),
            |r| {
                if filter.since_ms.is_some_and(|t| r.time_ms < t) {
                    return false;
                }
                if filter.matches(&r) {
                    if out.len() == limit {
                        next = out.last().map(|l: &FindingRecord| l.id);
                        return false;
                    }
                    out.push(r);
                }
                true
            },
        );
        (out, next)
    }

    /// Hands each record with an id below `before` to `visit`, newest
    /// first, until it answers false, reading the blocks `step` lets
    /// through (one block in memory at a time). A block that no longer
    /// decodes as indexed (damaged since) ends its segment and is indexed
    /// again on the next call.
    pub fn walk(
        &self,
        before: Option<u64>,
        mut step: impl FnMut(&Block) -> Step,
        mut visit: impl FnMut(FindingRecord) -> bool,
    ) {
        let before = before.unwrap_or(u64::MAX);
        for (first, path, idx) in self.refresh().into_iter().rev() {
            if first >= before {
                continue;
            }
            let Ok(file) = fs::File::open(&path) else {
                continue;
            };
            for b in idx.blocks.iter().rev() {
                if b.min_id >= before {
                    continue;
                }
                match step(b) {
                    Step::Skip => continue,
                    Step::Stop => return,
                    Step::Read => {}
                }
                let d = codec::decode(&read_at(&file, b.start, b.end - b.start));
                let changed = d.end != End::Clean || d.records.len() != b.count as usize;
                if changed {
                    self.damaged(&path);
                    self.index
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&first);
                }
                for r in d.records.into_iter().rev() {
                    if r.id < before && !visit(r) {
                        return;
                    }
                }
                if changed {
                    break;
                }
            }
        }
    }
}

/// The most read of one segment (a segment is at most 512 MiB, the largest
/// cap over [`SEGMENTS`]).
const MAX_SEGMENT_READ: u64 = 600 << 20;

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    max_bytes: u64,
    segment_max: u64,
    next_id: u64,
    /// The segment being appended to, and its size.
    file: Option<(std::io::BufWriter<fs::File>, u64)>,
    stats: Arc<StoreStats>,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<FindingRecord>) {
        while let Ok(r) = rx.recv() {
            self.write(r);
            while let Ok(more) = rx.try_recv() {
                self.write(more);
            }
            if let Some((f, _)) = &mut self.file
                && f.flush().is_err()
            {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                self.file = None;
            }
        }
    }

    fn write(&mut self, mut r: FindingRecord) {
        r.id = self.next_id;
        let frame = codec::encode(&r);
        if self
            .file
            .as_ref()
            .is_some_and(|(_, size)| size + frame.len() as u64 > self.segment_max)
        {
            if let Some((mut f, _)) = self.file.take() {
                let _ = f.flush();
            }
            self.prune();
        }
        if self.file.is_none() {
            self.file = self.open_segment();
        }
        let Some((f, size)) = &mut self.file else {
            self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if f.write_all(&frame).is_err() {
            self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
            self.file = None;
            return;
        }
        *size += frame.len() as u64;
        self.next_id += 1;
        self.stats.written.fetch_add(1, Ordering::Relaxed);
    }

    /// The newest segment if it has room, else a new one named by the next id.
    fn open_segment(&mut self) -> Option<(std::io::BufWriter<fs::File>, u64)> {
        let last = segments(&self.dir).pop();
        let path = match last {
            Some((_, p))
                if fs::metadata(&p).map(|m| m.len()).unwrap_or(u64::MAX) < self.segment_max =>
            {
                p
            }
            _ => self.dir.join(format!("{:020}{SUFFIX}", self.next_id)),
        };
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok()?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        Some((std::io::BufWriter::with_capacity(64 * 1024, f), size))
    }

    /// Deletes the oldest segments while the store is over its cap (the
    /// newest is always kept).
    fn prune(&self) {
        let segs = segments(&self.dir);
        let sizes: Vec<u64> = segs
            .iter()
            .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .collect();
        // Room for the segment about to start.
        let mut total: u64 = sizes.iter().sum::<u64>() + self.segment_max;
        for ((_, path), size) in segs.iter().zip(&sizes).take(segs.len().saturating_sub(1)) {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(path).is_ok() {
                total -= size;
            }
        }
    }
}
