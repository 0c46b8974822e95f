//! `cramulator plot`: figures from a run folder (`layers.csv`, `report.json`) or a merged
//! sweep folder (`results.csv`), drawn with plotters as SVG (default) or PNG, each written
//! beside the CSV of exactly the numbers it shows.
//!
//! Kinds: `layers` (per-layer energy, CRAM against every baseline, log scale), `breakdown`
//! (stacked energy split per machine), `line` (a sweep metric against one axis, one series
//! per value of the other axes), `pareto` (energy against latency, marker area ∝ chip area,
//! the non-dominated front highlighted) and `heatmap` (a metric over two axes). Text uses the
//! vendored DejaVu Sans (`assets/fonts/`), so PNGs need no system fonts.

mod draw;
mod sweep;

pub(crate) use draw::*;
pub(crate) use sweep::*;

use std::path::Path;

use plotters::prelude::*;

use crate::error::Error;
use crate::model::limits::MemoryLimit;
use crate::records::{LayerRow, RunReport};

/// What a sweep figure shows: the merged sweep folder, the axes and the metric.
#[derive(Debug, Clone)]
pub struct SweepPlot {
    /// The merged sweep folder.
    pub input: std::path::PathBuf,
    /// Sweep axis on x (line, heatmap); the first axis when `None`.
    pub x: Option<String>,
    /// Sweep axis on y (heatmap); the second axis when `None`.
    pub y: Option<String>,
    /// Metric column of `results.csv` (line, heatmap).
    pub metric: String,
    /// The most memory the sweep's tables may take once read.
    pub memory: MemoryLimit,
}

pub(crate) const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub(crate) const SIZE: (u32, u32) = (1200, 760);
pub(crate) const FAMILY: &str = "sans-serif";

/// Series colours (Okabe–Ito, readable by colour-blind readers), then a cycle.
pub(crate) const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

pub(crate) fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

// ----- figure descriptions ---------------------------------------------------------------

/// What to draw, independent of the backend.
pub(crate) struct Figure {
    /// Title.
    pub title: String,
    /// What is drawn.
    pub body: Body,
    /// The CSV the figure is drawn from.
    pub csv: Vec<u8>,
}

pub(crate) enum Body {
    /// Series on x–y axes.
    Xy(Xy),
    /// Stacked bars (fractions of a total, in %).
    Stacked {
        bars: Vec<(String, Vec<f64>, f64)>,
        parts: Vec<String>,
        total_unit: String,
    },
    /// Bars in groups: one bar per series in each group (a category of the x axis).
    Bars(Bars),
    /// Several bodies, one under the other.
    Panels(Vec<Body>),
    /// Cells over two categorical axes.
    Heat {
        x_desc: String,
        y_desc: String,
        x_labels: Vec<String>,
        y_labels: Vec<String>,
        /// (x, y, value) where known.
        cells: Vec<(usize, usize, Option<f64>)>,
        metric: String,
    },
}

pub(crate) struct Xy {
    x_desc: String,
    y_desc: String,
    log_x: bool,
    log_y: bool,
    /// Tick labels for an x of category indices.
    x_labels: Option<Vec<String>>,
    series: Vec<Series>,
}

/// Grouped bars: `series` values per group, on a linear or log y axis.
pub(crate) struct Bars {
    pub x_desc: String,
    pub y_desc: String,
    pub log_y: bool,
    pub groups: Vec<String>,
    /// (label, one value per group); a zero on a log axis is marked at the floor.
    pub series: Vec<(String, Vec<f64>)>,
}

pub(crate) struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    /// A text beside each point (none when absent).
    labels: Option<Vec<String>>,
    /// Marker radius per point (px); 3 px each when absent.
    radii: Option<Vec<f64>>,
    /// Join the points with a line.
    line: bool,
    color: RGBColor,
    filled: bool,
}

pub(crate) fn csv_bytes(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| Error::usage(format!("plot data: {e}"));
    w.write_record(header).map_err(e)?;
    for r in rows {
        w.write_record(r).map_err(e)?;
    }
    w.into_inner()
        .map_err(|e| Error::usage(format!("plot data: {e}")))
}

pub(crate) fn read_file(path: &Path, what: &str, memory: MemoryLimit) -> Result<String, Error> {
    // The table is held whole, parsed into strings: about four times the file.
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    crate::model::limits::MemoryEstimate {
        records_bytes: bytes.saturating_mul(4),
        advice: "plot on a machine with more memory, or give a larger --max-memory",
        ..Default::default()
    }
    .check(&format!("plot {what} of '{}'", path.display()), memory)?;
    std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "'{}': {e} (plot {what} reads a {})",
            path.display(),
            if what == "layers" || what == "breakdown" {
                "run folder written by `cramulator run`"
            } else {
                "sweep folder merged by `cramulator sweep merge`"
            }
        ))
    })
}

