//! One SVG per experiment: log-log lines through the medians, with a
//! vertical bar from the fastest to the slowest run at every point.

use super::Spread;
use plotters::prelude::*;
use std::path::Path;

/// One line of a chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, Spread)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(200, 30, 30),
    RGBColor(30, 60, 200),
    RGBColor(20, 140, 40),
    RGBColor(170, 40, 170),
    RGBColor(0, 150, 160),
    RGBColor(0, 0, 0),
    RGBColor(210, 120, 0),
    RGBColor(120, 120, 120),
];

impl Chart<'_> {
    pub fn write_svg(&self, path: &Path) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let pts = || self.series.iter().flat_map(|s| s.points.iter());
        let (x_lo, x_hi) = pts().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(*x), b.max(*x))
        });
        let (y_lo, y_hi) = pts().fold((f64::MAX, f64::MIN), |(a, b), (_, s)| {
            (a.min(s.min), b.max(s.max))
        });
        if x_lo > x_hi {
            return Err(format!("{}: nothing to plot", path.display()));
        }
        let x_range = (x_lo.max(1e-3) / 1.5)..(x_hi.max(1e-3) * 1.5);
        let y_range = (y_lo.max(1e-3) / 2.0)..(y_hi.max(1e-3) * 2.0);
        let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .draw()
            .map_err(|x| e(&x))?;
        for (i, s) in self.series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            let line: Vec<(f64, f64)> = s.points.iter().map(|(x, p)| (*x, p.median)).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(line.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(s.points.iter().map(|(x, p)| {
                    ErrorBar::new_vertical(*x, p.min, p.median, p.max, c.stroke_width(1), 6)
                }))
                .map_err(|x| e(&x))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))
    }
}
