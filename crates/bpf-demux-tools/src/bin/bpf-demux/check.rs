//! `bpf-demux check FILTERS`: validate every filter of a set.

use bpf_demux::prefilter::NoPrefilter;
use bpf_demux::spec;
use bpf_demux::FilterSet;
use std::path::PathBuf;
use std::process::ExitCode;

/// Validate a filter set with the kernel's rules, one line per filter.
///
/// Prints `name<TAB>N insns<TAB>ok` or `name<TAB>N insns<TAB>error: ...`,
/// and on stderr every error of the file that keeps a filter from being
/// read at all (each with its line and column), not only the first. Warns
/// when a filter will run in the fallback interpreter or accepts every
/// frame: either switches the kernel prefilter off for the whole set, so
/// every frame is copied to the capture ring. Exit 0 when every filter is
/// valid and installable, 2 otherwise.
///
/// Example: bpf-demux check tenants.toml
#[derive(clap::Args)]
pub struct Args {
    /// Filter-set file (TOML or plain `name<TAB>program`).
    filters: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let (specs, errors) = spec::load_all_for(&a.filters, spec::Target::ETHERNET);
    for e in &errors {
        eprintln!("bpf-demux: {e}");
    }
    let mut bad = errors.len();
    let mut valid = Vec::new();
    let code = crate::with_stdout(|out| {
        for s in &specs {
            match s.validate(&a.filters) {
                Ok(p) => {
                    writeln!(out, "{}\t{} insns\tok", s.name, s.insns.len())?;
                    valid.push(p);
                }
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
    warn_prefilter(&valid);
    if bad > 0 {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        eprintln!(
            "bpf-demux: {} in {} ({} read)",
            plural(bad, "error"),
            a.filters.display(),
            plural(specs.len(), "filter")
        );
        return Ok(ExitCode::from(2));
    }
    Ok(code)
}

/// Says which filters run in the fallback interpreter, and which switch
/// the kernel prefilter off for the set (and why).
fn warn_prefilter(valid: &[bpf_demux::NamedProgram]) {
    let Ok(mut set) = FilterSet::new(valid.iter().cloned()) else {
        return;
    };
    let compile = bpf_demux::prefilter::compile;
    let whole = compile(&set.publish());
    for id in set.ids() {
        if let Some(reason) = set.fallback_reason(id) {
            let name = set.name(id).unwrap_or("?");
            let effect = match whole {
                Err(NoPrefilter::Fallback(off)) if off == id => {
                    "and uses every scratch cell, so it cannot join the kernel prefilter: the set gets none"
                }
                _ => "(slower; the kernel prefilter keeps it as an alternative)",
            };
            eprintln!(
                "bpf-demux: warning: filter `{name}` runs in the fallback interpreter ({reason}) {effect}"
            );
        }
    }
    if matches!(whole, Err(NoPrefilter::AcceptsAll)) {
        for p in valid {
            let alone = FilterSet::new([p.clone()]).map(|mut s| compile(&s.publish()));
            if matches!(alone, Ok(Err(NoPrefilter::AcceptsAll))) {
                eprintln!(
                    "bpf-demux: warning: filter `{}` may accept every frame: the set gets no kernel prefilter",
                    p.name
                );
            }
        }
    }
}
