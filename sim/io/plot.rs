//! `cramulator plot`: figures from a run folder (`layers.csv`, `report.json`) or a merged
//! sweep folder (`results.csv`), drawn with plotters as SVG (default) or PNG, each written
//! beside the CSV of exactly the numbers it shows.
//!
//! Kinds: `layers` (per-layer energy, CRAM against every baseline, log scale), `breakdown`
//! (stacked energy split per machine), `line` (a sweep metric against one axis, one series
//! per value of the other axes), `pareto` (energy against latency, marker area ∝ chip area,
//! the non-dominated front highlighted) and `heatmap` (a metric over two axes). Text uses the
//! vendored DejaVu Sans (`assets/fonts/`), so PNGs need no system fonts.

use crate::records::*;
use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
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

pub(crate) const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
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

pub(crate) struct Series {
    label: String,
    points: Vec<(f64, f64)>,
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
    const UNITS: [(&str, &str); 12] = [
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
        ("_speedup", "×"),
    ];
    UNITS
        .iter()
        .find(|(s, _)| name.ends_with(s))
        .map_or("", |u| u.1)
}

/// A readable axis description: the metric's meaning or the key, with its unit.
pub(crate) fn describe(name: &str) -> String {
    const KNOWN: [(&str, &str); 11] = [
        ("cram_energy_pj", "CRAM energy per inference"),
        ("cram_compute_pj", "CRAM compute energy per inference"),
        (
            "cram_data_movement_pj",
            "CRAM data-movement energy per inference",
        ),
        ("cram_latency_s", "CRAM latency per inference"),
        ("cram_throughput_per_s", "CRAM inferences per second"),
        ("cram_tops_per_w", "CRAM efficiency"),
        ("cram_edp_j_s", "CRAM energy-delay product"),
        ("cram_area_mm2", "CRAM chip area"),
        ("cram_utilization", "CRAM lane utilization (fraction)"),
        ("cram_co2e_g_per_inference", "CO2e per inference on CRAM"),
        ("accuracy", "accuracy on the held-out images (fraction)"),
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

pub(crate) fn layers(dir: &Path, memory: MemoryLimit) -> Result<Figure, Error> {
    let rows = layer_rows(dir, memory)?;
    let rep = report(dir, "layers", memory)?;
    let mut machines: Vec<String> = Vec::new();
    for r in &rows {
        if !machines.contains(&r.machine) {
            machines.push(r.machine.clone());
        }
    }
    let series = machines
        .iter()
        .enumerate()
        .map(|(i, m)| Series {
            label: m.clone(),
            points: rows
                .iter()
                .filter(|r| &r.machine == m && r.energy_pj > 0.0)
                .map(|r| (r.index as f64, r.energy_pj))
                .collect(),
            radii: None,
            line: true,
            color: color(i),
            filled: i == 0,
        })
        .collect();
    let csv = csv_bytes(
        &["machine", "index", "layer", "op", "energy_pj"],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.machine.clone(),
                    r.index.to_string(),
                    r.layer.clone(),
                    r.op.clone(),
                    format!("{}", r.energy_pj),
                ]
            })
            .collect::<Vec<_>>(),
    )?;
    Ok(Figure {
        title: format!(
            "{}: energy per layer per inference, CRAM ({} / {}) vs baselines",
            rep.workload.model, rep.cram.device, rep.cram.array
        ),
        body: Body::Xy(Xy {
            x_desc: "layer (index in the network)".into(),
            y_desc: "energy per inference (pJ, log scale)".into(),
            log_x: false,
            log_y: true,
            x_labels: None,
            series,
        }),
        csv,
    })
}

pub(crate) fn breakdown(dir: &Path, memory: MemoryLimit) -> Result<Figure, Error> {
    let rep = report(dir, "breakdown", memory)?;
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
    let csv = csv_bytes(
        &[
            "machine",
            "compute_pj",
            "data_movement_pj",
            "static_pj",
            "energy_pj",
        ],
        &bars
            .iter()
            .map(|(m, p, t)| {
                let mut r = vec![m.clone()];
                r.extend(p.iter().map(|v| format!("{v}")));
                r.push(format!("{t}"));
                r
            })
            .collect::<Vec<_>>(),
    )?;
    Ok(Figure {
        title: format!(
            "{}: where the energy of one inference goes (share of each machine's total)",
            rep.workload.model
        ),
        body: Body::Stacked {
            bars,
            parts: vec!["compute".into(), "data movement".into(), "static".into()],
            total_unit: "per inference".into(),
        },
        csv,
    })
}

