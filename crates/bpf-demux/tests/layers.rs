//! The library's layers depend downward only, as DESIGN.md draws them: a
//! scan of every `crate::` path in each top-level module's sources (a
//! root re-export such as `crate::FilterSet` counts as the module it comes
//! from) against the layer table in DESIGN.md's "Layers" block. A module
//! may name modules of lower layers only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module -> layer` from the ```text block after "## Layers" in
/// DESIGN.md: lines `N  module module ...`.
fn layers(design: &str) -> HashMap<String, u32> {
    let start = design
        .find("\n## Layers")
        .expect("DESIGN.md has a `## Layers` section");
    let block = &design[start..];
    let open = block
        .find("```text\n")
        .expect("the section has a ```text block")
        + 8;
    let close = open + block[open..].find("```").expect("the block ends");
    let mut out = HashMap::new();
    for line in block[open..close].lines() {
        let mut words = line.split_whitespace();
        let Some(n) = words.next() else { continue };
        let n: u32 = n.parse().unwrap_or_else(|_| panic!("layer line `{line}`"));
        for m in words {
            assert!(out.insert(m.to_owned(), n).is_none(), "{m} twice");
        }
    }
    out
}

/// Root re-exports: `pub use module::{A, B};` / `pub use module::A;` in
/// lib.rs, item name -> module.
fn reexports(lib: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let (module, items) = rest.split_once("::").expect("pub use module::item");
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit("::").next().unwrap().trim();
            if !name.is_empty() {
                out.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    out
}

/// Every `crate::...` reference in `text` outside comments, resolved to a
/// top-level module name.
fn references(text: &str, roots: &HashMap<String, String>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + 7..];
            let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap().trim())
                    .collect()
            } else {
                let end = after
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                vec![&after[..end]]
            };
            for name in names.into_iter().filter(|s| !s.is_empty()) {
                let module = roots.get(name).cloned().unwrap_or_else(|| name.to_owned());
                out.push((n + 1, module));
            }
            rest = after;
        }
    }
    out
}

fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            rust_files(&e.unwrap().path(), out);
        }
    } else if p.extension().is_some_and(|x| x == "rs") {
        out.push(p.to_owned());
    }
}

/// Each violation: `file:line: module (layer a) names module (layer b)`.
fn violations(src: &Path, layer: &HashMap<String, u32>) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let roots = reexports(&lib);
    let mut out = Vec::new();
    for (module, &own) in layer {
        let dir = src.join(module);
        let file = src.join(format!("{module}.rs"));
        let mut files = Vec::new();
        rust_files(if dir.is_dir() { &dir } else { &file }, &mut files);
        assert!(
            !files.is_empty(),
            "layer table names `{module}`, which has no source"
        );
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (line, other) in references(&text, &roots) {
                if &other == module {
                    continue;
                }
                let Some(&theirs) = layer.get(&other) else {
                    out.push(format!("{}:{line}: `{other}` is in no layer", f.display()));
                    continue;
                };
                if theirs >= own {
                    out.push(format!(
                        "{}:{line}: {module} (layer {own}) names {other} (layer {theirs})",
                        f.display()
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_module_names_only_lower_layers() {
    let repo = crate_dir().join("../..");
    let design = std::fs::read_to_string(repo.join("DESIGN.md")).unwrap();
    let layer = layers(&design);
    let src = crate_dir().join("src");
    // Every top-level module of lib.rs is in the table.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(m) = line.trim().strip_prefix("pub mod ") {
            let m = m.trim_end_matches(';');
            assert!(
                layer.contains_key(m),
                "module `{m}` is missing from DESIGN.md's layers"
            );
        }
    }
    let bad = violations(&src, &layer);
    assert!(
        bad.is_empty(),
        "dependencies pointing up:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_sees_an_upward_reference() {
    // The same scan on a tree where a low module names a high one (and
    // one goes through a root re-export) reports both.
    let dir = std::env::temp_dir().join(format!("bpf-demux-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("low")).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "pub mod low;\npub mod high;\npub use high::{Top, Other};\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("low/mod.rs"),
        "use crate::high::thing; // crate::high in a comment is fine\nfn f(_: crate::Top) {}\n",
    )
    .unwrap();
    std::fs::write(dir.join("high.rs"), "use crate::low;\n").unwrap();
    let layer: HashMap<String, u32> = [("low".to_owned(), 0), ("high".to_owned(), 1)].into();
    let bad = violations(&dir, &layer);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].ends_with("low/mod.rs:1: low (layer 0) names high (layer 1)"),
        "{bad:?}"
    );
    assert!(
        bad[1].ends_with("low/mod.rs:2: low (layer 0) names high (layer 1)"),
        "{bad:?}"
    );
}
