//! The crate's layers, read from its source (`waf-user/src`): which
//! top-level module names which other through `crate::` paths (test-only
//! items and comments aside). The import graph has no cycle, the pure layers
//! import only pure layers, the core imports no face; and no source file
//! grows past [`MAX_LINES`]. No build of the code under test, no root.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    fs,
    path::{Path, PathBuf},
};

/// Layers that know nothing of the daemon: the request model, detection,
/// values, crafted packets, what faces report, source-policy files, the
/// browser challenge, per-route policy.
const PURE: &[&str] = &[
    "http",
    "detect",
    "values",
    "packet",
    "telemetry",
    "sources",
    "challenge",
    "routes",
    "anomaly",
    "monitors",
];
/// The firewall's owner and the kernel half; the daemon's stores the faces
/// share (the findings store and runtime exclusions, the reports drawn
/// from them and the journal).
const CORE: &[&str] = &["firewall", "dataplane", "findings", "report"];
/// What the world talks to, and the wiring that builds it.
const FACES: &[&str] = &[
    "api", "cli", "config", "daemon", "fleet", "gen", "mirror", "proxy", "ui",
];

/// Longest source file allowed (tables of rules aside).
const MAX_LINES: usize = 650;
/// Files that are tables of rules, exempt from [`MAX_LINES`].
const RULE_TABLES: &str = "detect/rules/";

