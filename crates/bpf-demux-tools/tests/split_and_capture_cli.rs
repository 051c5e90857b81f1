//! `bpf-demux split` against the interpreter (every tenant's pcap holds
//! exactly the corpus frames its filter accepts, truncated to
//! min(return value, captured length, snaplen cap), original lengths kept),
//! and the capture command's bad-input catalogue.

mod common;

use bpf_demux::cbpf::{self, FrameMeta};
use bpf_demux::spec;
use common::*;
use std::path::PathBuf;
use std::process::{Command, Output};

#[test]
fn split_writes_each_tenant_exactly_its_frames() {
    let dir = tmpdir("split");
    // Public filters plus two capped tenants (TOML `snaplen`).
    let mut toml = String::new();
    for p in spec::load_valid(&repo().join("tests/data/public.filters")).unwrap() {
        toml.push_str(&format!(
            "[[filter]]\nname = \"{}\"\ncbpf = \"{}\"\n",
            p.name, p.program
        ));
    }
    toml.push_str("[[filter]]\nname = \"cap40\"\ncbpf = \"1,6 0 0 4294967295\"\nsnaplen = 40\n");
    toml.push_str("[[filter]]\nname = \"ret20\"\nasm = \"ret #20\"\nsnaplen = 100\n");
    let set_path = dir.join("set.toml");
    std::fs::write(&set_path, toml).unwrap();
    let out_dir = dir.join("out");
    let out = bin()
        .args(["split", "-f"])
        .arg(&set_path)
        .arg("--out-dir")
        .arg(&out_dir)
        .args(corpus_pcaps())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let set = spec::load_valid(&set_path).unwrap();
    let mut all = Vec::new();
    for p in corpus_pcaps() {
        all.extend(frames_of(&p));
    }
    for f in &set {
        let got = frames_of(&out_dir.join(format!("{}.pcap", f.name)));
        let want: Vec<(Vec<u8>, u32)> = all
            .iter()
            .filter_map(|(data, orig)| {
                let r = cbpf::run(&f.program, data, &FrameMeta::offline(data, *orig));
                (r != 0).then(|| {
                    let n = (r as usize)
                        .min(data.len())
                        .min(f.snaplen.unwrap_or(u32::MAX) as usize);
                    (data[..n].to_vec(), *orig)
                })
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{}", f.name);
        assert!(got == want, "{}: frames differ", f.name);
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("cap40") && summary.contains("frames read 4438"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn assert_refused(out: &Output, what: &str, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    for n in needles {
        assert!(err.contains(n), "{what}: lacks `{n}`: {err}");
    }
}

#[test]
fn capture_refuses_bad_input_and_leaves_nothing_behind() {
    let dir = tmpdir("capbad");
    let good = repo().join("tests/data/public.filters");
    // A filter set that fails validation.
    let bad = dir.join("bad.filters");
    std::fs::write(
        &bad,
        "ok\t1,6 0 0 1\nloop\t3,6 0 0 0,5 0 0 4294967294,6 0 0 0\n",
    )
    .unwrap();
    let out = bin()
        .args(["capture", "-i", "lo", "-f"])
        .arg(&bad)
        .arg("--out-dir")
        .arg(dir.join("o1"))
        .output()
        .unwrap();
    assert_refused(
        &out,
        "invalid set",
        &["bad.filters:2", "filter `loop`", "backward jump"],
    );
    assert!(
        !dir.join("o1").exists(),
        "output folder made for an invalid set"
    );
    // An unwritable output folder (a path under a regular file).
    let file = dir.join("plainfile");
    std::fs::write(&file, "x").unwrap();
    let out = bin()
        .args(["capture", "-i", "lo", "-f"])
        .arg(&good)
        .arg("--out-dir")
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_refused(
        &out,
        "unwritable",
        &["plainfile/sub", "cannot create output folder"],
    );
    // Bad options.
    for args in [
        &["--workers", "0"][..],
        &["--duration", "-1"],
        &["--block-kib", "3"],
        &["--count", "x"],
    ] {
        let out = bin()
            .args(["capture", "-i", "lo", "-f"])
            .arg(&good)
            .arg("--out-dir")
            .arg(dir.join("o2"))
            .args(args)
            .output()
            .unwrap();
        assert_refused(&out, &args.join(" "), &[]);
    }
    // An unknown interface (needs the right to open a packet socket first
    // to get that far; without it, the permission error is the answer).
    let o3 = dir.join("o3");
    let out = bin()
        .args(["capture", "-i", "nosuchif0", "-f"])
        .arg(&good)
        .arg("--out-dir")
        .arg(&o3)
        .output()
        .unwrap();
    assert_refused(&out, "unknown interface", &["cannot capture"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuchif0") || err.contains("root or CAP_NET_RAW"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&o3).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs root (to drop to an unprivileged user with setpriv)"]
fn capture_without_permission_says_so() {
    require_netns();
    let dir = tmpdir("capperm");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let filters = dir.join("set.filters");
    std::fs::copy(repo().join("tests/data/public.filters"), &filters).unwrap();
    std::fs::set_permissions(
        &filters,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_bpf-demux"))
        .args(["capture", "-i", "lo", "-f"])
        .arg(&filters)
        .arg("--out-dir")
        .arg(dir.join("o"))
        .output();
    let out = out.expect("setpriv (util-linux) must be installed");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("setpriv:"),
        "setpriv could not drop privileges here: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_refused(
        &out,
        "no permission",
        &["cannot capture", "root or CAP_NET_RAW"],
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("o"))
        .map(|d| d.collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `bpf-demux ARGS` under `ulimit LIMIT` (a `sh` builtin).
fn under_ulimit(limit: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_bpf-demux"))
        .args(args)
        .output()
        .unwrap()
}

/// A plain set of the first `n` host tenants.
fn host_tenants(dir: &std::path::Path, n: usize) -> PathBuf {
    let all =
        std::fs::read_to_string(repo().join("tests/data/tenants-hosts-1000.filters")).unwrap();
    let set = dir.join(format!("hosts{n}.filters"));
    let lines: Vec<&str> = all
        .lines()
        .filter(|l| !l.starts_with('#'))
        .take(n)
        .collect();
    assert_eq!(lines.len(), n);
    std::fs::write(&set, lines.join("\n") + "\n").unwrap();
    set
}

/// One file per tenant: the soft open-files limit is raised to the hard
/// one; when even that is short, nothing is written and the message names
/// the limit and the count.
#[test]
fn split_raises_the_open_files_limit_or_refuses_before_writing() {
    let dir = tmpdir("nofile");
    let set = host_tenants(&dir, 200);
    let pcap = repo().join("tests/data/corpus/pcaps/afs.pcap");
    let (s, p) = (set.to_str().unwrap(), pcap.to_str().unwrap());
    let out = dir.join("low");
    let o = under_ulimit(
        "-n 64",
        &["split", "-f", s, "--out-dir", out.to_str().unwrap(), p],
    );
    assert_refused(&o, "hard limit 64", &["200 tenants", "limit is 64"]);
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "files written"
    );
    let out = dir.join("soft");
    let o = under_ulimit(
        "-Sn 64",
        &["split", "-f", s, "--out-dir", out.to_str().unwrap(), p],
    );
    assert!(
        o.status.success(),
        "soft limit 64: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A missing or bad input leaves the output folder as it was.
#[test]
fn split_on_a_bad_input_keeps_the_files_already_there() {
    let dir = tmpdir("clobber");
    let set = dir.join("t.filters");
    std::fs::write(&set, "icmp\texpr: icmp\n").unwrap();
    let out = dir.join("out");
    let good = repo().join("tests/data/corpus/pcaps/gateway_or_not.pcap");
    let o = bin()
        .args(["split", "-f"])
        .arg(&set)
        .arg("--out-dir")
        .arg(&out)
        .arg(&good)
        .output()
        .unwrap();
    assert!(o.status.success());
    let before = std::fs::read(out.join("icmp.pcap")).unwrap();
    // 6 ICMP echo frames: 24 bytes of header and more.
    assert!(before.len() > 24 + 6 * 16);
    let mut garbled = std::fs::read(&good).unwrap();
    garbled.truncate(24 + 16 + 30);
    garbled.extend_from_slice(&[0xff; 40]);
    let bad = dir.join("bad.pcap");
    std::fs::write(&bad, garbled).unwrap();
    for (what, inputs) in [
        (
            "a missing input",
            vec![good.clone(), dir.join("missing.pcap")],
        ),
        ("a garbled input", vec![good.clone(), bad.clone()]),
    ] {
        let o = bin()
            .args(["split", "-f"])
            .arg(&set)
            .arg("--out-dir")
            .arg(&out)
            .args(&inputs)
            .output()
            .unwrap();
        assert_refused(&o, what, &[]);
        assert_eq!(
            std::fs::read(out.join("icmp.pcap")).unwrap(),
            before,
            "{what}"
        );
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{what}: {names:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `live` compiles an expression for a live socket; on a program it is an
/// error naming the filter.
#[test]
fn live_on_a_program_is_refused_naming_the_filter() {
    let dir = tmpdir("live");
    let set = dir.join("t.toml");
    std::fs::write(
        &set,
        "[[filter]]\nname = \"raw\"\ncbpf = \"1,6 0 0 1\"\nlive = true\n",
    )
    .unwrap();
    let o = bin().arg("check").arg(&set).output().unwrap();
    assert_refused(
        &o,
        "live cbpf",
        &["t.toml:2", "raw", "`live` applies to `expr`"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `capture -D` lists interfaces with their link types (loopback is
/// Ethernet-framed on Linux); `-L -i lo` prints lo's, `-L -i any` the
/// `any` device's (Linux cooked v2); `serve`, which captures Ethernet
/// only, refuses `any` before any socket or file exists, naming the device
/// and why.
#[test]
fn capture_lists_interfaces_and_serve_refuses_what_it_cannot_capture() {
    let out = bin().args(["capture", "-D"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(list.lines().any(|l| l.ends_with(".lo [EN10MB]")), "{list}");
    let out = bin().args(["capture", "-L", "-i", "lo"]).output().unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("EN10MB (Ethernet)"));
    let out = bin().args(["capture", "-L", "-i", "any"]).output().unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("LINUX_SLL2 (Linux cooked v2)"));
    let dir = tmpdir("serve-any");
    let out = bin()
        .args(["serve", "-i", "any", "--socket"])
        .arg(dir.join("s.sock"))
        .output()
        .unwrap();
    assert_refused(
        &out,
        "serve -i any",
        &["interface `any`", "Linux cooked v2"],
    );
    assert!(!dir.join("s.sock").exists(), "a socket was made");
}

/// A tun interface (raw IP, ARPHRD_NONE) is listed as raw IP, and `serve`
/// (Ethernet only) refuses it before capturing, naming it and its type.
/// In a private namespace. (`capture` on a tun: tests/live_links.rs.)
#[test]
#[ignore = "needs root and iproute2 (a tun in a private network namespace)"]
fn a_tun_is_raw_ip_and_serve_refuses_it() {
    require_netns();
    let ns = format!("bpfdemux-tun-{}", std::process::id());
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ip(&["netns", "add", &ns]);
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }
    let _del = Del(ns.clone());
    ip(&[
        "netns", "exec", &ns, "ip", "tuntap", "add", "dev", "tun0", "mode", "tun",
    ]);
    ip(&["netns", "exec", &ns, "ip", "link", "set", "tun0", "up"]);
    let listed = Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_bpf-demux")])
        .args(["capture", "-L", "-i", "tun0"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("RAW (Raw IP)"),
        "{listed:?}"
    );
    let dir = tmpdir("serve-tun");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_bpf-demux")])
        .args(["serve", "-i", "tun0", "--socket"])
        .arg(dir.join("s.sock"))
        .output()
        .unwrap();
    assert_refused(&out, "tun0", &["interface `tun0`", "Raw IP"]);
    assert!(!dir.join("s.sock").exists(), "a socket was made");
}
