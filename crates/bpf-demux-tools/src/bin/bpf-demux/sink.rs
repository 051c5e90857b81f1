//! Endpoints drained into one capture file per tenant (pcap or pcapng).
//! Files are written as `DIR/.<name>.<tenant>.part` and renamed to their
//! name (`DIR/<name>.pcap` by default; see [`Naming`]) when the tenant's
//! stream ends: at the end of a clean run, at once when a reload removes
//! the tenant, or when the file rotates (tcpdump's `-C` size and `-G`
//! seconds). If this run already finished a file of that name, the new one
//! is `<name>~1.pcap`, `~2`, ...: `~` is not allowed in a tenant name, so
//! nothing written is overwritten. A file that cannot be written loses
//! that tenant only: the error is said, what was written is kept, the
//! other tenants go on. Written frames reach the files within a second (a
//! flush on a timer), so a capture that is killed leaves its frames in
//! the `.part` files.

use bpf_demux::capture::{Endpoint, Ready, TenantId, TenantStats, TryRecvError};
use bpf_demux::expr::DEFAULT_SNAPLEN;
use bpf_demux::pcapfile::{Format, FrameWriter, IfaceDesc};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often written frames are flushed to the files.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

struct Out {
    ep: Endpoint,
    writer: FrameWriter<BufWriter<File>>,
    part: PathBuf,
    cap: Option<u32>,
    closed: bool,
    /// Its tenant was removed: drain until the stream ends, then finish.
    removed: bool,
    /// When the current file began, and how many files of the current
    /// `-G` period came before it (`-C`).
    began: Instant,
    began_at: SystemTime,
    count: usize,
}

/// tcpdump's -C value: millions of bytes, or with a k/m/g suffix, KiB,
/// MiB, GiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, unit) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1024u64),
        Some('m' | 'M') => (&s[..s.len() - 1], 1024 * 1024),
        Some('g' | 'G') => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1_000_000),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(unit)
            .ok_or_else(|| format!("file size `{s}` is too large")),
        _ => Err(format!(
            "invalid file size `{s}` (a positive number, optionally with k, m or g)"
        )),
    }
}

/// The file format, as the command line names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// Classic pcap (tcpdump's default).
    #[default]
    Pcap,
    /// pcapng: one interface block per source interface, the tenant's
    /// name in the section header's comment.
    Pcapng,
}

impl From<FileFormat> for Format {
    fn from(f: FileFormat) -> Format {
        match f {
            FileFormat::Pcap => Format::Pcap,
            FileFormat::Pcapng => Format::Pcapng,
        }
    }
}

/// How the files are named and when they rotate, as tcpdump's `-w`, `-C`
/// and `-G` do.
#[derive(Clone, Debug)]
pub struct Naming {
    /// The file name in the folder: `%n` is the tenant's name; with
    /// `-G`, the strftime escapes `%Y %m %d %H %M %S %j %y %s %%` take the
    /// time the file began (UTC). Default: `%n.pcap` (`.pcapng`).
    pub pattern: String,
    /// Start a new file before writing a frame once the file has more
    /// than this many bytes (`-C`); later files of one period get 1, 2,
    /// ... appended to their name, as tcpdump's do.
    pub size: Option<u64>,
    /// Start a new file before writing a frame once the file is this old
    /// (`-G`).
    pub every: Option<Duration>,
    /// The format written.
    pub format: Format,
}

impl Naming {
    /// One file per tenant, named `<tenant>.pcap` (or `.pcapng`).
    pub fn plain(format: Format) -> Naming {
        Naming {
            pattern: format!("%n.{}", format.extension()),
            size: None,
            every: None,
            format,
        }
    }

    /// The name of a file of `tenant` begun at `at`, the `count`-th of its
    /// period.
    fn name(&self, tenant: &str, at: SystemTime, count: usize) -> String {
        let mut name = if self.every.is_some() {
            strftime_utc(&self.pattern, tenant, at)
        } else {
            self.pattern.replace("%n", tenant)
        };
        if count > 0 {
            name.push_str(&count.to_string());
        }
        name
    }
}

