//! The scaling plot: log-log ns/frame against N, both engines, one colour
//! per family (solid: merged, dashed-looking thin: independent).

use crate::measure::Row;
use plotters::prelude::*;
use std::path::Path;

pub fn write_svg(path: &Path, rows: &[Row]) -> Result<(), String> {
    let err = |e: String| e;
    let mut families: Vec<&str> = rows.iter().map(|r| r.family.as_str()).collect();
    families.dedup();
    let max_n = rows.iter().map(|r| r.n).max().unwrap_or(1).max(10) as f64;
    let all_ns = rows
        .iter()
        .flat_map(|r| [r.independent_ns_per_frame, r.merged_ns_per_frame]);
    let (lo, hi) = all_ns.fold((f64::MAX, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "ns per frame vs tenants (solid: merged, thin: independent)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1f64..max_n * 1.5).log_scale(),
            ((lo / 2.0).max(0.1)..hi * 2.0).log_scale(),
        )
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("tenants (N)")
        .y_desc("ns per frame")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let palette = [
        RED,
        BLUE,
        GREEN,
        MAGENTA,
        CYAN,
        BLACK,
        RGBColor(200, 120, 0),
    ];
    for (i, fam) in families.iter().enumerate() {
        let c = palette[i % palette.len()];
        let pts: Vec<&Row> = rows.iter().filter(|r| r.family == *fam).collect();
        let merged: Vec<(f64, f64)> = pts
            .iter()
            .map(|r| (r.n as f64, r.merged_ns_per_frame))
            .collect();
        let indep: Vec<(f64, f64)> = pts
            .iter()
            .map(|r| (r.n as f64, r.independent_ns_per_frame))
            .collect();
        chart
            .draw_series(LineSeries::new(merged.clone(), c.stroke_width(3)))
            .map_err(|e| err(e.to_string()))?
            .label(format!("{fam} merged"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        chart
            .draw_series(merged.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(indep.clone(), c.stroke_width(1)))
            .map_err(|e| err(e.to_string()))?
            .label(format!("{fam} independent"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(1)));
        chart
            .draw_series(indep.iter().map(|p| TriangleMarker::new(*p, 4, c)))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}
