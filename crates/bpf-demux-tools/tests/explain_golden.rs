//! Golden text of `bpf-demux explain`: for every set under
//! tests/data/explain/ (`<case>.filters` or `<case>.toml`), the tree and
//! stats (`<case>.explain`) and the kernel prefilter listing with what is
//! said on stderr (`<case>.prefilter`). The files are reviewed by hand and
//! changed only on purpose: `BLESS=1 cargo test --test explain_golden`
//! rewrites them, and the diff is part of the commit that changes the
//! output.

mod common;

use common::repo;
use std::path::Path;
use std::process::Command;

fn explain(set: &Path, prefilter: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpf-demux"));
    cmd.arg("explain");
    if prefilter {
        cmd.arg("--prefilter");
    }
    let out = cmd.arg(set).output().unwrap();
    assert!(out.status.success(), "{}: {out:?}", set.display());
    let mut text = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    if !err.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&err);
    }
    text
}

#[test]
fn explain_output_equals_the_reviewed_files() {
    let bless = std::env::var_os("BLESS").is_some();
    let dir = repo().join("tests/data/explain");
    let mut sets: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "filters" || x == "toml"))
        .collect();
    sets.sort();
    assert!(sets.len() >= 5, "{} sets", sets.len());
    let mut differ = Vec::new();
    for set in &sets {
        for (ext, prefilter) in [("explain", false), ("prefilter", true)] {
            let golden = set.with_extension(ext);
            let got = explain(set, prefilter);
            if bless {
                std::fs::write(&golden, &got).unwrap();
            } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(got.as_str()) {
                differ.push(format!(
                    "{} differs (BLESS=1 rewrites it); now:\n{got}",
                    golden.display()
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
