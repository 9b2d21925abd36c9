//! The detection engine: a pure library, request in, verdict out (no I/O,
//! no async), shared by the proxy, the passive path, `waf inspect` and the
//! API.
//!
//! - [`normalize`]: decoding and folding of each value before matching.
//! - [`rules`]: the signatures per attack family, with severities and
//!   paranoia levels; [`matcher`] compiles them behind a literal screen
//!   ([`prefilter`] finds each rule's literals).
//! - [`libinj`], [`ssrf`], [`redirect`], [`graphql`], [`jwt`],
//!   [`log4shell`], [`scanner`], [`protocol`]: checks that are code rather
//!   than patterns.
//! - [`leak`]: data leaks in responses (the proxy's response inspection).
//! - [`config`], [`operator`]: operator rules, exclusions, exempt paths.
//! - [`path`]: evasions of the path itself; [`upload`]: scripts in files.
//! - [`engine`]: runs it all and scores; [`verdict`]: what it returns.
//! - [`lines`]: the JSON-lines driver of `waf inspect`.

pub mod collect;
pub mod config;
pub mod engine;
pub mod graphql;
pub mod jwt;
pub mod kind;
mod ladder;
pub mod leak;
pub mod libinj;
pub mod lines;
pub mod log4shell;
pub mod matcher;
pub mod normalize;
pub mod operator;
pub mod path;
pub mod prefilter;
pub mod protocol;
pub mod redirect;
pub mod rules;
pub mod scanner;
mod screen;
pub mod serialized;
pub mod set;
pub mod sqli_prefilter;
pub mod ssrf;
pub mod upload;
pub mod verdict;

pub use config::{
    DetectConfig, Exclusion, HeaderMatch, KeywordList, OneOrMany, OperatorRule, RuleAction,
};
pub use engine::{CleanCacheStats, Engine, EngineError};
pub use kind::{Kind, Severity};
pub use lines::{InspectStats, inspect_line, inspect_lines};
pub use operator::ExclusionSet;
pub use verdict::{Action, Finding, Risk, Verdict};
