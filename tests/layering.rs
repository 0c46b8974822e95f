//! The layering test: the library's layers point one way (model ← records ← experiment ←
//! io ← cli, with `error` and `units` as leaves under all of them), `model/` does no I/O,
//! and no two modules of `sim/` import each other in a cycle.
//!
//! It reads the sources: every `crate::a::b` path in a file is an edge from the file's
//! module to module `a::b` (or `a` when `a` has no submodule `b`), and `super::` paths are
//! resolved against the file's own module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may use its own layer and the layers before it.
const LAYERS: [&str; 7] = [
    "units",
    "error",
    "model",
    "records",
    "experiment",
    "io",
    "cli",
];

/// What a file under `model/` must not name.
const MODEL_FORBIDDEN: [&str; 5] = [
    "crate::experiment",
    "crate::cli",
    "crate::io",
    "std::fs",
    "clap",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file: `sim/model/map/mod.rs` → `model::map`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The code of a file without comments (a path named in a doc comment is not a use).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The library code of a file: its unit-test module (at the end, by convention) cut off. A
/// test may drive a lower module with a higher one (an energy test runs a kernel); that is
/// not a dependency of the library.
fn library(text: &str) -> &str {
    text.find("\n#[cfg(test)]\nmod ")
        .map_or(text, |i| &text[..i])
}

/// Every module path a file's library code names, resolved to the modules that exist.
fn uses(module: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let code = code(library(text));
    let bytes = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &code[i..];
        let start_ok = i == 0 || !ident(bytes[i - 1]);
        let (base, skip): (Vec<String>, usize) = if start_ok && rest.starts_with("crate::") {
            (Vec::new(), "crate::".len())
        } else if start_ok && rest.starts_with("super::") {
            let mut base = module.to_vec();
            let mut skip = 0;
            while code[i + skip..].starts_with("super::") {
                base.pop();
                skip += "super::".len();
            }
            (base, skip)
        } else {
            i += 1;
            continue;
        };
        let mut path = base;
        let mut j = i + skip;
        loop {
            let k = j + code[j..].bytes().take_while(|&c| ident(c)).count();
            if k == j {
                break;
            }
            path.push(code[j..k].to_owned());
            if !code[k..].starts_with("::") {
                break;
            }
            j = k + 2;
        }
        // The longest prefix that is a module.
        while !path.is_empty() && !modules.contains(&path) {
            path.pop();
        }
        if !path.is_empty() {
            out.insert(path);
        }
        i = j.max(i + 1);
    }
    out
}

struct Crate {
    /// Module → its source text.
    files: BTreeMap<Vec<String>, String>,
}

fn read() -> Crate {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim");
    let mut paths = Vec::new();
    sources(&root, &mut paths);
    let files = paths
        .iter()
        .map(|p| (module_of(&root, p), std::fs::read_to_string(p).unwrap()))
        .collect();
    Crate { files }
}

fn layer(module: &[String]) -> Option<usize> {
    LAYERS
        .iter()
        .position(|l| module.first().is_some_and(|m| m == l))
}

#[test]
fn the_model_does_no_io_and_names_no_layer_above_it() {
    let c = read();
    let mut bad = Vec::new();
    for (m, text) in &c.files {
        if m.first().is_none_or(|f| f != "model") {
            continue;
        }
        let code = code(text);
        for f in MODEL_FORBIDDEN {
            if code.contains(f) {
                bad.push(format!("{}: names {f}", m.join("::")));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn layers_point_one_way() {
    let c = read();
    let modules: BTreeSet<Vec<String>> = c.files.keys().cloned().collect();
    let mut bad = Vec::new();
    for (m, text) in &c.files {
        let Some(own) = layer(m) else { continue };
        for used in uses(m, text, &modules) {
            if let Some(theirs) = layer(&used)
                && theirs > own
            {
                bad.push(format!("{} uses {}", m.join("::"), used.join("::")));
            }
        }
    }
    assert!(bad.is_empty(), "a layer uses one above it: {bad:#?}");
}

/// Modules are compared at the second level (`model::map`, `experiment::sweep`, `cli::run`),
/// where a cycle means two parts of the program depend on each other. A file and its own
/// submodules (`model::map` and `model::map::linear`) are one module here.
#[test]
fn no_two_modules_import_each_other() {
    let c = read();
    let modules: BTreeSet<Vec<String>> = c.files.keys().cloned().collect();
    let key = |m: &[String]| m.iter().take(2).cloned().collect::<Vec<_>>().join("::");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, text) in &c.files {
        let from = key(m);
        for used in uses(m, text, &modules) {
            let to = key(&used);
            // A parent module (`cli`) re-exporting or declaring its children is not a use.
            if to != from && !to.starts_with(&format!("{from}::")) && !from.is_empty() {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Every cycle shows as a pair (a reaches b and b reaches a); report them.
    let reach = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_owned()];
        while let Some(n) = stack.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let mut cycles = Vec::new();
    for a in edges.keys() {
        for b in reach(a) {
            if a < &b && reach(&b).contains(a) {
                cycles.push(format!("{a} ↔ {b}"));
            }
        }
    }
    assert!(cycles.is_empty(), "modules in a cycle: {cycles:#?}");
}

/// The test itself finds what it should: a use in code, resolved `super::`, and not a
/// path in a comment.
#[test]
fn uses_are_read_from_code() {
    let modules: BTreeSet<Vec<String>> = [
        vec!["model".to_owned()],
        vec!["model".to_owned(), "map".to_owned()],
        vec!["cli".to_owned()],
    ]
    .into_iter()
    .collect();
    let m = vec!["model".to_owned(), "map".to_owned(), "linear".to_owned()];
    let found = uses(
        &m,
        "use super::Job;\n// crate::cli::run\nlet x = crate::cli::emit;",
        &modules,
    );
    let expect: BTreeSet<Vec<String>> = [
        vec!["model".to_owned(), "map".to_owned()],
        vec!["cli".to_owned()],
    ]
    .into_iter()
    .collect();
    assert_eq!(found, expect);
}
