//! The model: an extended isolation forest (the `extended-isolation-forest`
//! crate) over the features of clean windows, with what a flag needs to
//! explain itself (the training windows' quantiles), in a versioned JSON
//! file, the baseline.
//!
//! An isolation forest scores how easily random cuts isolate a point from
//! the training windows: `2^(-E[h] / c(256))`, where `E[h]` is the point's
//! mean depth over the trees. About 0.5 and below is ordinary; a window
//! like few of the training windows scores higher the fewer there were,
//! and one beyond all of them tops out around 0.7 (a cut never falls
//! beyond the training data's range, so a far outlier isolates little
//! faster than one just past the edge): the scale is narrow, 0.60-0.70
//! holds most decisions, and the threshold is best read off the training
//! log (`threshold_hint`).
//!
//! The crate draws its cuts from `rand::thread_rng()` and takes no seed:
//! two trainings on the same windows give slightly different forests
//! (scores differ by about 0.005, the hint by up to 0.02). A baseline, once
//! written, scores the same everywhere. Scoring a window takes about 40 µs
//! (200 trees); training on 24,000 windows under a second.
//!
//! A baseline holds two models: the window's (`window`, 5 minutes) and,
//! when learned, the long window's (`long_window`, an hour), which sees
//! the sources too slow for the first: a prober sending a request every
//! few minutes never reaches `min_requests` in 5 minutes, but does in an
//! hour. Each has its own forest, quantiles and threshold hint.
//!
//! Loading refuses a file of another version or feature set, or one that
//! does not parse or scores outside 0..1, with a message naming the file;
//! it never panics (serde_json bounds the trees' nesting; the file is
//! read up to [`MAX_FILE`]).

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use extended_isolation_forest::{Forest, ForestOptions};
use serde::{Deserialize, Serialize};

use super::{
    Flag,
    features::{N, NAMES, Params, Vector, show, to_model},
};

/// The baseline file's version (1: no long window; still read).
pub const VERSION: u32 = 2;
/// The largest baseline file read.
pub const MAX_FILE: u64 = 64 << 20;
/// Trees of the forest (200: the scores of two trainings on the same
/// windows differ by about 0.005).
const TREES: usize = 200;
/// Windows each tree is grown on.
const SAMPLE: usize = 256;
/// How many of the features each cut mixes, less one: 4 of 9 (0 is the
/// classic isolation forest, whose cuts across one feature at a time
/// missed scrapers; 8, every feature, blurred single-feature outliers
/// such as a share of 401s; measured with `cargo xtask eval-anomaly`).
const EXTENSION: usize = 4;
/// The same for the long window's model: 2 of 9. Its windows hold fewer
/// requests (5 in an hour), so a single feature (a share of 404s) decides
/// more often (measured with `cargo xtask eval-anomaly`, two seeds: 4
/// caught fewer slow probers for as many clean sources struck; 0 struck
/// more clean sources).
pub const LONG_EXTENSION: usize = 2;
/// Fewest windows, and fewest sources, a model is learned from.
pub const MIN_WINDOWS: usize = 64;
/// See [`MIN_WINDOWS`].
pub const MIN_SOURCES: usize = 16;
/// The share of training sources whose highest score stays below the
/// suggested threshold (a few bad sources may hide in any log learned
/// from: the highest scores are not taken as the bar).
const HINT_QUANTILE: f64 = 0.998;

/// Per feature, the smallest spread (in the model's units) a deviation is
/// measured against: a feature that never varied in training does not
/// make every small change stand out.
const MIN_SPREAD: [f64; N] = [0.5, 0.5, 0.05, 0.05, 0.25, 0.5, 0.05, 0.5, 0.05];

/// Whether the window's and the long window's forests read standardised
/// features.
const STANDARDIZED: [bool; 2] = [false, true];
/// How far (in spreads) a standardised feature reaches at most.
const Z_LIMIT: f64 = 32.0;
/// Per feature, the smallest spread a standardised feature is measured
/// against: [`MIN_SPREAD`], but a fifth for the shares (a single 404 among
/// ten requests is half a spread, a prober's share of 4xx of 1 five).
const Z_MIN_SPREAD: [f64; N] = [0.5, 0.5, 0.2, 0.2, 0.25, 0.5, 0.2, 0.5, 0.2];

