//! The proxy's behaviour layers at start: the monitors from
//! `[monitors.*]`, the anomaly tracker from `[anomaly]` with its baseline,
//! and, in `monitor` mode, the task that relearns the baseline from live
//! traffic every `relearn` and saves it.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Result, anyhow};

use crate::{
    anomaly::{AnomalyMode, Model, Tracker},
    config::Config,
    monitors::Monitors,
};

/// The monitors, or None when none is configured.
pub(super) fn monitors(cfg: &Config) -> Result<Option<Monitors>> {
    if cfg.monitors.is_empty() {
        return Ok(None);
    }
    Monitors::new(&cfg.monitors)
        .map(Some)
        .map_err(|e| anyhow!("[monitors]: {e}"))
}

/// Where `monitor` mode keeps what it learned when no baseline is named.
fn learned_path(cfg: &Config) -> PathBuf {
    cfg.state_dir.join("anomaly-baseline.json")
}

/// The anomaly tracker (None: mode off), scoring with the configured
/// baseline (`monitor` mode without one: what an earlier run learned into
/// state_dir, if anything). A baseline that does not load, or was learned
/// with another window, stops the start with a message naming the file.
pub(super) fn anomaly(cfg: &Config) -> Result<Option<Arc<Tracker>>> {
    let a = &cfg.anomaly;
    if a.mode == AnomalyMode::Off {
        return Ok(None);
    }
    let model = match &a.baseline {
        Some(p) => Some(Model::load(p).map_err(|e| anyhow!("[anomaly] baseline: {e}"))?),
        None => {
            let p = learned_path(cfg);
            if p.exists() {
                Model::load(&p)
                    .map_err(|e| {
                        tracing::warn!(error = %e, "[anomaly] the learned baseline is unusable: learning anew");
                    })
                    .ok()
            } else {
                None
            }
        }
    };
    if let Some(m) = &model {
        if let Err(e) = a.check_model(m) {
            if a.baseline.is_some() {
                return Err(anyhow!(e));
            }
            tracing::warn!(error = %e, "[anomaly] the learned baseline does not fit: learning anew");
            return Ok(Some(Arc::new(Tracker::new(a, None))));
        }
        let long = m.long().filter(|_| a.long_params().is_some());
        tracing::info!(
            mode = a.mode.as_str(),
            threshold = a.threshold.unwrap_or(m.threshold_hint()),
            long_threshold = long.map(|l| a.long_threshold.unwrap_or(l.threshold_hint())),
            long_window = long.is_some(),
            "anomaly model loaded"
        );
    }
    Ok(Some(Arc::new(Tracker::new(a, model))))
}

/// In `monitor` mode: relearns every `relearn` from the windows the tracker
/// kept, scores with the new model, and saves it (to `baseline` if named,
/// else into state_dir), written beside and renamed.
pub(super) fn spawn_relearning(cfg: &Config, tracker: Arc<Tracker>) {
    if cfg.anomaly.mode != AnomalyMode::Monitor {
        return;
    }
    let every = cfg.anomaly.relearn.0;
    let path = cfg
        .anomaly
        .baseline
        .clone()
        .unwrap_or_else(|| learned_path(cfg));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let (t, p) = (tracker.clone(), path.clone());
            let done = tokio::task::spawn_blocking(move || {
                let model = t.relearn()?;
                let saved = model.save(&p);
                let set = t.set_model(model);
                Some((saved, set))
            })
            .await;
            match done {
                Ok(Some((saved, set))) => {
                    if let Err(e) = set {
                        tracing::warn!(error = %e, "[anomaly] relearned model refused");
                    } else if let Err(e) = saved {
                        tracing::warn!(error = %e, file = %path.display(), "[anomaly] relearned, not saved");
                    } else {
                        tracing::info!(file = %path.display(), "[anomaly] relearned the baseline");
                    }
                }
                Ok(None) => tracing::info!("[anomaly] too little traffic to relearn yet"),
                Err(e) => tracing::warn!(error = %e, "[anomaly] relearning failed"),
            }
        }
    });
}
