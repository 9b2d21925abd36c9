//! The journal's snapshot file: every fact of a [`State`] as framed records
//! (reasons numbered once, bans in address order), written beside and
//! renamed into place, so a crash leaves the old snapshot or the new one,
//! never half of one.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufWriter, Write as _},
    path::Path,
    sync::Arc,
};

use imbl::OrdMap;
use ipnet::IpNet;

use super::{
    ReplayReport,
    codec::{self, Frame, SnapRecord},
    sync_dir,
};
use crate::firewall::{state::State, types::BanMeta};

/// Writes `state` as the snapshot covering log segments up to `seq`;
/// returns its size in bytes.
pub fn write(dir: &Path, seq: u64, state: &State) -> io::Result<u64> {
    let path = dir.join(super::SNAPSHOT);
    let tmp = dir.join("snapshot.bin.tmp");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut buf = Vec::with_capacity(256);
    let count = std::cell::Cell::new(0u64);
    let mut put = |w: &mut BufWriter<File>, r: &SnapRecord| -> io::Result<()> {
        buf.clear();
        codec::write_snap(&mut buf, r);
        count.set(count.get() + 1);
        w.write_all(&buf)
    };
    put(&mut w, &SnapRecord::Header { seq })?;
    let mut reasons: HashMap<&str, u32> = HashMap::new();
    for (net, meta) in state.bans.iter() {
        let next = reasons.len() as u32;
        let id = match reasons.get(&*meta.reason) {
            Some(id) => *id,
            None => {
                reasons.insert(&meta.reason, next);
                put(&mut w, &SnapRecord::Reason(next, meta.reason.clone()))?;
                next
            }
        };
        put(&mut w, &SnapRecord::Ban(*net, meta.clone(), id))?;
    }
    for r in state.other_records() {
        put(&mut w, &SnapRecord::State(r))?;
    }
    let n = count.get();
    put(&mut w, &SnapRecord::End(n))?;
    w.flush()?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    let bytes = f.metadata()?.len();
    drop(f);
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir);
    Ok(bytes)
}

/// Reads the snapshot at `path` (none: an empty state covering nothing).
/// Returns the state, the last log segment it covers, and its size. Damage
/// ends the reading where it is, counted in `report`.
pub fn read(path: &Path, report: &mut ReplayReport) -> io::Result<(State, u64, u64)> {
    let buf = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((State::default(), 0, 0)),
        Err(e) => return Err(e),
    };
    let mut state = State::default();
    let mut reasons: Vec<Arc<str>> = Vec::new();
    let mut bans: Vec<(IpNet, BanMeta)> = Vec::new();
    let mut seq = None;
    let mut count = 0u64;
    let mut ended = false;
    let mut at = 0;
    let damage = |report: &mut ReplayReport, at: usize, what: &str| {
        report.skipped_bytes += (buf.len() - at) as u64;
        report
            .damaged
            .push(format!("{} at byte {at}: {what}", path.display()));
    };
    loop {
        let (payload, next) = match codec::next_frame(&buf, at) {
            Frame::End => break,
            Frame::Damaged => {
                damage(report, at, "damaged frame");
                break;
            }
            Frame::Good(p, next) => (p, next),
        };
        let rec = match codec::decode_snap(payload) {
            Ok(r) => r,
            Err(e) => {
                damage(report, at, &e.to_string());
                break;
            }
        };
        match rec {
            SnapRecord::Header { seq: s } if seq.is_none() => seq = Some(s),
            _ if seq.is_none() => {
                damage(report, at, "no header");
                break;
            }
            SnapRecord::Header { .. } => {
                damage(report, at, "a second header");
                break;
            }
            SnapRecord::Reason(id, text) if id as usize == reasons.len() => reasons.push(text),
            SnapRecord::Reason(..) => {
                damage(report, at, "reasons out of order");
                break;
            }
            SnapRecord::Ban(net, mut meta, id) => {
                let Some(r) = reasons.get(id as usize) else {
                    damage(report, at, "a ban with an unknown reason");
                    break;
                };
                meta.reason = r.clone();
                bans.push((net, meta));
            }
            SnapRecord::State(r) => state.apply(r),
            SnapRecord::End(n) => {
                if n != count {
                    damage(report, at, "record count does not match");
                }
                ended = true;
                break;
            }
        }
        count += 1;
        at = next;
    }
    if !ended && report.damaged.is_empty() {
        damage(report, at, "snapshot cut short (no end record)");
    }
    // Written in address order: the tree is built without a search per ban.
    state.bans = bans.into_iter().collect::<OrdMap<_, _>>();
    Ok((state, seq.unwrap_or(0), buf.len() as u64))
}
