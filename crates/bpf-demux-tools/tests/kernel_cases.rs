//! The hand-written table `tests/data/kernel-cases.toml`: a filter, a frame
//! and the bytes the kernel delivers. Its values were taken from the
//! kernel; here they are the expected answer of the reference interpreter,
//! of the merged engine (one set holding every filter of the table, so the
//! cases share one structure), and of the kernel prefilter's rule (a frame
//! the filter accepts passes whole). `the_kernel_delivers_what_the_table_says`
//! (root) checks the table against the kernel itself.

mod common;

use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux::cbpf::{self, text, FrameMeta, Program};
use bpf_demux::prefilter::ACCEPT as PREFILTER_ACCEPT;
use bpf_demux::NamedProgram;
use bpf_demux::{expr, FilterSet};
use common::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

const VB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

#[derive(Deserialize)]
struct Table {
    frames: BTreeMap<String, String>,
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    expr: Option<String>,
    asm: Option<String>,
    /// The expression's accept length (tcpdump's -s); 262144 if absent.
    snaplen: Option<u32>,
    frame: String,
    kernel: usize,
}

/// One case, resolved: its name, its program, its frame, the table's answer.
struct Row {
    name: String,
    text: String,
    program: Program,
    frame: Vec<u8>,
    kernel: usize,
}

impl Row {
    /// The case's filter as a set member.
    fn named(&self) -> NamedProgram {
        NamedProgram {
            name: self.name.clone(),
            program: self.program.clone(),
            snaplen: None,
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn rows() -> Vec<Row> {
    let path = repo().join("tests/data/kernel-cases.toml");
    let table: Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut rows = Vec::new();
    for (i, c) in table.case.into_iter().enumerate() {
        let (text, insns) = match (&c.expr, &c.asm) {
            (Some(e), None) => (
                e.clone(),
                expr::compile(e, c.snaplen.unwrap_or(expr::DEFAULT_SNAPLEN)).unwrap(),
            ),
            (None, Some(a)) => (a.replace('\n', "; "), text::parse_asm(a).unwrap()),
            _ => panic!("case {i}: one of expr or asm"),
        };
        let frame = hex(table
            .frames
            .get(&c.frame)
            .unwrap_or_else(|| panic!("case {i}: no frame {}", c.frame)));
        rows.push(Row {
            name: format!("c{i}"),
            text,
            program: Program::validate(&insns).unwrap(),
            frame,
            kernel: c.kernel,
        });
    }
    assert!(rows.len() >= 40, "{} cases", rows.len());
    // Both answers are in the table, for both kinds of filter.
    assert!(rows.iter().any(|r| r.kernel == 0) && rows.iter().any(|r| r.kernel > 0));
    rows
}

/// The frame and metadata the socket filter on vb sees.
fn view(frame: &[u8]) -> (Vec<u8>, FrameMeta) {
    kernel_view(frame, VB_MAC, 1)
}

fn delivered(ret: u32, frame: &[u8]) -> usize {
    (ret as usize).min(frame.len())
}

#[test]
fn the_interpreter_returns_what_the_kernel_delivers() {
    let mut wrong = Vec::new();
    for r in rows() {
        let (f, meta) = view(&r.frame);
        let got = delivered(cbpf::run(&r.program, &f, &meta), &f);
        if got != r.kernel {
            wrong.push(format!(
                "{} `{}`: interpreter {got}, kernel {}",
                r.name, r.text, r.kernel
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_merged_engine_returns_what_the_kernel_delivers() {
    let rows = rows();
    let mut set = FilterSet::new(rows.iter().map(Row::named)).unwrap();
    let automaton = set.publish();
    let mut wrong = Vec::new();
    for r in &rows {
        let (f, meta) = view(&r.frame);
        let id = set.id(&r.name).unwrap();
        let got = automaton
            .matches(&f, &meta)
            .get(id)
            .map_or(0, |ret| delivered(ret, &f));
        if got != r.kernel {
            wrong.push(format!(
                "{} `{}`: merged {got}, kernel {}",
                r.name, r.text, r.kernel
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_prefilter_passes_what_the_kernel_delivers() {
    let mut with_prefilter = 0;
    let mut wrong = Vec::new();
    for r in rows() {
        let mut set = FilterSet::new([r.named()]).unwrap();
        let Ok(p) = bpf_demux::prefilter::compile(&set.publish()) else {
            continue;
        };
        with_prefilter += 1;
        let (f, mut meta) = view(&r.frame);
        meta.wire_len = f.len() as u32;
        let verdict = cbpf::run(&p, &f, &meta);
        if r.kernel > 0 && verdict != PREFILTER_ACCEPT {
            wrong.push(format!(
                "{} `{}`: delivered {}, prefilter {verdict}",
                r.name, r.text, r.kernel
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The expressions get one; most asm cases accept everything or read
    // areas the prefilter does not model, and have none.
    assert!(
        with_prefilter >= 15,
        "only {with_prefilter} cases had a prefilter"
    );
}

#[test]
#[ignore = "needs root and a network namespace"]
fn the_kernel_delivers_what_the_table_says() {
    require_netns();
    let rows = rows();
    let ns = NetNs::new("cases");
    let nspath = ns.path();
    let wrong = std::thread::spawn(move || {
        enter_netns(&nspath).unwrap();
        let (va, vb) = (if_index("va").unwrap(), if_index("vb").unwrap());
        let mut socks = Vec::new();
        for r in &rows {
            let mut s = PacketSocket::open().unwrap();
            s.attach_filter(r.program.insns()).unwrap();
            s.bind(vb).unwrap();
            socks.push(s);
        }
        let mut all = PacketSocket::open().unwrap();
        all.bind(vb).unwrap();
        let mut tx = PacketSocket::open().unwrap();
        tx.bind(va).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut wrong = Vec::new();
        // One frame at a time, so every delivery belongs to that frame.
        for r in &rows {
            tx.send(&r.frame).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            let mut crossed = 0;
            while all.try_recv(&mut buf).unwrap().is_some() {
                crossed += 1;
            }
            assert_eq!(crossed, 1, "{}: frames seen on vb", r.name);
            for (other, s) in rows.iter().zip(&socks) {
                let got = s.try_recv(&mut buf).unwrap().map_or(0, |x| x.copied);
                assert!(s.try_recv(&mut buf).unwrap().is_none());
                if std::ptr::eq(other, r) && got != r.kernel {
                    wrong.push(format!(
                        "{} `{}`: kernel {got}, table {}",
                        r.name, r.text, r.kernel
                    ));
                }
            }
        }
        wrong
    })
    .join()
    .unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
