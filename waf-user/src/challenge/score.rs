//! The bot score: how much a request's headers look like a program rather
//! than a browser, 0 (a browser) to 100, from weighted rules as
//! flask-nobot scores them. `[challenge] mode = "auto"` challenges from
//! `threshold` (default 60) up: one strong rule, or two weak ones with a
//! middling one.
//!
//! | rule | reason | weight |
//! |------|--------|--------|
//! | no `User-Agent` (absent or blank) | `no_user_agent` | 70 |
//! | a tool or library user agent (curl, wget, python-requests, Go, Java, okhttp, scanners, …) | `tool_user_agent` | 70 |
//! | a headless or automation marker (HeadlessChrome, PhantomJS, Selenium, puppeteer, playwright, …) | `automation` | 80 |
//! | a crawler's name ([`crawler_name`]) not verified by the caller | `unverified_crawler` | 70 |
//! | a user agent that names neither a browser (`Mozilla/`) nor any of the above | `non_browser_user_agent` | 30 |
//! | a browser-looking user agent without `Accept` | `no_accept` | 20 |
//! | … without `Accept-Language` | `no_accept_language` | 20 |
//! | … without `Accept-Encoding` | `no_accept_encoding` | 20 |
//! | HTTP/1.0 | `http10` | 20 |
//!
//! The sum is capped at 100. A verified crawler (`crawler_verified`: the
//! caller checked its address, e.g. by reverse and forward DNS) scores 0
//! whatever else. Matching is case-insensitive and reads at most the first
//! 512 bytes of each header.

/// The most bytes of a header read.
const MAX_READ: usize = 512;

/// What the score is computed from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Signals<'a> {
    /// `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// `Accept`.
    pub accept: Option<&'a str>,
    /// `Accept-Language`.
    pub accept_language: Option<&'a str>,
    /// `Accept-Encoding`.
    pub accept_encoding: Option<&'a str>,
    /// The request is HTTP/1.0.
    pub http10: bool,
    /// The client is a crawler whose address the caller verified.
    pub crawler_verified: bool,
}

/// A bot score and the rules that made it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Score {
    /// 0 (a browser) to 100.
    pub score: u32,
    /// The rules that matched, in the order of the table.
    pub reasons: Vec<&'static str>,
}

/// Tool and library user agents (lowercase substrings).
const TOOLS: &[&str] = &[
    "curl/",
    "libcurl",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww-perl",
    "lwp::",
    "scrapy",
    "httpclient",
    "node-fetch",
    "undici",
    "axios/",
    "powershell",
    "httpie",
    "guzzlehttp",
    "mechanize",
    "winhttp",
    "reqwest",
    "postmanruntime",
    "restsharp",
    "faraday",
    "ruby",
    "nikto",
    "sqlmap",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "wpscan",
    "gobuster",
    "dirbuster",
    "feroxbuster",
    "fuzz faster u fool",
];

/// Tools whose bare name starts the user agent (`curl`, `Wget`).
const TOOL_PREFIXES: &[&str] = &["curl", "wget", "python", "go-", "java", "perl"];

/// Headless browsers and automation frameworks.
const AUTOMATION: &[&str] = &[
    "headlesschrome",
    "headless chrome",
    "phantomjs",
    "selenium",
    "webdriver",
    "puppeteer",
    "playwright",
    "slimerjs",
    "htmlunit",
    "cypress",
];

/// Crawler names: (lowercase substring, the crawler).
const CRAWLERS: &[(&str, &str)] = &[
    ("googlebot", "googlebot"),
    ("adsbot-google", "googlebot"),
    ("google-inspectiontool", "googlebot"),
    ("bingbot", "bingbot"),
    ("msnbot", "bingbot"),
    ("yandex", "yandex"),
    ("baiduspider", "baiduspider"),
    ("duckduckbot", "duckduckbot"),
    ("applebot", "applebot"),
    ("yahoo! slurp", "yahoo"),
    ("facebookexternalhit", "facebook"),
    ("twitterbot", "twitterbot"),
    ("linkedinbot", "linkedinbot"),
    ("petalbot", "petalbot"),
    ("sogou", "sogou"),
    ("seznambot", "seznambot"),
    ("amazonbot", "amazonbot"),
    ("gptbot", "gptbot"),
    ("ccbot", "ccbot"),
    ("claudebot", "claudebot"),
    ("perplexitybot", "perplexitybot"),
    ("bytespider", "bytespider"),
    ("ahrefsbot", "ahrefsbot"),
    ("semrushbot", "semrushbot"),
    ("mj12bot", "mj12bot"),
    ("dotbot", "dotbot"),
];

