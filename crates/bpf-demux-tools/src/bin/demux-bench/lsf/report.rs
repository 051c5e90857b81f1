//! The tables `--lsf` prints and the SVG plots it writes.

use super::chart::{Chart, Series};
use super::delivery::Via;
use super::receive::{ReceiveRow, Traffic};
use super::shapes::Shape;
use super::{Report, Spread};
use std::path::{Path, PathBuf};

pub fn print(r: &Report) {
    let m = &r.machine;
    println!(
        "demux-bench --lsf: {} ({} cores), Linux {}, bpf_jit_enable {}, optmem_max {}",
        m.cpu, m.cores, m.kernel, m.bpf_jit_enable, m.optmem_max
    );
    println!("tracing: {}", m.tracing);
    println!();
    let runs = r
        .attach
        .rows
        .first()
        .and_then(|row| row.kernel_us.map(|k| k.runs))
        .unwrap_or(0);
    println!(
        "1. attach: setsockopt(SO_ATTACH_FILTER) against bpf-demux validate + add + publish into a set of T tenants (µs, median [min-max] of {runs} runs)"
    );
    let ts: Vec<usize> = r
        .attach
        .rows
        .first()
        .map(|row| row.demux.iter().map(|d| d.tenants).collect())
        .unwrap_or_default();
    print!(
        "{:<9} {:>6} {:>24} {:>8}",
        "shape", "insns", "kernel", "20480?"
    );
    for t in &ts {
        print!(" {:>24}", format!("bpf-demux T={t}"));
    }
    println!();
    for row in &r.attach.rows {
        let k = match (&row.kernel_us, &row.kernel_error) {
            (Some(s), _) => s.show(1),
            (None, Some(e)) => e.split(" (").next().unwrap_or(e).to_string(),
            (None, None) => "-".into(),
        };
        print!(
            "{:<9} {:>6} {:>24} {:>8}",
            row.shape.name(),
            row.insns,
            k,
            if row.legacy_optmem_ok { "ok" } else { "ENOMEM" }
        );
        for d in &row.demux {
            print!(" {:>24}", d.add_publish_us.show(1));
        }
        println!();
    }
    println!();
    println!("   the prefilter that set then swaps onto its ring: build | SO_ATTACH_FILTER on the ring socket (µs) [prefilter instructions]");
    print!("{:<9} {:>6}", "shape", "insns");
    for t in &ts {
        print!(" {:>40}", format!("T={t}"));
    }
    println!();
    for row in &r.attach.rows {
        print!("{:<9} {:>6}", row.shape.name(), row.insns);
        for d in &row.demux {
            let cell = match (&d.prefilter_attach_us, d.prefilter_insns) {
                (Some(a), Some(n)) => {
                    format!("{} | {} [{n}]", d.prefilter_build_us.show(0), a.show(1))
                }
                _ if d.fallback => "fallback interpreter: no prefilter".to_string(),
                _ => format!("{} | none", d.prefilter_build_us.show(0)),
            };
            print!(" {:>40}", cell);
        }
        println!();
    }
    for l in &r.attach.optmem {
        match l.first_refused {
            Some(n) => println!(
                "   optmem_max {}: the kernel refuses {} programs from {n} instructions ({})",
                l.optmem_max,
                l.shape.name(),
                l.error.as_deref().unwrap_or("?")
            ),
            None => println!(
                "   optmem_max {}: the kernel takes {} programs up to 4096 instructions",
                l.optmem_max,
                l.shape.name()
            ),
        }
    }
    println!();
    println!("2. receive: CPU per frame (ns, net of the traffic alone; median [min-max]) against the snaplen, N kernel sockets vs one bpf-demux ring with N tenants");
    println!(
        "{:<8} {:>4} {:>7} {:>8} {:>9} {:>8} {:>26} {:>26} {:>7}",
        "traffic",
        "N",
        "snaplen",
        "frames",
        "bytes/fr",
        "base",
        "N kernel sockets",
        "bpf-demux ring",
        "ratio"
    );
    for row in &r.receive {
        println!(
            "{:<8} {:>4} {:>7} {:>8} {:>9.0} {:>8.0} {:>26} {:>26} {:>7}",
            row.traffic.name(),
            row.n,
            row.snaplen,
            row.frames,
            row.frame_bytes,
            row.base_ns.median,
            row.kernel_ns.show(0),
            row.demux_ns.show(0),
            row.ratio
                .map_or("noise".to_string(), |x| format!("{x:.1}x"))
        );
    }
    println!();
    println!("3. delivery: getting a queued frame into a user buffer (ns per frame, median [min-max]), against the filter's size");
    println!(
        "{:<20} {:>6} {:>7} {:>7} {:>24} {:>24}",
        "path", "insns", "snaplen", "frames", "reader CPU", "wall"
    );
    for row in &r.delivery {
        println!(
            "{:<20} {:>6} {:>7} {:>7} {:>24} {:>24}",
            row.via.name(),
            row.insns,
            row.snaplen,
            row.frames,
            row.cpu_ns.show(0),
            row.wall_ns.show(0)
        );
    }
}

