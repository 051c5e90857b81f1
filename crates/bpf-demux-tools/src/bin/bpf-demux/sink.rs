//! Endpoints drained into one pcap file per tenant. Files are written as
//! `DIR/.<name>.<tenant>.pcap.part` and renamed to `DIR/<name>.pcap` when
//! the tenant's stream ends: at the end of a clean run, or at once when a
//! reload removes the tenant (then, if this run already finished a file of
//! that name, `DIR/<name>~1.pcap`, `~2`, ...: `~` is not allowed in a
//! name, so nothing written is overwritten). A file that cannot be
//! written loses that tenant only: the error is said, what was written is
//! kept, the other tenants go on. Written frames reach the files within a second (a flush
//! on a timer), so a capture that is killed leaves its frames in the
//! `.part` files.

use bpf_demux::capture::{Endpoint, Ready, TenantId, TenantStats, TryRecvError};
use bpf_demux::expr::DEFAULT_SNAPLEN;
use bpf_demux::link::LinkType;
use bpf_demux::pcapfile::PcapWriter;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often written frames are flushed to the files.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

struct Out {
    ep: Endpoint,
    writer: PcapWriter<BufWriter<File>>,
    part: PathBuf,
    closed: bool,
    /// Its tenant was removed: drain until the stream ends, then finish.
    removed: bool,
}

/// What the capture tells a running sink.
pub enum Command {
    /// A tenant added by a reload, with its snaplen cap.
    Add(Endpoint, Option<u32>),
    /// The tenant of this name was removed: finish its file once its
    /// stream has ended.
    Removed(String),
    /// Print the per-tenant counts and this line (SIGUSR1).
    PrintStats(String),
    /// The run failed: remove the `.part` files, finish none (files
    /// already in the folder stay as they were).
    Abandon,
}

/// What [`Sink::run`] returns when told to [`Command::Abandon`].
pub const ABANDONED: &str = "abandoned";

pub struct Sink {
    dir: PathBuf,
    outs: Vec<Out>,
    by_id: HashMap<TenantId, usize>,
    ready: Arc<Ready>,
    commands: Option<Receiver<Command>>,
    /// Files finished so far per name (to name the next one).
    finished: HashMap<String, usize>,
    lines: Vec<TenantLine>,
    last_flush: Instant,
    /// The link type the files are written as.
    link: LinkType,
}

/// Final per-tenant numbers.
pub struct TenantLine {
    pub name: String,
    pub stats: TenantStats,
}

