//! `bpf-demux convert`: program text from one form to another.

use bpf_demux::cbpf::text::{self, Form};
use bpf_demux::cbpf::Program;
use std::path::PathBuf;
use std::process::ExitCode;

/// Convert a program between text forms (and validate it).
///
/// Reads tcpdump -d / -dd / -ddd, bpf_asm text or raw sock_filter records
/// (form detected unless --from is given) and writes the chosen form.
///
/// Example: tcpdump -ddd -y EN10MB tcp | bpf-demux convert --to d -
#[derive(clap::Args)]
pub struct Args {
    /// Input form (default: detected).
    #[arg(long, value_enum)]
    from: Option<FormArg>,
    /// Output form.
    #[arg(long, value_enum, default_value = "ddd-line")]
    to: OutForm,
    /// Do not refuse programs the kernel would refuse.
    #[arg(long)]
    no_validate: bool,
    /// Program file, or `-` for standard input.
    input: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormArg {
    Ddd,
    Dd,
    D,
    Asm,
    Raw,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutForm {
    /// tcpdump -ddd, one instruction a line.
    Ddd,
    /// tcpdump -ddd joined on one line by commas.
    DddLine,
    /// tcpdump -dd (C array rows).
    Dd,
    /// tcpdump -d (listing).
    D,
    /// Raw 8-byte sock_filter records.
    Raw,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let name = a.input.display().to_string();
    let bytes = crate::read_input(&a.input)?;
    let form = match a.from {
        None => Form::detect(&bytes),
        Some(FormArg::Ddd) => Form::Ddd,
        Some(FormArg::Dd) => Form::Dd,
        Some(FormArg::D) => Form::Listing,
        Some(FormArg::Asm) => Form::Asm,
        Some(FormArg::Raw) => Form::Raw,
    };
    let insns = form
        .parse(&bytes)
        .map_err(|e| format!("{name}: {} form: {e}", form.name()))?;
    if !a.no_validate {
        Program::validate(&insns).map_err(|e| format!("{name}: {e}"))?;
    }
    crate::with_stdout(|out| {
        match a.to {
            OutForm::Ddd => out.write_all(text::write_ddd(&insns).as_bytes())?,
            OutForm::DddLine => writeln!(out, "{}", text::write_ddd_line(&insns))?,
            OutForm::Dd => out.write_all(text::write_dd(&insns).as_bytes())?,
            OutForm::D => out.write_all(text::write_listing(&insns).as_bytes())?,
            OutForm::Raw => out.write_all(&text::write_raw(&insns))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}
