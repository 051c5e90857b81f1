//! Shared bench inputs: the corpus frames (offline metadata).

use bpf_demux::cbpf::FrameMeta;
use bpf_demux::pcapfile::PcapReader;
use std::path::PathBuf;

pub fn corpus_frames() -> Vec<(Vec<u8>, FrameMeta)> {
    let dir = bpf_demux_testkit::repo().join("tests/data/corpus/pcaps");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let mut r = PcapReader::open(&p).unwrap();
        while let Some(rec) = r.next_record().unwrap() {
            let meta = FrameMeta::offline(rec.data, rec.orig_len);
            out.push((rec.data.to_vec(), meta));
        }
    }
    out
}
