//! `bpf-demux`: check filter sets, match them against pcap files, convert
//! program text between forms.

mod attach;
mod by_link;
mod capture;
mod check;
mod compile;
mod convert;
mod explain;
mod matching;
mod ring_args;
mod serve;
mod sink;
mod split;
mod tenants;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Many tenants' classic BPF filters, one pass per frame.
///
/// Filter-set files are TOML (`[[filter]]` tables with `name` and `cbpf` or
/// `asm`, optional `snaplen`) or plain text (`name<TAB>program` per line, the
/// program in tcpdump's -ddd one-line form). Exit status: 0 success, 1 a
/// failed comparison, 2 bad input or options.
#[derive(Parser)]
#[command(name = "bpf-demux", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Check(check::Args),
    Capture(capture::Args),
    Serve(serve::Args),
    Attach(attach::Args),
    Tenants(tenants::Args),
    Split(split::Args),
    Match(matching::Args),
    Convert(convert::Args),
    Compile(compile::Args),
    Explain(explain::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Check(a) => check::run(a),
        Cmd::Capture(a) => capture::run(a),
        Cmd::Serve(a) => serve::run(a),
        Cmd::Attach(a) => attach::run(a),
        Cmd::Tenants(a) => tenants::run(a),
        Cmd::Split(a) => split::run(a),
        Cmd::Match(a) => matching::run(a),
        Cmd::Convert(a) => convert::run(a),
        Cmd::Compile(a) => compile::run(a),
        Cmd::Explain(a) => explain::run(a),
    };
    match r {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("bpf-demux: {msg}");
            ExitCode::from(2)
        }
    }
}

/// The bytes of `path`, or of standard input for `-`.
pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let name = path.display();
    if path == std::path::Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| format!("{name}: cannot read: {e}"))
}

/// Runs `f` on a locked, buffered stdout; a closed pipe ends quietly.
pub(crate) fn with_stdout(
    f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<ExitCode>,
) -> Result<ExitCode, String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let r = f(&mut out).and_then(|c| {
        std::io::Write::flush(&mut out)?;
        Ok(c)
    });
    match r {
        Ok(c) => Ok(c),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(format!("writing output: {e}")),
    }
}