/// A log scale shows nothing at or below zero: such points sit at 1.
fn floor(s: Spread) -> Spread {
    Spread {
        median: s.median.max(1.0),
        min: s.min.max(1.0),
        max: s.max.max(1.0),
        runs: s.runs,
    }
}

pub fn plots(r: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let mut series = Vec::new();
    for shape in Shape::ALL {
        let rows: Vec<_> = r.attach.rows.iter().filter(|x| x.shape == shape).collect();
        series.push(Series {
            label: format!("kernel setsockopt, {}", shape.name()),
            points: rows
                .iter()
                .filter_map(|x| x.kernel_us.map(|k| (x.insns as f64, k)))
                .collect(),
        });
        let ts: Vec<usize> = rows
            .first()
            .map(|x| x.demux.iter().map(|d| d.tenants).collect())
            .unwrap_or_default();
        for (i, t) in ts.iter().enumerate() {
            series.push(Series {
                label: format!("bpf-demux add+publish, {}, T={t}", shape.name()),
                points: rows
                    .iter()
                    .map(|x| (x.insns as f64, x.demux[i].add_publish_us))
                    .collect(),
            });
        }
    }
    let path = dir.join("lsf-attach.svg");
    Chart {
        title: "1. attach: time to take one filter, against its size",
        x_desc: "filter size (classic BPF instructions)",
        y_desc: "time (µs)",
        series,
    }
    .write_svg(&path)?;
    written.push(path);

    for traffic in [Traffic::Tcp, Traffic::TcpGso, Traffic::Fixed] {
        let rows: Vec<_> = r.receive.iter().filter(|x| x.traffic == traffic).collect();
        if rows.is_empty() {
            continue;
        }
        let mut ns: Vec<usize> = rows.iter().map(|x| x.n).collect();
        ns.dedup();
        // One line per N for a column of the rows.
        let by_n = |label: &dyn Fn(usize) -> String, pick: fn(&ReceiveRow) -> Spread| {
            ns.iter()
                .map(|&n| Series {
                    label: label(n),
                    points: rows
                        .iter()
                        .filter(|x| x.n == n)
                        .map(|x| (x.snaplen as f64, floor(pick(x))))
                        .collect(),
                })
                .collect::<Vec<_>>()
        };
        let mut series = by_n(&|n| format!("{n} kernel socket(s)"), |x| x.kernel_ns);
        series.extend(by_n(&|n| format!("bpf-demux ring, {n} tenant(s)"), |x| {
            x.demux_ns
        }));
        let title = format!(
            "2. receive ({} traffic): CPU per frame against the snaplen",
            traffic.name()
        );
        let path = dir.join(format!("lsf-receive-{}.svg", traffic.name()));
        Chart {
            title: &title,
            x_desc: "snaplen (bytes, the filter's return value)",
            y_desc: "CPU per frame (ns, net of the traffic alone)",
            series,
        }
        .write_svg(&path)?;
        written.push(path);
    }

    let mut series = Vec::new();
    for via in [Via::Recvfrom, Via::TpacketV3, Via::Endpoint] {
        let mut snaps: Vec<u32> = r
            .delivery
            .iter()
            .filter(|x| x.via == via)
            .map(|x| x.snaplen)
            .collect();
        snaps.sort();
        snaps.dedup();
        for s in snaps {
            series.push(Series {
                label: format!("{}, snaplen {s}", via.name()),
                points: r
                    .delivery
                    .iter()
                    .filter(|x| x.via == via && x.snaplen == s)
                    .map(|x| (x.insns as f64, floor(x.cpu_ns)))
                    .collect(),
            });
        }
    }
    let path = dir.join("lsf-delivery.svg");
    Chart {
        title: "3. delivery: reading a queued frame into a user buffer, against the filter's size",
        x_desc: "filter size (classic BPF instructions)",
        y_desc: "reader CPU per frame (ns)",
        series,
    }
    .write_svg(&path)?;
    written.push(path);
    Ok(written)
}
