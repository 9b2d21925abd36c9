//! The site and its visitors: what each kind of source asks for, when.

use super::{
    APPS, BROWSERS, CLIENTS, CRAWLERS, IpAddr, Log, PROBE_PAYLOADS, PROBES, Rng, SCAN, WORDS, in64,
};

/// Blog posts, products, docs pages, categories.
const POSTS: u64 = 220;
const PRODUCTS: u64 = 480;
const DOCS: &[&str] = &[
    "start", "install", "billing", "shipping", "returns", "api", "faq",
];
const CATEGORIES: &[&str] = &[
    "women", "men", "kids", "home", "garden", "sale", "new", "gifts", "outdoor", "office",
];
/// Assets every page links (cached after the first page of a visit).
const COMMON: &[&str] = &[
    "/static/css/main.3f9a1c.css",
    "/static/js/vendor.8b21e0.js",
    "/static/js/app.c41d77.js",
    "/static/img/logo.svg",
    "/static/fonts/inter-var.woff2",
    "/favicon.ico",
];

/// Clean kinds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Clean {
    Browser,
    Reader,
    Mobile,
    Api,
    Probe,
    Heavy,
    Crawler,
    Nat,
    Feed,
}

impl Clean {
    /// A kind, by its share of sources.
    pub fn draw(rng: &mut Rng) -> Clean {
        let table = [
            (Clean::Browser, 63),
            (Clean::Reader, 10),
            (Clean::Mobile, 11),
            (Clean::Api, 5),
            (Clean::Probe, 1),
            (Clean::Heavy, 3),
            (Clean::Crawler, 1),
            (Clean::Nat, 4),
            (Clean::Feed, 2),
        ];
        let mut n = rng.below(100);
        for (k, w) in table {
            if n < w {
                return k;
            }
            n -= w;
        }
        Clean::Browser
    }

    fn name(self) -> &'static str {
        match self {
            Clean::Browser => "browser",
            Clean::Reader => "reader",
            Clean::Mobile => "mobile_app",
            Clean::Api => "api_client",
            Clean::Probe => "uptime_probe",
            Clean::Heavy => "heavy_user",
            Clean::Crawler => "search_crawler",
            Clean::Nat => "shared_nat",
            Clean::Feed => "feed_reader",
        }
    }
}

/// Bad kinds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bot {
    Scanner,
    Scraper,
    Stuffer,
    Prober,
    Rotator,
    Abuser,
}

impl Bot {
    pub const ALL: [Bot; 6] = [
        Bot::Scanner,
        Bot::Scraper,
        Bot::Stuffer,
        Bot::Prober,
        Bot::Rotator,
        Bot::Abuser,
    ];
    pub const NAMES: [&str; 6] = [
        "path_scanner",
        "scraper",
        "credential_stuffer",
        "slow_prober",
        "ua_rotator",
        "api_abuser",
    ];
}

/// A page a browser may open, with the assets and calls it makes.
fn page(rng: &mut Rng) -> (String, Vec<String>) {
    let mut assets = Vec::new();
    let path = match rng.below(100) {
        0..=14 => {
            for _ in 0..rng.range(4, 8) {
                assets.push(format!(
                    "/images/products/{}-thumb.jpg",
                    rng.below(PRODUCTS)
                ));
            }
            "/".to_string()
        }
        15..=39 => {
            let id = rng.below(PRODUCTS);
            for k in 0..rng.range(2, 5) {
                assets.push(format!("/images/products/{id}-{k}.jpg"));
            }
            format!("/products/{id}")
        }
        40..=54 => {
            for _ in 0..rng.range(6, 12) {
                assets.push(format!(
                    "/images/products/{}-thumb.jpg",
                    rng.below(PRODUCTS)
                ));
            }
            let c = rng.pick(CATEGORIES);
            if rng.chance(0.3) {
                format!("/category/{c}?page={}", rng.range(2, 6))
            } else {
                format!("/category/{c}")
            }
        }
        55..=74 => {
            let id = rng.below(POSTS);
            for k in 0..rng.range(1, 3) {
                assets.push(format!("/images/blog/post-{id}-{k}.webp"));
            }
            format!("/blog/post-{id}")
        }
        75..=82 => format!("/docs/{}", rng.pick(DOCS)),
        83..=90 => {
            let w = rng.pick(WORDS);
            // Autocomplete while typing.
            for i in 2..w.len().min(6) {
                assets.push(format!("/api/v1/search?q={}&suggest=1", &w[..i]));
            }
            format!("/search?q={}", w.replace(' ', "+"))
        }
        91..=94 => "/blog".to_string(),
        95..=96 => "/about".to_string(),
        97 => "/contact".to_string(),
        _ => "/cart".to_string(),
    };
    (path, assets)
}