/// Unit of a column or key, from its suffix.
pub(crate) fn unit(name: &str) -> &'static str {
    const UNITS: [(&str, &str); 16] = [
        ("_tops_per_mm2", "TOPS/mm²"),
        ("_j_s", "J·s"),
        ("_pj", "pJ"),
        ("_mm2", "mm²"),
        ("_per_s", "1/s"),
        ("_tops_per_w", "TOPS/W"),
        ("_latency_s", "s"),
        ("_nm", "nm"),
        ("_ns", "ns"),
        ("_ghz", "GHz"),
        ("_g_per_inference", "g CO2e"),
        ("_ratio", "×"),
        ("_ratio_array", "×"),
        ("_ratio_macro", "×"),
        ("_ratio_chip", "×"),
        ("_speedup", "×"),
    ];
    UNITS
        .iter()
        .find(|(s, _)| name.ends_with(s))
        .map_or("", |u| u.1)
}

/// A readable axis description: the metric's meaning or the key, with its unit.
pub(crate) fn describe(name: &str) -> String {
    const KNOWN: [(&str, &str); 18] = [
        ("cram_energy_pj", "CRAM energy per inference"),
        (
            "cram_energy_array_pj",
            "CRAM energy per inference inside the array",
        ),
        (
            "cram_energy_macro_pj",
            "CRAM energy per inference inside the macros",
        ),
        (
            "cram_energy_chip_pj",
            "CRAM energy per inference inside the chip",
        ),
        ("cram_compute_pj", "CRAM compute energy per inference"),
        (
            "cram_data_movement_pj",
            "CRAM data-movement energy per inference",
        ),
        ("cram_static_pj", "CRAM leakage energy per inference"),
        ("cram_latency_s", "CRAM latency per inference"),
        ("cram_throughput_per_s", "CRAM inferences per second"),
        ("cram_tops_per_w", "CRAM efficiency"),
        ("cram_edp_j_s", "CRAM energy-delay product"),
        ("cram_area_mm2", "CRAM chip area"),
        ("cram_tops_per_mm2", "CRAM throughput per area"),
        ("cram_utilization", "CRAM lane utilization (fraction)"),
        ("cram_co2e_g_per_inference", "CO2e per inference on CRAM"),
        ("accuracy", "accuracy on the held-out images (fraction)"),
        (
            "cram_expected_flips_per_inference",
            "CRAM expected gate-output flips per inference",
        ),
        (
            "cram_p_flip_free_inference",
            "share of CRAM inferences free of gate errors",
        ),
    ];
    let u = unit(name);
    let n = match KNOWN.iter().find(|k| k.0 == name) {
        Some(k) => k.1.to_owned(),
        None if name.contains('.') => name.to_owned(),
        None => name.replace('_', " "),
    };
    if u.is_empty() {
        n
    } else {
        format!("{n} ({u})")
    }
}

// ----- run-folder figures ----------------------------------------------------------------

pub(crate) fn layer_rows(dir: &Path, memory: MemoryLimit) -> Result<Vec<LayerRow>, Error> {
    let path = dir.join("layers.csv");
    let text = read_file(&path, "layers", memory)?;
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<LayerRow>, _>>()
        .map_err(|e| Error::usage(format!("'{}': {e}", path.display())))
}

pub(crate) fn report(dir: &Path, what: &str, memory: MemoryLimit) -> Result<RunReport, Error> {
    let path = dir.join("report.json");
    let text = read_file(&path, what, memory)?;
    serde_json::from_str(&text).map_err(|e| Error::usage(format!("'{}': {e}", path.display())))
}

/// Networks with at most this many CRAM layers show each layer's name on the axis; larger
/// ones show markers by index (no line: a line across cheap and costly layers zig-zags)
/// above the energy summed by op kind.
pub(crate) const NAMED_LAYERS: usize = 40;

pub(crate) fn layers(dir: &Path, memory: MemoryLimit) -> Result<Figure, Error> {
    let rows = layer_rows(dir, memory)?;
    let rep = report(dir, "layers", memory)?;
    layers_of(&rows, &rep)
}

