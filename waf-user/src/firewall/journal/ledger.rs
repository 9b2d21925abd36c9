//! The ban ledger: one JSON line for every ban made on this host or applied
//! from the fleet (imports and entries adopted from the kernel map are not
//! events and are left out), appended by the journal's writer thread to
//! `bans.ledger` in the state directory, which is renamed `bans.ledger.1`
//! once it would pass [`MAX_BYTES`] (so the two hold at most twice that).
//!
//! The journal forgets a ban once it has ended (compaction keeps only the
//! state in force); the ledger keeps what was banned, when and why for the
//! last days, which `waf report` reads. It is an account, not state:
//! written with the journal's batches and synced with them, but a failed
//! write is counted and logged, never a reason to refuse a ban.
//!
//! A line: `{"created":1780000000,"expires":1780003600,"offence":2,
//! "source":"detection","net":"203.0.113.9/32","reason":"...","origin":"h"}`
//! (`expires` 0: permanent; `origin` only for fleet bans). A ban updated
//! in place (extended) is written again with the same `net` and `created`.

use std::{
    fs::{self, File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::firewall::types::{Ban, BanSource};

/// The current file.
pub const FILE: &str = "bans.ledger";
/// The previous file.
pub const OLD: &str = "bans.ledger.1";
/// The size at which the current file is rotated.
pub const MAX_BYTES: u64 = 8 << 20;
/// The longest line read (longer ones are skipped as unreadable).
pub const MAX_LINE: usize = 4096;
/// The longest reason written (longer ones are cut at a character).
pub const MAX_REASON: usize = 512;

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the ban was made (Unix seconds).
    pub created: u32,
    /// When it ends (0: permanent).
    pub expires: u32,
    /// Which offence of its source it was (1 = first).
    pub offence: u16,
    /// Who made it (`detection`, `rate-limit`, `manual`, `fleet`).
    pub source: String,
    /// The banned prefix.
    pub net: String,
    /// Why.
    pub reason: String,
    /// The fleet host that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// Whether a ban record is written to the ledger.
pub fn wants(b: &Ban) -> bool {
    !matches!(b.meta.source, BanSource::Import | BanSource::Adopted)
}

/// Appends the ledger line of `b` to `out`.
pub fn line(out: &mut Vec<u8>, b: &Ban) {
    let mut reason: &str = &b.meta.reason;
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason = &reason[..end];
    }
    let e = Entry {
        created: b.meta.created,
        expires: b.meta.expires,
        offence: b.meta.offence,
        source: b.meta.source.as_str().to_string(),
        net: b.net.to_string(),
        reason: reason.to_string(),
        origin: b.meta.origin.name().map(|n| n.to_string()),
    };
    if serde_json::to_writer(&mut *out, &e).is_ok() {
        out.push(b'\n');
    }
}

/// The ledger as the writer thread holds it: opened at the first write.
pub struct Writer {
    dir: PathBuf,
    file: Option<File>,
    size: u64,
    /// Writes that failed.
    pub errors: u64,
}

impl Writer {
    /// The ledger of the state directory `dir`.
    pub fn new(dir: &Path) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            file: None,
            size: 0,
            errors: 0,
        }
    }

    /// Appends `bytes` (whole lines), rotating first if they would take the
    /// file past [`MAX_BYTES`].
    pub fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Err(e) = self.try_write(bytes) {
            self.file = None;
            self.errors += 1;
            if self.errors == 1 || self.errors.is_power_of_two() {
                tracing::warn!(error = %e, errors = self.errors, "ban ledger: write failed (bans are unaffected)");
            }
        }
    }

    fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(FILE);
        if self.file.is_none() {
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        if self.size > 0 && self.size + bytes.len() as u64 > MAX_BYTES {
            self.file = None;
            fs::rename(&path, self.dir.join(OLD))?;
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            self.size = 0;
            self.file = Some(f);
        }
        if let Some(f) = &mut self.file {
            f.write_all(bytes)?;
            self.size += bytes.len() as u64;
        }
        Ok(())
    }

    /// Syncs what was written (with the journal's group commit).
    pub fn sync(&mut self) {
        if let Some(f) = &self.file {
            let _ = f.sync_data();
        }
    }
}

/// What reading the ledger found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines read, at most `MAX_LINE` bytes long (in the window or not).
    pub lines: u64,
    /// Lines that did not parse, or were too long.
    pub unreadable: u64,
}

