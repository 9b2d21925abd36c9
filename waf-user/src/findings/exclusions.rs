//! Exclusions added at run time: rule id × path glob (on the canonical
//! path) × parameter name, any one left out for "any" but never all three.
//! Validated strictly, compiled with the same matcher as the config's
//! (`detect::ExclusionSet`), published by an atomic swap (the next request
//! sees them, no restart), and kept in `state_dir/exclusions.json`, written
//! whole to a temporary file, synced and renamed over the old one. The
//! config file is never written; `draft` gives the TOML lines an operator
//! may paste into it.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::record::FindingRecord;
use crate::{
    detect::{Exclusion, ExclusionSet},
    values::{check_text, unix_now},
};

/// Runtime exclusions kept at most.
pub const MAX_EXCLUSIONS: usize = 1000;
/// Longest rule id or glob.
pub const MAX_RULE: usize = 64;
/// Longest path glob.
pub const MAX_PATH: usize = 256;
/// Longest parameter name or glob.
pub const MAX_PARAM: usize = 128;
/// Longest comment.
pub const MAX_COMMENT: usize = 256;

/// An exclusion as an operator asks for it (`POST /v1/exclusions`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExclusionSpec {
    /// Rule id or id glob (`sqli-union`, `sqli-*`); absent: any rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64, pattern = r"^[A-Za-z0-9_.*-]+$")]
    pub rule: Option<String>,
    /// Glob on the canonical path (`/search`, `/api/*`: `*` matches any
    /// run of characters, `/` included); absent: any path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = r"^/[!-~]*$")]
    pub path: Option<String>,
    /// Parameter, header or cookie name, or a glob of one (`q`,
    /// `$.user.*`); absent: any place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128, pattern = r"^[A-Za-z0-9_.$@*:\[\]-]+$")]
    pub param: Option<String>,
    /// Why (free text, no control characters).
    #[serde(default)]
    #[schema(max_length = 256)]
    pub comment: String,
}

/// An exclusion in force that an operator added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeExclusion {
    /// Its id (`DELETE /v1/exclusions/{id}`).
    pub id: u64,
    /// Rule id or glob; absent: any rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Glob on the canonical path; absent: any path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Parameter name or glob; absent: any place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Why.
    #[serde(default)]
    pub comment: String,
    /// When it was added (Unix seconds).
    pub created: u64,
}

impl RuntimeExclusion {
    /// What it excludes.
    pub fn spec(&self) -> ExclusionSpec {
        ExclusionSpec {
            rule: self.rule.clone(),
            path: self.path.clone(),
            param: self.param.clone(),
            comment: self.comment.clone(),
        }
    }
}

fn charset(what: &str, v: &str, max: usize, ok: impl Fn(char) -> bool) -> Result<(), String> {
    if v.is_empty() || v.len() > max {
        return Err(format!(
            "{what}: 1 to {max} characters (got {}); leave it out to match any",
            v.len()
        ));
    }
    if let Some(c) = v.chars().find(|&c| !ok(c)) {
        return Err(format!("{what}: the character {c:?} is not allowed"));
    }
    if v.chars().all(|c| c == '*') {
        return Err(format!(
            "{what}: `{v}` matches anything; leave it out instead"
        ));
    }
    Ok(())
}

