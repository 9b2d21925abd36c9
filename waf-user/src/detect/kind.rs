//! Attack kinds and severities.

use serde::{Deserialize, Serialize};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// OS command injection.
    Cmdi,
    /// Path traversal and local file access.
    Lfi,
    /// Remote file inclusion and dangerous URL wrappers.
    Rfi,
    /// Server-side request forgery (internal addresses in URLs).
    Ssrf,
    /// LDAP filter injection.
    Ldap,
    /// XML external entities and entity expansion.
    Xxe,
    /// NoSQL operator injection and ORM filter abuse.
    Nosql,
    /// Server-side template injection.
    Ssti,
    /// CRLF injection, response splitting, request smuggling in values.
    Crlf,
    /// Code injection (PHP, Python, Node.js, Perl, Ruby).
    CodeInjection,
    /// Java class, OGNL/SpEL and deserialization payloads.
    Java,
    /// Log4Shell-style `${jndi:...}` lookups.
    Log4shell,
    /// Prototype pollution.
    PrototypePollution,
    /// Session fixation.
    SessionFixation,
    /// Upload of a server-side script.
    FileUpload,
    /// Open redirects: URLs a redirect check and a browser read as two
    /// hosts.
    OpenRedirect,
    /// GraphQL abuse: introspection of the whole schema.
    Graphql,
    /// JSON Web Tokens forged to pass unsigned (`alg: none`).
    Jwt,
    /// Security scanners and bad user agents.
    Scanner,
    /// Protocol anomalies (framing, encodings, methods, headers).
    Protocol,
    /// An operator rule or keyword from the configuration.
    Operator,
    /// A response that gives away what it should not: a database error, a
    /// stack trace, a web shell's page, a system file (`detect/leak.rs`).
    DataLeak,
}

impl Kind {
    /// The snake_case name used in output and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sqli => "sqli",
            Kind::Xss => "xss",
            Kind::Cmdi => "cmdi",
            Kind::Lfi => "lfi",
            Kind::Rfi => "rfi",
            Kind::Ssrf => "ssrf",
            Kind::Ldap => "ldap",
            Kind::Xxe => "xxe",
            Kind::Nosql => "nosql",
            Kind::Ssti => "ssti",
            Kind::Crlf => "crlf",
            Kind::CodeInjection => "code_injection",
            Kind::Java => "java",
            Kind::Log4shell => "log4shell",
            Kind::PrototypePollution => "prototype_pollution",
            Kind::SessionFixation => "session_fixation",
            Kind::FileUpload => "file_upload",
            Kind::OpenRedirect => "open_redirect",
            Kind::Graphql => "graphql",
            Kind::Jwt => "jwt",
            Kind::Scanner => "scanner",
            Kind::Protocol => "protocol",
            Kind::Operator => "operator",
            Kind::DataLeak => "data_leak",
        }
    }
}

/// How bad a finding is; its points add up to the anomaly score (as in the
/// CoreRuleSet: critical 5, error 4, warning 3, notice 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 2 points.
    Notice,
    /// 3 points.
    Warning,
    /// 4 points.
    Error,
    /// 5 points: enough to block alone at the default threshold.
    Critical,
}

impl Severity {
    /// Anomaly score points.
    pub fn points(self) -> u32 {
        match self {
            Severity::Notice => 2,
            Severity::Warning => 3,
            Severity::Error => 4,
            Severity::Critical => 5,
        }
    }
}
