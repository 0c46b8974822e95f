//! The figures of a merged sweep folder (`results.csv`, `manifest.json`): a metric against
//! one axis, energy against latency with the Pareto front, and a metric over two axes.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::{Body, Figure, Series, SweepPlot, Xy, color, csv_bytes, describe, read_file, spread};
use crate::error::Error;
use crate::model::limits::MemoryLimit;
use crate::records::SweepManifest;

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
                labels: None,
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

/// A design point of a Pareto plot: id, latency (s), energy (pJ), chip area (mm²) and its
/// axis values.
type DesignPoint = (String, f64, f64, f64, String);

pub(crate) fn pareto(a: &SweepPlot) -> Result<Figure, Error> {
    let t = SweepTable::read(&a.input, "pareto", a.memory)?;
    let pts = design_points(&t)?;
    // Non-dominated: no other point at most as slow and as costly, and better in one.
    let front: Vec<bool> = pts
        .iter()
        .map(|p| {
            !pts.iter()
                .any(|q| q.1 <= p.1 && q.2 <= p.2 && (q.1 < p.1 || q.2 < p.2))
        })
        .collect();
    let on_front = front.iter().filter(|f| **f).count();
    let series = pareto_series(&pts, &front);
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
            on_front,
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

/// The successful points of a sweep (positive, finite energy and latency), with their axis
/// values as a label.
fn design_points(t: &SweepTable) -> Result<Vec<DesignPoint>, Error> {
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
    let mut pts: Vec<DesignPoint> = Vec::new();
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
    Ok(pts)
}

/// The points off the front (grey rings) and the front (joined, by latency); marker area
/// ∝ chip area.
fn pareto_series(pts: &[DesignPoint], front: &[bool]) -> Vec<Series> {
    let amax = pts.iter().map(|p| p.3).fold(0.0, f64::max);
    let radius = |ar: f64| {
        if amax > 0.0 && ar.is_finite() {
            3.0 + 13.0 * (ar / amax).sqrt()
        } else {
            4.0
        }
    };
    let split = |on: bool| -> Vec<&DesignPoint> {
        pts.iter()
            .zip(front)
            .filter(|(_, f)| **f == on)
            .map(|(p, _)| p)
            .collect()
    };
    let (off, on) = (split(false), split(true));
    let mut on_sorted = on.clone();
    on_sorted.sort_by(|p, q| p.1.total_cmp(&q.1));
    // Every front point is labelled with its id, and with its settings while they stay
    // readable; the other points with their id while there are few.
    let front_labels = on_sorted
        .iter()
        .map(|p| {
            if on_sorted.len() <= 10 {
                format!("#{} {}", p.0, p.4)
            } else {
                format!("#{}", p.0)
            }
        })
        .collect();
    let off_labels = (pts.len() <= 60).then(|| off.iter().map(|p| format!("#{}", p.0)).collect());
    vec![
        Series {
            label: "design point (marker area ∝ chip area)".into(),
            points: off.iter().map(|p| (p.1, p.2)).collect(),
            labels: off_labels,
            radii: Some(off.iter().map(|p| radius(p.3)).collect()),
            line: false,
            color: RGBColor(150, 150, 150),
            filled: false,
        },
        Series {
            label: "Pareto front".into(),
            points: on_sorted.iter().map(|p| (p.1, p.2)).collect(),
            labels: Some(front_labels),
            radii: Some(on_sorted.iter().map(|p| radius(p.3)).collect()),
            line: true,
            color: color(1),
            filled: true,
        },
    ]
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
