//! Endpoints drained into one pcap file per tenant. Files are written as
//! `DIR/.<name>.pcap.part` and renamed to `DIR/<name>.pcap` only when the
//! capture ended cleanly, so nothing half-written looks complete.

use bpf_demux::capture::{Endpoint, Ready, TenantId, TenantStats};
use bpf_demux::pcapfile::PcapWriter;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// libpcap's default snaplen, for tenants without a cap.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

struct Out {
    ep: Endpoint,
    writer: PcapWriter<BufWriter<File>>,
    part: PathBuf,
    done: PathBuf,
    closed: bool,
}

pub struct Sink {
    outs: Vec<Out>,
    by_id: HashMap<TenantId, usize>,
    ready: Arc<Ready>,
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
    ) -> Result<Sink, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create output folder: {e}", dir.display()))?;
        let mut outs = Vec::new();
        for (ep, cap) in endpoints {
            let part = dir.join(format!(".{}.pcap.part", ep.name));
            let done = dir.join(format!("{}.pcap", ep.name));
            let f = File::create(&part).map_err(|e| {
                abandon(std::mem::take(&mut outs));
                format!("{}: cannot write: {e}", part.display())
            })?;
            let writer = PcapWriter::new(
                BufWriter::with_capacity(1 << 16, f),
                cap.unwrap_or(DEFAULT_SNAPLEN),
            )
            .map_err(|e| format!("{}: {e}", part.display()))?;
            outs.push(Out {
                ep,
                writer,
                part,
                done,
                closed: false,
            });
        }
        let by_id = outs
            .iter()
            .enumerate()
            .map(|(i, o)| (o.ep.tenant, i))
            .collect();
        Ok(Sink { outs, by_id, ready })
    }

    /// Writes everything queued on endpoint `i`; records when it closed.
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
                Err(closed) => {
                    o.closed |= closed;
                    return Ok(wrote);
                }
            }
        }
    }

    /// Drains the endpoints the ready set names; once the senders are
    /// gone, sweeps all of them. True when every endpoint has closed.
    fn step(&mut self) -> Result<bool, String> {
        let ids = self.ready.wait(Duration::from_millis(20));
        for id in ids {
            if let Some(&i) = self.by_id.get(&id) {
                Self::drain_one(&mut self.outs[i])?;
            }
        }
        if !self.ready.is_closed() {
            return Ok(false);
        }
        let mut all_closed = true;
        for o in &mut self.outs {
            Self::drain_one(o)?;
            all_closed &= o.closed;
        }
        Ok(all_closed)
    }

    /// Drains until every sender is gone, then flushes and renames.
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
        let mut lines = Vec::new();
        for mut o in self.outs {
            o.writer
                .flush()
                .map_err(|e| format!("{}: {e}", o.part.display()))?;
            drop(o.writer);
            std::fs::rename(&o.part, &o.done).map_err(|e| format!("{}: {e}", o.done.display()))?;
            lines.push(TenantLine {
                name: o.ep.name.clone(),
                stats: o.ep.stats(),
            });
        }
        Ok(lines)
    }

    /// Removes the partial files (on an error).
    pub fn abandon(self) {
        abandon(self.outs);
    }
}

fn abandon(outs: Vec<Out>) {
    for o in outs {
        drop(o.writer);
        let _ = std::fs::remove_file(&o.part);
    }
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