/// Where a module names another: file (relative to `src`) and line.
type Place = String;
/// Module -> module it names -> where.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Place>>>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The source with comments, string and character literals blanked out
/// (newlines kept, so line numbers still hold).
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&c, i) {
            // r"..", r#".."#, br".." : up to the quote and as many hashes.
            let open = c[i..].iter().position(|&ch| ch == '"').unwrap_or(0) + 1;
            let mut j = i + open;
            while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')))
            {
                j += 1;
            }
            let end = (j + 1 + hashes).min(c.len());
            c[i..end].iter().for_each(|&ch| blank(&mut out, ch));
            i = end;
        } else if at(0) == '"' || (at(0) == 'b' && at(1) == '"' && !ident_char(before(&c, i))) {
            let mut j = i + if at(0) == 'b' { 2 } else { 1 };
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(c.len());
            c[i..end].iter().for_each(|&ch| blank(&mut out, ch));
            i = end;
        } else if at(0) == '\'' && (at(1) == '\\' || at(2) == '\'') {
            // A character literal ('x', '\n', '\u{..}'); 'a alone is a lifetime.
            let mut j = i + 1;
            while j < c.len() && c[j] != '\'' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(c.len());
            c[i..end].iter().for_each(|&ch| blank(&mut out, ch));
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn ident_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

fn before(c: &[char], i: usize) -> char {
    if i == 0 { ' ' } else { c[i - 1] }
}

/// The number of `#` of a raw string starting at `i`, if one does.
fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    if ident_char(before(c, i)) {
        return None;
    }
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&ch| ch == '#').count();
    (c.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// Blanks every item under `#[cfg(test)]` (modules, functions, uses) and
/// returns the names of test modules kept in files of their own
/// (`#[cfg(test)] mod tests;`).
fn drop_test_items(code: &mut String) -> Vec<String> {
    const ATTR: &str = "#[cfg(test)]";
    let mut files = Vec::new();
    while let Some(start) = code.find(ATTR) {
        let c: Vec<char> = code.chars().collect();
        let from = code[..start].chars().count();
        let mut i = from + ATTR.len();
        let mut depth = 0usize;
        let mut saw_brace = false;
        while i < c.len() {
            match c[i] {
                '{' => {
                    depth += 1;
                    saw_brace = true;
                }
                // The end of the block the attributed item (a field, an
                // arm) sits in: the item ends before it.
                '}' if depth == 0 => {
                    i -= 1;
                    break;
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ';' | ',' if depth == 0 && !saw_brace => break,
                _ => {}
            }
            i += 1;
        }
        let item: String = c[from + ATTR.len()..=i.min(c.len() - 1)].iter().collect();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let ["mod", name, ..] | ["pub", "mod", name, ..] = words.as_slice()
            && let Some(name) = name.strip_suffix(';')
        {
            files.push(name.to_string());
        }
        let blanked: String = c[from..=i.min(c.len() - 1)]
            .iter()
            .map(|&ch| if ch == '\n' { '\n' } else { ' ' })
            .collect();
        *code = c[..from].iter().collect::<String>()
            + &blanked
            + &c[(i + 1).min(c.len())..].iter().collect::<String>();
    }
    files
}

/// Reads an identifier (raw ones too) at `i`; returns it and where it ends.
fn ident_at(c: &[char], mut i: usize) -> Option<(String, usize)> {
    while c.get(i).is_some_and(|ch| ch.is_whitespace()) {
        i += 1;
    }
    if c.get(i) == Some(&'r') && c.get(i + 1) == Some(&'#') {
        i += 2;
    }
    let len = c[i..].iter().take_while(|&&ch| ident_char(ch)).count();
    (len > 0).then(|| (c[i..i + len].iter().collect(), i + len))
}

/// The first segment of every `crate::` path in `code`, with its line: in
/// `use crate::{a::x, b::{y, z}}` both `a` and `b`.
fn crate_paths(code: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = code.chars().collect();
    let pat: Vec<char> = "crate::".chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + pat.len() <= c.len() {
        let prev = before(&c, i);
        if c[i..i + pat.len()] != pat[..] || ident_char(prev) || prev == '$' {
            i += 1;
            continue;
        }
        let line = c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
        let mut j = i + pat.len();
        while c.get(j).is_some_and(|ch| ch.is_whitespace()) {
            j += 1;
        }
        if c.get(j) == Some(&'{') {
            // A group: the first identifier of each entry at its top level.
            let mut depth = 0;
            let mut expect = true;
            while j < c.len() {
                match c[j] {
                    '{' => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect = true,
                    ch if expect && depth == 1 && !ch.is_whitespace() => {
                        if let Some((name, _)) = ident_at(&c, j) {
                            let line = c[..j].iter().filter(|&&ch| ch == '\n').count() + 1;
                            out.push((name, line));
                        }
                        expect = false;
                    }
                    _ => {}
                }
                j += 1;
            }
        } else if let Some((name, _)) = ident_at(&c, j) {
            out.push((name, line));
        }
        i += pat.len();
    }
    out
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for e in entries {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A source file of the crate, read: its path relative to `src`, its line
/// count and its code without comments, literals or test items.
struct Source {
    rel: String,
    lines: usize,
    code: String,
    test_mods: Vec<String>,
}

fn read(path: &Path) -> Source {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut code = code_only(&text);
    let test_mods = drop_test_items(&mut code);
    let rel = path.strip_prefix(src_dir()).unwrap_or(path);
    Source {
        rel: rel.to_string_lossy().replace('\\', "/"),
        lines: text.lines().count(),
        code,
        test_mods,
    }
}

/// The crate's source files outside test-only modules kept in files of
/// their own, each with its top-level module.
fn crate_sources() -> Vec<(String, Source)> {
    let src = src_dir();
    let sources: Vec<Source> = rust_files(&src).iter().map(|p| read(p)).collect();
    // `#[cfg(test)] mod x;` in a/mod.rs or a.rs is a/x.rs or a/x/...
    let mut test_only = BTreeSet::new();
    for s in &sources {
        let dir = match s.rel.rsplit_once('/') {
            Some((d, "mod.rs")) => d.to_string(),
            _ => s.rel.trim_end_matches(".rs").to_string(),
        };
        for m in &s.test_mods {
            test_only.insert(format!("{dir}/{m}"));
        }
    }
    sources
        .into_iter()
        .filter(|s| {
            let stem = s.rel.trim_end_matches(".rs").trim_end_matches("/mod");
            !test_only
                .iter()
                .any(|t| stem == t || stem.starts_with(&format!("{t}/")))
        })
        .filter_map(|s| {
            let top = s.rel.split(['/', '.']).next()?.to_string();
            (top != "lib" && top != "main").then_some((top, s))
        })
        .collect()
}

/// The top-level modules `lib.rs` declares.
fn declared_modules() -> BTreeSet<String> {
    let code = code_only(&fs::read_to_string(src_dir().join("lib.rs")).expect("src/lib.rs"));
    code.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("pub ").unwrap_or(l.trim());
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim_start_matches("r#").to_string())
        })
        .collect()
}

fn graph() -> Graph {
    let modules = declared_modules();
    let mut g: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (top, s) in crate_sources() {
        for (name, line) in crate_paths(&s.code) {
            if name != top && modules.contains(&name) {
                let places = g.entry(top.clone()).or_default().entry(name).or_default();
                places.push(format!("{}:{line}", s.rel));
            }
        }
    }
    g
}

/// The shortest way from `from` back to itself, if there is one.
fn cycle_through(g: &Graph, from: &str) -> Option<Vec<String>> {
    let mut came: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([from.to_string()]);
    while let Some(n) = queue.pop_front() {
        for next in g.get(&n).into_iter().flat_map(|e| e.keys()) {
            if next == from {
                let mut path = vec![n.clone()];
                while let Some(p) = came.get(path.last().expect("a node")) {
                    path.push(p.clone());
                }
                path.reverse();
                path.push(from.to_string());
                return Some(path);
            }
            if !came.contains_key(next) && next != from {
                came.insert(next.clone(), n.clone());
                queue.push_back(next.clone());
            }
        }
    }
    None
}

/// `a -> b (a/x.rs:3) -> a (b.rs:9)`.
fn show_path(g: &Graph, path: &[String]) -> String {
    let mut s = path[0].clone();
    for w in path.windows(2) {
        let at = &g[&w[0]][&w[1]][0];
        s += &format!(" -> {} ({at})", w[1]);
    }
    s
}

/// Every edge from one of `from` to one of `to`, shown.
fn edges_between(g: &Graph, from: &[&str], to: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (m, edges) in g.iter().filter(|(m, _)| from.contains(&m.as_str())) {
        for (n, places) in edges.iter().filter(|(n, _)| to.contains(&n.as_str())) {
            out.push(format!("{m} -> {n} ({})", places.join(", ")));
        }
    }
    out
}

#[test]
fn every_top_level_module_has_a_layer() {
    let declared = declared_modules();
    let layered: BTreeSet<String> = [PURE, CORE, FACES]
        .concat()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        declared, layered,
        "lib.rs declares these modules; give each new one a layer (PURE, CORE or FACES) in \
         this test"
    );
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let g = graph();
    let mut cycles = BTreeSet::new();
    for m in g.keys() {
        if let Some(mut path) = cycle_through(&g, m) {
            // One rotation per cycle: start at its smallest module.
            path.pop();
            let least = (0..path.len()).min_by_key(|&i| &path[i]).expect("a cycle");
            path.rotate_left(least);
            path.push(path[0].clone());
            cycles.insert(show_path(&g, &path));
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules:\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn pure_layers_import_only_pure_layers() {
    let g = graph();
    let found = edges_between(&g, PURE, &[CORE, FACES].concat());
    assert!(
        found.is_empty(),
        "pure layers ({PURE:?}) import the core or a face:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_core_imports_no_face() {
    let g = graph();
    let found = edges_between(&g, CORE, FACES);
    assert!(
        found.is_empty(),
        "the core ({CORE:?}) imports a face:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_max_lines() {
    let long: Vec<String> = crate_sources()
        .into_iter()
        .filter(|(_, s)| s.lines > MAX_LINES && !s.rel.starts_with(RULE_TABLES))
        .map(|(_, s)| format!("{}: {} lines", s.rel, s.lines))
        .collect();
    assert!(
        long.is_empty(),
        "source files above {MAX_LINES} lines: split them by concern\n{}",
        long.join("\n")
    );
}

#[test]
fn the_reader_sees_paths_in_groups_and_skips_comments_literals_and_tests() {
    let text = r##"
use crate::{
    http::Request,
    detect::{Engine, Verdict},
};
// crate::api in a comment
/* crate::cli /* nested */ crate::cli */
const S: &str = "crate::proxy";
const R: &str = r#"crate::mirror "quoted""#;
const C: char = '"';
fn f<'a>(x: &'a str) -> crate::values::Dur { crate::r#gen::run(x) }
macro_rules! m { () => { $crate::daemon::x() } }
#[cfg(test)]
mod tests {
    use crate::firewall::Firewall;
}
#[cfg(test)]
fn helper() { crate::config::load() }
#[cfg(test)]
mod props;
"##;
    let mut code = code_only(text);
    let test_mods = drop_test_items(&mut code);
    let names: Vec<(String, usize)> = crate_paths(&code);
    assert_eq!(
        names,
        [
            ("http".to_string(), 3),
            ("detect".to_string(), 4),
            ("values".to_string(), 11),
            ("gen".to_string(), 11),
        ]
    );
    assert_eq!(test_mods, ["props"]);
}
