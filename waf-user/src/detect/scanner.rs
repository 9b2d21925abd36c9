//! Security scanners and other bad user agents, by User-Agent substring.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// User-Agent substrings of scanners and attack tools (lowercase).
pub const BUILTIN: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "acunetix",
    "netsparker",
    "invicti",
    "havij",
    "arachni",
    "w3af",
    "wpscan",
    "dirbuster",
    "gobuster",
    "dirb/",
    "wfuzz",
    "ffuf",
    "feroxbuster",
    "openvas",
    "nessus",
    "qualys",
    "appscan",
    "webinspect",
    "skipfish",
    "paros",
    "owasp zap",
    "zaproxy",
    "jorgee",
    "zmeu",
    "morfeus",
    "commix",
    "xsser",
    "whatweb",
    "httprint",
    "brutus",
    "hydra",
    "medusa",
    "metasploit",
    "fimap",
    "grabber",
    "bsqlbf",
    "pangolin",
    "sqlninja",
    "webshag",
    "jaeles",
    "interactsh",
    "dirsearch",
    "wapiti",
    "vega/",
    "burpcollaborator",
    "netcraft web server survey",
    "censysinspect",
    "nimbostratus",
    "struts-pwn",
    "log4shell",
    "afrog",
    "sqlpowerinjector",
    "bbqsql",
    "absinthe",
    "teh forest lobster",
    "mysqloit",
    "webvulnscan",
    "nsauditor",
    "j-baffler",
    "black widow",
    "sitelockspider",
    "fuzz faster u fool",
    "x-scan",
    "openwebspider",
    "cgichk",
    "python-nmap",
];

/// A compiled list of bad user agents.
pub struct Scanners {
    ac: AhoCorasick,
    words: Vec<String>,
}

impl Scanners {
    /// Builds the matcher from the built-in list (if wanted) and extra words.
    pub fn new(builtin: bool, extra: &[String]) -> Result<Scanners, String> {
        let mut words: Vec<String> = if builtin {
            BUILTIN.iter().map(|w| (*w).to_owned()).collect()
        } else {
            Vec::new()
        };
        words.extend(
            extra
                .iter()
                .map(|w| w.trim().to_ascii_lowercase())
                .filter(|w| !w.is_empty()),
        );
        let ac = AhoCorasickBuilder::new()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&words)
            .map_err(|e| format!("bad user agents: {e}"))?;
        Ok(Scanners { ac, words })
    }

    /// The list entry found in a User-Agent, if any.
    pub fn find(&self, ua: &str) -> Option<&str> {
        self.ac
            .find(ua)
            .map(|m| self.words[m.pattern().as_usize()].as_str())
    }
}