/// A feature vector in the model's units as its forest reads it: raw, or
/// standardised (each feature's distance from the training median in
/// spreads, `MIN_SPREAD` at least, bounded to `Z_LIMIT` and back on the
/// grid of 1/64, so that the forest's cuts stay cheap).
///
/// Standardised, a feature that hardly varied in training (the share of
/// 4xx of slow clean readers: 0) counts as much as one that varies by
/// units (log counts): a prober's share of 4xx of 1 is 20 spreads out,
/// where in raw units it is 1 against log counts of several.
fn standardize(scaled: &[Vector; 3], on: bool, v: Vector) -> Vector {
    if !on {
        return v;
    }
    let [p10, p50, p90] = scaled;
    let mut out = [0.0; N];
    for i in 0..N {
        let spread = (p90[i] - p10[i]).max(Z_MIN_SPREAD[i]);
        let z = ((v[i] - p50[i]) / spread).clamp(-Z_LIMIT, Z_LIMIT);
        out[i] = if z.is_finite() {
            (z * 64.0).round() / 64.0
        } else {
            0.0
        };
    }
    out
}

/// What a model was learned from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedOn {
    /// Sources that reached a checkpoint.
    pub sources: u64,
    /// Log lines read (0 when learned live).
    pub lines: u64,
    /// Windows that reached a checkpoint.
    pub windows: u64,
    /// Checkpoints (feature vectors) learned from.
    pub vectors: u64,
}

/// Per feature, quantiles of the training windows, in the features' units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantiles {
    /// 10th percentile.
    pub p10: Vec<f64>,
    /// Median.
    pub p50: Vec<f64>,
    /// 90th percentile.
    pub p90: Vec<f64>,
    /// 99th percentile.
    pub p99: Vec<f64>,
}

/// The baseline file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File<F> {
    version: u32,
    features: Vec<String>,
    window_secs: u64,
    min_requests: u32,
    threshold_hint: f64,
    trained_on: TrainedOn,
    quantiles: Quantiles,
    forest: F,
    /// The long window's model (version 2).
    #[serde(default = "no_long", skip_serializing_if = "Option::is_none")]
    long: Option<Box<File<F>>>,
    /// The forest reads each feature standardised (see
    /// [`Model::input`]); files without it read raw features.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    standardized: bool,
}

/// A version 1 file has no long window.
fn no_long<F>() -> Option<Box<File<F>>> {
    None
}

/// The first thing read of a file: is it ours, and which version.
#[derive(Deserialize)]
struct Header {
    version: Option<serde_json::Value>,
}

/// A learned model.
pub struct Model {
    forest: Forest<f64, N>,
    params: Params,
    threshold_hint: f64,
    trained_on: TrainedOn,
    quantiles: Quantiles,
    /// `quantiles` in the model's units: p10, p50, p90.
    scaled: [Vector; 3],
    /// The long window's model.
    long: Option<Arc<Model>>,
    /// Whether the forest reads standardised features.
    standardized: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("params", &self.params)
            .field("threshold_hint", &self.threshold_hint)
            .field("trained_on", &self.trained_on)
            .field("long", &self.long)
            .finish_non_exhaustive()
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn scaled(q: &Quantiles) -> [Vector; 3] {
    let v = |x: &[f64]| {
        let mut a = [0.0; N];
        a.iter_mut().zip(x).for_each(|(a, x)| *a = *x);
        to_model(&a)
    };
    [v(&q.p10), v(&q.p50), v(&q.p90)]
}

impl Model {
    /// Learns from checkpoint vectors, each with its source's key (any
    /// number that tells sources apart): the forest, the quantiles, and the
    /// suggested threshold (the score 99.8% of the sources stayed under,
    /// rounded up to a hundredth). Too few windows or sources is an error.
    pub fn train(
        samples: &[(u64, Vector)],
        params: Params,
        trained_on: TrainedOn,
    ) -> Result<Model, String> {
        Self::train_with(samples, params, trained_on, EXTENSION, STANDARDIZED[0])
    }

    /// [`Model::train`] for the long window ([`LONG_EXTENSION`], features
    /// standardised: see [`standardize`]).
    pub fn train_long(
        samples: &[(u64, Vector)],
        params: Params,
        trained_on: TrainedOn,
    ) -> Result<Model, String> {
        Self::train_with(samples, params, trained_on, LONG_EXTENSION, STANDARDIZED[1])
    }