/// A browser's visit from `t` (ms): pages, dwell between them. Returns
/// when it ended.
fn visit(
    rng: &mut Rng,
    log: &mut Log,
    ip: IpAddr,
    ua: &str,
    t: u64,
    pages: u64,
    dwell_s: f64,
) -> u64 {
    let mut t = t;
    let cached = rng.chance(0.35);
    for n in 0..pages {
        let (path, assets) = page(rng);
        let status = if rng.chance(0.004) { 404 } else { 200 };
        log.push(t, ip, "GET", path, status, ua, 0);
        let mut at = t + rng.range(80, 400);
        if n == 0 {
            for a in COMMON {
                let s = if cached { 304 } else { 200 };
                log.push(at, ip, "GET", a.to_string(), s, ua, 0);
                at += rng.range(5, 60);
            }
            if ua.contains("Safari") && !ua.contains("Chrome") && rng.chance(0.5) {
                log.push(at, ip, "GET", "/apple-touch-icon.png".into(), 404, ua, 0);
            }
            log.push(at, ip, "GET", "/api/v1/session".into(), 200, ua, 0);
        }
        for a in assets {
            let s = if rng.chance(0.006) { 404 } else { 200 };
            log.push(at, ip, "GET", a, s, ua, 0);
            at += rng.range(5, 120);
        }
        if rng.chance(0.7) {
            log.push(
                at + 500,
                ip,
                "POST",
                "/api/v1/events".into(),
                204,
                ua,
                rng.range(150, 900),
            );
        }
        if rng.chance(0.05) {
            login(rng, log, ip, ua, at + 2000);
        }
        if rng.chance(0.03) {
            let b = rng.range(80, 220);
            log.push(at + 1500, ip, "POST", "/api/v1/cart".into(), 200, ua, b);
            if rng.chance(0.4) {
                log.push(at + 9000, ip, "GET", "/checkout".into(), 200, ua, 0);
                log.push(
                    at + 60_000,
                    ip,
                    "POST",
                    "/api/v1/orders".into(),
                    201,
                    ua,
                    rng.range(400, 1500),
                );
            }
        }
        t += (rng.lognormal(dwell_s, 1.0).clamp(1.0, 1800.0) * 1000.0) as u64;
    }
    t
}

fn login(rng: &mut Rng, log: &mut Log, ip: IpAddr, ua: &str, t: u64) {
    log.push(t, ip, "GET", "/login".into(), 200, ua, 0);
    let mut t = t + rng.range(4000, 20_000);
    while rng.chance(0.12) {
        log.push(t, ip, "POST", "/login".into(), 401, ua, rng.range(60, 140));
        t += rng.range(4000, 15_000);
    }
    log.push(t, ip, "POST", "/login".into(), 302, ua, rng.range(60, 140));
    log.push(t + 300, ip, "GET", "/account".into(), 200, ua, 0);
}

