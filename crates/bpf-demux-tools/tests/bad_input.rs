//! The bad-input catalogue: every malformed input gives exit status 2 and
//! one line on stderr naming the place (file, line/column, filter, pc or
//! frame) and the rule broken; nothing panics; frames matched before a
//! fault in a pcap are still printed.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpf-demux-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// Exit 2, no panic, and a one-line message containing every `needle`.
fn assert_refused(out: &Output, what: &str, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), err);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit {:?}\n{all}",
        out.status.code()
    );
    assert!(!err.contains("panicked"), "{what}: panic\n{err}");
    for n in needles {
        assert!(all.contains(n), "{what}: message lacks `{n}`:\n{all}");
    }
}

/// `bpf-demux match -f FILTERS PCAP...`.
fn match_pcaps(filters: &Path, pcaps: &[&Path]) -> Output {
    bin()
        .args(["match", "-f"])
        .arg(filters)
        .args(pcaps)
        .output()
        .unwrap()
}

fn check(file: &Path) -> Output {
    bin().arg("check").arg(file).output().unwrap()
}

#[test]
fn every_validator_rule_is_reported_with_its_pc() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("too-large", "", &["4097 instructions", "limit is 4096"]),
        ("bad-opcode", "2,14 0 0 0,6 0 0 0", &["pc 0", "opcode 0x0e"]),
        (
            "div-zero",
            "2,52 0 0 0,6 0 0 0",
            &["pc 0", "division or modulo by constant 0"],
        ),
        (
            "shift",
            "2,100 0 0 32,6 0 0 0",
            &["pc 0", "shift by constant 32"],
        ),
        ("scratch-index", "2,2 0 0 16,6 0 0 0", &["pc 0", "M[16]"]),
        (
            "backward",
            "3,6 0 0 0,5 0 0 4294967294,6 0 0 0",
            &["pc 1", "backward jump to pc 0"],
        ),
        (
            "jump-range",
            "2,21 3 0 0,6 0 0 0",
            &["pc 0", "past the last instruction"],
        ),
        (
            "unknown-ext",
            "2,32 0 0 4294963201,6 0 0 0",
            &["pc 0", "ancillary area"],
        ),
        (
            "no-ret",
            "1,0 0 0 0",
            &["pc 0", "last instruction must be `ret`"],
        ),
        (
            "uninit",
            "2,96 0 0 3,6 0 0 0",
            &["pc 0", "M[3] is read but not written"],
        ),
        (
            "unknowable",
            "2,32 0 0 4294963220,22 0 0 0",
            &["pc 0", "mark", "cannot run outside the kernel"],
        ),
    ];
    for (name, prog, needles) in cases {
        let prog = if prog.is_empty() {
            let mut s = String::from("4097");
            for _ in 0..4097 {
                s.push_str(",6 0 0 0");
            }
            s
        } else {
            prog.to_string()
        };
        let f = tmp(
            &format!("{name}.filters"),
            format!("# one bad filter\nok\t1,6 0 0 1\n{name}\t{prog}\n").as_bytes(),
        );
        let out = check(&f);
        let mut n = needles.to_vec();
        n.push(name);
        assert_refused(&out, name, &n);
        // `match` refuses the set before reading any pcap, naming file and line.
        let pcap = repo().join("tests/data/corpus/pcaps/pppoe.pcap");
        let out = match_pcaps(&f, &[&pcap]);
        let mut n = needles.to_vec();
        n.extend([":3: filter `", name]);
        assert_refused(&out, name, &n);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn malformed_set_files_name_file_line_and_filter() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("empty.filters", "", &["empty.filters:1", "no filters"]),
        ("comments.filters", "# nothing\n\n", &["no filters"]),
        ("notab.filters", "a 4,6 0 0 0\n", &["notab.filters:1:1", "name<TAB>program"]),
        ("badname.filters", "a/b\t1,6 0 0 0\n", &[":1:1", "bad filter name `a/b`"]),
        ("dup.filters", "a\t1,6 0 0 0\nb\t1,6 0 0 0\na\t1,6 0 0 1\n", &["dup.filters:3", "`a` already used on line 1"]),
        ("garbage-ddd.filters", "a\t1,6 0 zero 0\n", &[":1:9", "filter `a`", "bad jf `zero`"]),
        ("truncated-ddd.filters", "a\t4,40 0 0 12,21 0 1 2048\n", &[":1:3", "filter `a`", "count says 4 instructions but 2 follow"]),
        ("short-insn.filters", "a\t2,40 0 0 12,6 0\n", &["filter `a`", "4 numbers"]),
        ("toml-both.toml", "[[filter]]\nname = \"x\"\ncbpf = \"1,6 0 0 0\"\nasm = \"ret #0\"\n", &["toml-both.toml:1", "filter `x`", "exactly one of"]),
        ("toml-neither.toml", "[[filter]]\nname = \"x\"\n", &["filter `x`", "exactly one of"]),
        ("toml-unknown.toml", "[[filter]]\nname = \"x\"\ncbfp = \"1,6 0 0 0\"\n", &["toml-unknown.toml:3", "unknown field `cbfp`"]),
        ("toml-syntax.toml", "[[filter]\nname = \"x\"\n", &["toml-syntax.toml:1"]),
        ("toml-asm-error.toml", "[[filter]]\nname = \"lbl\"\nasm = \"\"\"\nldh [12]\njeq #1, nope\nret #0\n\"\"\"\n", &["toml-asm-error.toml:5:9", "filter `lbl`", "undefined label `nope`"]),
        ("toml-asm-garbage.toml", "[[filter]]\nname = \"g\"\nasm = \"frob #1\"\n", &["toml-asm-garbage.toml:3", "filter `g`", "frob"]),
        ("toml-snaplen0.toml", "[[filter]]\nname = \"s\"\ncbpf = \"1,6 0 0 1\"\nsnaplen = 0\n", &["filter `s`", "snaplen"]),
        ("toml-dup.toml", "[[filter]]\nname = \"d\"\ncbpf = \"1,6 0 0 1\"\n[[filter]]\nname = \"d\"\ncbpf = \"1,6 0 0 1\"\n", &["toml-dup.toml:5", "already used on line 2"]),
        ("binary.filters", "\u{0}\u{1}\u{2}", &["binary.filters:1"]),
        ("toml-listen.toml", "[[filter]]\nname = \"l\"\nexpr = \"tcp\"\nlisten = \"localhost:80\"\n", &["toml-listen.toml:4:11", "filter `l`", "`listen` must be an IP address and port"]),
    ];
    for (name, body, needles) in cases {
        let f = tmp(name, body.as_bytes());
        assert_refused(&check(&f), name, needles);
    }
    let out = check(Path::new("/nonexistent/set.toml"));
    assert_refused(
        &out,
        "missing file",
        &["/nonexistent/set.toml", "cannot read"],
    );
    let bad_utf8 = tmp("latin1.filters", b"a\t1,6 0 0 0 \xe9\n");
    assert_refused(&check(&bad_utf8), "latin1", &["latin1.filters:1:", "UTF-8"]);
}