    fn train_with(
        samples: &[(u64, Vector)],
        params: Params,
        mut trained_on: TrainedOn,
        extension: usize,
        standardized: bool,
    ) -> Result<Model, String> {
        let mut sources: Vec<u64> = samples.iter().map(|s| s.0).collect();
        sources.sort_unstable();
        sources.dedup();
        if samples.len() < MIN_WINDOWS || sources.len() < MIN_SOURCES {
            return Err(format!(
                "too little to learn from: {} checkpoints of {} sources (at least {MIN_WINDOWS} \
                 of {MIN_SOURCES} sources that each sent min_requests = {} requests in a window)",
                samples.len(),
                sources.len(),
                params.min_requests
            ));
        }
        let mut cols: Vec<Vec<f64>> = (0..N)
            .map(|i| samples.iter().map(|s| s.1[i]).collect())
            .collect();
        cols.iter_mut().for_each(|c| c.sort_by(f64::total_cmp));
        let col = |q: f64| cols.iter().map(|c| quantile(c, q)).collect::<Vec<_>>();
        let quantiles = Quantiles {
            p10: col(0.10),
            p50: col(0.50),
            p90: col(0.90),
            p99: col(0.99),
        };
        trained_on.vectors = samples.len() as u64;
        trained_on.sources = sources.len() as u64;
        let scaled = scaled(&quantiles);
        let data: Vec<Vector> = samples
            .iter()
            .map(|s| standardize(&scaled, standardized, to_model(&s.1)))
            .collect();
        let opts = ForestOptions {
            n_trees: TREES,
            sample_size: SAMPLE.min(data.len()),
            max_tree_depth: None,
            extension_level: extension,
        };
        let forest = Forest::from_slice(&data, &opts).map_err(|e| e.to_string())?;
        let mut model = Model {
            forest,
            params,
            threshold_hint: 0.0,
            trained_on,
            scaled,
            quantiles,
            long: None,
            standardized,
        };
        // Each source's highest score.
        let mut worst: std::collections::HashMap<u64, f64> = Default::default();
        for (s, v) in samples.iter().map(|s| s.0).zip(&data) {
            let score = model.score_scaled(v);
            let w = worst.entry(s).or_insert(0.0);
            *w = w.max(score);
        }
        let mut w: Vec<f64> = worst.into_values().collect();
        w.sort_by(f64::total_cmp);
        model.threshold_hint =
            ((quantile(&w, HINT_QUANTILE) * 100.0).ceil() / 100.0).clamp(0.5, 0.99);
        Ok(model)
    }

    /// The window and checkpoints its features were counted with.
    pub fn params(&self) -> Params {
        self.params
    }

    /// The long window's model, if learned.
    pub fn long(&self) -> Option<&Arc<Model>> {
        self.long.as_ref()
    }

    /// This model with `long` as its long window's (a long window's own
    /// long model, if any, is never used nor saved).
    pub fn with_long(mut self, long: Option<Arc<Model>>) -> Model {
        self.long = long;
        self
    }

    /// The score 99.8% of the training sources stayed under.
    pub fn threshold_hint(&self) -> f64 {
        self.threshold_hint
    }

    /// What it was learned from.
    pub fn trained_on(&self) -> TrainedOn {
        self.trained_on
    }

    /// The training windows' quantiles.
    pub fn quantiles(&self) -> &Quantiles {
        &self.quantiles
    }

    fn score_scaled(&self, v: &Vector) -> f64 {
        let s = self.forest.score(v);
        if s.is_finite() {
            s.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The anomaly score of a window's features (0..1).
    pub fn score(&self, raw: &Vector) -> f64 {
        self.score_scaled(&standardize(&self.scaled, self.standardized, to_model(raw)))
    }

    /// A flag for a window that scored `score`: the features furthest from
    /// the training median (measured against the training's 10-90% spread),
    /// at most three, and a line of evidence.
    pub fn explain(&self, raw: &Vector, score: f64) -> Flag {
        let v = to_model(raw);
        let [p10, p50, p90] = &self.scaled;
        let mut dev: Vec<(usize, f64)> = (0..N)
            .map(|i| {
                let spread = (p90[i] - p10[i]).max(MIN_SPREAD[i]);
                (i, ((v[i] - p50[i]) / spread).abs())
            })
            .collect();
        dev.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let picked: Vec<usize> = dev
            .iter()
            .enumerate()
            .filter(|(rank, (_, d))| *rank == 0 || *d >= 1.0)
            .take(3)
            .map(|(_, (i, _))| *i)
            .collect();
        let parts: Vec<String> = picked
            .iter()
            .map(|&i| {
                let median = self.quantiles.p50.get(i).copied().unwrap_or(0.0);
                format!("{}={} (p50 {})", NAMES[i], show(i, raw[i]), show(i, median))
            })
            .collect();
        let window = crate::values::Dur::secs(self.params.window_secs);
        Flag {
            score,
            window_secs: self.params.window_secs,
            top: picked.iter().map(|&i| (NAMES[i], raw[i])).collect(),
            evidence: format!("anomaly {score:.2} over {window}: {}", parts.join(", ")),
        }
    }

    /// The file of this model, with its long window's if `with_long`.
    fn file(&self, with_long: bool) -> File<&Forest<f64, N>> {
        File {
            version: VERSION,
            features: NAMES.iter().map(|s| s.to_string()).collect(),
            window_secs: self.params.window_secs,
            min_requests: self.params.min_requests,
            threshold_hint: self.threshold_hint,
            trained_on: self.trained_on,
            quantiles: self.quantiles.clone(),
            forest: &self.forest,
            long: self
                .long
                .as_ref()
                .filter(|_| with_long)
                .map(|l| Box::new(l.file(false))),
            standardized: self.standardized,
        }
    }

    /// The baseline file's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.file(true)).unwrap_or_default()
    }

    /// Writes the baseline (beside, then renamed over `path`).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, self.to_json())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("anomaly baseline {}: {e}", path.display()))
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Model, String> {
        let err = |m: String| format!("anomaly baseline {}: {m}", path.display());
        let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let mut bytes = Vec::new();
        f.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| err(e.to_string()))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(err(format!("larger than {} MiB", MAX_FILE >> 20)));
        }
        Model::from_json(&bytes).map_err(err)
    }

