//! What a disagreement between the model and the program prints: the frame
//! in hex, what the model parsed, the part of the map state that matters
//! for its source, and both verdicts, so it can be replayed by hand.

use std::{fmt::Write as _, net::IpAddr};

use waf_common::{Counter, counter};

use crate::{
    XDP_DROP, XDP_PASS,
    xdp_model::{MapState, Parsed, Verdict, in_force, parse},
};

/// The frame as one line of hex.
pub fn hex(frame: &[u8]) -> String {
    frame.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// An XDP action by name.
pub fn action(a: u32) -> String {
    match a {
        XDP_PASS => "PASS".into(),
        XDP_DROP => "DROP".into(),
        other => format!("action {other}"),
    }
}

/// The model's verdict in words.
pub fn verdict(v: &Verdict) -> String {
    let mut s = format!(
        "{} ({})",
        action(v.action),
        counter::NAMES[v.counter as usize]
    );
    for (on, what) in [
        (v.fragment, "fragments"),
        (v.too_many_ext_headers, "ext_headers_too_many"),
        (v.bans_expired > 0, "ban_expired"),
        (v.rate_key.is_some(), "rate checked"),
        (v.sampled, "sampled"),
    ] {
        if on {
            let _ = write!(s, " +{what}");
        }
    }
    s
}

/// The non-zero entries of one frame's counter delta, by name.
pub fn counters(d: &[Counter]) -> String {
    let moved: Vec<String> = d
        .iter()
        .enumerate()
        .filter(|(_, c)| c.packets != 0)
        .map(|(i, c)| format!("{}={}", counter::NAMES[i], c.packets))
        .collect();
    if moved.is_empty() {
        "none".into()
    } else {
        moved.join(" ")
    }
}

/// The entries of `state` that cover `src`, the settings and the clock.
pub fn state_for(state: &MapState, src: Option<IpAddr>) -> String {
    let mut s = format!(
        "monitor={} emergency={} rate={:?} v6_prefix={} sample_ports={:?} now={}",
        state.monitor, state.emergency, state.rate, state.v6_prefix, state.sample_ports, state.now
    );
    let Some(src) = src else {
        return s;
    };
    let when = |e: u64| {
        if in_force(e, state.now) {
            format!("expires {e}, in force")
        } else {
            format!("expires {e}, expired")
        }
    };
    let _ = write!(s, "\n    for source {src}:");
    for n in state.allow.iter().filter(|n| n.contains(&src)) {
        let _ = write!(s, "\n      allowlist {n}");
    }
    for n in state.block.iter().filter(|n| n.contains(&src)) {
        let _ = write!(s, "\n      blocklist {n}");
    }
    for (n, e) in state.prefix_bans_of(src) {
        let _ = write!(s, "\n      prefix ban {n} ({})", when(*e));
    }
    if let Some(e) = state.ban(src) {
        let _ = write!(s, "\n      exact ban ({})", when(e));
    }
    s
}

/// One disagreement, in full.
pub struct Disagreement<'a> {
    /// What kind: action, counters, invariant.
    pub what: &'a str,
    /// The frame.
    pub frame: &'a [u8],
    /// The source the generator wrote into it.
    pub src: Option<IpAddr>,
    /// The map state it ran against.
    pub state: &'a MapState,
    /// The model's verdict.
    pub model: &'a Verdict,
    /// The program's action.
    pub kernel_action: u32,
    /// The program's counter delta for this frame alone, if measured.
    pub kernel_counters: Option<&'a [Counter]>,
    /// Where: seed, state and frame numbers.
    pub at: String,
}

impl std::fmt::Display for Disagreement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let src = match parse(self.frame) {
            Parsed::V4(a, _) => Some(IpAddr::V4(a)),
            Parsed::V6(a, _) => Some(IpAddr::V6(a)),
            _ => self.src,
        };
        writeln!(f, "{} ({})", self.what, self.at)?;
        writeln!(
            f,
            "  frame ({} bytes): {}",
            self.frame.len(),
            hex(self.frame)
        )?;
        writeln!(f, "  model parse: {:?}", parse(self.frame))?;
        writeln!(f, "  model verdict: {}", verdict(self.model))?;
        write!(f, "  kernel: {}", action(self.kernel_action))?;
        if let Some(d) = self.kernel_counters {
            write!(f, ", counters {}", counters(d))?;
        }
        write!(f, "\n  state: {}", state_for(self.state, src))
    }
}
