//! The checks the fuzz targets make, shared with `tests/fuzz_regressions.rs`
//! (which replays every input the fuzzers ever failed on).

use bpf_demux::cbpf::text::{self, Form};
use bpf_demux::cbpf::{self, FrameMeta, Program};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;

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

/// Programs of one `merged` input: at most 6, each at most 64 instructions.
pub const MERGED_MAX_PROGRAMS: usize = 6;
pub const MERGED_MAX_LEN: usize = 64;

/// Arbitrary programs and a frame: the merged answer, from the working set
/// and from the published automaton, equals each program's own answer in
/// the reference interpreter. Layout: `[n][one length byte per
/// program]..[8-byte raw records]..[frame]`; a length byte `b` means `b %
/// 12 + 1` instructions, or `(b & 0x3f) + 1` when its top bit is set (so
/// random bytes mostly make short programs, and real filters fit). Returns
/// the number of programs compared (0: the input held none).
pub fn merged(data: &[u8]) -> usize {
    if data.len() < 4 {
        return 0;
    }
    let nprogs = (data[0] as usize % MERGED_MAX_PROGRAMS) + 1;
    let lens: Vec<usize> = data[1..]
        .iter()
        .take(nprogs)
        .map(|&b| {
            if b & 0x80 == 0 {
                (b % 12 + 1) as usize
            } else {
                (b & 0x3f) as usize + 1
            }
        })
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
        return 0;
    }
    let frame = rest;
    let meta = FrameMeta::offline(frame, frame.len() as u32 + (data[0] as u32 >> 6));
    let mut set = FilterSet::new(named.iter().cloned()).unwrap();
    let mut want: Vec<(String, u32)> = named
        .iter()
        .filter_map(|p| {
            let v = cbpf::run(&p.program, frame, &meta);
            (v != 0).then(|| (p.name.clone(), v))
        })
        .collect();
    want.sort();
    let named_sorted = |m: bpf_demux::MatchSet, set: &FilterSet| {
        let mut v: Vec<(String, u32)> = m
            .iter()
            .map(|(id, v)| (set.name(id).unwrap().to_owned(), v))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        named_sorted(set.automaton().matches(frame, &meta), &set),
        want,
        "working set"
    );
    let automaton = set.publish();
    assert_eq!(
        named_sorted(automaton.matches(frame, &meta), &set),
        want,
        "published automaton"
    );
    named.len()
}

/// The `merged` input that holds `progs` and `frame`, and whose frame
/// length on the wire is `frame.len() + extra` (`extra` < 4).
pub fn merged_input(progs: &[&[bpf_demux::cbpf::Insn]], frame: &[u8], extra: u8) -> Vec<u8> {
    assert!((1..=MERGED_MAX_PROGRAMS).contains(&progs.len()) && extra < 4);
    // The first byte says both: `% 6` the count, `>> 6` the extra length.
    let first = (0..64u8)
        .map(|r| (extra << 6) | r)
        .find(|b| *b as usize % MERGED_MAX_PROGRAMS == progs.len() - 1)
        .unwrap();
    let mut v = vec![first];
    for p in progs {
        assert!((1..=MERGED_MAX_LEN).contains(&p.len()));
        v.push(if p.len() <= 12 {
            (p.len() - 1) as u8
        } else {
            0x80 | (p.len() - 1) as u8
        });
    }
    for p in progs {
        v.extend(text::write_raw(p));
    }
    v.extend_from_slice(frame);
    v
}

/// Arbitrary bytes as a client's (and as the daemon's) side of the serve
/// protocol: no panic; every message decoded re-encodes to exactly the
/// bytes it came from (the encoding is canonical), and reading them in
/// dribbles through `MessageReader` gives the same messages. Returns the
/// number of client messages decoded.
pub fn serve_proto(data: &[u8]) -> usize {
    use bpf_demux::serve::conn::MessageReader;
    use bpf_demux::serve::proto::{decode_client, decode_daemon, DaemonMessage};
    let mut at = 0;
    let mut msgs = Vec::new();
    while let Ok(Some((m, used))) = decode_client(&data[at..]) {
        let mut again = Vec::new();
        m.encode(&mut again);
        assert_eq!(again, &data[at..at + used], "{m:?} re-encodes differently");
        msgs.push(m);
        at += used;
    }
    /// Gives 1 to 7 bytes a read.
    struct Dribble<'a>(&'a [u8], usize);
    impl std::io::Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut r = MessageReader::new(Dribble(data, 0));
    for m in &msgs {
        assert_eq!(&r.next_client().expect("decoded whole above"), m);
    }
    let mut at = 0;
    while let Ok(Some((m, used))) = decode_daemon(&data[at..]) {
        let canonical = match &m {
            DaemonMessage::Tenants(_) => false,
            DaemonMessage::Refused { message, .. } => message.len() <= 4096,
            _ => true,
        };
        if canonical {
            let mut again = Vec::new();
            m.encode(&mut again);
            assert_eq!(again, &data[at..at + used], "{m:?} re-encodes differently");
        }
        at += used;
    }
    msgs.len()
}