    /// Reads a baseline file's text.
    pub fn from_json(bytes: &[u8]) -> Result<Model, String> {
        let relearn = "learn a new one with `waf learn ACCESS_LOG --out FILE`";
        let header: Header = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a waf anomaly baseline (JSON: {e})"))?;
        match header.version {
            Some(serde_json::Value::Number(n)) if matches!(n.as_u64(), Some(1 | 2)) => {}
            Some(v) => {
                let v: String = v.to_string().chars().take(20).collect();
                return Err(format!(
                    "version {v}, this waf reads versions 1 and {VERSION}: {relearn}"
                ));
            }
            None => return Err("not a waf anomaly baseline (no \"version\")".into()),
        }
        let f: File<Forest<f64, N>> =
            serde_json::from_slice(bytes).map_err(|e| format!("malformed: {e}"))?;
        Self::from_file(f, false)
    }

    /// Checks a parsed file (`long`: it is a long window's model).
    fn from_file(f: File<Forest<f64, N>>, long: bool) -> Result<Model, String> {
        let relearn = "learn a new one with `waf learn ACCESS_LOG --out FILE`";
        let what = if long { "long." } else { "" };
        if f.features != NAMES {
            let shown: Vec<String> = f
                .features
                .iter()
                .take(16)
                .map(|s| s.chars().take(32).collect())
                .collect();
            return Err(format!(
                "its features {shown:?} are not this waf's {NAMES:?}: {relearn}"
            ));
        }
        let (window, range) = if long {
            (super::config::LONG_WINDOW, "10m to 1d")
        } else {
            (super::config::WINDOW, "30 to 3600")
        };
        if !(window.0.as_secs()..=window.1.as_secs()).contains(&f.window_secs) {
            return Err(format!(
                "{what}window_secs {} is not {range}",
                f.window_secs
            ));
        }
        let m = super::config::MIN_REQUESTS;
        if !(m.0..=m.1).contains(&f.min_requests) {
            return Err(format!(
                "{what}min_requests {} is not 5 to 10000",
                f.min_requests
            ));
        }
        if !(0.0..=1.0).contains(&f.threshold_hint) {
            return Err(format!(
                "{what}threshold_hint {} is not 0 to 1",
                f.threshold_hint
            ));
        }
        let q = &f.quantiles;
        for (name, col) in [
            ("p10", &q.p10),
            ("p50", &q.p50),
            ("p90", &q.p90),
            ("p99", &q.p99),
        ] {
            if col.len() != N || col.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(format!(
                    "{what}quantiles.{name} is not {N} finite, non-negative numbers"
                ));
            }
        }
        let inner = match f.long {
            Some(_) if long => return Err("long.long: a long window has no long window".into()),
            Some(l) => Some(Arc::new(Self::from_file(*l, true)?)),
            None => None,
        };
        if let Some(l) = &inner
            && l.params.window_secs <= f.window_secs
        {
            return Err(format!(
                "long.window_secs {} is not longer than window_secs {}",
                l.params.window_secs, f.window_secs
            ));
        }
        let model = Model {
            forest: f.forest,
            params: Params {
                window_secs: f.window_secs,
                min_requests: f.min_requests,
            },
            threshold_hint: f.threshold_hint,
            trained_on: f.trained_on,
            scaled: scaled(&f.quantiles),
            quantiles: f.quantiles,
            long: inner,
            standardized: f.standardized,
        };
        // A forest that parses may still be no forest (no trees, a broken
        // normaliser): its scores say so.
        let probes = [
            model.scaled[0],
            model.scaled[1],
            model.scaled[2],
            [0.0; N],
            to_model(&[1e9; N]),
        ];
        for p in &probes {
            let s = model.forest.score(p);
            if !(s.is_finite() && (0.0..=1.0).contains(&s)) {
                return Err(format!(
                    "{what}its forest scores {s} (not 0 to 1): {relearn}"
                ));
            }
        }
        Ok(model)
    }
}