/// [`layers`] of a run folder's records already read.
pub(crate) fn layers_of(rows: &[LayerRow], rep: &RunReport) -> Result<Figure, Error> {
    let mut machines: Vec<String> = Vec::new();
    for r in rows {
        if !machines.contains(&r.machine) {
            machines.push(r.machine.clone());
        }
    }
    // The network's layers in order (CRAM's rows; any machine's when CRAM has none).
    let mut order: Vec<(usize, String, String)> = Vec::new();
    for r in rows {
        if !order.iter().any(|o| o.0 == r.index) {
            order.push((r.index, r.layer.clone(), r.op.clone()));
        }
    }
    order.sort_by_key(|o| o.0);
    let named = order.len() <= NAMED_LAYERS;
    let at = |index: usize| -> f64 {
        if named {
            order.iter().position(|o| o.0 == index).unwrap_or(0) as f64
        } else {
            index as f64
        }
    };
    // Zeros stay: the log axis marks them on its floor.
    let mut series: Vec<Series> = machines
        .iter()
        .enumerate()
        .map(|(i, m)| Series {
            label: m.clone(),
            points: rows
                .iter()
                .filter(|r| &r.machine == m)
                .map(|r| (at(r.index), r.energy_pj))
                .collect(),
            labels: None,
            radii: None,
            line: named,
            color: color(i),
            filled: i == 0,
        })
        .collect();
    // CRAM's energy inside its array and inside its chip (docs/model.md §4.1), beside the
    // system's (its own series).
    type Inside = fn(&LayerRow) -> Option<f64>;
    let inner: [(&str, Inside); 2] = [
        ("cram inside its array", |r| r.array_pj),
        ("cram inside its chip", |r| r.chip_pj),
    ];
    for (k, (label, inside)) in inner.into_iter().enumerate() {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| inside(r).map(|e| (at(r.index), e)))
            .collect();
        if points.iter().any(|p| p.1 > 0.0) {
            series.push(Series {
                label: label.into(),
                points,
                labels: None,
                radii: None,
                line: named,
                color: color(machines.len() + k),
                filled: false,
            });
        }
    }
    // The CSV: every layer's row, then (when drawn) each machine's sum per op kind.
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let mut data: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.machine.clone(),
                r.index.to_string(),
                r.layer.clone(),
                r.op.clone(),
                format!("{}", r.energy_pj),
                opt(r.array_pj),
                opt(r.chip_pj),
            ]
        })
        .collect();
    let header = [
        "machine",
        "index",
        "layer",
        "op",
        "energy_pj",
        "array_pj",
        "chip_pj",
    ];
    let per_layer = Body::Xy(Xy {
        x_desc: if named {
            "layer".into()
        } else {
            "layer (index in the network)".into()
        },
        y_desc: "energy per inference (pJ, log; ▲ on the floor: 0)".into(),
        log_x: false,
        log_y: true,
        x_labels: named.then(|| order.iter().map(|o| o.1.clone()).collect()),
        series,
    });
    let title = format!(
        "{}: energy per layer per inference, CRAM ({} / {}) vs baselines",
        rep.workload.model, rep.cram.device, rep.cram.array
    );
    if named {
        return Ok(Figure {
            title,
            body: per_layer,
            csv: csv_bytes(&header, &data)?,
        });
    }
    // Energy by op kind, each machine's layers of that kind summed.
    let mut ops: Vec<String> = Vec::new();
    for o in &order {
        if !ops.contains(&o.2) {
            ops.push(o.2.clone());
        }
    }
    let by_op: Vec<(String, Vec<f64>)> = machines
        .iter()
        .map(|m| {
            let sums = ops
                .iter()
                .map(|op| {
                    rows.iter()
                        .filter(|r| &r.machine == m && &r.op == op)
                        .map(|r| r.energy_pj)
                        .sum()
                })
                .collect();
            (m.clone(), sums)
        })
        .collect();
    for (m, sums) in &by_op {
        for (op, e) in ops.iter().zip(sums) {
            data.push(vec![
                m.clone(),
                String::new(),
                format!("all {op} layers"),
                op.clone(),
                format!("{e}"),
                String::new(),
                String::new(),
            ]);
        }
    }
    Ok(Figure {
        title,
        body: Body::Panels(vec![
            per_layer,
            Body::Bars(Bars {
                x_desc: "op kind (its layers summed)".into(),
                y_desc: "energy per inference (pJ, log)".into(),
                log_y: true,
                groups: ops,
                series: by_op,
            }),
        ]),
        csv: csv_bytes(&header, &data)?,
    })
}