/// The first [`MAX_READ`] bytes, lowercased.
fn folded(s: &str) -> Vec<u8> {
    s.as_bytes()[..s.len().min(MAX_READ)].to_ascii_lowercase()
}

fn has(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The crawler a user agent names, if any (case-insensitive, first 512
/// bytes).
pub fn crawler_name(ua: &str) -> Option<&'static str> {
    let ua = folded(ua);
    CRAWLERS
        .iter()
        .find(|(needle, _)| has(&ua, needle))
        .map(|&(_, name)| name)
}

fn present(h: Option<&str>) -> bool {
    h.is_some_and(|v| !v.trim().is_empty())
}

/// Scores a request ([module doc](self) has the table).
pub fn bot_score(s: &Signals) -> Score {
    let mut out = Score::default();
    if s.crawler_verified {
        return out;
    }
    let mut add = |reason: &'static str, weight: u32| {
        out.score += weight;
        out.reasons.push(reason);
    };
    let ua = s.user_agent.filter(|u| !u.trim().is_empty());
    match ua {
        None => add("no_user_agent", 70),
        Some(raw) => {
            let ua = folded(raw.trim_start());
            let tool = TOOLS.iter().any(|t| has(&ua, t))
                || TOOL_PREFIXES.iter().any(|p| ua.starts_with(p.as_bytes()));
            let automation = AUTOMATION.iter().any(|t| has(&ua, t));
            let crawler = crawler_name(raw).is_some();
            let browser = ua.starts_with(b"mozilla/");
            if tool {
                add("tool_user_agent", 70);
            }
            if automation {
                add("automation", 80);
            }
            if crawler {
                add("unverified_crawler", 70);
            }
            if !(browser || tool || automation || crawler) {
                add("non_browser_user_agent", 30);
            }
            if browser {
                if !present(s.accept) {
                    add("no_accept", 20);
                }
                if !present(s.accept_language) {
                    add("no_accept_language", 20);
                }
                if !present(s.accept_encoding) {
                    add("no_accept_encoding", 20);
                }
            }
        }
    }
    if s.http10 {
        add("http10", 20);
    }
    out.score = out.score.min(100);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like \
                          Gecko) Chrome/126.0.0.0 Safari/537.36";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    fn browser(ua: &str) -> Signals<'_> {
        Signals {
            user_agent: Some(ua),
            accept: Some("text/html,application/xhtml+xml,*/*;q=0.8"),
            accept_language: Some("en-US,en;q=0.9"),
            accept_encoding: Some("gzip, deflate, br, zstd"),
            http10: false,
            crawler_verified: false,
        }
    }

    const THRESHOLD: u32 = 60;

    #[test]
    fn a_full_chrome_request_scores_zero() {
        assert_eq!(bot_score(&browser(CHROME)), Score::default());
        let firefox = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(bot_score(&browser(firefox)).score, 0);
    }

    #[test]
    fn tools_score_at_least_the_default_threshold() {
        for ua in [
            "curl/8.5.0",
            "curl",
            "Wget/1.21.4",
            "python-requests/2.32.3",
            "Python-urllib/3.12",
            "aiohttp/3.9",
            "Go-http-client/1.1",
            "Java/17.0.2",
            "okhttp/4.12.0",
            "libwww-perl/6.72",
            "Scrapy/2.11 (+https://scrapy.org)",
            "Apache-HttpClient/4.5.14 (Java/17)",
            "node-fetch/1.0",
            "axios/1.7.2",
            "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1",
            "sqlmap/1.8",
        ] {
            let s = bot_score(&Signals {
                user_agent: Some(ua),
                accept: Some("*/*"),
                ..Default::default()
            });
            assert!(s.score >= THRESHOLD, "{ua}: {s:?}");
            assert!(s.reasons.contains(&"tool_user_agent"), "{ua}: {s:?}");
        }
        // Even with a browser's full header set.
        assert!(bot_score(&browser("curl/8.5.0")).score >= THRESHOLD);
    }

    #[test]
    fn automation_markers() {
        for ua in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             HeadlessChrome/126.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) \
             PhantomJS/2.1.1 Safari/538.1",
            "Mozilla/5.0 Selenium",
            "puppeteer",
            "Playwright/1.44",
        ] {
            let s = bot_score(&browser(ua));
            assert!(s.score >= THRESHOLD, "{ua}: {s:?}");
            assert!(s.reasons.contains(&"automation"), "{ua}: {s:?}");
        }
    }

    #[test]
    fn crawlers_score_high_unless_verified() {
        assert_eq!(crawler_name(GOOGLEBOT), Some("googlebot"));
        assert_eq!(
            crawler_name("Mozilla/5.0 (compatible; bingbot/2.0)"),
            Some("bingbot")
        );
        assert_eq!(
            crawler_name("Mozilla/5.0 (compatible; YandexBot/3.0)"),
            Some("yandex")
        );
        assert_eq!(crawler_name("BAIDUSPIDER"), Some("baiduspider"));
        assert_eq!(crawler_name("DuckDuckBot/1.1"), Some("duckduckbot"));
        assert_eq!(crawler_name("Applebot/0.1"), Some("applebot"));
        assert_eq!(crawler_name(CHROME), None);
        let mut s = browser(GOOGLEBOT);
        let unverified = bot_score(&s);
        assert!(unverified.score >= THRESHOLD, "{unverified:?}");
        assert!(unverified.reasons.contains(&"unverified_crawler"));
        s.crawler_verified = true;
        assert_eq!(bot_score(&s), Score::default());
        // Verified: 0 whatever else the request lacks.
        s.accept = None;
        s.http10 = true;
        assert_eq!(bot_score(&s).score, 0);
    }

    #[test]
    fn missing_headers_on_a_browser_user_agent_add_up() {
        let bare = Signals {
            user_agent: Some(CHROME),
            ..Default::default()
        };
        let s = bot_score(&bare);
        assert_eq!(s.score, 60);
        assert_eq!(
            s.reasons,
            ["no_accept", "no_accept_language", "no_accept_encoding"]
        );
        let mut one = browser(CHROME);
        one.accept_language = Some("  ");
        assert_eq!(bot_score(&one).reasons, ["no_accept_language"]);
        one.http10 = true;
        assert_eq!(bot_score(&one).score, 40);
        let all = Signals {
            http10: true,
            ..bare
        };
        assert_eq!(bot_score(&all).score, 80);
    }

    #[test]
    fn no_or_odd_user_agents() {
        let none = bot_score(&Signals::default());
        assert_eq!(none.reasons, ["no_user_agent"]);
        assert!(none.score >= THRESHOLD);
        let blank = Signals {
            user_agent: Some("   "),
            ..Default::default()
        };
        assert_eq!(bot_score(&blank).reasons, ["no_user_agent"]);
        let odd = bot_score(&browser("MyApp/1.0"));
        assert_eq!(odd.reasons, ["non_browser_user_agent"]);
        assert!(odd.score < THRESHOLD);
        let capped = bot_score(&Signals {
            user_agent: Some("curl/8 HeadlessChrome Googlebot"),
            http10: true,
            ..Default::default()
        });
        assert_eq!(capped.score, 100);
    }

    #[test]
    fn only_the_first_512_bytes_are_read() {
        let late = format!("{CHROME}{}curl/8", " ".repeat(600));
        assert_eq!(bot_score(&browser(&late)).score, 0);
        let early = format!("curl/8{}", "é".repeat(10_000));
        assert!(bot_score(&browser(&early)).score >= THRESHOLD);
        assert_eq!(crawler_name(&format!("{}Googlebot", "x".repeat(600))), None);
    }
}
