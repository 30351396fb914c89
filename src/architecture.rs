//! The layer rule as a test: the top-level modules of `src/` import only downwards, in the order
//! of STYLE.md's layout, and form no cycle.
//!
//! Each file's `crate::…` paths (outside comments) are its imports. Below the HTTP edge, no file
//! names actix, utoipa, `AppState`, `ApiError` or `Settings`: engines and services take their
//! collaborators and return their own errors, and what the API's JSON looks like (its OpenAPI
//! schemas included) is the edge's.

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
    ("support", &["metrics", "telemetry", "sync", "breaker"]),
    ("domain", &["domain"]),
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

/// Every source file below `src/` with its path relative to it, outside this test.
fn sources() -> Vec<(std::path::PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(&src).expect("under src/").to_owned();
                if module_of(&relative) != "architecture" {
                    let source = std::fs::read_to_string(&path).expect("read a source file");
                    files.push((relative, source));
                }
            }
        }
    }
    files
}

/// Every edge between two top-level modules, with one file that makes it.
fn edges() -> BTreeMap<(String, String), String> {
    let mut edges = BTreeMap::new();
    for (relative, source) in sources() {
        let from = module_of(&relative);
        for to in imports(&source) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| relative.display().to_string());
            }
        }
    }
    edges
}

#[test]
fn imports_point_down_only() {
    let upward: Vec<String> = edges()
        .iter()
        .filter(|((from, to), _)| layer_of(to) < layer_of(from))
        .map(|((from, to), file)| format!("{from} -> {to} (in src/{file})"))
        .collect();
    assert!(
        upward.is_empty(),
        "imports that point up a layer: {upward:#?}"
    );
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (from, to) in edges().into_keys() {
        graph.entry(from).or_default().push(to);
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

/// Names that belong to the HTTP edge and the composition root.
const EDGE_NAMES: &[&str] = &[
    "actix_web",
    "utoipa",
    "AppState",
    "ApiError",
    "Settings",
    "HttpRequest",
];

#[test]
fn below_the_edge_no_file_names_the_web_framework_or_the_app() {
    let edge = layer_of("routes");
    let found: Vec<String> = sources()
        .iter()
        .filter(|(relative, _)| layer_of(&module_of(relative)) > edge)
        .flat_map(|(relative, source)| {
            source
                .lines()
                .map(|line| line.split("//").next().unwrap_or_default())
                .flat_map(|code| EDGE_NAMES.iter().filter(move |name| names(code, name)))
                .map(move |name| format!("src/{} names {name}", relative.display()))
        })
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

/// Whether `code` holds `name` as a whole identifier.
fn names(code: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[test]
fn imports_are_read_from_paths_and_groups_not_comments() {
    let source = "use crate::store::{self, now};\nuse crate::{audit, domain::ids};\n\
                  // crate::routes is mentioned here\nlet x = crate::metrics::Tier::L1; // crate::cli";
    let names: Vec<String> = imports(source).into_iter().collect();
    assert_eq!(names, ["audit", "domain", "metrics", "store"]);
}

#[test]
fn names_are_found_as_whole_identifiers() {
    assert!(names("fn f(s: &AppState)", "AppState"));
    assert!(!names("let app_state_like = MyAppState;", "AppState"));
    assert!(names("use actix_web::web;", "actix_web"));
    assert!(names("#[derive(Debug, utoipa::ToSchema)]", "utoipa"));
}
