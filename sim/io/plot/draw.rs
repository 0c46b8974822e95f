//! Drawing a figure with plotters: x–y series, stacked bars and heat maps, on any backend.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::{Bars, Body, FAMILY, Figure, Xy, color, spread};

pub(crate) type DrawResult = Result<(), String>;

pub(crate) fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let title = root.titled(&fig.title, (FAMILY, 24)).map_err(e)?;
    draw_body(&title, &fig.body)?;
    root.present().map_err(e)
}

/// Draws `body` on `area` (panels one under the other).
fn draw_body<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, body: &Body) -> DrawResult {
    match body {
        Body::Xy(xy) => draw_xy(area, xy),
        Body::Bars(b) => draw_bars(area, b),
        Body::Panels(panels) => {
            for (part, body) in area.split_evenly((panels.len(), 1)).iter().zip(panels) {
                draw_body(part, body)?;
            }
            Ok(())
        }
        Body::Stacked {
            bars,
            parts,
            total_unit,
        } => draw_stacked(area, bars, parts, total_unit),
        Body::Heat {
            x_desc,
            y_desc,
            x_labels,
            y_labels,
            cells,
            metric,
        } => draw_heat(area, x_desc, y_desc, x_labels, y_labels, cells, metric),
    }
}

/// A category label running down from its tick (rotated a quarter turn, anchored at its
/// start, so it never reaches up into the plot).
fn upright_label(size: u32) -> TextStyle<'static> {
    (FAMILY, size)
        .into_font()
        .transform(FontTransform::Rotate90)
        .into_text_style(&(0, 0))
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ))
}

/// The runs of `points` a line joins: consecutive points, broken at a zero on a log axis
/// (marked at the floor instead) and, on a category axis, across a category with no point.
pub(crate) fn line_runs(
    points: &[(f64, f64)],
    log_y: bool,
    categories: bool,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for &p in points {
        let drawn = !log_y || p.1 > 0.0;
        let joined = cur
            .last()
            .is_some_and(|q| !categories || p.0 - q.0 <= 1.0 + 1e-9);
        if !drawn || !joined {
            if cur.len() > 1 {
                runs.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
        if drawn {
            cur.push(p);
        }
    }
    if cur.len() > 1 {
        runs.push(cur);
    }
    runs
}

/// The label of category axis position `v`: a category at each integer, nothing between.
pub(crate) fn category(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
        labels[i as usize].clone()
    } else {
        String::new()
    }
}

/// The range of values, padded (in log space for a log axis).
pub(crate) fn padded(v: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in v.filter(|x| x.is_finite() && (!log || *x > 0.0)) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        // Whole decades, so every axis shows labelled powers of ten.
        let (a, b) = (lo.log10(), hi.log10());
        (
            10f64.powf((a - 0.05).floor()),
            10f64.powf((b + 0.05).ceil()),
        )
    } else {
        let pad = ((hi - lo) * 0.08).max(if hi == lo {
            hi.abs().max(1.0) * 0.1
        } else {
            0.0
        });
        (lo - pad, hi + pad)
    }
}

