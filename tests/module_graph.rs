//! The house rule: the top-level modules of `src/` form a DAG. No module imports (through
//! `crate::…` paths, tests included) from a module that imports it, directly or through others.
//!
//! A module is `src/X.rs` or everything under `src/X/`; comments are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (doc comments included).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

/// The top-level modules named after `crate::` in `text`: `crate::x` and `crate::{x, y::z}`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(i) = text[at..].find("crate::") {
        let start = at + i;
        at = start + "crate::".len();
        if start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b'$') {
            continue; // `$crate::`, `mycrate::`
        }
        if bytes.get(at) == Some(&b'{') {
            let end = text[at..].find('}').map_or(text.len(), |e| at + e);
            for part in text[at + 1..end].split(',') {
                let name: String = part
                    .trim()
                    .bytes()
                    .take_while(|&b| is_ident(b))
                    .map(char::from)
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = bytes[at..]
                .iter()
                .take_while(|&&b| is_ident(b))
                .map(|&b| char::from(b))
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// Module → the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| -> Option<String> {
        let first = path.strip_prefix(&src).ok()?.components().next()?;
        let name = first.as_os_str().to_str()?;
        let name = name.strip_suffix(".rs").unwrap_or(name);
        (!matches!(name, "lib" | "main")).then(|| name.to_owned())
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        if let Some(module) = module_of(path) {
            edges.entry(module).or_default();
        }
    }
    for path in &files {
        let Some(module) = module_of(path) else {
            continue;
        };
        let text = without_comments(&std::fs::read_to_string(path).unwrap());
        for target in crate_paths(&text) {
            if target != module && edges.contains_key(&target) {
                edges.get_mut(&module).unwrap().insert(target);
            }
        }
    }
    edges
}

/// A cycle through `from`, if any: depth-first search for a path back to it.
fn cycle_through(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn search(
        edges: &BTreeMap<String, BTreeSet<String>>,
        goal: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &edges[at] {
            if next == goal {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if search(edges, goal, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_owned()];
    search(edges, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_modules_form_a_dag() {
    let edges = graph();
    assert!(edges.len() > 10, "found the modules: {edges:?}");
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|m| cycle_through(&edges, m))
        .map(|cycle| format!("{} -> {}", cycle.join(" -> "), cycle[0]))
        .collect();
    assert!(cycles.is_empty(), "import circles:\n{}", cycles.join("\n"));
}

#[test]
fn the_leaves_know_nothing_of_the_decision() {
    let edges = graph();
    let decision = [
        "verdict",
        "engine",
        "signals",
        "middleware",
        "guard",
        "config",
        "bouncer",
    ];
    for leaf in [
        "prefix_table",
        "clock",
        "net",
        "path_match",
        "user_agent",
        "client_ip",
    ] {
        let imports = &edges[leaf];
        for module in decision {
            assert!(!imports.contains(module), "{leaf} imports {module}");
        }
    }
    // Only `config` maps errors to TOML keys: nothing imports it.
    for (module, imports) in &edges {
        assert!(!imports.contains("config"), "{module} imports config");
    }
}

#[test]
fn the_scanner_sees_both_import_forms() {
    let text = "use crate::{a, b::c};\nfn f() { crate::d::e(); $crate::x; }";
    let found: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(found, ["a", "b", "d"]);
}

#[test]
fn the_access_log_sits_above_the_decision() {
    // The access log reads verdicts and resolves clients; nothing it reads may read it back.
    let edges = graph();
    for below in [
        "verdict",
        "client_ip",
        "path_match",
        "engine",
        "middleware",
        "rules",
        "limiter",
        "signals",
        "events",
        "response",
    ] {
        assert!(
            !edges[below].contains("access_log"),
            "{below} imports access_log"
        );
    }
}

#[test]
fn metrics_sits_between_the_components_and_config() {
    // `metrics` reads the components (and the engine counts into it); nothing it reads may
    // read it back.
    let edges = graph();
    for below in [
        "prefix_table",
        "clock",
        "net",
        "path_match",
        "user_agent",
        "client_ip",
        "rules",
        "limiter",
        "feeds",
        "reputation",
        "verdict",
        "signals",
        "events",
        "response",
    ] {
        if let Some(imports) = edges.get(below) {
            assert!(!imports.contains("metrics"), "{below} imports metrics");
        }
    }
}
