//! `bpf-demux split`: what `capture` does, offline, from pcap files.

use crate::by_link;
use crate::sink::{self, Sink};
use bpf_demux::capture::{Dispatcher, Senders, Stamp};
use bpf_demux::link::LinkType;
use bpf_demux::pcapfile::PcapReader;
use bpf_demux::{spec, FilterSet};
use std::path::PathBuf;
use std::process::ExitCode;

/// Split pcap files into one pcap per tenant: DIR/<name>.pcap holds every
/// frame that tenant's filter accepts, truncated to min(return value,
/// captured length, tenant's snaplen). Frames are matched as recorded.
/// Every input is opened before anything is written, files are written as
/// hidden `.part` files and renamed at the end; a bad input leaves the
/// folder as it was.
///
/// Example: bpf-demux split --filters tenants.toml --out-dir out/ trace.pcap
#[derive(clap::Args)]
pub struct Args {
    /// Filter-set file (TOML or plain).
    #[arg(long, short)]
    filters: PathBuf,
    /// Folder for the per-tenant pcap files (made if missing).
    #[arg(long)]
    out_dir: PathBuf,
    /// pcap or pcapng files, all of one link type (the per-tenant files
    /// have it).
    #[arg(required = true)]
    pcaps: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    // Every input opens before anything is written, so a missing or bad
    // file leaves the output folder as it was; their link type (that of
    // the first frame of each) is the output files'.
    let link = inputs_link(&a.pcaps)?;
    let mut set = FilterSet::new(
        spec::load_valid_for(&a.filters, by_link::target(link)).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let mut readers = Vec::new();
    for path in &a.pcaps {
        readers.push((path, PcapReader::open(path).map_err(|e| e.to_string())?));
    }
    sink::check_open_files(set.len(), a.pcaps.len())?;
    let automaton = set.publish();
    let tenants = bpf_demux::capture::TenantSpec::all(set.automaton(), 1024);
    let caps: Vec<Option<u32>> = tenants.iter().map(|t| t.snaplen).collect();
    let (senders, endpoints) = Senders::new(tenants, true);
    let mut sink = Sink::create(
        &a.out_dir,
        endpoints.into_iter().zip(caps).collect(),
        senders.ready(),
        link,
    )?;
    let commands = sink.commands();
    let writer = std::thread::spawn(move || sink.run());
    let mut d = Dispatcher::new(automaton, senders, false);
    let mut failure = None;
    'files: for (path, mut r) in readers {
        loop {
            match r.next_record() {
                Ok(Some(rec)) if rec.link != link => {
                    failure = Some(format!(
                        "{}: frame {} is {}, not {link}: split writes one link type per run",
                        path.display(),
                        rec.number,
                        rec.link
                    ));
                    break 'files;
                }
                Ok(Some(rec)) => {
                    let meta = link.meta(rec.data, rec.orig_len);
                    d.offer(
                        rec.data,
                        &meta,
                        Stamp {
                            ts_sec: rec.ts_sec,
                            ts_nsec: rec.ts_nsec,
                        },
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e.to_string());
                    break 'files;
                }
            }
        }
    }
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

/// The link type of the first frame of each of `pcaps` (Ethernet when none
/// has a frame); an error when they differ.
fn inputs_link(pcaps: &[PathBuf]) -> Result<LinkType, String> {
    let mut seen: Option<(LinkType, &PathBuf)> = None;
    for path in pcaps {
        let mut r = PcapReader::open(path).map_err(|e| e.to_string())?;
        let Some(rec) = r.next_record().map_err(|e| e.to_string())? else {
            continue;
        };
        match seen {
            Some((l, first)) if l != rec.link => {
                return Err(format!(
                    "{} is {l} but {} is {}: split writes one link type per run",
                    first.display(),
                    path.display(),
                    rec.link
                ))
            }
            Some(_) => {}
            None => seen = Some((rec.link, path)),
        }
    }
    Ok(seen.map_or(LinkType::Ethernet, |s| s.0))
}
