//! Per-route policy (`[[routes]]`): the one home of what applies to a path
//! — methods, the challenge, request limits, a body size limit, CORS, time
//! windows, exemption from inspection. Routes are tried in file order on
//! the canonical path and the first match wins.
//!
//! An attacker picks the path, so a route is chosen for *every* reading of
//! the path (the canonical one, the one with `;` parameters, decoded once
//! and twice; see `http::canonical`), and for the percent-decoded path
//! before dot segments are resolved. When the readings pick the same route
//! and nothing voids exemptions, that route's leniencies hold. In any case
//! the request meets every route a reading picked: their restrictions
//! all apply (methods, limits, the smallest body limit, every window, the
//! strictest challenge), and their leniencies none (no exemption, no
//! `challenge = "skip"`, CORS only where they all agree). A path written to
//! look like another route never escapes its own.

pub mod config;
mod cors;
mod window;

use std::time::SystemTime;

pub use self::{
    config::{ByteSize, CorsConfig, RouteChallenge, RouteConfig, RouteLimit},
    cors::{Cors, Preflight},
    window::Window,
};
use crate::{
    http::{CanonicalPath, PathGlob},
    values::{ConfigError, invalid},
};

/// A compiled route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Its place in the file (0 = first).
    pub index: usize,
    /// As written.
    pub cfg: RouteConfig,
    glob: PathGlob,
    methods: Option<Vec<String>>,
    window: Option<Window>,
    cors: Option<Cors>,
}

impl Route {
    /// The methods it accepts (None: any).
    pub fn methods(&self) -> Option<&[String]> {
        self.methods.as_deref()
    }

    /// Its time window, if any.
    pub fn window(&self) -> Option<&Window> {
        self.window.as_ref()
    }

    /// Its CORS policy, if any.
    pub fn cors(&self) -> Option<&Cors> {
        self.cors.as_ref()
    }
}

/// The routes of the config, in file order.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

/// The routes a request meets ([`Routes::select`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The routes some reading of the path picked, in file order.
    pub routes: Vec<usize>,
    /// Some reading picked no route (the defaults apply to it).
    pub unrouted: bool,
    /// The route every reading of the path picked (the canonical one and
    /// the other readings servers make, as exemptions read them), when
    /// nothing voids exemptions: its leniencies (exemption, `skip`, CORS)
    /// hold. The percent-decoded path before dot segments are resolved
    /// adds its route's restrictions, never its leniencies.
    pub exact: Option<usize>,
}

fn is_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= 32 && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
}