#[test]
fn malformed_program_text_in_every_form_is_located() {
    let cases: &[(&str, &[u8], &[&str])] = &[
        (
            "g.ddd",
            b"3\n40 0 0 12\n21 0 1 x2048\n6 0 0 0\n",
            &["ddd form", "line 3, column 8", "bad k"],
        ),
        (
            "t.ddd",
            b"4\n40 0 0 12\n21 0 1 2048\n",
            &["line 1, column 1", "count says 4"],
        ),
        (
            "g.dd",
            b"{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1 },\n",
            &["dd form", "line 2, column 1", "found 3 field(s)"],
        ),
        (
            "t.dd",
            b"{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x800",
            &["line 2, column 1", "without a closing"],
        ),
        (
            "g.d",
            b"(000) ldh      [12]\n(001) jeq      #0x800           jt 1\tjf 3\n",
            &[
                "d form",
                "line 2",
                "jump target 1 from instruction 1 is not 1 to 256 instructions ahead",
            ],
        ),
        (
            "n.d",
            b"(000) ldh      [12]\n(002) ret      #0\n",
            &["line 2, column 2", "instruction number 2, expected 1"],
        ),
        (
            "g.asm",
            b"ldh [12]\njeq #1, a, b\na: ret #1\n",
            &["asm form", "line 2, column 12", "undefined label `b`"],
        ),
        (
            "o.asm",
            b"ldh [12\nret #0\n",
            &["asm form", "line 1", "missing `]`"],
        ),
        ("empty.asm", b"", &["empty program text"]),
    ];
    for (name, body, needles) in cases {
        let f = tmp(name, body);
        let out = bin().arg("convert").arg(&f).output().unwrap();
        assert_refused(&out, name, needles);
    }
    // Raw records: a truncated record, and an empty file.
    let f = tmp("t.raw", &[0x06, 0, 0, 0, 1, 0, 0, 0, 0x06, 0, 0]);
    let out = bin()
        .args(["convert", "--from", "raw"])
        .arg(&f)
        .output()
        .unwrap();
    assert_refused(
        &out,
        "truncated raw",
        &[
            "raw form",
            "11 bytes",
            "3 byte(s) left over at byte offset 8",
        ],
    );
    let f = tmp("e.raw", b"");
    let out = bin()
        .args(["convert", "--from", "raw"])
        .arg(&f)
        .output()
        .unwrap();
    assert_refused(&out, "empty raw", &["empty raw program"]);
    // A program that reads fine but the kernel refuses.
    let f = tmp("bad.ddd", b"1,5 0 0 0\n");
    let out = bin().arg("convert").arg(&f).output().unwrap();
    assert_refused(&out, "ja at end", &["pc 0", "past the last instruction"]);
}

