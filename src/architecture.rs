//! The layer rule as a test: the top-level modules of `src/` import only downwards, in the order
//! of STYLE.md's layout, and form no cycle.
//!
//! Each file's `crate::…` paths (outside comments) are its imports. The edges that still point
//! up are listed in [`KNOWN_UPWARD`] with what removes them; the test fails on a new one and on
//! a listed one that is gone, so the list only ever shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom; a module may import from its own layer and the ones below it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "composition root",
        &[
            "main",
            "lib",
            "cli",
            "startup",
            "config",
            "bootstrap",
            "scan",
        ],
    ),
    ("HTTP edge", &["routes", "error"]),
    ("services", &["manage"]),
    ("engines", &["events", "verify", "auth", "tokens"]),
    ("cache and audit trail", &["cache", "audit"]),
    ("the Redis client", &["redis"]),
    ("store", &["store"]),
    ("support", &["metrics", "telemetry", "sync"]),
    ("domain", &["domain"]),
];

/// Edges that still point up, each with what takes it away (issue 13, item 2: engines and
/// services get their collaborators passed in and return their own errors).
const KNOWN_UPWARD: &[(&str, &str, &str)] = &[
    ("manage", "error", "services return their own error enums"),
    (
        "manage",
        "routes",
        "services take their collaborators, not AppState",
    ),
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of architecture.rs"))
}

/// The top-level module a file of `src/` belongs to.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().expect("a path under src/");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

/// The top-level modules a file's code names through `crate::`.
fn imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                found.extend(inner.split(',').filter_map(|item| head(item.trim())));
            } else if let Some(name) = head(rest) {
                found.insert(name);
            }
        }
    }
    found
}

fn head(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Every edge between two top-level modules, with one file that makes it.
fn edges() -> BTreeMap<(String, String), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src/");
            let from = module_of(relative);
            if from == "architecture" {
                continue; // this test's own examples are no imports
            }
            let source = std::fs::read_to_string(&path).expect("read a source file");
            for to in imports(&source) {
                if to != from {
                    edges
                        .entry((from.clone(), to))
                        .or_insert_with(|| relative.display().to_string());
                }
            }
        }
    }
    edges
}

#[test]
fn imports_point_down_only() {
    let edges = edges();
    let upward: BTreeMap<_, _> = edges
        .iter()
        .filter(|((from, to), _)| layer_of(to) < layer_of(from))
        .collect();
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD
        .iter()
        .map(|(from, to, _)| ((*from).to_owned(), (*to).to_owned()))
        .collect();
    let new: Vec<String> = upward
        .iter()
        .filter(|(edge, _)| !known.contains(*edge))
        .map(|((from, to), file)| format!("{from} -> {to} (in src/{file})"))
        .collect();
    assert!(new.is_empty(), "imports that point up a layer: {new:#?}");
    let gone: Vec<_> = known
        .iter()
        .filter(|edge| !upward.contains_key(edge))
        .collect();
    assert!(
        gone.is_empty(),
        "gone, strike them from KNOWN_UPWARD: {gone:?}"
    );
}

#[test]
fn top_level_modules_form_no_cycle_but_the_known_upward_edges() {
    let known: BTreeSet<(&str, &str)> = KNOWN_UPWARD.iter().map(|(f, t, _)| (*f, *t)).collect();
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (from, to) in edges().into_keys() {
        if !known.contains(&(from.as_str(), to.as_str())) {
            graph.entry(from).or_default().push(to);
        }
    }
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn imports_are_read_from_paths_and_groups_not_comments() {
    let source = "use crate::store::{self, now};\nuse crate::{audit, domain::ids};\n\
                  // crate::routes is mentioned here\nlet x = crate::metrics::Tier::L1; // crate::cli";
    let names: Vec<String> = imports(source).into_iter().collect();
    assert_eq!(names, ["audit", "domain", "metrics", "store"]);
}
