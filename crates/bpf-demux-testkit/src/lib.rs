//! What bpf-demux's tools, tests and benchmarks share and the library does
//! not export: the built-in benchmark workloads ([`workload`]), a private
//! network namespace with a veth pair ([`netns`]), a tun device to inject
//! raw IP packets ([`tun`]), and the paths of the
//! repository's test data ([`data`]).

pub mod handcoded;
pub mod netns;
pub mod tun;
pub mod workload;

use std::path::PathBuf;

/// The repository's root (the workspace's folder).
pub fn repo() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(|p| p.parent())
        .expect("the test kit lives at crates/bpf-demux-testkit")
        .to_path_buf()
}

/// `tests/data/NAME` under the repository's root.
pub fn data(name: &str) -> PathBuf {
    repo().join("tests/data").join(name)
}