#[test]
fn malformed_pcaps_keep_what_was_matched_and_name_the_frame() {
    let filters = repo().join("tests/data/public.filters");
    let good = std::fs::read(repo().join("tests/data/corpus/pcaps/gateway_or_not.pcap")).unwrap();
    // Cut inside the 4th record.
    let mut off = 24;
    for _ in 0..3 {
        let caplen = u32::from_le_bytes(good[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
    }
    let cut = tmp("cut.pcap", &good[..off + 20]);
    let out = match_pcaps(&filters, &[&cut]);
    assert_refused(
        &out,
        "truncated pcap",
        &["cut.pcap", "frame 4", "truncated"],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        3,
        "frames before the fault are printed:\n{stdout}"
    );
    assert!(stdout.starts_with("cut.pcap:1\t"));
    // A link type bpf-demux does not read: 105 (802.11).
    let mut wifi = good.clone();
    wifi[20..24].copy_from_slice(&105u32.to_le_bytes());
    let f = tmp("wifi.pcap", &wifi);
    let out = match_pcaps(&filters, &[&f]);
    assert_refused(
        &out,
        "link type",
        &[
            "wifi.pcap",
            "link type 105 is not supported",
            "LINUX_SLL2 276",
        ],
    );
    // Not a capture at all, empty, header only.
    for (name, body) in [
        ("text.pcap", &b"hello, this is not a pcap file at all"[..]),
        ("empty.pcap", &b""[..]),
        ("hdr.pcap", &good[..10]),
    ] {
        let f = tmp(name, body);
        let out = match_pcaps(&filters, &[&f]);
        assert_refused(&out, name, &[name]);
    }
    // The second file is bad: the first file's lines are all there.
    let f = tmp("text2.pcap", b"garbage garbage garbage garbage");
    let out = match_pcaps(
        &filters,
        &[&repo().join("tests/data/corpus/pcaps/pppoes.pcap"), &f],
    );
    assert_refused(&out, "second file", &["text2.pcap"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    // A header-only pcap is a valid empty capture.
    let f = tmp("hdronly.pcap", &good[..24]);
    let out = match_pcaps(&filters, &[&f]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_options_and_missing_arguments_exit_2() {
    for args in [
        &["--frobnicate"][..],
        &["match"],
        &["match", "--filters", "x"],
        &["match", "--engine", "warp", "-f", "x", "y.pcap"],
        &["match", "--format", "xml", "-f", "x", "y.pcap"],
        &["check"],
        &["convert", "--to", "hex", "x"],
        &["nosuchcommand"],
        &["serve", "-i", "lo"],
        &["serve", "--socket", "/tmp/x.sock"],
        &["attach", "udp"],
        &["tenants"],
        &["tenants", "--socket", "/tmp/x.sock", "--format", "xml"],
        &[
            "attach",
            "--socket",
            "/nonexistent/x.sock",
            "--program",
            "f",
            "udp",
        ],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_refused(&out, &args.join(" "), &[]);
    }
}

/// `bpf-demux serve -i lo` on a socket nobody can make, with `flag FILE`.
fn serve_on_lo(flag: &str, file: &Path) -> Output {
    bin()
        .args(["serve", "-i", "lo", "--socket", "/nonexistent/s.sock", flag])
        .arg(file)
        .output()
        .unwrap()
}

/// `serve` refuses a bad policy or static-tenant file before it opens
/// anything; `attach` refuses a bad filter before it connects, and a
/// socket nobody serves.
#[test]
fn serve_and_attach_name_what_is_wrong() {
    let policy = tmp("bad-policy.toml", b"[[allow]]\nuid = 5\nmax_tenant = 3\n");
    let out = serve_on_lo("--policy", &policy);
    assert_refused(
        &out,
        "bad policy",
        &["bad-policy.toml:3:1", "unknown field `max_tenant`"],
    );
    let statics = tmp(
        "no-listen.toml",
        b"[[filter]]\nname = \"web\"\nexpr = \"tcp\"\n",
    );
    let out = serve_on_lo("--filters", &statics);
    assert_refused(
        &out,
        "no listen",
        &["no-listen.toml:2", "filter `web`", "listen ="],
    );
    // `capture` does not stream: a `listen` is refused, not ignored.
    let listen = tmp(
        "listen.toml",
        b"[[filter]]\nname = \"web\"\nexpr = \"tcp\"\nlisten = \"127.0.0.1:57012\"\n",
    );
    let out = bin()
        .args([
            "capture",
            "-i",
            "lo",
            "--out-dir",
            "/nonexistent/caps",
            "--filters",
        ])
        .arg(&listen)
        .output()
        .unwrap();
    assert_refused(
        &out,
        "capture listen",
        &["listen.toml:2", "filter `web`", "is for `bpf-demux serve`"],
    );
    let out = bin()
        .args([
            "attach",
            "--socket",
            "/nonexistent/s.sock",
            "udp",
            "port",
            "70000",
        ])
        .output()
        .unwrap();
    assert_refused(
        &out,
        "bad expression",
        &["expression: column 10", "out of range"],
    );
    let prog = tmp("div0.asm", b"ld #1\ndiv #0\nret a\n");
    let out = bin()
        .args([
            "attach",
            "--socket",
            "/nonexistent/s.sock",
            "--name",
            "d",
            "--program",
        ])
        .arg(&prog)
        .output()
        .unwrap();
    assert_refused(&out, "bad program", &["filter `d`", "pc 1", "division"]);
    let out = bin()
        .args(["attach", "--socket", "/nonexistent/s.sock", "udp"])
        .output()
        .unwrap();
    assert_refused(
        &out,
        "no daemon",
        &["--socket /nonexistent/s.sock", "No such file"],
    );
}

/// `check` reports every error of a file with its place, not only the
/// first; a missing file has no line number; filters that switch the
/// kernel prefilter off for the set are named.
#[test]
fn check_reports_every_error_and_what_switches_the_prefilter_off() {
    let f = tmp(
        "every-error.filters",
        b"a\texpr: tcp port\nb\texpr: ip\nc\t1,6 0 0\nd\t2,296 0 0 21,6 0 0 0\nb\texpr: arp\n",
    );
    let out = check(&f);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in [
        "every-error.filters:1:17: filter `a`: expression",
        "every-error.filters:3:5: filter `c`: program text",
        "every-error.filters:5: filter `b`: filter name `b` already used on line 2",
        "4 errors",
    ] {
        assert!(err.contains(needle), "lacks `{needle}`: {err}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("b\t4 insns\tok"), "{stdout}");
    assert!(
        stdout.contains("d\t2 insns\terror: invalid program: pc 0: opcode 0x128"),
        "{stdout}"
    );

    let missing = check(Path::new("/nonexistent/set.filters"));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        err.contains("/nonexistent/set.filters: cannot read file"),
        "{err}"
    );
    assert!(!err.contains("set.filters:0"), "{err}");

    let adversarial = check(&repo().join("tests/data/adversarial.filters"));
    let err = String::from_utf8_lossy(&adversarial.stderr);
    assert!(adversarial.status.success(), "{err}");
    for name in ["or-hosts-64", "or-hosts-200", "cross-12x12"] {
        assert!(
            err.contains(&format!("filter `{name}` runs in the fallback interpreter")),
            "{name}: {err}"
        );
    }
    // A fallback no longer switches the prefilter off: it is inlined as an
    // alternative. What does here is `not host A and not host B ...`,
    // which the prefilter takes as accepting nearly every frame.
    assert!(
        err.contains("the kernel prefilter keeps it as an alternative"),
        "{err}"
    );
    assert!(
        err.contains("filter `and-not-hosts-8` may accept every frame"),
        "{err}"
    );
    assert!(!err.contains("`or-hosts-64` may accept"), "{err}");
    let all = tmp(
        "accept-all.filters",
        b"web\texpr: tcp port 80\nall\t1,6 0 0 262144\n",
    );
    let err = String::from_utf8_lossy(&check(&all).stderr).into_owned();
    assert!(err.contains("filter `all` may accept every frame"), "{err}");
    assert!(!err.contains("`web`"), "{err}");
}