/// A mobile app's session.
fn app_session(rng: &mut Rng, log: &mut Log, ip: IpAddr, ua: &str, t: u64) {
    log.push(t, ip, "GET", "/api/v1/config".into(), 200, ua, 0);
    log.push(t + 200, ip, "GET", "/api/v1/session".into(), 200, ua, 0);
    let mut t = t + 600;
    for _ in 0..rng.range(2, 20) {
        let target = match rng.below(10) {
            0..=3 => {
                let id = rng.below(PRODUCTS);
                log.push(
                    t + 150,
                    ip,
                    "GET",
                    format!("/images/products/{id}-0.jpg"),
                    200,
                    ua,
                    0,
                );
                format!("/api/v1/products/{id}")
            }
            4..=6 => {
                for _ in 0..rng.range(3, 8) {
                    let id = rng.below(PRODUCTS);
                    log.push(
                        t + 200,
                        ip,
                        "GET",
                        format!("/images/products/{id}-thumb.jpg"),
                        200,
                        ua,
                        0,
                    );
                }
                format!(
                    "/api/v1/products?category={}&page={}",
                    rng.pick(CATEGORIES),
                    rng.range(1, 4)
                )
            }
            7 => format!("/api/v1/search?q={}", rng.pick(WORDS).replace(' ', "+")),
            8 => "/api/v1/cart".into(),
            _ => "/api/v1/orders".into(),
        };
        log.push(t, ip, "GET", target, 200, ua, 0);
        if rng.chance(0.3) {
            log.push(
                t + 800,
                ip,
                "POST",
                "/api/v1/events".into(),
                204,
                ua,
                rng.range(200, 1500),
            );
        }
        if rng.chance(0.04) {
            log.push(
                t + 900,
                ip,
                "POST",
                "/api/v1/cart".into(),
                200,
                ua,
                rng.range(80, 200),
            );
        }
        t += (rng.lognormal(12.0, 0.9).clamp(1.0, 600.0) * 1000.0) as u64;
    }
}