impl Routes {
    /// Compiles and checks `[[routes]]`; errors name `routes[i].key`.
    pub fn new(cfgs: &[RouteConfig]) -> Result<Routes, ConfigError> {
        let mut routes = Vec::with_capacity(cfgs.len());
        for (i, c) in cfgs.iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
            if !c.path.starts_with('/') {
                return Err(invalid(
                    &key("path"),
                    &c.path,
                    "a path or glob starting with /",
                ));
            }
            let glob = PathGlob::new(&c.path).map_err(|e| invalid(&key("path"), &c.path, &e))?;
            let methods = match &c.methods {
                None => None,
                Some(ms) => {
                    let up: Vec<String> =
                        ms.iter().map(|m| m.trim().to_ascii_uppercase()).collect();
                    if up.is_empty() || up.iter().any(|m| !is_method(m)) {
                        return Err(invalid(
                            &key("methods"),
                            format!("{ms:?}"),
                            "a non-empty list of method names (GET, POST, ...)",
                        ));
                    }
                    Some(up)
                }
            };
            for (j, l) in c.rate_limits.iter().enumerate() {
                if l.requests == 0 || l.per.0.is_zero() || l.burst == Some(0) {
                    return Err(invalid(
                        &key(&format!("rate_limits[{j}]")),
                        format!("{} per {}", l.requests, l.per),
                        "a positive number of requests per a positive period, burst at least 1",
                    ));
                }
            }
            if let Some(b) = c.max_body
                && !(1..=4 << 30).contains(&b.0)
            {
                return Err(invalid(&key("max_body"), b.0, "1 byte to 4 GiB"));
            }
            let window = Window::new(c.hours.as_deref(), c.days.as_deref(), c.timezone.as_deref())
                .map_err(|(k, e)| invalid(&key(k), e, "see the README's [[routes]] section"))?;
            let cors = c
                .cors
                .as_ref()
                .map(Cors::new)
                .transpose()
                .map_err(|(k, e)| invalid(&key(k), e, "see the README's [[routes]] section"))?;
            if c.exempt && (c.challenge != RouteChallenge::Protect || !c.rate_limits.is_empty()) {
                return Err(invalid(
                    &key("exempt"),
                    true,
                    "an exempt route forwards without inspection: it takes no challenge or \
                     rate_limits (make a separate route)",
                ));
            }
            routes.push(Route {
                index: i,
                cfg: c.clone(),
                glob,
                methods,
                window,
                cors,
            });
        }
        Ok(Routes { routes })
    }

    /// Whether there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// All routes, in file order.
    pub fn all(&self) -> &[Route] {
        &self.routes
    }

    /// Route `i`.
    pub fn get(&self, i: usize) -> &Route {
        &self.routes[i]
    }

    /// The globs of the exempt routes (the engine's exempt paths: the
    /// mirror and `waf inspect` honour them too).
    pub fn exempt_globs(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| r.cfg.exempt)
            .map(|r| r.cfg.path.clone())
            .collect()
    }

    /// The routes a request to `path` meets.
    pub fn select(&self, path: &CanonicalPath) -> Selection {
        let mut sel = Selection {
            routes: Vec::new(),
            unrouted: false,
            exact: None,
        };
        if self.routes.is_empty() {
            sel.unrouted = true;
            return sel;
        }
        let pick = |r: &str| self.routes.iter().position(|x| x.glob.is_match(r));
        let mut agreed: Option<Option<usize>> = None;
        let mut agree = true;
        for r in path.readings() {
            let p = pick(r);
            agree &= agreed.is_none_or(|a| a == p);
            agreed = Some(p);
            match p {
                Some(i) if !sel.routes.contains(&i) => sel.routes.push(i),
                Some(_) => {}
                None => sel.unrouted = true,
            }
        }
        match pick(&path.decoded) {
            Some(i) if !sel.routes.contains(&i) => sel.routes.push(i),
            Some(_) => {}
            None => sel.unrouted = true,
        }
        sel.routes.sort_unstable();
        if agree && !path.voids_exemptions() {
            sel.exact = agreed.flatten();
        }
        sel
    }

    fn picked<'a, 'b>(&'a self, sel: &'b Selection) -> impl Iterator<Item = &'a Route> + 'b
    where
        'a: 'b,
    {
        sel.routes.iter().map(move |&i| &self.routes[i])
    }

    /// `Err(allow)` when a route the request meets does not accept
    /// `method` (`allow`: the methods of the first such route, for the
    /// `Allow` header).
    pub fn check_method(&self, sel: &Selection, method: &str) -> Result<(), Vec<String>> {
        for r in self.picked(sel) {
            if let Some(ms) = &r.methods
                && !ms.iter().any(|m| m == method)
            {
                return Err(ms.clone());
            }
        }
        Ok(())
    }

    /// Whether the request is forwarded without inspection.
    pub fn exempt(&self, sel: &Selection) -> bool {
        sel.exact.is_some_and(|i| self.routes[i].cfg.exempt)
    }

    /// The challenge the request meets: the strictest of its routes
    /// (`protect` for a reading no route picked; `skip` only when exact).
    pub fn challenge(&self, sel: &Selection) -> RouteChallenge {
        let mut c = if sel.unrouted {
            RouteChallenge::Protect
        } else {
            RouteChallenge::Skip
        };
        for r in self.picked(sel) {
            c = c.max(r.cfg.challenge);
        }
        if c == RouteChallenge::Skip && sel.exact.is_none() {
            RouteChallenge::Protect
        } else {
            c
        }
    }

    /// The smallest body limit of its routes.
    pub fn max_body(&self, sel: &Selection) -> Option<u64> {
        self.picked(sel)
            .filter_map(|r| r.cfg.max_body.map(|b| b.0))
            .min()
    }

    /// A route of the request that is closed at `now`, if any.
    pub fn closed(&self, sel: &Selection, now: SystemTime) -> Option<&Route> {
        self.picked(sel)
            .find(|r| r.window.as_ref().is_some_and(|w| !w.is_open(now)))
    }

    /// The CORS policy of the request: its route's when exact, else the
    /// one all its routes share (none when they differ or a reading has
    /// no route: no CORS headers, which browsers read as a refusal).
    pub fn cors(&self, sel: &Selection) -> Option<&Cors> {
        if let Some(i) = sel.exact {
            return self.routes[i].cors.as_ref();
        }
        if sel.unrouted {
            return None;
        }
        let mut it = self.picked(sel);
        let first = it.next()?.cors.as_ref()?;
        it.all(|r| r.cors.as_ref() == Some(first)).then_some(first)
    }
}

#[cfg(test)]
mod tests;
