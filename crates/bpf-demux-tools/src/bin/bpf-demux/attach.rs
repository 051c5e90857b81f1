//! `bpf-demux attach`: one tenant of a running `bpf-demux serve`, its
//! frames written as classic pcap.

use bpf_demux::capture::sys;
use bpf_demux::cbpf::text::Form;
use bpf_demux::cbpf::{Insn, Program};
use bpf_demux::expr;
use bpf_demux::pcapfile::PcapWriter;
use bpf_demux::serve::conn::{ConnError, MessageReader};
use bpf_demux::serve::proto::{self, AttachRequest, ClientMessage, DaemonMessage};
use std::io::{BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Attach a filter to a running `bpf-demux serve` and write its frames.
///
/// The filter is a tcpdump expression (compiled for the daemon's live
/// link) or --program FILE in any text form `convert` reads. Prints
/// `bpf-demux: attached NAME` once the filter is live, then writes the
/// tenant's frames as classic pcap (Ethernet, microseconds) to -w FILE or
/// standard output. SIGINT, SIGTERM or -c end it: every frame the daemon
/// had queued for it is written, its counters printed, exit 0. A refused
/// attach (not allowed, over quota, name taken, bad filter) prints why
/// and exits 2.
///
/// Example: bpf-demux attach --socket /run/bpf-demux.sock tcp port 443 | tcpdump -nr -
///          bpf-demux attach --socket /run/bpf-demux.sock -c 100 -w dns.pcap udp port 53
#[derive(clap::Args)]
pub struct Args {
    /// The daemon's control socket.
    #[arg(long)]
    socket: PathBuf,
    /// Tenant name (default: USER-PID).
    #[arg(long)]
    name: Option<String>,
    /// Cap on the bytes kept of each frame (default: the policy's largest).
    #[arg(long, short = 's')]
    snaplen: Option<u32>,
    /// Stop after this many frames.
    #[arg(long, short = 'c')]
    count: Option<u64>,
    /// Write the pcap here (`-`: standard output).
    #[arg(long, short = 'w', default_value = "-")]
    write: PathBuf,
    /// The daemon-side queue for this tenant, in KiB (as tcpdump's -B).
    #[arg(long, short = 'B')]
    buffer_size: Option<u64>,
    /// Program file (`-`: standard input) instead of an expression.
    #[arg(long, conflicts_with = "expression")]
    program: Option<PathBuf>,
    /// The expression (several words are joined by spaces, as tcpdump does).
    #[arg(allow_hyphen_values = true)]
    expression: Vec<String>,
}

/// A connection past the handshake.
pub struct Session {
    pub sock: UnixStream,
    pub reader: MessageReader<UnixStream>,
    pub interface: String,
}

/// Connects to the daemon at `socket` and says hello.
pub fn connect(socket: &Path) -> Result<Session, String> {
    let shown = socket.display();
    let mut sock = UnixStream::connect(socket).map_err(|e| format!("--socket {shown}: {e}"))?;
    let mut out = Vec::new();
    ClientMessage::Hello {
        version: proto::VERSION,
    }
    .encode(&mut out);
    sock.write_all(&out)
        .map_err(|e| format!("--socket {shown}: {e}"))?;
    let mut reader = MessageReader::new(sock.try_clone().map_err(|e| e.to_string())?);
    match reader.next_daemon() {
        Ok(DaemonMessage::Welcome { interface, .. }) => Ok(Session {
            sock,
            reader,
            interface,
        }),
        Ok(DaemonMessage::Refused { message, .. }) => Err(format!("refused: {message}")),
        Ok(m) => Err(format!("the daemon answered hello with {m:?}")),
        Err(e) => Err(format!("--socket {shown}: {e}")),
    }
}

impl Session {
    pub fn send(&mut self, m: &ClientMessage) -> std::io::Result<()> {
        let mut out = Vec::new();
        m.encode(&mut out);
        self.sock.write_all(&out)
    }
}

fn read_program(path: &Path) -> Result<Vec<Insn>, String> {
    let name = path.display();
    let bytes = crate::read_input(path)?;
    let form = Form::detect(&bytes);
    form.parse(&bytes)
        .map_err(|e| format!("{name}: {} form: {e}", form.name()))
}

fn default_name() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    let user = sys::creds::user_name(uid).unwrap_or_else(|| format!("uid{uid}"));
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .collect();
    format!("{user}-{}", std::process::id())
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let insns = match &a.program {
        Some(p) => read_program(p)?,
        None if a.expression.is_empty() => {
            return Err("give a filter: an expression, or --program FILE".into())
        }
        None => {
            let opts = expr::Options {
                snaplen: a.snaplen.unwrap_or(expr::DEFAULT_SNAPLEN),
                live: true,
                ..expr::Options::default()
            };
            expr::compile_with(&a.expression.join(" "), &opts)
                .map_err(|e| format!("expression: {e}"))?
        }
    };
    let name = a.name.clone().unwrap_or_else(default_name);
    Program::validate(&insns).map_err(|e| format!("filter `{name}`: {e}"))?;
    if a.snaplen == Some(0) || a.buffer_size == Some(0) {
        return Err("--snaplen and --buffer-size must be at least 1".into());
    }
    // A signal interrupts the blocking read below: noticed at once, with
    // no timer waking an idle client.
    sys::catch_termination_interrupting()
        .map_err(|e| format!("installing signal handlers: {e}"))?;
    let mut s = connect(&a.socket)?;
    let req = AttachRequest {
        name: name.clone(),
        snaplen: a.snaplen,
        queue_bytes: a.buffer_size.map(|k| k.saturating_mul(1024)),
        insns,
    };
    s.send(&ClientMessage::Attach(req))
        .map_err(|e| format!("sending the attach: {e}"))?;
    let snaplen = match s.reader.next_daemon() {
        Ok(DaemonMessage::Attached { snaplen, .. }) => snaplen,
        Ok(DaemonMessage::Refused { message, .. }) => {
            return Err(format!("attach refused: {message}"))
        }
        Ok(m) => return Err(format!("the daemon answered attach with {m:?}")),
        Err(e) => return Err(format!("waiting for the attach: {e}")),
    };
    let out: Box<dyn Write> = if a.write == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&a.write)
                .map_err(|e| format!("-w {}: {e}", a.write.display()))?,
        )
    };
    let mut pcap = PcapWriter::new(BufWriter::with_capacity(1 << 16, out), snaplen)
        .and_then(|mut w| w.flush().map(|()| w))
        .map_err(|e| format!("writing the pcap header: {e}"))?;
    crate::sink::say(&format!("bpf-demux: attached {name} on {}", s.interface));
    // Signals interrupt the read; the timeout is a backstop only.
    let _ = s.sock.set_read_timeout(Some(Duration::from_secs(5)));
    let (mut received, mut written) = (0u64, 0u64);
    let mut detached = false;
    let mut output_ok = true;
    let stats = loop {
        let wants_end =
            sys::termination_requested() || !output_ok || a.count.is_some_and(|c| written >= c);
        if wants_end && !detached {
            detached = true;
            s.send(&ClientMessage::Detach)
                .map_err(|e| format!("sending the detach: {e}"))?;
        }
        match s.reader.next_daemon() {
            Ok(DaemonMessage::Frame {
                ts_sec,
                ts_nsec,
                orig_len,
                data,
            }) => {
                received += 1;
                if output_ok && a.count.map_or(true, |c| written < c) {
                    let r = pcap.write(ts_sec, ts_nsec, orig_len, &data).and_then(|()| {
                        match s.reader.has_partial() {
                            true => Ok(()),
                            false => pcap.flush(),
                        }
                    });
                    match r {
                        Ok(()) => written += 1,
                        // A reader that went away (`| tcpdump -c 5`) ends us.
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => output_ok = false,
                        Err(e) => return Err(format!("writing {}: {e}", a.write.display())),
                    }
                }
            }
            Ok(DaemonMessage::Stats {
                frames,
                bytes,
                drops,
            }) => break (frames, bytes, drops),
            Ok(m) => return Err(format!("unexpected message from the daemon: {m:?}")),
            Err(e) if e.is_timeout() => {
                if output_ok {
                    if let Err(e) = pcap.flush() {
                        output_ok = e.kind() != std::io::ErrorKind::BrokenPipe;
                        if output_ok {
                            return Err(format!("writing {}: {e}", a.write.display()));
                        }
                    }
                }
            }
            Err(ConnError::Closed { .. }) => {
                let _ = pcap.flush();
                crate::sink::say(&format!(
                    "bpf-demux: {name}: the daemon closed the stream without its counters ({written} frames written)"
                ));
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(format!("reading from the daemon: {e}")),
        }
    };
    if output_ok {
        pcap.flush()
            .map_err(|e| format!("writing {}: {e}", a.write.display()))?;
    }
    let (frames, bytes, drops) = stats;
    crate::sink::say(&format!(
        "bpf-demux: {name}: {written} frames written ({received} received); the daemon queued {frames} frames, {bytes} bytes; {drops} dropped by its queue"
    ));
    Ok(ExitCode::SUCCESS)
}
