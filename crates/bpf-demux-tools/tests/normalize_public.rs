//! Normal forms against the reference interpreter: every public corpus
//! filter and every kernel edge program, normalized, gives the
//! interpreter's answer on every corpus frame (frames as recorded).

mod common;

use bpf_demux::cbpf::{self, FrameMeta};
use bpf_demux::ir::{normalize, Interner, Limits};
use bpf_demux::spec;
use common::*;

#[test]
fn normal_forms_agree_with_the_interpreter_on_the_corpus() {
    let mut progs = spec::load_valid(&repo().join("tests/data/public.filters")).unwrap();
    progs.extend(spec::load_valid(&repo().join("tests/data/kernel-edge.toml")).unwrap());
    let mut interner = Interner::new();
    let forms: Vec<_> = progs
        .iter()
        .map(|p| {
            normalize(&p.program, &mut interner, &Limits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", p.name))
        })
        .collect();
    let mut frames = Vec::new();
    for pcap in corpus_pcaps() {
        frames.extend(frames_of(&pcap));
    }
    frames.extend(crafted_frames([2, 0, 0, 0, 0, 0xb]).into_iter().map(|f| {
        let n = f.len() as u32;
        (f, n)
    }));
    let mut checked = 0;
    for (data, orig) in &frames {
        let meta = FrameMeta::offline(data, *orig);
        for (p, nf) in progs.iter().zip(&forms) {
            let want = cbpf::run(&p.program, data, &meta);
            let got = nf.eval(&interner, data, &meta);
            assert_eq!(got, want, "{} on a {}-byte frame", p.name, data.len());
            checked += 1;
        }
    }
    assert!(checked > 400_000);
}