pub(crate) fn draw_xy<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, xy: &Xy) -> DrawResult {
    let (x0, x1) = match &xy.x_labels {
        Some(l) => (-0.5, l.len() as f64 - 0.5),
        None => padded(
            xy.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
            xy.log_x,
        ),
    };
    let (y0, y1) = padded(
        xy.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        xy.log_y,
    );
    // Many categories: their names run up the axis.
    let upright = xy.x_labels.as_ref().is_some_and(|l| l.len() > 8);
    // Four coordinate combinations share one body.
    macro_rules! body {
        ($xr:expr, $yr:expr) => {{
            let mut chart = ChartBuilder::on(area)
                .margin(20)
                .x_label_area_size(if upright { 130 } else { 60 })
                .y_label_area_size(100)
                .build_cartesian_2d($xr, $yr)
                .map_err(|e| e.to_string())?;
            let labels = xy.x_labels.clone();
            let xf = move |v: &f64| match &labels {
                Some(l) => category(l, *v),
                None => crate::units::compact(*v),
            };
            let n_x = xy.x_labels.as_ref().map_or(10, |l| 4 * l.len());
            chart
                .configure_mesh()
                .x_desc(xy.x_desc.as_str())
                .y_desc(xy.y_desc.as_str())
                .x_labels(n_x)
                .x_label_formatter(&xf)
                .x_label_style(if upright {
                    upright_label(12)
                } else {
                    (FAMILY, 14).into_text_style(&(0, 0))
                })
                .y_label_formatter(&|v: &f64| crate::units::compact(*v))
                .axis_desc_style((FAMILY, 18))
                .y_label_style((FAMILY, 14))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(|e| e.to_string())?;
            let categories = xy.x_labels.is_some();
            for s in &xy.series {
                let c = s.color;
                if s.line {
                    for run in line_runs(&s.points, xy.log_y, categories) {
                        chart
                            .draw_series(LineSeries::new(run, c.stroke_width(2)))
                            .map_err(|e| e.to_string())?;
                    }
                }
                // A zero on a log axis: a triangle on the floor.
                let zeros: Vec<f64> = s
                    .points
                    .iter()
                    .filter(|p| xy.log_y && p.1 <= 0.0)
                    .map(|p| p.0)
                    .collect();
                chart
                    .draw_series(
                        zeros
                            .iter()
                            .map(|&x| TriangleMarker::new((x, y0), 5, c.stroke_width(1))),
                    )
                    .map_err(|e| e.to_string())?;
                if let Some(labels) = &s.labels {
                    chart
                        .draw_series(s.points.iter().zip(labels).map(|(&p, l)| {
                            EmptyElement::at(p)
                                + Text::new(l.clone(), (7, -16), (FAMILY, 12).into_font())
                        }))
                        .map_err(|e| e.to_string())?;
                }
                let radii = s.radii.clone().unwrap_or_else(|| vec![3.0; s.points.len()]);
                let filled = s.filled;
                let log_y = xy.log_y;
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .zip(radii)
                            .filter(move |(p, _)| !log_y || p.1 > 0.0)
                            .map(move |(&p, r)| {
                                let style = if filled {
                                    c.filled()
                                } else {
                                    c.stroke_width(2)
                                };
                                Circle::new(p, r.round() as i32, style)
                            }),
                    )
                    .map_err(|e| e.to_string())?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(-10, 0), (10, 0)], c.stroke_width(2))
                            + Circle::new((0, 0), 4, c.filled())
                    });
            }
            legend(&mut chart, legend_corner(xy, (x0, x1), (y0, y1)))?;
        }};
    }
    match (xy.log_x, xy.log_y) {
        (false, false) => body!(x0..x1, y0..y1),
        (false, true) => body!(x0..x1, (y0..y1).log_scale()),
        (true, false) => body!((x0..x1).log_scale(), y0..y1),
        (true, true) => body!((x0..x1).log_scale(), (y0..y1).log_scale()),
    }
    Ok(())
}

/// The corner of the plot with the fewest points near it, for the legend.
pub(crate) fn legend_corner(
    xy: &Xy,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    let frac = |v: f64, lo: f64, hi: f64, log: bool| {
        if log {
            (v.max(f64::MIN_POSITIVE).log10() - lo.log10()) / (hi.log10() - lo.log10())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0, 1.0),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0),
        (SeriesLabelPosition::LowerRight, 1.0, 0.0),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let crowd = |cx: f64, cy: f64| {
        xy.series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|p| {
                let fx = frac(p.0, x0, x1, xy.log_x);
                let fy = frac(p.1, y0, y1, xy.log_y);
                (fx - cx).abs() < 0.4 && (fy - cy).abs() < 0.35
            })
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|c| crowd(c.1, c.2))
        .map_or(SeriesLabelPosition::UpperRight, |c| c.0)
}

