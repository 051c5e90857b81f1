//! `bpf-demux tenants`: the tenants of a running `bpf-demux serve`.

use bpf_demux::serve::proto::{ClientMessage, DaemonMessage, TenantsReport};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// List the tenants of a running `bpf-demux serve`.
///
/// Each tenant with its owner, filter size, frames, bytes, drops, queue
/// fill and attach time, and the daemon's own counters (ring frames,
/// kernel drops, prefilter size, fallbacks). A client that is not root
/// sees the details of its own tenants only (the others are counted).
///
/// Example: bpf-demux tenants --socket /run/bpf-demux.sock --format json | jq '.tenants[].name'
#[derive(clap::Args)]
pub struct Args {
    /// The daemon's control socket.
    #[arg(long)]
    socket: PathBuf,
    /// `table` (for people) or `json`.
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    format: String,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let mut s = crate::attach::connect(&a.socket)?;
    s.send(&ClientMessage::List)
        .map_err(|e| format!("sending the request: {e}"))?;
    let report = match s.reader.next_daemon() {
        Ok(DaemonMessage::Tenants(r)) => r,
        Ok(DaemonMessage::Refused { message, .. }) => return Err(format!("refused: {message}")),
        Ok(m) => return Err(format!("the daemon answered with {m:?}")),
        Err(e) => return Err(format!("reading the answer: {e}")),
    };
    crate::with_stdout(|out| {
        if a.format == "json" {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            table(out, &report)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn table(out: &mut dyn Write, r: &TenantsReport) -> std::io::Result<()> {
    let prefilter = r
        .prefilter
        .map_or("none".to_string(), |n| format!("{n} instructions"));
    writeln!(
        out,
        "{}: ring frames {}, matched {}; kernel received {}, dropped {}; prefilter {prefilter}; {} in the fallback interpreter",
        r.interface, r.ring_frames, r.matched, r.kernel_packets, r.kernel_drops, r.fallbacks
    )?;
    writeln!(
        out,
        "{:<24} {:<7} {:<10} {:>5} {:>7} {:>10} {:>12} {:>8} {:>12} {:>10}",
        "NAME",
        "KIND",
        "OWNER",
        "INSNS",
        "SNAPLEN",
        "FRAMES",
        "BYTES",
        "DROPS",
        "QUEUE",
        "ATTACHED"
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for t in &r.tenants {
        let fill = format!("{}/{}K", t.queue_bytes / 1024, t.queue_limit_bytes / 1024);
        let age = format!("{}s ago", now.saturating_sub(t.attached_at));
        let name = match &t.listen {
            Some(l) => format!("{} ({l}, {} clients)", t.name, t.stream_clients),
            None => t.name.clone(),
        };
        writeln!(
            out,
            "{:<24} {:<7} {:<10} {:>5} {:>7} {:>10} {:>12} {:>8} {:>12} {:>10}",
            name,
            t.kind,
            t.owner,
            t.insns,
            t.snaplen.map_or("-".into(), |s| s.to_string()),
            t.frames,
            t.bytes,
            t.drops,
            fill,
            age
        )?;
    }
    if r.hidden > 0 {
        writeln!(out, "({} tenants of other users not shown)", r.hidden)?;
    }
    Ok(())
}
