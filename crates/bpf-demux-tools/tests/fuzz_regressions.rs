//! Replays every input under tests/data/fuzz-regressions/<target>/ with the
//! fuzz targets' own checks: the seeds the fuzzers start from and every
//! input a fuzz run failed on. Each found input is named for what it found:
//! - readers/ddd-count-zero: `0` read as an empty -ddd program, which no
//!   other form can write back (fixed: count 0 is refused).
//! - readers/asm-multibyte-whitespace, readers/asm-nel-separator: a
//!   mnemonic followed by U+0085 (a 2-byte whitespace): column arithmetic
//!   sliced inside the character and panicked (fixed: columns are counted
//!   by characters, operands start after the real separator).
//!
//! serve/seed-*: the serve protocol, bytes written by hand from the
//! layout in `bpf_demux::serve::proto` (client messages, cut and oversize
//! frames, daemon messages).
//!
//! merged/seed-*: real inputs, made from the corpus frames and the public
//! filters by `merged_seeds()` below; `merged_seeds_are_current` keeps the
//! files equal to it (`BLESS=1 cargo test --test fuzz_regressions`
//! rewrites them). Copy them to fuzz/corpus/merged/ to start a run.

mod common;
#[path = "common/fuzz_checks.rs"]
mod fuzz_checks;

use bpf_demux::cbpf::{self, FrameMeta};
use bpf_demux::spec;
use common::{corpus_pcaps, frames_of, repo};
use std::path::{Path, PathBuf};

fn dir(target: &str) -> PathBuf {
    repo().join("tests/data/fuzz-regressions").join(target)
}

/// Runs `check` on every file of the target's directory; returns (file
/// name, what `check` returned) for each.
fn replay<T>(target: &str, check: fn(&[u8]) -> T) -> Vec<(String, T)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir(target)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, check(&std::fs::read(&p).unwrap())));
    }
    out
}

#[test]
fn readers_regressions() {
    assert!(replay("readers", fuzz_checks::readers).len() >= 3);
}

#[test]
fn serve_proto_regressions() {
    let seen = replay("serve", fuzz_checks::serve_proto);
    let decoded = |n: &str| seen.iter().find(|(s, _)| s == n).map(|(_, k)| *k);
    assert_eq!(decoded("seed-hello-attach-detach"), Some(3));
    assert_eq!(decoded("seed-hello-list"), Some(2));
    assert_eq!(decoded("seed-attach-cut-short"), Some(1));
    assert_eq!(decoded("seed-oversize-length"), Some(1));
}

#[test]
fn merged_regressions() {
    let seen = replay("merged", fuzz_checks::merged);
    let seeds: Vec<_> = seen
        .iter()
        .filter(|(n, _)| n.starts_with("seed-"))
        .collect();
    assert!(seeds.len() >= 40, "only {} seeds replayed", seeds.len());
    for (name, compared) in seeds {
        assert!(*compared >= 1, "{name} holds no program the check compares");
    }
}

/// The seeds: for seed i, a corpus frame of at most 1600 bytes (from pcap
/// i % 27 of those that have one) and one to four public filters, the first of them, in every other
/// seed, one that accepts the frame (so accepting paths are exercised).
fn merged_seeds() -> Vec<(String, Vec<u8>, usize)> {
    let public = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
    // (pcap, its frames of at most 1600 bytes with their numbers), for the
    // pcaps that have any (three hold one jumbo frame only).
    type Numbered = Vec<(usize, Vec<u8>)>;
    let pcaps: Vec<(PathBuf, Numbered)> = corpus_pcaps()
        .into_iter()
        .map(|p| {
            let small = frames_of(&p)
                .into_iter()
                .enumerate()
                .filter(|(_, (d, _))| d.len() <= 1600)
                .map(|(n, (d, _))| (n + 1, d))
                .collect();
            (p, small)
        })
        .filter(|(_, small): &(PathBuf, Vec<_>)| !small.is_empty())
        .collect();
    let mut seeds = Vec::new();
    for i in 0..48usize {
        let (pcap, frames) = &pcaps[i % pcaps.len()];
        let (at, frame) = &frames[(i / pcaps.len() * 7) % frames.len()];
        let meta = FrameMeta::offline(frame, frame.len() as u32);
        let mut progs = Vec::new();
        if i % 2 == 0 {
            if let Some(p) = public
                .iter()
                .find(|p| cbpf::run(&p.program, frame, &meta) != 0)
            {
                progs.push(p.program.insns());
            }
        }
        for j in progs.len()..1 + i % 4 {
            progs.push(public[(i * 5 + j * 17) % public.len()].program.insns());
        }
        let stem = Path::new(pcap).file_stem().unwrap().to_string_lossy();
        let name = format!("seed-{i:02}-{stem}-{at}");
        let input = fuzz_checks::merged_input(&progs, frame, (i % 3) as u8);
        seeds.push((name, input, progs.len()));
    }
    seeds
}

#[test]
fn merged_seeds_are_current() {
    let bless = std::env::var_os("BLESS").is_some();
    let dir = dir("merged");
    let want = merged_seeds();
    let mut stale = Vec::new();
    for (name, bytes, progs) in &want {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(name.clone());
        }
        // What the seed decodes to is what it was made from.
        assert_eq!(fuzz_checks::merged(bytes), *progs, "{name}");
    }
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("seed-") && !want.iter().any(|(n, ..)| *n == name) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "seeds differ from merged_seeds() (BLESS=1 rewrites them): {stale:?}"
    );
}