pub(crate) fn draw_stacked<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bars: &[(String, Vec<f64>, f64)],
    parts: &[String],
    total_unit: &str,
) -> DrawResult {
    let n = bars.len();
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5..n as f64 + 0.5, 0.0..112.0)
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(4 * (n + 1))
        .x_label_formatter(&|v: &f64| category(&names, *v))
        .y_labels(11)
        .y_label_formatter(&|v: &f64| {
            if *v <= 100.0 {
                format!("{v:.0} %")
            } else {
                String::new()
            }
        })
        .x_desc("machine")
        .y_desc(format!("share of the energy {total_unit} (%)"))
        .axis_desc_style((FAMILY, 18))
        .label_style((FAMILY, 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, part) in parts.iter().enumerate() {
        let c = color(k);
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, p, t))| {
                let below: f64 = p[..k].iter().sum::<f64>() / t.max(f64::MIN_POSITIVE) * 100.0;
                let h = p[k] / t.max(f64::MIN_POSITIVE) * 100.0;
                Rectangle::new(
                    [(i as f64 - 0.3, below), (i as f64 + 0.3, below + h)],
                    c.filled(),
                )
            }))
            .map_err(|e| e.to_string())?
            .label(part.as_str())
            .legend(move |(x, y)| Rectangle::new([(x - 8, y - 6), (x + 8, y + 6)], c.filled()));
    }
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, _, t))| {
            Text::new(
                crate::units::si(t * 1e-12, "J"),
                (i as f64 - 0.1, 106.0),
                (FAMILY, 16).into_font(),
            )
        }))
        .map_err(|e| e.to_string())?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// The series' legend at `at`, boxed on a translucent white.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(at)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

pub(crate) fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars) -> DrawResult {
    let n = b.groups.len();
    let k = b.series.len().max(1);
    let (y0, y1) = padded(b.series.iter().flat_map(|s| s.1.iter().copied()), b.log_y);
    let y0 = if b.log_y { y0 } else { y0.min(0.0) };
    macro_rules! body {
        ($yr:expr) => {{
            let mut chart = ChartBuilder::on(area)
                .margin(20)
                .x_label_area_size(if n > 12 { 130 } else { 60 })
                .y_label_area_size(100)
                .build_cartesian_2d(-0.5..n as f64 - 0.5, $yr)
                .map_err(|e| e.to_string())?;
            let groups = b.groups.clone();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(4 * n.max(1))
                .x_label_formatter(&move |v: &f64| category(&groups, *v))
                .x_label_style(if n > 12 {
                    upright_label(13)
                } else {
                    (FAMILY, 14).into_text_style(&(0, 0))
                })
                .y_label_formatter(&|v: &f64| crate::units::compact(*v))
                .x_desc(b.x_desc.as_str())
                .y_desc(b.y_desc.as_str())
                .axis_desc_style((FAMILY, 18))
                .y_label_style((FAMILY, 14))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(|e| e.to_string())?;
            let w = 0.8 / k as f64;
            for (j, (label, values)) in b.series.iter().enumerate() {
                let c = color(j);
                let x = move |i: usize| i as f64 - 0.4 + j as f64 * w;
                chart
                    .draw_series(
                        values
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| !b.log_y || **v > 0.0)
                            .map(move |(i, &v)| {
                                Rectangle::new([(x(i), y0), (x(i) + w * 0.9, v)], c.filled())
                            }),
                    )
                    .map_err(|e| e.to_string())?
                    .label(label.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x - 8, y - 6), (x + 8, y + 6)], c.filled())
                    });
                // A zero on a log axis: a triangle on the floor.
                chart
                    .draw_series(
                        values
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| b.log_y && **v <= 0.0)
                            .map(move |(i, _)| {
                                TriangleMarker::new((x(i) + w * 0.45, y0), 5, c.stroke_width(1))
                            }),
                    )
                    .map_err(|e| e.to_string())?;
            }
            if b.series.len() > 1 {
                legend(&mut chart, SeriesLabelPosition::UpperRight)?;
            }
        }};
    }
    if b.log_y {
        body!((y0..y1).log_scale());
    } else {
        body!(y0..y1);
    }
    Ok(())
}

/// The unit in parentheses at the end of a description, or the description.
pub(crate) fn unit_of_desc(desc: &str) -> String {
    match (desc.rfind('('), desc.ends_with(')')) {
        (Some(i), true) => desc[i + 1..desc.len() - 1].to_owned(),
        _ => desc.to_owned(),
    }
}