/// One clean source.
pub fn clean(rng: &mut Rng, log: &mut Log, kind: Clean) {
    let span = log.span_ms;
    let v6 = matches!(kind, Clean::Browser | Clean::Mobile | Clean::Reader) && rng.chance(0.25);
    let ip = if v6 { log.new_v6(rng) } else { log.new_v4(rng) };
    log.label(ip, kind.name());
    let start = rng.below(span);
    match kind {
        Clean::Browser | Clean::Reader | Clean::Heavy => {
            let ua = *rng.pick(BROWSERS);
            let visits = match kind {
                Clean::Reader => rng.range(1, 2),
                Clean::Heavy => rng.range(2, 5),
                _ => rng.range(1, 4),
            };
            let mut t = start;
            for _ in 0..visits {
                let at = if v6 { in64(rng, ip) } else { ip };
                let (pages, dwell) = match kind {
                    Clean::Reader => (rng.range(2, 6), 180.0),
                    Clean::Heavy => (rng.range(15, 70), 8.0),
                    _ => ((rng.lognormal(4.0, 0.8).round() as u64).clamp(1, 40), 25.0),
                };
                let end = visit(rng, log, at, ua, t, pages, dwell);
                t = end + (rng.lognormal(1800.0, 1.0) * 1000.0) as u64;
            }
        }
        Clean::Mobile => {
            let ua = *rng.pick(APPS);
            let mut t = start;
            for _ in 0..rng.range(1, 5) {
                let at = if v6 { in64(rng, ip) } else { ip };
                app_session(rng, log, at, ua, t);
                t += (rng.lognormal(1500.0, 1.0) * 1000.0) as u64;
            }
        }
        Clean::Api => {
            let ua = *rng.pick(CLIENTS);
            let every = rng.range(60, 900) * 1000;
            let batch = rng.range(5, 60);
            let mut t = rng.below(every);
            while t < span {
                for i in 0..batch {
                    let at = t + i * rng.range(50, 400);
                    match rng.below(10) {
                        0..=5 => {
                            let s = if rng.chance(0.02) { 404 } else { 200 };
                            log.push(
                                at,
                                ip,
                                "GET",
                                format!("/api/v1/products/{}", rng.below(PRODUCTS + 20)),
                                s,
                                ua,
                                0,
                            );
                        }
                        6 | 7 => log.push(
                            at,
                            ip,
                            "GET",
                            format!("/api/v1/orders?since={}&page={i}", t / 1000),
                            200,
                            ua,
                            0,
                        ),
                        _ => log.push(
                            at,
                            ip,
                            "POST",
                            "/api/v1/inventory".into(),
                            200,
                            ua,
                            rng.range(500, 4000),
                        ),
                    }
                }
                t += every;
            }
        }
        Clean::Probe => {
            let ua = *rng.pick(PROBES);
            let every = *rng.pick(&[30_000u64, 60_000, 60_000, 300_000]);
            let path = *rng.pick(&["/health", "/", "/api/v1/status"]);
            let mut t = rng.below(every);
            while t < span {
                let m = if ua.starts_with("Pingdom") {
                    "HEAD"
                } else {
                    "GET"
                };
                log.push(t, ip, m, path.into(), 200, ua, 0);
                t += every;
            }
        }
        Clean::Crawler => {
            let ua = *rng.pick(CRAWLERS);
            let mut t = start;
            log.push(t, ip, "GET", "/robots.txt".into(), 200, ua, 0);
            log.push(t + 1000, ip, "GET", "/sitemap.xml".into(), 200, ua, 0);
            for _ in 0..rng.range(20, 400) {
                t += (rng.lognormal(10.0, 0.9) * 1000.0) as u64;
                let (path, assets) = page(rng);
                let s = match rng.below(100) {
                    0..=2 => 404,
                    3 => 301,
                    _ => 200,
                };
                log.push(t, ip, "GET", path, s, ua, 0);
                if rng.chance(0.1) {
                    if let Some(a) = assets.first() {
                        log.push(t + 500, ip, "GET", a.clone(), 200, ua, 0);
                    }
                    log.push(t + 600, ip, "GET", rng.pick(COMMON).to_string(), 200, ua, 0);
                }
            }
        }
        Clean::Nat => {
            for _ in 0..rng.range(3, 25) {
                let t = rng.below(span);
                if rng.chance(0.25) {
                    let ua = *rng.pick(APPS);
                    app_session(rng, log, ip, ua, t);
                } else {
                    let ua = *rng.pick(BROWSERS);
                    let pages = (rng.lognormal(4.0, 0.8).round() as u64).clamp(1, 40);
                    visit(rng, log, ip, ua, t, pages, 25.0);
                }
            }
        }
        Clean::Feed => {
            let ua = *rng.pick(&[
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html)",
                "NewsBlur Feed Fetcher",
                "Thunderbird/115.0",
            ]);
            let every = rng.range(15, 60) * 60_000;
            let mut t = rng.below(every);
            while t < span {
                log.push(
                    t,
                    ip,
                    "GET",
                    "/blog/feed.xml".into(),
                    if rng.chance(0.7) { 304 } else { 200 },
                    ua,
                    0,
                );
                t += every;
            }
        }
    }
}

/// Inter-request gaps (ms) for a rate drawn in requests per minute.
fn rate_ms(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    let per_min = lo * (hi / lo).powf(rng.unit());
    60_000.0 / per_min
}