/// Hands every entry made at or after `since` to `visit`, oldest file
/// first. Missing files read as empty; a read error ends a file.
pub fn read(dir: &Path, since: u32, mut visit: impl FnMut(Entry)) -> ReadStats {
    let mut st = ReadStats::default();
    for name in [OLD, FILE] {
        let Ok(f) = File::open(dir.join(name)) else {
            continue;
        };
        let _ = crate::values::each_line(f, MAX_LINE, |line| {
            st.lines += u64::from(line.is_some());
            // Too long, damaged, or torn (a crash mid-write): counted.
            let Some(Ok(e)) = line.map(serde_json::from_slice::<Entry>) else {
                st.unreadable += 1;
                return;
            };
            if e.created >= since {
                visit(e);
            }
        });
    }
    st
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::firewall::types::{BanMeta, Origin};

    fn ban(net: &str, created: u32, source: BanSource, reason: &str) -> Ban {
        Ban {
            net: net.parse().unwrap(),
            meta: BanMeta {
                created,
                expires: created + 600,
                offence: 2,
                source,
                reason: Arc::from(reason),
                origin: Origin::NONE,
            },
        }
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("waf-ledger-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_back_what_it_wrote_and_rotates_within_its_bound() {
        let dir = temp("rotate");
        let mut w = Writer::new(&dir);
        let reason = "sqli \"quoted\"\nnewline ünï";
        let mut n = 0u32;
        // Enough lines to rotate twice: the oldest file is dropped.
        while n < 200_000 {
            let mut out = Vec::new();
            for _ in 0..1000 {
                line(
                    &mut out,
                    &ban("203.0.113.9/32", 1_000 + n, BanSource::Detection, reason),
                );
                n += 1;
            }
            w.write(&out);
        }
        w.sync();
        let total: u64 = [FILE, OLD]
            .iter()
            .map(|f| fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
            .sum();
        assert!(total <= 2 * MAX_BYTES, "{total}");
        let mut got = Vec::new();
        let st = read(&dir, 0, |e| got.push(e.created));
        assert_eq!(st.unreadable, 0);
        assert!(got.len() > 50_000, "{}", got.len());
        // Oldest first, contiguous, ending at the newest.
        assert!(got.windows(2).all(|p| p[1] == p[0] + 1));
        assert_eq!(*got.last().unwrap(), 1_000 + n - 1);
        let mut first = None;
        read(&dir, 1_000 + n - 1, |e| first = Some(e));
        let e = first.unwrap();
        assert_eq!(
            (e.reason.as_str(), e.source.as_str()),
            (reason, "detection")
        );
        assert_eq!(
            (e.net.as_str(), e.offence, e.expires),
            ("203.0.113.9/32", 2, e.created + 600)
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn imports_and_adopted_entries_are_not_events() {
        assert!(wants(&ban("192.0.2.1/32", 1, BanSource::Manual, "x")));
        assert!(wants(&ban("192.0.2.1/32", 1, BanSource::Fleet, "x")));
        assert!(!wants(&ban("192.0.2.1/32", 1, BanSource::Import, "x")));
        assert!(!wants(&ban("192.0.2.1/32", 1, BanSource::Adopted, "x")));
    }

    #[test]
    fn long_reasons_are_cut_at_a_character() {
        let mut out = Vec::new();
        line(
            &mut out,
            &ban("2001:db8::1/128", 5, BanSource::Manual, &"é".repeat(600)),
        );
        let e: Entry = serde_json::from_slice(&out).unwrap();
        assert!(e.reason.len() <= MAX_REASON && e.reason.chars().all(|c| c == 'é'));
    }

    proptest! {
        #[test]
        fn damaged_files_never_panic_and_keep_good_lines(
            junk in proptest::collection::vec(any::<u8>(), 0..3000), at in any::<usize>(),
        ) {
            let dir = temp(&format!("junk{}", at % 1000));
            let mut good = Vec::new();
            line(&mut good, &ban("198.51.100.7/32", 77, BanSource::RateLimit, "rate"));
            let mut bytes = good.clone();
            let cut = at % (junk.len() + 1);
            bytes.extend_from_slice(&junk[..cut]);
            bytes.push(b'\n');
            bytes.extend_from_slice(&good);
            bytes.extend_from_slice(&junk[cut..]);
            fs::write(dir.join(FILE), &bytes).unwrap();
            let mut n = 0;
            read(&dir, 0, |e| { n += 1; assert_eq!(e.created, 77); });
            prop_assert!(n >= 1);
            let _ = fs::remove_dir_all(&dir);
        }
    }
}
