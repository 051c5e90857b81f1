//! `bpf-demux explain FILTERS`: the merged structure as text.

use bpf_demux::FilterSet;
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
/// Example: bpf-demux explain tenants.toml
#[derive(clap::Args)]
pub struct Args {
    /// Filter-set file (TOML or plain).
    filters: PathBuf,
    /// Print only the stats line.
    #[arg(long)]
    stats: bool,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let set = FilterSet::from_file(&a.filters).map_err(|e| e.to_string())?;
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