/// `pattern` with `%n` as `tenant` and strftime's escapes for `at` (UTC).
fn strftime_utc(pattern: &str, tenant: &str, at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][(m - 1) as usize];
    let yday = before + d + (leap && m > 2) as i64;
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push_str(tenant),
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('s') => out.push_str(&secs.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
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
    /// The source interfaces (pcap files take the first's link type).
    ifaces: Vec<IfaceDesc>,
    naming: Naming,
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
        ifaces: Vec<IfaceDesc>,
        naming: Naming,
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
            ifaces,
            naming,
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
        let (part, writer) = self.new_file(&ep.name, ep.tenant, cap)?;
        self.by_id.insert(ep.tenant, self.outs.len());
        self.outs.push(Out {
            ep,
            writer,
            part,
            cap,
            closed: false,
            removed: false,
            began: Instant::now(),
            began_at: SystemTime::now(),
            count: 0,
        });
        Ok(())
    }

    /// A `.part` file for tenant `name` and its writer (headers written).
    fn new_file(
        &self,
        name: &str,
        tenant: TenantId,
        cap: Option<u32>,
    ) -> Result<(PathBuf, FrameWriter<BufWriter<File>>), String> {
        let part = self.dir.join(format!(".{name}.{}.part", tenant.0));
        let f =
            File::create(&part).map_err(|e| format!("{}: cannot write: {e}", part.display()))?;
        // The header's snaplen is never below libpcap's default: a reload
        // may raise the tenant's cap, and readers cut records to it.
        let snaplen = cap.map_or(DEFAULT_SNAPLEN, |c| c.max(DEFAULT_SNAPLEN));
        let ifaces: Vec<IfaceDesc> = self
            .ifaces
            .iter()
            .map(|i| IfaceDesc {
                snaplen,
                ..i.clone()
            })
            .collect();
        let writer = FrameWriter::new(
            self.naming.format,
            BufWriter::with_capacity(1 << 16, f),
            Some(&format!("bpf-demux tenant {name}")),
            &ifaces,
        )
        .map_err(|e| format!("{}: {e}", part.display()))?;
        Ok((part, writer))
    }

    /// Where a finished file of tenant `name` goes: its name (begun at
    /// `at`, the `count`-th of its period), or with `~k` before the
    /// extension when this run already finished one of that name.
    fn final_path(&mut self, name: &str, at: SystemTime, count: usize) -> PathBuf {
        let name = self.naming.name(name, at, count);
        let n = self.finished.entry(name.clone()).or_insert(0);
        let file = match *n {
            0 => name,
            k => match name.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => format!("{stem}~{k}.{ext}"),
                _ => format!("{name}~{k}"),
            },
        };
        *n += 1;
        self.dir.join(file)
    }

    /// Before writing to `outs[i]`: finishes its file and starts the next
    /// when `-C` or `-G` says so.
    fn rotate_if_due(&mut self, i: usize) -> Result<(), String> {
        let o = &mut self.outs[i];
        // As tcpdump: the file as it is now, headers included.
        let by_size = self.naming.size.is_some_and(|s| o.writer.written() > s);
        let by_time = self.naming.every.is_some_and(|e| o.began.elapsed() >= e);
        if !by_size && !by_time {
            return Ok(());
        }
        o.writer
            .flush()
            .map_err(|e| format!("{}: {e}", o.part.display()))?;
        let (name, tenant, cap, at, count) =
            (o.ep.name.clone(), o.ep.tenant, o.cap, o.began_at, o.count);
        let old = o.part.clone();
        let done = self.final_path(&name, at, count);
        std::fs::rename(&old, &done).map_err(|e| format!("{}: {e}", done.display()))?;
        let (part, writer) = self.new_file(&name, tenant, cap)?;
        let o = &mut self.outs[i];
        o.writer = writer;
        o.part = part;
        if by_time {
            o.count = 0;
            o.began_at = SystemTime::now();
        } else {
            o.count += 1;
        }
        o.began = Instant::now();
        Ok(())
    }

    /// Writes everything queued on `outs[i]`; records when its stream ended.
    fn drain_one(&mut self, i: usize) -> Result<usize, String> {
        let mut wrote = 0;
        loop {
            match self.outs[i].ep.try_recv() {
                Ok(d) => {
                    self.rotate_if_due(i)?;
                    let o = &mut self.outs[i];
                    let f = &d.frame;
                    o.writer
                        .write(f.iface, f.ts_sec, f.ts_nsec, f.orig_len, d.bytes())
                        .map_err(|e| format!("{}: {e}", o.part.display()))?;
                    wrote += 1;
                }
                Err(e) => {
                    self.outs[i].closed |= e == TryRecvError::Ended;
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
        let done = self.final_path(&o.ep.name, o.began_at, o.count);
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
        if let Err(e) = self.drain_one(i) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The names -G gives, against coreutils' `date -u` (its strftime).
    #[test]
    fn file_names_take_strftime_escapes_as_date_does() {
        let pattern = "%n-%Y%m%d-%H%M%S-%j-%y-%s-%%";
        for secs in [
            0u64,
            951_782_400,
            951_868_799,
            1_709_164_800,
            1_700_000_000,
            1_735_689_599,
            4_102_444_800,
            4_107_542_399,
        ] {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let out = std::process::Command::new("date")
                .args(["-u", "-d", &format!("@{secs}")])
                .arg(format!("+{}", pattern.replace("%n", "web")))
                .output()
                .unwrap();
            let want = String::from_utf8(out.stdout).unwrap();
            assert_eq!(strftime_utc(pattern, "web", at), want.trim_end(), "{secs}");
        }
    }

    #[test]
    fn later_files_of_a_period_are_numbered_as_tcpdump_numbers_them() {
        let n = Naming {
            size: Some(1),
            ..Naming::plain(Format::Pcap)
        };
        let at = SystemTime::UNIX_EPOCH;
        assert_eq!(n.name("web", at, 0), "web.pcap");
        assert_eq!(n.name("web", at, 2), "web.pcap2");
        let g = Naming {
            pattern: "%n-%H%M%S.pcap".into(),
            every: Some(Duration::from_secs(60)),
            ..n
        };
        assert_eq!(
            g.name("web", at + Duration::from_secs(3661), 1),
            "web-010101.pcap1"
        );
    }
}
