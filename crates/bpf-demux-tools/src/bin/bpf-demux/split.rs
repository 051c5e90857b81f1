//! `bpf-demux split`: what `capture` does, offline, from pcap files.

use crate::sink::{self, Sink};
use bpf_demux::capture::{Dispatcher, Senders, Stamp};
use bpf_demux::cbpf::FrameMeta;
use bpf_demux::pcapfile::PcapReader;
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
    /// pcap or pcapng files (Ethernet).
    #[arg(required = true)]
    pcaps: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let mut set = bpf_demux::spec::load_set(&a.filters).map_err(|e| e.to_string())?;
    // Every input opens before anything is written, so a missing or bad
    // file leaves the output folder as it was.
    let mut readers = Vec::new();
    for path in &a.pcaps {
        readers.push(PcapReader::open(path).map_err(|e| e.to_string())?);
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
    )?;
    let commands = sink.commands();
    let writer = std::thread::spawn(move || sink.run());
    let mut d = Dispatcher::new(automaton, senders, false);
    let mut failure = None;
    'files: for mut r in readers {
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    let meta = FrameMeta::offline(rec.data, rec.orig_len);
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
