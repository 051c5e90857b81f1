//! `bpf-demux check FILTERS`: validate every filter of a set.

use bpf_demux::spec;
use std::path::PathBuf;
use std::process::ExitCode;

/// Validate a filter set with the kernel's rules, one line per filter.
///
/// Prints `name<TAB>N insns<TAB>ok` or `name<TAB>N insns<TAB>error: ...`.
/// Exit 0 when every filter is valid and installable, 2 otherwise.
///
/// Example: bpf-demux check tenants.toml
#[derive(clap::Args)]
pub struct Args {
    /// Filter-set file (TOML or plain `name<TAB>program`).
    filters: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let specs = spec::load(&a.filters).map_err(|e| e.to_string())?;
    let mut bad = 0usize;
    let code = crate::with_stdout(|out| {
        for s in &specs {
            match s.validate(&a.filters) {
                Ok(_) => writeln!(out, "{}\t{} insns\tok", s.name, s.insns.len())?,
                Err(e) => {
                    bad += 1;
                    writeln!(
                        out,
                        "{}\t{} insns\terror: {}",
                        s.name,
                        s.insns.len(),
                        e.kind
                    )?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })?;
    if bad > 0 {
        eprintln!(
            "bpf-demux: {bad} of {} filters in {} are invalid",
            specs.len(),
            a.filters.display()
        );
        return Ok(ExitCode::from(2));
    }
    Ok(code)
}