impl ExclusionSpec {
    /// Checks lengths, characters and globs; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.rule.is_none() && self.path.is_none() && self.param.is_none() {
            return Err(
                "give at least one of rule, path and param (all three left out \
                        would turn detection off)"
                    .into(),
            );
        }
        if let Some(r) = &self.rule {
            charset("rule", r, MAX_RULE, |c| {
                c.is_ascii_alphanumeric() || "_.*-".contains(c)
            })?;
        }
        if let Some(p) = &self.path {
            charset("path", p, MAX_PATH, |c| {
                c.is_ascii_graphic() && !"\"'\\`;#?".contains(c)
            })?;
            if !p.starts_with('/') {
                return Err(format!(
                    "path: `{p}` must start with `/` (a canonical path)"
                ));
            }
            if p[1..].chars().all(|c| c == '*') && self.rule.is_none() && self.param.is_none() {
                return Err(format!(
                    "path: `{p}` matches every path; with no rule and no param it would \
                     turn detection off"
                ));
            }
            crate::http::PathGlob::new(p).map_err(|e| format!("path: {e}"))?;
        }
        if let Some(p) = &self.param {
            charset("param", p, MAX_PARAM, |c| {
                c.is_ascii_alphanumeric() || "_.$@*:[]-".contains(c)
            })?;
        }
        check_text("comment", &self.comment, MAX_COMMENT)
    }

    /// The config's form of the exclusion (a parameter `p` is the location
    /// glob `*:p`: any part of the request).
    pub fn to_detect(&self) -> Exclusion {
        Exclusion {
            path: self.path.clone(),
            location: self.param.as_ref().map(|p| format!("*:{p}")),
            rule: self.rule.clone(),
            kind: None,
        }
    }

    /// The TOML lines that add this exclusion to the config file, written by
    /// the toml crate (every value quoted and escaped by it).
    pub fn toml(&self) -> String {
        #[derive(Serialize)]
        struct Entry {
            #[serde(skip_serializing_if = "Option::is_none")]
            rule: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            path: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            location: Option<String>,
        }
        #[derive(Serialize)]
        struct Detect {
            exclusions: Vec<Entry>,
        }
        #[derive(Serialize)]
        struct Doc {
            detect: Detect,
        }
        let e = self.to_detect();
        let doc = Doc {
            detect: Detect {
                exclusions: vec![Entry {
                    rule: e.rule,
                    path: e.path,
                    location: e.location,
                }],
            },
        };
        toml::to_string(&doc).unwrap_or_default()
    }
}

/// What to leave out when drafting from a finding.
#[derive(Clone, Copy, Debug, Default)]
pub struct Widen {
    /// Any rule.
    pub any_rule: bool,
    /// Any path.
    pub any_path: bool,
    /// Any parameter.
    pub any_param: bool,
}

/// The exclusion that would stop a finding: its rule, at its path, in its
/// parameter (each left out as `widen` asks). Refused when a value from
/// the request holds a `*` (it would widen the glob) or a character the
/// grammar refuses: the operator then writes that field by hand.
pub fn draft(f: &FindingRecord, widen: Widen) -> Result<ExclusionSpec, String> {
    let pick = |any: bool, v: &str, what: &str| -> Result<Option<String>, String> {
        if any || v.is_empty() {
            return Ok(None);
        }
        if v.contains('*') {
            return Err(format!(
                "the finding's {what} holds a `*`, which would widen the glob; write the \
                 exclusion by hand"
            ));
        }
        Ok(Some(v.to_string()))
    };
    let spec = ExclusionSpec {
        rule: pick(widen.any_rule, &f.rule, "rule")?,
        path: pick(widen.any_path, &f.path, "path")?,
        param: pick(widen.any_param, &f.param, "param")?,
        comment: format!("from finding {}", f.id),
    };
    spec.validate()
        .map_err(|e| format!("the finding cannot be drafted as is ({e}); write it by hand"))?;
    Ok(spec)
}

