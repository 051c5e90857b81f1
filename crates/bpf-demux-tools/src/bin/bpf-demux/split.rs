//! `bpf-demux split`: what `capture` does, offline, from pcap files.

use crate::sink::{self, Sink};
use bpf_demux::capture::{Dispatcher, Senders, Stamp};
use bpf_demux::link::LinkType;
use bpf_demux::pcapfile::{Format, FrameWriter, IfaceDesc, PcapReader};
use bpf_demux::{spec, Cache, FilterSet, MatchSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Split pcap files into one pcap per tenant: DIR/<name>.pcap holds every
/// frame that tenant's filter accepts, truncated to min(return value,
/// captured length, tenant's snaplen). Frames are matched as recorded.
/// Every input is opened before anything is written, files are written as
/// hidden `.part` files and renamed at the end; a bad input leaves the
/// folder as it was. With `--tenant NAME -w FILE` only that tenant's
/// stream is written, to FILE (`-`: standard output, for a pipe into
/// tcpdump, tshark or Wireshark).
///
/// Example: bpf-demux split --filters tenants.toml --out-dir out/ trace.pcap
///          bpf-demux split -F tenants.toml --tenant web -w - -r trace.pcap | tshark -r -
#[derive(clap::Args)]
pub struct Args {
    /// Filter-set file (TOML or plain); `-` for standard input.
    #[arg(long, short, short_alias = 'F')]
    filters: PathBuf,
    /// Folder for the per-tenant pcap files (made if missing).
    #[arg(long, required_unless_present = "write", conflicts_with = "write")]
    out_dir: Option<PathBuf>,
    /// Write one tenant's stream only (with -w).
    #[arg(long, requires = "write")]
    tenant: Option<String>,
    /// Where --tenant's stream goes (tcpdump's -w; `-`: standard output).
    #[arg(short = 'w', value_name = "FILE", requires = "tenant")]
    write: Option<PathBuf>,
    /// Read a capture file (tcpdump's -r; `-` for standard input); may be
    /// given several times, before the positional files.
    #[arg(short = 'r', value_name = "FILE")]
    read: Vec<PathBuf>,
    /// File format written: pcap, or pcapng (one interface block per
    /// input file, the tenant's name in the section header's comment).
    #[arg(long, value_enum, default_value_t)]
    format: sink::FileFormat,
    /// With --out-dir: start a tenant's next file before writing a frame
    /// once its file is larger than this many million bytes (tcpdump's -C;
    /// suffixes k, m, g for 1024, 1024^2, 1024^3 bytes); the next files
    /// are named `<tenant>.pcap1`, `2`, ... as tcpdump names them.
    #[arg(short = 'C', value_name = "SIZE", value_parser = sink::parse_size, requires = "out_dir")]
    file_size: Option<u64>,
    /// pcap or pcapng files, all of one link type (the per-tenant files
    /// have it).
    pcaps: Vec<PathBuf>,
}

/// A frame read ahead (each input's first, which says its link type).
struct Ahead {
    data: Vec<u8>,
    orig_len: u32,
    stamp: Stamp,
    link: LinkType,
}

/// An open input and its first frame.
struct Input {
    path: PathBuf,
    reader: PcapReader,
    first: Option<Ahead>,
}

/// Opens every input and reads its first frame; their common link type
/// (Ethernet when none has a frame), or an error when they differ.
fn open_inputs(paths: &[&PathBuf]) -> Result<(Vec<Input>, LinkType), String> {
    let mut inputs = Vec::new();
    let mut seen: Option<(LinkType, &Path)> = None;
    for path in paths {
        let mut reader = PcapReader::open(path).map_err(|e| e.to_string())?;
        let first = reader
            .next_record()
            .map_err(|e| e.to_string())?
            .map(|r| Ahead {
                data: r.data.to_vec(),
                orig_len: r.orig_len,
                stamp: Stamp {
                    ts_sec: r.ts_sec,
                    ts_nsec: r.ts_nsec,
                    iface: inputs.len() as u32,
                },
                link: r.link,
            });
        if let Some(f) = &first {
            match seen {
                Some((l, at)) if l != f.link => {
                    return Err(format!(
                        "{} is {l} but {} is {}: split writes one link type per run",
                        at.display(),
                        path.display(),
                        f.link
                    ))
                }
                Some(_) => {}
                None => seen = Some((f.link, path)),
            }
        }
        inputs.push(Input {
            path: path.to_path_buf(),
            reader,
            first,
        });
    }
    Ok((inputs, seen.map_or(LinkType::Ethernet, |s| s.0)))
}

/// Calls `f` with every frame of `inputs`, in order; an error names the
/// first bad record, or a frame of another link type than `link`.
fn each_frame(
    inputs: Vec<Input>,
    link: LinkType,
    mut f: impl FnMut(&[u8], u32, Stamp) -> Result<(), String>,
) -> Result<(), String> {
    for (i, mut input) in inputs.into_iter().enumerate() {
        if let Some(a) = input.first.take() {
            f(&a.data, a.orig_len, a.stamp)?;
        }
        loop {
            match input.reader.next_record() {
                Ok(Some(rec)) if rec.link != link => {
                    return Err(format!(
                        "{}: frame {} is {}, not {link}: split writes one link type per run",
                        input.path.display(),
                        rec.number,
                        rec.link
                    ))
                }
                Ok(Some(rec)) => f(
                    rec.data,
                    rec.orig_len,
                    Stamp {
                        ts_sec: rec.ts_sec,
                        ts_nsec: rec.ts_nsec,
                        iface: i as u32,
                    },
                )?,
                Ok(None) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(())
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let paths: Vec<&PathBuf> = a.read.iter().chain(&a.pcaps).collect();
    if paths.is_empty() {
        return Err(
            "no capture to read: give files, or -r FILE (`-r -` for standard input)".into(),
        );
    }
    if a.filters == Path::new("-") && paths.iter().any(|p| *p == Path::new("-")) {
        return Err("the filter set and a capture cannot both be standard input".into());
    }
    let text = spec::read_text(&a.filters).map_err(|e| e.to_string())?;
    // Every input opens before anything is written, so a missing or bad
    // file leaves the output folder as it was; their link type (that of
    // the first frame of each) is the output files'.
    let (inputs, link) = open_inputs(&paths)?;
    let set = FilterSet::new(
        spec::valid_from_text(&a.filters, &text, spec::Target::Offline(link))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    // One interface per input file.
    let ifaces: Vec<IfaceDesc> = inputs
        .iter()
        .map(|i| IfaceDesc {
            name: i.path.display().to_string(),
            link,
            snaplen: bpf_demux::expr::DEFAULT_SNAPLEN,
        })
        .collect();
    let format = a.format.into();
    match (&a.tenant, &a.write, &a.out_dir) {
        (Some(name), Some(out), _) => {
            one_tenant(set, name, out, inputs, (link, ifaces, format), &a.filters)
        }
        (_, _, Some(dir)) => {
            let naming = sink::Naming {
                size: a.file_size,
                ..sink::Naming::plain(format)
            };
            every_tenant(set, dir, inputs, link, ifaces, naming)
        }
        _ => Err("give --out-dir DIR, or --tenant NAME -w FILE".into()),
    }
}

/// `--out-dir`: one file per tenant.
fn every_tenant(
    mut set: FilterSet,
    dir: &Path,
    inputs: Vec<Input>,
    link: LinkType,
    ifaces: Vec<IfaceDesc>,
    naming: sink::Naming,
) -> Result<ExitCode, String> {
    sink::check_open_files(set.len(), inputs.len())?;
    let automaton = set.publish();
    let tenants = bpf_demux::capture::TenantSpec::all(set.automaton(), 1024);
    let caps: Vec<Option<u32>> = tenants.iter().map(|t| t.snaplen).collect();
    let (senders, endpoints) = Senders::new(tenants, true);
    let mut sink = Sink::create(
        dir,
        endpoints.into_iter().zip(caps).collect(),
        senders.ready(),
        ifaces,
        naming,
    )?;
    let commands = sink.commands();
    let writer = std::thread::spawn(move || sink.run());
    let mut d = Dispatcher::new(automaton, senders, false);
    let failure = each_frame(inputs, link, |data, orig_len, stamp| {
        d.offer(data, &link.meta(data, orig_len), stamp);
        Ok(())
    })
    .err();
    if failure.is_some() {
        // A bad input finishes no file: what the folder held stays.
        let _ = commands.send(sink::Command::Abandon);
    }
    let (seen, matched) = (d.seen, d.matched);
    drop(d);
    let written = writer
        .join()
        .map_err(|_| "writer thread panicked".to_string())?;
    if let Some(msg) = failure {
        return Err(format!("{msg} (no file written)"));
    }
    sink::print_summary(&written?);
    eprintln!("frames read {seen}, matched by some tenant {matched}");
    Ok(ExitCode::SUCCESS)
}

/// `--tenant NAME -w FILE`: that tenant's stream alone.
fn one_tenant(
    set: FilterSet,
    name: &str,
    out: &Path,
    inputs: Vec<Input>,
    (link, ifaces, format): (LinkType, Vec<IfaceDesc>, Format),
    filters: &Path,
) -> Result<ExitCode, String> {
    let id = set
        .id(name)
        .ok_or_else(|| format!("no tenant `{name}` in {}", filters.display()))?;
    let cap = set.snaplen(id).flatten();
    let snaplen = cap.map_or(bpf_demux::expr::DEFAULT_SNAPLEN, |c| {
        c.max(bpf_demux::expr::DEFAULT_SNAPLEN)
    });
    let automaton = set.automaton();
    let (mut cache, mut found) = (Cache::new(), MatchSet::new());
    let (mut seen, mut written) = (0u64, 0u64);
    let write = |w: &mut dyn std::io::Write| -> std::io::Result<Result<(), String>> {
        let ifaces: Vec<IfaceDesc> = ifaces
            .iter()
            .map(|i| IfaceDesc {
                snaplen,
                ..i.clone()
            })
            .collect();
        let mut pcap = FrameWriter::new(
            format,
            w,
            Some(&format!("bpf-demux tenant {name}")),
            &ifaces,
        )?;
        let mut io_err = None;
        let r = each_frame(inputs, link, |data, orig_len, stamp| {
            seen += 1;
            automaton.matches_into(&mut cache, data, &link.meta(data, orig_len), &mut found);
            if let Some(ret) = found.get(id) {
                // As a capture delivers it: min(return value, captured
                // bytes, the tenant's snaplen).
                let len = (ret as usize)
                    .min(data.len())
                    .min(cap.map_or(usize::MAX, |c| c as usize));
                if let Err(e) = pcap.write(
                    stamp.iface,
                    stamp.ts_sec,
                    stamp.ts_nsec,
                    orig_len,
                    &data[..len],
                ) {
                    io_err = Some(e);
                    return Err("write failed".into());
                }
                written += 1;
            }
            Ok(())
        });
        if let Some(e) = io_err {
            return Err(e);
        }
        pcap.flush()?;
        Ok(r)
    };
    let r = if out == Path::new("-") {
        let mut inner = Ok(());
        let code = crate::with_stdout(|w| {
            inner = write(w)?;
            Ok(ExitCode::SUCCESS)
        })?;
        inner.map(|()| code)
    } else {
        let f = std::fs::File::create(out)
            .map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
        let mut w = std::io::BufWriter::new(f);
        write(&mut w)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .map(|()| ExitCode::SUCCESS)
    };
    eprintln!("frames read {seen}, written for `{name}` {written}");
    r
}
