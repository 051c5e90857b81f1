//! `bpf-demux match`: which filters accept each frame of some pcap files.

use crate::by_link::SetsByLink;
use bpf_demux::cbpf;
use bpf_demux::link::LinkType;
use bpf_demux::pcapfile::PcapReader;
use bpf_demux::{Cache, MatchSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print, for every frame, every filter that accepts it and its return value.
///
/// One line per frame, in file order: `<file basename>:<frame number>` TAB
/// then `name=retval` for each filter returning non-zero, names sorted
/// bytewise, separated by single spaces; nothing after the TAB when no
/// filter matches. Frames are matched as recorded (tags in the bytes),
/// LEN is the original length, loads are bounded by the captured bytes.
/// Each file (each pcapng interface) is matched by its own link type:
/// expressions are compiled for it as `tcpdump -y` would (Ethernet, Linux
/// cooked v1/v2, raw IP, IPv4, IPv6, BSD and OpenBSD loopback).
///
/// Example: bpf-demux match --filters tenants.toml capture.pcap
///          tcpdump -i any -w - | bpf-demux match -F tenants.toml -r -
#[derive(clap::Args)]
pub struct Args {
    /// Filter-set file (TOML or plain); `-` for standard input.
    #[arg(long, short, short_alias = 'F')]
    filters: PathBuf,
    /// Which engine computes the answer.
    #[arg(long, value_enum, default_value = "merged")]
    engine: Engine,
    /// Output format: tsv lines, or JSON Lines ({"frame","matches"}).
    #[arg(long, value_enum, default_value = "tsv")]
    format: Format,
    /// Read a capture file (tcpdump's -r; `-` for standard input); may be
    /// given several times, before the positional files.
    #[arg(short = 'r', value_name = "FILE")]
    read: Vec<PathBuf>,
    /// Stop after this many frames (tcpdump's -c).
    #[arg(short = 'c', value_name = "COUNT")]
    count: Option<u64>,
    /// Accepted as tcpdump takes it: bpf-demux prints no names to resolve.
    #[arg(short = 'n')]
    numeric: bool,
    /// pcap or pcapng files (`-`: standard input).
    pcaps: Vec<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Engine {
    /// All filters merged into one structure, one pass per frame.
    Merged,
    /// Each filter alone through the reference interpreter.
    Independent,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Format {
    Tsv,
    Json,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let _ = a.numeric;
    let files: Vec<&PathBuf> = a.read.iter().chain(&a.pcaps).collect();
    if files.is_empty() {
        return Err(
            "no capture to read: give files, or -r FILE (`-r -` for standard input)".into(),
        );
    }
    if a.filters == std::path::Path::new("-")
        && files.iter().any(|f| *f == std::path::Path::new("-"))
    {
        return Err("the filter set and a capture cannot both be standard input".into());
    }
    let mut left = a.count.unwrap_or(u64::MAX);
    let mut sets = SetsByLink::new(&a.filters, a.engine == Engine::Merged)?;
    let names: Vec<String> = sets
        .get(LinkType::Ethernet)?
        .progs
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut cache = Cache::new();
    let mut found = MatchSet::new();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|x, y| names[*x].as_bytes().cmp(names[*y].as_bytes()));
    let mut failure = None;
    let code = crate::with_stdout(|out| {
        let mut rets = vec![0u32; names.len()];
        'files: for path in files {
            let base = path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut reader = match PcapReader::open(path) {
                Ok(r) => r,
                Err(e) => {
                    failure = Some(e.to_string());
                    return Ok(ExitCode::from(2));
                }
            };
            loop {
                if left == 0 {
                    break 'files;
                }
                let rec = match reader.next_record() {
                    Ok(Some(r)) => {
                        left -= 1;
                        r
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e.to_string());
                        return Ok(ExitCode::from(2));
                    }
                };
                let compiled = match sets.get(rec.link) {
                    Ok(c) => c,
                    Err(e) => {
                        failure = Some(format!("{}: {e}", path.display()));
                        return Ok(ExitCode::from(2));
                    }
                };
                let meta = rec.link.meta(rec.data, rec.orig_len);
                match &compiled.set {
                    None => {
                        for (r, f) in rets.iter_mut().zip(&compiled.progs) {
                            *r = cbpf::run(&f.program, rec.data, &meta);
                        }
                    }
                    Some(m) => {
                        // Filters were added in file order: FilterId i is progs[i].
                        m.automaton()
                            .matches_into(&mut cache, rec.data, &meta, &mut found);
                        rets.fill(0);
                        for (id, v) in found.iter() {
                            rets[id.index()] = v;
                        }
                    }
                }
                write_line(out, a.format, &base, rec.number, &order, &names, &rets)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })?;
    if let Some(msg) = failure {
        return Err(msg);
    }
    Ok(code)
}

fn write_line(
    out: &mut dyn Write,
    format: Format,
    base: &str,
    number: u64,
    order: &[usize],
    names: &[String],
    rets: &[u32],
) -> std::io::Result<()> {
    match format {
        Format::Tsv => {
            write!(out, "{base}:{number}\t")?;
            let mut first = true;
            for &i in order {
                if rets[i] != 0 {
                    if !first {
                        out.write_all(b" ")?;
                    }
                    first = false;
                    write!(out, "{}={}", names[i], rets[i])?;
                }
            }
            out.write_all(b"\n")
        }
        Format::Json => {
            let matches: serde_json::Map<String, serde_json::Value> = order
                .iter()
                .filter(|i| rets[**i] != 0)
                .map(|&i| (names[i].clone(), rets[i].into()))
                .collect();
            let v = serde_json::json!({"file": base, "frame": number, "matches": matches});
            writeln!(out, "{v}")
        }
    }
}
