//! The table on stdout and the JSON records.

use crate::measure::Row;
use std::path::Path;

fn human_bytes(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// How merged cost grows with N, in words.
pub fn verdict(rows: &[&Row]) -> String {
    let (first, last) = (rows[0], rows[rows.len() - 1]);
    if rows.len() < 2 || first.n == last.n {
        return format!("one point only (N={})", first.n);
    }
    let growth = last.merged_ns_per_frame / first.merged_ns_per_frame;
    let nratio = last.n as f64 / first.n as f64;
    let shape = if growth < 3.0 {
        "flat"
    } else if growth < nratio.sqrt() {
        "sublinear"
    } else {
        "about linear"
    };
    format!(
        "merged cost x{growth:.2} from N={} to N={} ({shape}); independent x{:.0}",
        first.n,
        last.n,
        last.independent_ns_per_frame / first.independent_ns_per_frame
    )
}

pub fn print_table(rows: &[Row], source: &str) {
    println!("bpf-demux: independent filters vs one merged structure, {source}");
    let w = rows
        .iter()
        .map(|r| r.family.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<w$} {:>6} {:>14} {:>12} {:>12} {:>9} {:>13} {:>10} {:>11} {:>7} {:>9}",
        "family",
        "N",
        "indep ns/frm",
        "merged ns/frm",
        "hand ns/frm",
        "speedup",
        "merged frm/s",
        "build ms",
        "compact",
        "nodes",
        "matched"
    );
    for r in rows {
        let hand = r.handcoded_ns_per_frame.map_or("-".to_string(), |h| {
            format!("{h:.1} ({:.1}x)", r.merged_ns_per_frame / h)
        });
        println!(
            "{:<w$} {:>6} {:>14.1} {:>12.1} {:>12} {:>8.1}x {:>13.0} {:>10.2} {:>11} {:>7} {:>8.1}%",
            r.family,
            r.n,
            r.independent_ns_per_frame,
            r.merged_ns_per_frame,
            hand,
            r.speedup,
            r.merged_frames_per_sec,
            r.build_ms,
            human_bytes(r.bytes),
            r.nodes,
            100.0 * r.frames_matched as f64 / r.frames as f64
        );
    }
    println!();
    let mut families: Vec<&str> = rows.iter().map(|r| r.family.as_str()).collect();
    families.dedup();
    for f in families {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.family == f).collect();
        println!("{f}: {}", verdict(&rs));
    }
}

pub fn write_json(
    path: &Path,
    rows: &[Row],
    command: &[String],
    source: &str,
) -> std::io::Result<()> {
    let recs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).expect("row serializes");
            v["command"] = serde_json::json!(command);
            v["traffic"] = serde_json::json!(source);
            v
        })
        .collect();
    let text = serde_json::to_string_pretty(&recs).expect("records serialize");
    std::fs::write(path, text + "\n")
}
