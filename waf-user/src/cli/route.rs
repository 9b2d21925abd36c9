//! `waf route PATH [--config FILE]`: the route a path falls into and the
//! policy it meets, read from the config file alone (no daemon needed).

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::{
    config::Config,
    http::CanonicalPath,
    routes::{Route, Routes},
};

fn describe(r: &Route) -> Value {
    let c = &r.cfg;
    json!({
        "index": r.index,
        "path": c.path,
        "methods": r.methods(),
        "challenge": c.challenge.as_str(),
        "rate_limits": c.rate_limits.iter().map(|l| json!({
            "requests": l.requests, "per": l.per.to_string(),
            "burst": l.burst.unwrap_or(l.requests)})).collect::<Vec<_>>(),
        "max_body": c.max_body.map(|b| b.0),
        "cors": r.cors().map(|c| c.describe()),
        "window": r.window().map(|w| w.describe()),
        "exempt": c.exempt,
    })
}

/// What a path meets under `routes`, as JSON.
pub fn route_report(routes: &Routes, target: &str) -> Value {
    let path = CanonicalPath::from_target(target);
    let sel = routes.select(&path);
    let readings: Vec<&str> = path.readings().collect();
    json!({
        "target": target,
        "canonical": path.path,
        "readings": readings,
        "voids_exemptions": path.voids_exemptions(),
        "routes": sel.routes.iter().map(|&i| describe(routes.get(i))).collect::<Vec<_>>(),
        "unrouted": sel.unrouted,
        "exact": sel.exact.is_some(),
        "effective": {
            "exempt": routes.exempt(&sel),
            "challenge": routes.challenge(&sel).as_str(),
            "max_body": routes.max_body(&sel),
            "cors": routes.cors(&sel).map(|c| c.describe()),
            "methods": sel.routes.iter().find_map(|&i| routes.get(i).methods()),
        },
    })
}

/// Runs `waf route`.
pub fn route(config: &Path, target: &str, json_out: bool) -> Result<()> {
    let cfg = Config::load(config)?;
    let routes = cfg.routes()?;
    let v = route_report(&routes, target);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let s = |x: &Value| match x {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("path:       {} (canonical {})", target, s(&v["canonical"]));
    let picked = v["routes"].as_array().cloned().unwrap_or_default();
    if picked.is_empty() {
        println!("route:      none (the defaults apply)");
    }
    for r in &picked {
        println!(
            "route:      #{} {}: methods {}, challenge {}, max_body {}, limits {}, cors {}, \
             window {}, exempt {}",
            s(&r["index"]),
            s(&r["path"]),
            s(&r["methods"]),
            s(&r["challenge"]),
            s(&r["max_body"]),
            s(&r["rate_limits"]),
            s(&r["cors"]),
            s(&r["window"]),
            s(&r["exempt"])
        );
    }
    if !v["exact"].as_bool().unwrap_or(false) && !picked.is_empty() {
        println!(
            "note:       the path reads as more than one route{}: every restriction applies, \
             no exemption or skip does",
            if v["voids_exemptions"].as_bool().unwrap_or(false) {
                " or carries an evasion"
            } else {
                ""
            }
        );
    }
    let e = &v["effective"];
    println!(
        "effective:  exempt {}, challenge {}, max_body {}, methods {}, cors {}",
        s(&e["exempt"]),
        s(&e["challenge"]),
        s(&e["max_body"]),
        s(&e["methods"]),
        s(&e["cors"])
    );
    Ok(())
}