/// Viridis, by five anchors.
pub(crate) fn viridis(t: f64) -> RGBColor {
    const A: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(
        mix(A[i].0, A[i + 1].0),
        mix(A[i].1, A[i + 1].1),
        mix(A[i].2, A[i + 1].2),
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_heat<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x_desc: &str,
    y_desc: &str,
    xl: &[String],
    yl: &[String],
    cells: &[(usize, usize, Option<f64>)],
    metric: &str,
) -> DrawResult {
    let (plot, legend) = area.split_horizontally(area.dim_in_pixel().0 - 170);
    let vals: Vec<f64> = cells.iter().filter_map(|c| c.2).collect();
    let log = vals.iter().all(|&v| v > 0.0) && spread(&vals) >= 10.0;
    let tf = |v: f64| if log { v.log10() } else { v };
    let lo = vals.iter().map(|&v| tf(v)).fold(f64::INFINITY, f64::min);
    let hi = vals
        .iter()
        .map(|&v| tf(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let norm = |v: f64| {
        if hi > lo {
            (tf(v) - lo) / (hi - lo)
        } else {
            0.5
        }
    };
    let mut chart = ChartBuilder::on(&plot)
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(110)
        .build_cartesian_2d(-0.5..xl.len() as f64 - 0.5, -0.5..yl.len() as f64 - 0.5)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(4 * xl.len())
        .y_labels(4 * yl.len())
        .x_label_formatter(&|v: &f64| category(xl, *v))
        .y_label_formatter(&|v: &f64| category(yl, *v))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FAMILY, 18))
        .label_style((FAMILY, 14))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(cells.iter().map(|&(x, y, v)| {
            let c = v.map_or(RGBColor(215, 215, 215), |v| viridis(norm(v)));
            Rectangle::new(
                [
                    (x as f64 - 0.5, y as f64 - 0.5),
                    (x as f64 + 0.5, y as f64 + 0.5),
                ],
                c.filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    let dense = xl.len() * yl.len() <= 144;
    if dense {
        chart
            .draw_series(cells.iter().map(|&(x, y, v)| {
                let (text, dark) = match v {
                    Some(v) => (crate::units::compact(v), norm(v) > 0.6),
                    None => ("failed".to_owned(), true),
                };
                let style = (FAMILY, 13)
                    .into_font()
                    .color(if dark { &BLACK } else { &WHITE })
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ));
                Text::new(text, (x as f64, y as f64), style)
            }))
            .map_err(|e| e.to_string())?;
    }
    // Colour bar: on a log scale its own coordinate is logarithmic, so its ticks fall on
    // round values (1, 2, 5 × a power of ten) rather than on round exponents.
    let steps = 64;
    let caption = format!("{}{}", unit_of_desc(metric), if log { ", log" } else { "" });
    let untf = |t: f64| if log { 10f64.powf(t) } else { t };
    macro_rules! colour_bar {
        ($yr:expr) => {{
            let mut bar = ChartBuilder::on(&legend)
                .margin_top(40)
                .margin_bottom(80)
                .margin_right(10)
                .y_label_area_size(70)
                .caption(caption.as_str(), (FAMILY, 14))
                .build_cartesian_2d(0.0..1.0, $yr)
                .map_err(|e| e.to_string())?;
            bar.configure_mesh()
                .disable_x_mesh()
                .disable_x_axis()
                .y_labels(6)
                .y_label_formatter(&|v: &f64| crate::units::compact(*v))
                .label_style((FAMILY, 12))
                .draw()
                .map_err(|e| e.to_string())?;
            bar.draw_series((0..steps).map(|k| {
                let a = lo + (hi - lo) * k as f64 / steps as f64;
                let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
                Rectangle::new(
                    [(0.0, untf(a)), (1.0, untf(b))],
                    viridis(k as f64 / (steps - 1) as f64).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        }};
    }
    let (y0, y1) = (untf(lo.min(hi)), untf(hi.max(lo + 1e-12)));
    if log {
        colour_bar!((y0..y1).log_scale());
    } else {
        colour_bar!(y0..y1);
    }
    Ok(())
}