// ----- sweep figures ---------------------------------------------------------------------

/// A merged sweep: its manifest and results.csv as columns of strings.
pub(crate) struct SweepTable {
    manifest: SweepManifest,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl SweepTable {
    fn read(dir: &Path, what: &str, memory: MemoryLimit) -> Result<SweepTable, Error> {
        let path = dir.join("results.csv");
        let text = read_file(&path, what, memory)?;
        let mpath = dir.join("manifest.json");
        let manifest: SweepManifest = serde_json::from_str(&read_file(&mpath, what, memory)?)
            .map_err(|e| {
                Error::usage(format!(
                    "'{}': {e} (not the manifest of a sweep plan)",
                    mpath.display()
                ))
            })?;
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r
            .headers()
            .map_err(|e| Error::usage(format!("'{}': {e}", path.display())))?
            .iter()
            .map(String::from)
            .collect();
        let rows = r
            .records()
            .map(|rec| rec.map(|r| r.iter().map(String::from).collect()))
            .collect::<Result<Vec<Vec<String>>, _>>()
            .map_err(|e| Error::usage(format!("'{}': {e}", path.display())))?;
        Ok(SweepTable {
            manifest,
            header,
            rows,
        })
    }

    fn col(&self, name: &str, flag: &str) -> Result<usize, Error> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            Error::usage(format!(
                "{flag} {name}: not a column of results.csv; columns: {}",
                self.header.join(", ")
            ))
        })
    }

    fn axis(&self, given: Option<&String>, nth: usize, flag: &str) -> Result<String, Error> {
        let keys: Vec<&str> = self.manifest.axes.iter().map(|a| a.key.as_str()).collect();
        match given {
            Some(k) if keys.contains(&k.as_str()) => Ok(k.clone()),
            Some(k) => Err(Error::usage(format!(
                "{flag} {k}: not an axis of sweep {}; axes: {}",
                self.manifest.name,
                keys.join(", ")
            ))),
            None => keys.get(nth).map(|k| (*k).to_owned()).ok_or_else(|| {
                Error::usage(format!(
                    "sweep {} has {} axis/axes; this plot needs {}",
                    self.manifest.name,
                    keys.len(),
                    nth + 1
                ))
            }),
        }
    }

    /// The values of an axis in plan order, as strings.
    fn axis_values(&self, key: &str) -> Vec<String> {
        self.manifest
            .axes
            .iter()
            .find(|a| a.key == key)
            .map(|a| {
                a.values
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        v => v.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub(crate) fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

pub(crate) fn line(a: &SweepPlot) -> Result<Figure, Error> {
    let t = SweepTable::read(&a.input, "line", a.memory)?;
    let xk = t.axis(a.x.as_ref(), 0, "--x")?;
    let xi = t.col(&xk, "--x")?;
    let yi = t.col(&a.metric, "--metric")?;
    // Series: every other axis, except those zipped with x (they step with it).
    let x_group = t
        .manifest
        .axes
        .iter()
        .find(|ax| ax.key == xk)
        .and_then(|ax| ax.group.clone());
    let others: Vec<(String, usize)> = t
        .manifest
        .axes
        .iter()
        .filter(|ax| ax.key != xk && (x_group.is_none() || ax.group != x_group))
        .map(|ax| Ok((ax.key.clone(), t.col(&ax.key, "axis")?)))
        .collect::<Result<_, Error>>()?;
    let xs = t.axis_values(&xk);
    let numeric: Option<Vec<f64>> = xs.iter().map(|s| s.parse::<f64>().ok()).collect();
    let log_x = numeric
        .as_ref()
        .is_some_and(|v| v.iter().all(|&x| x > 0.0) && spread(v) >= 20.0);
    let mut groups: BTreeMap<Vec<String>, Vec<(f64, f64)>> = BTreeMap::new();
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut data = Vec::new();
    for r in &t.rows {
        let key: Vec<String> = others.iter().map(|(_, i)| r[*i].clone()).collect();
        let Ok(y) = r[yi].parse::<f64>() else {
            continue;
        };
        if !y.is_finite() {
            continue;
        }
        let x = match &numeric {
            Some(_) => r[xi].parse::<f64>().unwrap_or(f64::NAN),
            None => xs.iter().position(|v| *v == r[xi]).unwrap_or(0) as f64,
        };
        if !order.contains(&key) {
            order.push(key.clone());
        }
        let label = series_label(&others, &key);
        data.push(vec![label, r[xi].clone(), format!("{y}")]);
        groups.entry(key).or_default().push((x, y));
    }
    if groups.is_empty() {
        return Err(Error::usage(format!(
            "sweep {}: no point has a value of {}",
            t.manifest.name, a.metric
        )));
    }
    let ys: Vec<f64> = groups.values().flatten().map(|p| p.1).collect();
    let log_y = ys.iter().all(|&y| y > 0.0) && spread(&ys) >= 30.0;
    let series = order
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let mut pts = groups[key].clone();
            pts.sort_by(|p, q| p.0.total_cmp(&q.0));
            Series {
                label: series_label(&others, key),
                radii: Some(vec![4.0; pts.len()]),
                points: pts,
                line: true,
                color: color(i),
                filled: true,
            }
        })
        .collect();
    Ok(Figure {
        title: format!(
            "sweep {}: {} against {}",
            t.manifest.name,
            describe(&a.metric),
            short(&xk)
        ),
        body: Body::Xy(Xy {
            x_desc: describe(&xk) + if log_x { ", log scale" } else { "" },
            y_desc: describe(&a.metric) + if log_y { ", log scale" } else { "" },
            log_x,
            log_y,
            x_labels: numeric.is_none().then_some(xs),
            series,
        }),
        csv: csv_bytes(&["series", &xk, &a.metric], &data)?,
    })
}

pub(crate) fn series_label(others: &[(String, usize)], key: &[String]) -> String {
    if others.is_empty() {
        return "all points".into();
    }
    others
        .iter()
        .zip(key)
        .map(|((k, _), v)| format!("{}={v}", short(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// max / min of positive values.
pub(crate) fn spread(v: &[f64]) -> f64 {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo > 0.0 { hi / lo } else { 1.0 }
}

pub(crate) fn pareto(a: &SweepPlot) -> Result<Figure, Error> {
    let t = SweepTable::read(&a.input, "pareto", a.memory)?;
    let (ei, li, ai, ii) = (
        t.col("cram_energy_pj", "pareto")?,
        t.col("cram_latency_s", "pareto")?,
        t.col("cram_area_mm2", "pareto")?,
        t.col("id", "pareto")?,
    );
    let axis_cols: Vec<(String, usize)> = t
        .manifest
        .axes
        .iter()
        .map(|ax| Ok((ax.key.clone(), t.col(&ax.key, "axis")?)))
        .collect::<Result<_, Error>>()?;
    // (id, latency, energy, area, label)
    let mut pts: Vec<(String, f64, f64, f64, String)> = Vec::new();
    for r in &t.rows {
        let (Ok(e), Ok(l), Ok(ar)) = (
            r[ei].parse::<f64>(),
            r[li].parse::<f64>(),
            r[ai].parse::<f64>(),
        ) else {
            continue;
        };
        if e > 0.0 && l > 0.0 && e.is_finite() && l.is_finite() {
            let label = axis_cols
                .iter()
                .map(|(k, i)| format!("{}={}", short(k), r[*i]))
                .collect::<Vec<_>>()
                .join(", ");
            pts.push((r[ii].clone(), l, e, ar, label));
        }
    }
    if pts.is_empty() {
        return Err(Error::usage(format!(
            "sweep {}: no successful point to plot",
            t.manifest.name
        )));
    }
    // Non-dominated: no other point at most as slow and as costly, and better in one.
    let front: Vec<bool> = pts
        .iter()
        .map(|p| {
            !pts.iter()
                .any(|q| q.1 <= p.1 && q.2 <= p.2 && (q.1 < p.1 || q.2 < p.2))
        })
        .collect();
    let amax = pts.iter().map(|p| p.3).fold(0.0, f64::max);
    let radius = |ar: f64| {
        if amax > 0.0 && ar.is_finite() {
            3.0 + 13.0 * (ar / amax).sqrt()
        } else {
            4.0
        }
    };
    let split = |on: bool| -> Vec<&(String, f64, f64, f64, String)> {
        pts.iter()
            .zip(&front)
            .filter(|(_, f)| **f == on)
            .map(|(p, _)| p)
            .collect()
    };
    let (off, on) = (split(false), split(true));
    let mut on_sorted = on.clone();
    on_sorted.sort_by(|p, q| p.1.total_cmp(&q.1));
    let series = vec![
        Series {
            label: "design point (marker area ∝ chip area)".into(),
            points: off.iter().map(|p| (p.1, p.2)).collect(),
            radii: Some(off.iter().map(|p| radius(p.3)).collect()),
            line: false,
            color: RGBColor(150, 150, 150),
            filled: false,
        },
        Series {
            label: "Pareto front".into(),
            points: on_sorted.iter().map(|p| (p.1, p.2)).collect(),
            radii: Some(on_sorted.iter().map(|p| radius(p.3)).collect()),
            line: true,
            color: color(1),
            filled: true,
        },
    ];
    let data: Vec<Vec<String>> = pts
        .iter()
        .zip(&front)
        .map(|(p, f)| {
            vec![
                p.0.clone(),
                p.4.clone(),
                format!("{}", p.1),
                format!("{}", p.2),
                format!("{}", p.3),
                f.to_string(),
            ]
        })
        .collect();
    Ok(Figure {
        title: format!(
            "sweep {}: energy vs latency per inference ({} of {} points on the front)",
            t.manifest.name,
            on.len(),
            pts.len()
        ),
        body: Body::Xy(Xy {
            x_desc: "CRAM latency per inference (s)".into(),
            y_desc: "CRAM energy per inference (pJ)".into(),
            log_x: spread(&pts.iter().map(|p| p.1).collect::<Vec<_>>()) >= 10.0,
            log_y: spread(&pts.iter().map(|p| p.2).collect::<Vec<_>>()) >= 10.0,
            x_labels: None,
            series,
        }),
        csv: csv_bytes(
            &[
                "id",
                "point",
                "cram_latency_s",
                "cram_energy_pj",
                "cram_area_mm2",
                "on_front",
            ],
            &data,
        )?,
    })
}

pub(crate) fn heatmap(a: &SweepPlot) -> Result<Figure, Error> {
    let t = SweepTable::read(&a.input, "heatmap", a.memory)?;
    let xk = t.axis(a.x.as_ref(), 0, "--x")?;
    let yk = t.axis(a.y.as_ref(), 1, "--y")?;
    if xk == yk {
        return Err(Error::usage(format!(
            "--x and --y are both {xk}: give two different axes"
        )));
    }
    let (xi, yi, mi) = (
        t.col(&xk, "--x")?,
        t.col(&yk, "--y")?,
        t.col(&a.metric, "--metric")?,
    );
    let (xs, ys) = (t.axis_values(&xk), t.axis_values(&yk));
    // Several points per cell (a third axis) are averaged; the CSV says how many.
    let mut cells: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for r in &t.rows {
        let (Some(x), Some(y)) = (
            xs.iter().position(|v| *v == r[xi]),
            ys.iter().position(|v| *v == r[yi]),
        ) else {
            continue;
        };
        let e = cells.entry((x, y)).or_default();
        if let Ok(v) = r[mi].parse::<f64>()
            && v.is_finite()
        {
            e.push(v);
        }
    }
    if cells.values().all(Vec::is_empty) {
        return Err(Error::usage(format!(
            "sweep {}: no point has a numeric value of {} (failed points have none; rerun them \
             with `sweep run --retry-failed`, or pick another --metric)",
            t.manifest.name, a.metric
        )));
    }
    let mut out = Vec::new();
    let mut data = Vec::new();
    for (x, xv) in xs.iter().enumerate() {
        for (y, yv) in ys.iter().enumerate() {
            let vals = cells.get(&(x, y)).cloned().unwrap_or_default();
            let v = (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64);
            data.push(vec![
                xv.clone(),
                yv.clone(),
                v.map(|v| format!("{v}")).unwrap_or_default(),
                vals.len().to_string(),
            ]);
            out.push((x, y, v));
        }
    }
    Ok(Figure {
        title: format!(
            "sweep {}: {} over {} × {}",
            t.manifest.name,
            describe(&a.metric),
            short(&xk),
            short(&yk)
        ),
        body: Body::Heat {
            x_desc: describe(&xk),
            y_desc: describe(&yk),
            x_labels: xs,
            y_labels: ys,
            cells: out,
            metric: describe(&a.metric),
        },
        csv: csv_bytes(&[&xk, &yk, &a.metric, "points"], &data)?,
    })
}

// ----- drawing ---------------------------------------------------------------------------

pub(crate) type DrawResult = Result<(), String>;

pub(crate) fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let title = root.titled(&fig.title, (FAMILY, 24)).map_err(e)?;
    match &fig.body {
        Body::Xy(xy) => draw_xy(&title, xy)?,
        Body::Stacked {
            bars,
            parts,
            total_unit,
        } => draw_stacked(&title, bars, parts, total_unit)?,
        Body::Heat {
            x_desc,
            y_desc,
            x_labels,
            y_labels,
            cells,
            metric,
        } => draw_heat(&title, x_desc, y_desc, x_labels, y_labels, cells, metric)?,
    }
    root.present().map_err(e)
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
    // Four coordinate combinations share one body.
    macro_rules! body {
        ($xr:expr, $yr:expr) => {{
            let mut chart = ChartBuilder::on(area)
                .margin(20)
                .x_label_area_size(60)
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
                .y_label_formatter(&|v: &f64| crate::units::compact(*v))
                .axis_desc_style((FAMILY, 18))
                .label_style((FAMILY, 14))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(|e| e.to_string())?;
            for s in &xy.series {
                let c = s.color;
                if s.line && s.points.len() > 1 {
                    chart
                        .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                        .map_err(|e| e.to_string())?;
                }
                let radii = s.radii.clone().unwrap_or_else(|| vec![3.0; s.points.len()]);
                let filled = s.filled;
                chart
                    .draw_series(s.points.iter().zip(radii).map(move |(&p, r)| {
                        let style = if filled {
                            c.filled()
                        } else {
                            c.stroke_width(2)
                        };
                        Circle::new(p, r.round() as i32, style)
                    }))
                    .map_err(|e| e.to_string())?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(-10, 0), (10, 0)], c.stroke_width(2))
                            + Circle::new((0, 0), 4, c.filled())
                    });
            }
            chart
                .configure_series_labels()
                .position(legend_corner(xy, (x0, x1), (y0, y1)))
                .label_font((FAMILY, 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
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
    // Colour bar.
    let mut bar = ChartBuilder::on(&legend)
        .margin_top(40)
        .margin_bottom(80)
        .margin_right(10)
        .y_label_area_size(70)
        .caption(
            format!("{}{}", unit_of_desc(metric), if log { ", log" } else { "" }),
            (FAMILY, 14),
        )
        .build_cartesian_2d(0.0..1.0, lo.min(hi)..hi.max(lo + 1e-12))
        .map_err(|e| e.to_string())?;
    bar.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v: &f64| crate::units::compact(if log { 10f64.powf(*v) } else { *v }))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(|e| e.to_string())?;
    let steps = 64;
    bar.draw_series((0..steps).map(|k| {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis(k as f64 / (steps - 1) as f64).filled(),
        )
    }))
    .map_err(|e| e.to_string())?;
    Ok(())
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

    #[test]
    fn viridis_runs_dark_to_bright() {
        let (a, b) = (viridis(0.0), viridis(1.0));
        assert_eq!((a.0, a.1, a.2), (68, 1, 84));
        assert_eq!((b.0, b.1, b.2), (253, 231, 37));
    }
}