pub(crate) fn breakdown(dir: &Path, memory: MemoryLimit) -> Result<Figure, Error> {
    breakdown_of(&report(dir, "breakdown", memory)?)
}

/// [`breakdown`] of a run's report already read.
pub(crate) fn breakdown_of(rep: &RunReport) -> Result<Figure, Error> {
    let mut bars = vec![(
        "cram".to_owned(),
        vec![
            rep.cram.metrics.compute_pj,
            rep.cram.metrics.data_movement_pj,
            rep.cram.metrics.static_pj,
        ],
        rep.cram.metrics.energy_pj,
    )];
    for b in &rep.baselines {
        bars.push((
            b.name.clone(),
            vec![
                b.metrics.compute_pj,
                b.metrics.data_movement_pj,
                b.metrics.static_pj,
            ],
            b.metrics.energy_pj,
        ));
    }
    let parts = ["compute", "data movement", "static"];
    // CRAM by component, largest first (the ones that spend nothing left out).
    let total = rep.cram.energy.total_pj();
    let mut components: Vec<(&str, f64)> = rep
        .cram
        .energy
        .components()
        .into_iter()
        .filter(|c| c.1 > 0.0)
        .collect();
    components.sort_by(|a, b| b.1.total_cmp(&a.1));
    let share = |v: f64| if total > 0.0 { 100.0 * v / total } else { 0.0 };
    let mut data: Vec<Vec<String>> = Vec::new();
    for (m, p, t) in &bars {
        for (part, v) in parts.iter().zip(p) {
            data.push(vec![
                m.clone(),
                "class".into(),
                (*part).into(),
                format!("{v}"),
                format!("{t}"),
            ]);
        }
    }
    for (name, v) in &components {
        data.push(vec![
            "cram".into(),
            "component".into(),
            name.replace('_', " "),
            format!("{v}"),
            format!("{total}"),
        ]);
    }
    let csv = csv_bytes(
        &["machine", "split", "part", "energy_pj", "total_pj"],
        &data,
    )?;
    Ok(Figure {
        title: format!(
            "{}: where the energy of one inference goes (share of each machine's total; \
             below, CRAM by component)",
            rep.workload.model
        ),
        body: Body::Panels(vec![
            Body::Stacked {
                bars,
                parts: parts.iter().map(|p| (*p).to_owned()).collect(),
                total_unit: "per inference".into(),
            },
            Body::Bars(Bars {
                x_desc: "CRAM component".into(),
                y_desc: "share of CRAM's energy per inference (%)".into(),
                log_y: false,
                groups: components.iter().map(|c| c.0.replace('_', " ")).collect(),
                series: vec![(
                    "cram".into(),
                    components.iter().map(|c| share(c.1)).collect(),
                )],
            }),
        ]),
        csv,
    })
}
/// max / min of positive values.
pub(crate) fn spread(v: &[f64]) -> f64 {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo > 0.0 { hi / lo } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_units_read_well() {
        assert_eq!(describe("cram_energy_pj"), "CRAM energy per inference (pJ)");
        assert_eq!(
            describe("cram.device_params.diameter_nm"),
            "cram.device_params.diameter_nm (nm)"
        );
        assert_eq!(unit_of_desc("CRAM energy per inference (pJ)"), "pJ");
        assert_eq!(unit("cpu-ddr4_energy_ratio"), "×");
    }

    /// A line joins consecutive points only: it breaks at a zero on a log axis (marked on
    /// the floor instead) and, on a category axis, across a category with no point.
    #[test]
    fn lines_break_at_zeros_and_gaps() {
        let pts = [
            (0.0, 1.0),
            (1.0, 2.0),
            (2.0, 0.0),
            (3.0, 4.0),
            (4.0, 5.0),
            (6.0, 6.0),
        ];
        let runs = line_runs(&pts, true, true);
        assert_eq!(
            runs,
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(3.0, 4.0), (4.0, 5.0)]]
        );
        // On a linear axis a zero is a point like any other; on a continuous x, a gap is not
        // a break.
        assert_eq!(line_runs(&pts, false, false), vec![pts.to_vec()]);
        assert_eq!(line_runs(&pts, false, true), vec![pts[..5].to_vec()]);
    }

    #[test]
    fn viridis_runs_dark_to_bright() {
        let (a, b) = (viridis(0.0), viridis(1.0));
        assert_eq!((a.0, a.1, a.2), (68, 1, 84));
        assert_eq!((b.0, b.1, b.2), (253, 231, 37));
    }
}