/// One bad source.
pub fn bot(rng: &mut Rng, log: &mut Log, kind: Bot) {
    let span = log.span_ms;
    let ip = log.new_v4(rng);
    log.label(
        ip,
        Bot::NAMES[Bot::ALL.iter().position(|k| *k == kind).unwrap_or(0)],
    );
    let mut t = rng.below(span * 3 / 4);
    let fake = *rng.pick(BROWSERS);
    match kind {
        Bot::Scanner => {
            let ua = *rng.pick(&[fake, "Mozilla/5.0 zgrab/0.x", "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))", "curl/7.88.1", "python-requests/2.28.1"]);
            let gap = rate_ms(rng, 20.0, 600.0);
            for i in 0..rng.range(100, 1500) {
                let w = SCAN[(i as usize) % SCAN.len()];
                let prefix = *rng.pick(&["", "/wordpress", "/blog", "/old", "/backup", "/api"]);
                let target = if i < SCAN.len() as u64 {
                    format!("/{w}")
                } else {
                    format!("{prefix}/{w}")
                };
                let s = match rng.below(100) {
                    0..=84 => 404,
                    85..=92 => 403,
                    93..=96 => 301,
                    _ => 200,
                };
                log.push(t, ip, "GET", target, s, ua, 0);
                t += rng.exp_ms(gap);
            }
        }
        Bot::Scraper => {
            let ua = *rng.pick(&[
                fake,
                "python-requests/2.31.0",
                "Scrapy/2.11.0 (+https://scrapy.org)",
                "Mozilla/5.0 (compatible; DataForSeoBot/1.0)",
            ]);
            let gap = rate_ms(rng, 20.0, 300.0);
            let mut id = rng.below(PRODUCTS);
            for i in 0..rng.range(200, 2500) {
                let target = if i % 12 == 0 {
                    format!("/category/{}?page={}", rng.pick(CATEGORIES), i / 12 + 1)
                } else if rng.chance(0.2) {
                    format!("/blog/post-{}", rng.below(POSTS))
                } else {
                    id = (id + 1) % PRODUCTS;
                    format!("/products/{id}")
                };
                let s = if rng.chance(0.02) { 404 } else { 200 };
                log.push(t, ip, "GET", target, s, ua, 0);
                t += rng.exp_ms(gap);
            }
        }
        Bot::Stuffer => {
            let gap = rate_ms(rng, 5.0, 120.0);
            let rotate = rng.chance(0.3);
            for _ in 0..rng.range(50, 1000) {
                let ua = if rotate { *rng.pick(BROWSERS) } else { fake };
                if rng.chance(0.15) {
                    log.push(t, ip, "GET", "/login".into(), 200, ua, 0);
                    t += rng.range(200, 1500);
                }
                let s = match rng.below(1000) {
                    0..=4 => 302,
                    5..=899 => 401,
                    900..=969 => 403,
                    _ => 429,
                };
                log.push(t, ip, "POST", "/login".into(), s, ua, rng.range(40, 120));
                t += rng.exp_ms(gap);
            }
        }
        Bot::Prober => {
            let ua = *rng.pick(&[
                fake,
                "Mozilla/5.0 (compatible; Odin; https://docs.getodin.com/)",
                "curl/7.61.1",
            ]);
            for _ in 0..rng.range(5, 30) {
                let p = rng.pick(PROBE_PAYLOADS).to_string();
                let s = if p.contains("%") || p.contains("${") {
                    403
                } else {
                    404
                };
                log.push(t, ip, "GET", p, s, ua, 0);
                t += rng.range(60_000, 900_000);
            }
        }
        Bot::Rotator => {
            let gap = rate_ms(rng, 10.0, 200.0);
            for _ in 0..rng.range(100, 1500) {
                let ua = format!(
                    "Mozilla/5.0 (Windows NT {}.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.{}.{} Safari/537.36",
                    rng.pick(&[6, 10, 11]),
                    rng.range(90, 127),
                    rng.range(3000, 6500),
                    rng.below(200)
                );
                let (path, assets) = page(rng);
                log.push(t, ip, "GET", path, 200, &ua, 0);
                if rng.chance(0.2)
                    && let Some(a) = assets.first()
                {
                    log.push(t + 300, ip, "GET", a.clone(), 200, &ua, 0);
                }
                t += rng.exp_ms(gap);
            }
        }
        Bot::Abuser => {
            let ua = *rng.pick(&[
                "python-requests/2.31.0",
                "Go-http-client/1.1",
                "axios/1.6.7",
                fake,
            ]);
            let gap = rate_ms(rng, 60.0, 1500.0);
            let enumerate = rng.chance(0.5);
            let mut id = 0;
            for _ in 0..rng.range(300, 5000) {
                let (target, s) = if enumerate {
                    id += 1;
                    let s = if id > PRODUCTS { 404 } else { 200 };
                    (format!("/api/v1/products/{id}"), s)
                } else {
                    let q: String = (0..rng.range(3, 8))
                        .map(|_| (b'a' + rng.below(26) as u8) as char)
                        .collect();
                    (format!("/api/v1/search?q={q}"), 200)
                };
                let s = if rng.chance(0.1) { 429 } else { s };
                log.push(t, ip, "GET", target, s, ua, 0);
                t += rng.exp_ms(gap);
            }
        }
    }
}