/// The file's form.
#[derive(Serialize, Deserialize, Default)]
struct File {
    next_id: u64,
    exclusions: Vec<RuntimeExclusion>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExclusionError {
    /// The exclusion is invalid (a 400).
    #[error("{0}")]
    Invalid(String),
    /// No exclusion has this id (a 404).
    #[error("no runtime exclusion {0}")]
    NotFound(u64),
    /// The list is full (a 507).
    #[error("at most {MAX_EXCLUSIONS} runtime exclusions; delete some first")]
    Full,
    /// Writing the file failed (a 500; nothing changed).
    #[error("writing {0}: {1}")]
    Io(String, std::io::Error),
}

/// The runtime exclusions: the list (changed by the API, one change at a
/// time), its file, and the compiled set the proxy reads.
pub struct RuntimeExclusions {
    path: PathBuf,
    list: Mutex<File>,
    set: ArcSwap<ExclusionSet>,
}

fn compile(items: &[RuntimeExclusion]) -> ExclusionSet {
    let ex: Vec<Exclusion> = items.iter().map(|e| e.spec().to_detect()).collect();
    ExclusionSet::new(&ex, "exclusions").unwrap_or_default()
}

impl RuntimeExclusions {
    /// Loads `path` (missing: none). A damaged file is set aside (renamed
    /// `.damaged`) with a warning, and entries that no longer validate are
    /// skipped: detection is then stricter, never looser.
    pub fn load(path: &Path) -> RuntimeExclusions {
        let mut file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<File>(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "runtime exclusions: damaged file set aside");
                let _ = std::fs::rename(path, path.with_extension("json.damaged"));
                File::default()
            }),
            Err(_) => File::default(),
        };
        file.exclusions.retain(|e| {
            let ok = e.spec().validate().is_ok();
            if !ok {
                tracing::warn!(id = e.id, "runtime exclusions: an invalid entry skipped");
            }
            ok
        });
        file.exclusions.truncate(MAX_EXCLUSIONS);
        let max = file.exclusions.iter().map(|e| e.id).max().unwrap_or(0);
        file.next_id = file.next_id.max(max + 1);
        let set = ArcSwap::from_pointee(compile(&file.exclusions));
        RuntimeExclusions {
            path: path.to_path_buf(),
            list: Mutex::new(file),
            set,
        }
    }

    /// The compiled set in force (cheap: an atomic load).
    pub fn current(&self) -> Arc<ExclusionSet> {
        self.set.load_full()
    }

    /// The exclusions in force, oldest first.
    pub fn list(&self) -> Vec<RuntimeExclusion> {
        self.lock().exclusions.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, File> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates and adds an exclusion: durable, then in force. Blocking
    /// (a file write and fsync): call it off the async workers.
    pub fn add(&self, spec: ExclusionSpec) -> Result<RuntimeExclusion, ExclusionError> {
        spec.validate().map_err(ExclusionError::Invalid)?;
        let mut file = self.lock();
        if file.exclusions.len() >= MAX_EXCLUSIONS {
            return Err(ExclusionError::Full);
        }
        let e = RuntimeExclusion {
            id: file.next_id,
            rule: spec.rule,
            path: spec.path,
            param: spec.param,
            comment: spec.comment,
            created: unix_now(),
        };
        let mut next = File {
            next_id: file.next_id + 1,
            exclusions: file.exclusions.clone(),
        };
        next.exclusions.push(e.clone());
        self.commit(&mut file, next)?;
        Ok(e)
    }

    /// Removes an exclusion: durable, then out of force. Blocking.
    pub fn remove(&self, id: u64) -> Result<RuntimeExclusion, ExclusionError> {
        let mut file = self.lock();
        let Some(at) = file.exclusions.iter().position(|e| e.id == id) else {
            return Err(ExclusionError::NotFound(id));
        };
        let mut next = File {
            next_id: file.next_id,
            exclusions: file.exclusions.clone(),
        };
        let gone = next.exclusions.remove(at);
        self.commit(&mut file, next)?;
        Ok(gone)
    }

    fn commit(&self, file: &mut File, next: File) -> Result<(), ExclusionError> {
        write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(&next).unwrap_or_default(),
        )
        .map_err(|e| ExclusionError::Io(self.path.display().to_string(), e))?;
        self.set.store(Arc::new(compile(&next.exclusions)));
        *file = next;
        Ok(())
    }
}

/// Writes a file whole: a temporary file, synced, renamed over the old
/// one, the directory synced.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
