//! The checks the fuzz targets make, shared with `tests/fuzz_regressions.rs`
//! (which replays every input the fuzzers ever failed on).

use bpf_demux::cbpf::text::{self, Form};
use bpf_demux::cbpf::{self, FrameMeta, Program};
use bpf_demux::spec::NamedProgram;
use bpf_demux::FilterSet;

/// Every reader on arbitrary bytes: no panic; what a reader accepts is a
/// non-empty program that survives write/read round trips.
pub fn readers(data: &[u8]) {
    for form in [
        Form::Ddd,
        Form::Dd,
        Form::Listing,
        Form::Asm,
        Form::Raw,
        Form::detect(data),
    ] {
        if let Ok(insns) = form.parse(data) {
            assert!(!insns.is_empty(), "{form:?} accepted an empty program");
            let _ = Program::validate(&insns);
            assert_eq!(
                text::parse_ddd(&text::write_ddd_line(&insns)).unwrap(),
                insns
            );
            assert_eq!(text::parse_ddd(&text::write_ddd(&insns)).unwrap(), insns);
            assert_eq!(text::parse_dd(&text::write_dd(&insns)).unwrap(), insns);
            assert_eq!(text::parse_raw(&text::write_raw(&insns)).unwrap(), insns);
            if let Ok(p) = Program::validate(&insns) {
                let _ = p.check_userland();
                let back = text::parse_listing(&text::write_listing(&insns)).unwrap();
                assert_eq!(back.len(), insns.len());
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = bpf_demux::spec::parse(std::path::Path::new("fuzz.toml"), s);
        // The expression compiler: no panic; what it makes is kernel-valid.
        if let Ok(insns) = bpf_demux::expr::compile(s, 262_144) {
            Program::validate(&insns).expect("compiled expressions are kernel-valid");
        }
    }
}

/// Arbitrary programs and a frame: the merged answer equals the
/// interpreter's. Layout: `[n][len of each program in records]..[records]..[frame]`.
pub fn merged(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let nprogs = (data[0] % 6 + 1) as usize;
    let lens: Vec<usize> = data[1..]
        .iter()
        .take(nprogs)
        .map(|b| (*b % 12 + 1) as usize)
        .collect();
    let mut rest = &data[1 + lens.len()..];
    let mut named = Vec::new();
    for (i, len) in lens.iter().enumerate() {
        let take = (len * 8).min(rest.len() / 8 * 8);
        if take == 0 {
            break;
        }
        let Ok(insns) = text::parse_raw(&rest[..take]) else {
            break;
        };
        rest = &rest[take..];
        if let Ok(p) = Program::validate(&insns) {
            if p.check_userland().is_ok() {
                named.push(NamedProgram {
                    name: format!("f{i}"),
                    program: p,
                    snaplen: None,
                });
            }
        }
    }
    if named.is_empty() {
        return;
    }
    let frame = rest;
    let meta = FrameMeta::offline(frame, frame.len() as u32 + (data[0] as u32 >> 6));
    let set = FilterSet::new(named.iter().cloned()).unwrap();
    let mut got: Vec<(String, u32)> = set
        .matches(frame, &meta)
        .iter()
        .map(|(id, v)| (set.name(id).to_owned(), v))
        .collect();
    got.sort();
    let mut want: Vec<(String, u32)> = named
        .iter()
        .filter_map(|p| {
            let v = cbpf::run(&p.program, frame, &meta);
            (v != 0).then(|| (p.name.clone(), v))
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
}
