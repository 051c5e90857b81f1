//! `bpf-demux explain FILTERS`: the merged structure as text.

use bpf_demux::prefilter::NoPrefilter;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print the merged structure of a filter set as an indented tree, then
/// its stats (terms, nodes, hash switches, fallbacks, equivalent filters).
///
/// Each line is one test (a literal over a packet term such as `P[12:2]`,
/// the 2 bytes at offset 12); `=> name=ret` marks where a filter accepts.
/// Siblings are all evaluated; a filter appears wherever one of its
/// accepting paths ends.
///
/// With --prefilter: the kernel prefilter `bpf-demux capture` attaches to
/// its socket for this set, as a `tcpdump -d` listing (it passes every
/// frame some tenant may accept, whole, and rejects the rest where it can).
///
/// Example: bpf-demux explain tenants.toml
/// Example: bpf-demux explain --prefilter tenants.toml
#[derive(clap::Args)]
pub struct Args {
    /// Filter-set file (TOML or plain).
    filters: PathBuf,
    /// Print only the stats line.
    #[arg(long)]
    stats: bool,
    /// Print the kernel prefilter (tcpdump -d listing) instead of the tree.
    #[arg(long, conflicts_with = "stats")]
    prefilter: bool,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let mut set = bpf_demux::spec::load_set(&a.filters).map_err(|e| e.to_string())?;
    if a.prefilter {
        let p = match bpf_demux::prefilter::compile(&set.publish()) {
            Ok(p) => p,
            Err(why) => {
                let why = match why {
                    NoPrefilter::Fallback(id) => format!(
                        "filter `{}` runs in the fallback interpreter",
                        set.name(id).unwrap_or("?")
                    ),
                    why => why.to_string(),
                };
                eprintln!(
                    "bpf-demux: no kernel prefilter for this set: {why} (every frame reaches the ring)"
                );
                return Ok(ExitCode::SUCCESS);
            }
        };
        eprintln!("bpf-demux: kernel prefilter of {} instructions", p.len());
        return crate::with_stdout(|out| {
            out.write_all(bpf_demux::cbpf::text::write_listing(p.insns()).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        });
    }
    crate::with_stdout(|out| {
        let text = set.explain();
        if a.stats {
            let last = text.lines().last().unwrap_or_default();
            writeln!(out, "{last}")?;
        } else {
            out.write_all(text.as_bytes())?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
