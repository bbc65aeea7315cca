//! The direction of the crate's module dependencies, checked: each module uses only the modules
//! before it in `LAYERS`, so there are no cycles, and only the binding layer (`py`) knows Python.
//! ARCHITECTURE.md draws the same order.

use std::path::{Path, PathBuf};

/// Lowest first. `btf` describes BTF (any object's, or the kernel's through `kernel::btf`); `load`
/// uses `netattach` only for a device's index; `attach` depends on `load`, never the other way.
const LAYERS: &[&str] = &[
    "error",
    "libbpf_log",
    "btf",
    "kernel",
    "compile",
    "map_walk",
    "maps",
    "shared_maps",
    "netattach",
    "usdt",
    "symbolize",
    "flame",
    "load",
    "events",
    "attach",
    "py",
];

/// The Rust files of top-level module `module` (its file, or every file of its folder).
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{module}.rs"));
    let mut files = if file.exists() { vec![file] } else { Vec::new() };
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level modules `text` names through `crate::` paths (`crate::a::b`, `crate::{a, b}`).
fn crate_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let paths: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
            None => vec![rest],
        };
        for path in paths {
            let name: String = path.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (rank, module) in LAYERS.iter().enumerate() {
        let files = files_of(&src, module);
        assert!(!files.is_empty(), "no files for module {module}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in crate_modules(&text) {
                match LAYERS.iter().position(|m| *m == used) {
                    Some(r) if r <= rank => {}
                    Some(_) => wrong.push(format!("{} uses crate::{used}, a layer above it", file.display())),
                    None => wrong.push(format!("{} uses crate::{used}, which LAYERS does not place", file.display())),
                }
            }
            if *module != "py" && text.contains("pyo3") {
                wrong.push(format!("{} uses pyo3, which only src/py/ may", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_module_has_its_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines().filter(|l| l.starts_with("pub mod ") || l.starts_with("mod ")) {
        let name = line.trim_start_matches("pub ").trim_start_matches("mod ").trim_end_matches(';');
        assert!(LAYERS.contains(&name) || name == "layering", "lib.rs declares {name}, which LAYERS does not place");
    }
}