impl Sink {
    /// Creates the folder if needed and one `.part` file per endpoint.
    pub fn create(
        dir: &Path,
        endpoints: Vec<(Endpoint, Option<u32>)>,
        ready: Arc<Ready>,
        link: LinkType,
    ) -> Result<Sink, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create output folder: {e}", dir.display()))?;
        let mut sink = Sink {
            dir: dir.to_owned(),
            outs: Vec::new(),
            by_id: HashMap::new(),
            ready,
            commands: None,
            finished: HashMap::new(),
            lines: Vec::new(),
            last_flush: Instant::now(),
            link,
        };
        for (ep, cap) in endpoints {
            if let Err(e) = sink.open(ep, cap) {
                sink.abandon();
                return Err(e);
            }
        }
        Ok(sink)
    }

    /// A channel for commands while the sink runs (reloads, statistics).
    pub fn commands(&mut self) -> Sender<Command> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commands = Some(rx);
        tx
    }

    fn open(&mut self, ep: Endpoint, cap: Option<u32>) -> Result<(), String> {
        let part = self
            .dir
            .join(format!(".{}.{}.pcap.part", ep.name, ep.tenant.0));
        let f =
            File::create(&part).map_err(|e| format!("{}: cannot write: {e}", part.display()))?;
        // The header's snaplen is never below libpcap's default: a reload
        // may raise the tenant's cap, and readers cut records to it.
        let writer = PcapWriter::with_link(
            BufWriter::with_capacity(1 << 16, f),
            cap.map_or(DEFAULT_SNAPLEN, |c| c.max(DEFAULT_SNAPLEN)),
            self.link,
        )
        .map_err(|e| format!("{}: {e}", part.display()))?;
        self.by_id.insert(ep.tenant, self.outs.len());
        self.outs.push(Out {
            ep,
            writer,
            part,
            closed: false,
            removed: false,
        });
        Ok(())
    }

    /// Writes everything queued on `o`; records when its stream ended.
    fn drain_one(o: &mut Out) -> Result<usize, String> {
        let mut wrote = 0;
        loop {
            match o.ep.try_recv() {
                Ok(d) => {
                    o.writer
                        .write(d.frame.ts_sec, d.frame.ts_nsec, d.frame.orig_len, d.bytes())
                        .map_err(|e| format!("{}: {e}", o.part.display()))?;
                    wrote += 1;
                }
                Err(e) => {
                    o.closed |= e == TryRecvError::Ended;
                    return Ok(wrote);
                }
            }
        }
    }

    /// Flushes, closes and renames `o`'s file without overwriting one
    /// this run already finished.
    fn finish(&mut self, mut o: Out) -> Result<(), String> {
        o.writer
            .flush()
            .map_err(|e| format!("{}: {e}", o.part.display()))?;
        drop(o.writer);
        let n = self.finished.entry(o.ep.name.clone()).or_insert(0);
        let done = match *n {
            0 => self.dir.join(format!("{}.pcap", o.ep.name)),
            k => self.dir.join(format!("{}~{k}.pcap", o.ep.name)),
        };
        *n += 1;
        std::fs::rename(&o.part, &done).map_err(|e| format!("{}: {e}", done.display()))?;
        self.lines.push(TenantLine {
            name: o.ep.name.clone(),
            stats: o.ep.stats(),
        });
        Ok(())
    }

    fn command(&mut self, c: Command) -> Result<(), String> {
        match c {
            Command::Add(ep, cap) => {
                // A file that cannot be made loses that tenant only.
                match self.open(ep, cap) {
                    // Frames may have come before the command did.
                    Ok(()) => self.drain_or_drop(self.outs.len() - 1),
                    Err(e) => say(&format!("bpf-demux: {e}")),
                }
            }
            Command::Removed(name) => {
                for o in self.outs.iter_mut().filter(|o| o.ep.name == name) {
                    o.removed = true;
                }
            }
            Command::Abandon => return Err(ABANDONED.into()),
            Command::PrintStats(line) => {
                let now: Vec<TenantLine> = self
                    .lines
                    .iter()
                    .map(|l| TenantLine {
                        name: l.name.clone(),
                        stats: l.stats,
                    })
                    .chain(self.outs.iter().map(|o| TenantLine {
                        name: o.ep.name.clone(),
                        stats: o.ep.stats(),
                    }))
                    .collect();
                print_summary(&now);
                eprintln!("{line}");
            }
        }
        Ok(())
    }

    /// Takes commands, drains the endpoints the ready set names and those
    /// of removed tenants (finishing each whose stream ended), flushes on
    /// the timer; once the senders are gone, sweeps all of them. True
    /// when every stream has ended.
    fn step(&mut self) -> Result<bool, String> {
        self.take_commands()?;
        let ids = self.ready.wait(Duration::from_millis(20));
        // Read before taking commands again: a command sent before the
        // senders went is then seen before their end is acted on.
        let closed = self.ready.is_closed();
        self.take_commands()?;
        for id in ids {
            if let Some(&i) = self.by_id.get(&id) {
                self.drain_or_drop(i);
            }
        }
        for i in 0..self.outs.len() {
            if closed || self.outs[i].removed {
                self.drain_or_drop(i);
            }
        }
        // Finish every file whose stream ended.
        let mut i = 0;
        while i < self.outs.len() {
            if self.outs[i].closed && (closed || self.outs[i].removed) {
                let o = self.outs.swap_remove(i);
                if let Err(e) = self.finish(o) {
                    say(&format!("bpf-demux: {e}"));
                }
            } else {
                i += 1;
            }
        }
        self.reindex();
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.last_flush = Instant::now();
            for o in &mut self.outs {
                if let Err(e) = o.writer.flush() {
                    say(&format!("bpf-demux: {}: {e}", o.part.display()));
                }
            }
        }
        Ok(closed && self.outs.is_empty())
    }

    /// Drains out `i`; on a write error, says so and lets that tenant go
    /// (its file keeps what was written; its endpoint is dropped, so its
    /// frames are counted as drops from now on).
    fn drain_or_drop(&mut self, i: usize) {
        if let Err(e) = Self::drain_one(&mut self.outs[i]) {
            say(&format!(
                "bpf-demux: {e}; tenant `{}` is no longer written",
                self.outs[i].ep.name
            ));
            let o = self.outs.swap_remove(i);
            if let Err(e) = self.finish(o) {
                say(&format!("bpf-demux: {e}"));
            }
            self.reindex();
        }
    }

    /// `by_id` again after outs were removed (`swap_remove` moves one).
    fn reindex(&mut self) {
        self.by_id = self
            .outs
            .iter()
            .enumerate()
            .map(|(i, o)| (o.ep.tenant, i))
            .collect();
    }

    fn take_commands(&mut self) -> Result<(), String> {
        if let Some(rx) = self.commands.take() {
            let r = rx.try_iter().try_for_each(|c| self.command(c));
            self.commands = Some(rx);
            r?;
        }
        Ok(())
    }

    /// Drains until every stream has ended, finishing each file; returns
    /// every tenant's numbers.
    pub fn run(mut self) -> Result<Vec<TenantLine>, String> {
        loop {
            match self.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    self.abandon();
                    return Err(e);
                }
            }
        }
        let mut lines = std::mem::take(&mut self.lines);
        lines.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(lines)
    }

    /// Removes the partial files (on an error).
    pub fn abandon(self) {
        for o in self.outs {
            drop(o.writer);
            let _ = std::fs::remove_file(&o.part);
        }
    }
}

/// Writes a line on stderr, ignoring errors (a terminal that went away
/// must not stop the files from being finished).
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Raises the open-files limit to the hard limit and refuses, before
/// anything is written, when one file per tenant (plus `inputs` and a few
/// for the process itself) still does not fit.
/// `inputs` counts the other descriptors the run holds (input files, ring
/// sockets).
pub fn check_open_files(tenants: usize, inputs: usize) -> Result<(), String> {
    let limit = bpf_demux::capture::sys::raise_open_files_limit()
        .map_err(|e| format!("reading the open-files limit: {e}"))?;
    let need = (tenants + inputs + 32) as u64;
    if need > limit {
        return Err(format!(
            "{tenants} tenants need about {need} open files, and the limit is {limit} \
             (raise it with `ulimit -n` or LimitNOFILE=)"
        ));
    }
    Ok(())
}

/// The per-tenant summary, on stderr.
pub fn print_summary(lines: &[TenantLine]) {
    let w = lines.iter().map(|l| l.name.len()).max().unwrap_or(6).max(6);
    eprintln!(
        "{:<w$} {:>10} {:>14} {:>10}",
        "tenant", "frames", "bytes", "drops"
    );
    for l in lines {
        eprintln!(
            "{:<w$} {:>10} {:>14} {:>10}",
            l.name, l.stats.frames, l.stats.bytes, l.stats.drops
        );
    }
}
