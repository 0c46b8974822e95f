//! `cramulator report`: one self-contained HTML page of a run folder or a merged sweep
//! folder: inline CSS and SVG figures, no script, nothing fetched. Every number carries its
//! unit. A run's page holds the headline comparison, the energy by component and by
//! boundary, the per-layer table and figure, the mapping, the gate error rates, the
//! generation (a language model), the configuration and the presets' assumptions with their
//! sources; a sweep's holds its summary, the Pareto front, the line and heat-map figures and
//! the results table.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::Error;
use crate::io::plot::{self, FAMILY, FONT, Figure, SIZE, SweepPlot, describe, unit};
use crate::model::limits::MemoryLimit;
use crate::records::{LayerRow, RunReport, Summary, SweepManifest};
use crate::units::si;

/// The page of `input`: a run folder (`report.json`, `layers.csv`) or a merged sweep folder
/// (`results.csv`, `summary.json`).
pub fn html(input: &Path, memory: MemoryLimit) -> Result<String, Error> {
    if input.join("report.json").is_file() {
        run_page(input, memory)
    } else if input.join("results.csv").is_file() && input.join("summary.json").is_file() {
        sweep_page(input, memory)
    } else if !input.is_dir() {
        Err(Error::usage(format!(
            "'{}': no such folder",
            input.display()
        )))
    } else {
        Err(Error::usage(format!(
            "'{}': neither a run folder (report.json, layers.csv) nor a merged sweep folder \
             (results.csv, summary.json; run `cramulator sweep merge` first)",
            input.display()
        )))
    }
}

/// `text` with `&`, `<`, `>` and `"` escaped.
fn esc(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            c => s.push(c),
        }
    }
    s
}

/// Energy in pJ, printed in joules with an SI prefix.
fn joules(pj: f64) -> String {
    si(pj * 1e-12, "J")
}

/// A share of a total, in % (3 significant digits, so a small share is not shown as 0).
fn pct(part: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{} %", si(100.0 * part / total, ""))
    } else {
        "–".to_owned()
    }
}

/// An area, mm² (no prefix: a prefix on a squared unit reads wrongly).
fn mm2(a: f64) -> String {
    plain(a, "mm²")
}

/// `v` with a unit that takes no further SI prefix (mm², TOPS/W, ns, GHz …).
fn plain(v: f64, unit: &str) -> String {
    format!("{} {unit}", crate::units::compact(v))
}

/// A ratio, ×.
fn times(r: f64) -> String {
    if r.is_finite() {
        format!("{}×", crate::units::compact(r))
    } else {
        "–".to_owned()
    }
}

/// A figure drawn as inline SVG, scaled to the page's width.
fn svg(fig: &Figure) -> Result<String, Error> {
    register_font(FAMILY, FontStyle::Normal, FONT)
        .map_err(|_| Error::usage("the vendored font does not load"))?;
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        plot::draw(root, fig).map_err(|e| Error::usage(format!("{}: {e}", fig.title)))?;
    }
    let start = s.find("<svg").unwrap_or(0);
    let (w, h) = SIZE;
    let body = s[start..].replacen(
        &format!("<svg width=\"{w}\" height=\"{h}\""),
        &format!("<svg role=\"img\" aria-label=\"{}\"", esc(&fig.title)),
        1,
    );
    Ok(format!("<figure>{body}</figure>\n"))
}

/// A table: a header row and body rows of already-escaped cells; numeric columns align
/// right.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>\n");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{c}</td>");
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
    s
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;\
border-bottom:1px solid #ddd;padding-bottom:.2rem}.sub{color:#555;margin-top:0}\
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}\
th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;vertical-align:top}\
th{background:#f3f5f8}td{font-variant-numeric:tabular-nums}tbody tr:nth-child(even){background:#fafafa}\
figure{margin:1rem 0}figure svg{width:100%;height:auto;border:1px solid #eee}\
pre{background:#f6f8fa;padding:.8rem;overflow:auto;font-size:.8rem;border:1px solid #eee}\
.scroll{max-height:32rem;overflow:auto}.note{color:#555;font-size:.9rem}\
details{margin:.5rem 0}summary{cursor:pointer;font-weight:600}";

/// The page around `title` and `body`.
fn page(title: &str, subtitle: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\
         <p class=\"sub\">{subtitle}</p>\n{body}<p class=\"note\">Written by cramulator {v}. \
         The model, its equations and their sources: docs/model.md; the records' fields: \
         docs/schema/.</p>\n</body></html>\n",
        t = esc(title),
        v = env!("CARGO_PKG_VERSION"),
    )
}

// ----- a run -------------------------------------------------------------------------------

fn run_page(dir: &Path, memory: MemoryLimit) -> Result<String, Error> {
    let r: RunReport = plot::report(dir, "report", memory)?;
    let rows = plot::layer_rows(dir, memory)?;
    let resolved = plot::read_file(&dir.join("resolved.toml"), "report", memory).ok();
    let c = &r.cram;
    let mut b = String::new();
    let exact = match c.bit_exact_images {
        Some(e) => format!(", bit-exact on {e} of {} image(s)", c.images),
        None => String::new(),
    };
    let subtitle = format!(
        "run {} · {} on {} / {} ({} gates), {} mode, {} image(s){exact} · {} MACs and {} \
         weights per inference",
        esc(&r.run_id),
        esc(&r.workload.model),
        esc(&c.device),
        esc(&c.array),
        esc(&c.gate_set),
        esc(&c.mode),
        c.images,
        si(r.workload.macs as f64, ""),
        si(r.workload.weights as f64, ""),
    );
    headline(&mut b, &r);
    energy(&mut b, &r)?;
    layers(&mut b, &r, &rows)?;
    mapping(&mut b, &r);
    reliability(&mut b, &r);
    generation(&mut b, &r);
    configuration(&mut b, &r, resolved.as_deref());
    Ok(page(
        &format!(
            "{}: CRAM against {} baseline(s)",
            r.workload.model,
            r.baselines.len()
        ),
        &subtitle,
        &b,
    ))
}

/// One row of the comparison: a machine's metrics.
fn metric_row(name: &str, m: &crate::records::Metrics) -> Vec<String> {
    vec![
        esc(name),
        joules(m.energy_pj),
        joules(m.compute_pj),
        joules(m.data_movement_pj),
        joules(m.static_pj),
        si(m.latency_s, "s"),
        si(m.throughput_per_s, "/s"),
        plain(m.tops_per_w, "TOPS/W"),
        si(m.edp_j_s, "J·s"),
        match m.area_mm2 {
            Some(a) if a > 0.0 => mm2(a),
            _ => "–".to_owned(),
        },
    ]
}

fn headline(b: &mut String, r: &RunReport) {
    b.push_str("<h2>Headline: CRAM against each baseline</h2>\n");
    let mut rows = vec![metric_row("cram", &r.cram.metrics)];
    rows.extend(r.baselines.iter().map(|x| metric_row(&x.name, &x.metrics)));
    b.push_str(&table(
        &[
            "machine",
            "energy per inference",
            "compute",
            "data movement",
            "static",
            "latency of one inference",
            "throughput",
            "efficiency",
            "energy-delay product",
            "area",
        ],
        &rows,
    ));
    let gains: Vec<Vec<String>> = r
        .baselines
        .iter()
        .map(|x| {
            let v = &x.versus_cram;
            vec![
                esc(&x.name),
                times(v.energy),
                times(v.speedup),
                times(v.throughput),
                times(v.edp),
                format!(
                    "{} of {} layers memory-bound",
                    x.memory_bound_layers,
                    x.memory_bound_layers + x.compute_bound_layers
                ),
                esc(&x.description),
            ]
        })
        .collect();
    b.push_str(
        "<p class=\"note\">CRAM's gain: baseline ÷ CRAM for energy, latency and EDP, CRAM ÷ \
         baseline for throughput; above 1×, CRAM is better. Latency is one inference alone on \
         each machine; energy and throughput at each machine's batch.</p>\n",
    );
    b.push_str(&table(
        &[
            "baseline",
            "energy gain",
            "speed-up",
            "throughput gain",
            "EDP gain",
            "bound",
            "what it is",
        ],
        &gains,
    ));
}

fn energy(b: &mut String, r: &RunReport) -> Result<(), Error> {
    let c = &r.cram;
    b.push_str("<h2>Where CRAM's energy goes</h2>\n");
    b.push_str(&figure(plot::breakdown_of(r))?);
    let total = c.metrics.energy_pj;
    let rows: Vec<Vec<String>> = c
        .energy
        .components()
        .iter()
        .map(|(name, pj)| vec![esc(&name.replace('_', " ")), joules(*pj), pct(*pj, total)])
        .collect();
    b.push_str("<p>By component, per inference:</p>\n");
    b.push_str(&table(&["component", "energy", "share"], &rows));
    let e = &c.energy_by_boundary;
    b.push_str(
        "<p>By boundary (what each enclosing boundary holds, docs/model.md §4.1), per \
         inference:</p>\n",
    );
    b.push_str(&table(
        &[
            "inside the array",
            "inside the macros",
            "inside the chip",
            "the whole system",
        ],
        &[vec![
            joules(e.array),
            joules(e.macro_),
            joules(e.chip),
            joules(e.system),
        ]],
    ));
    Ok(())
}

fn layers(b: &mut String, r: &RunReport, rows: &[LayerRow]) -> Result<(), Error> {
    b.push_str("<h2>Per layer</h2>\n");
    b.push_str(&figure(plot::layers_of(rows, r))?);
    let total = r.cram.metrics.energy_pj;
    let body: Vec<Vec<String>> = rows
        .iter()
        .filter(|l| l.machine == "cram")
        .map(|l| {
            vec![
                l.index.to_string(),
                esc(&l.layer),
                esc(&l.op),
                si(l.macs as f64, "MAC"),
                joules(l.energy_pj),
                pct(l.energy_pj, total),
                si(l.latency_s, "s"),
                l.chip_lane_utilization
                    .map_or("–".to_owned(), |u| pct(u, 1.0)),
                esc(&l.detail),
            ]
        })
        .collect();
    let _ = writeln!(
        b,
        "<details><summary>CRAM's {} layers, per inference</summary><div class=\"scroll\">{}</div>\
         </details>",
        body.len(),
        table(
            &[
                "#",
                "layer",
                "op",
                "work",
                "energy",
                "share",
                "latency",
                "lanes used",
                "layout"
            ],
            &body
        )
    );
    Ok(())
}

fn mapping(b: &mut String, r: &RunReport) {
    let c = &r.cram;
    let res = &c.residency;
    b.push_str("<h2>Mapping</h2>\n");
    let _ = writeln!(b, "<p>{}</p>", esc(&res.decision));
    let rows = vec![
        vec![
            "chips".to_owned(),
            format!(
                "{} (needed to hold the preferred layouts: {})",
                c.chip.chips, res.chips_needed
            ),
        ],
        vec!["chip area".to_owned(), mm2(c.chip.area_mm2)],
        vec!["leakage".to_owned(), si(c.chip.leakage_mw * 1e-3, "W")],
        vec![
            "resident bits wanted / held / capacity".to_owned(),
            format!(
                "{} / {} / {}",
                si(res.wanted_bits as f64, "bit"),
                si(res.deployment_written_bits as f64, "bit"),
                si(res.capacity_bits as f64, "bit")
            ),
        ],
        vec![
            "reserved for key and value caches".to_owned(),
            si(res.reserved_bits as f64, "bit"),
        ],
        vec![
            "deployment (once per deployment)".to_owned(),
            format!(
                "{}, {}, {} per inference over {} inferences",
                joules(res.deployment_energy.total_pj()),
                si(res.deployment_latency_s, "s"),
                joules(res.deployment_pj_per_inference),
                res.inferences_per_deployment
            ),
        ],
        vec![
            "chip lane utilization".to_owned(),
            pct(c.chip_lane_utilization, 1.0),
        ],
        vec![
            "mapping efficiency (useful lane-steps)".to_owned(),
            pct(c.mapping_efficiency, 1.0),
        ],
        vec![
            "IR drop".to_owned(),
            if c.ir.violations.is_empty() {
                format!(
                    "every gate switches on lines of {} rows",
                    c.ir.rows_per_line
                )
            } else {
                esc(&format!("violations: {}", c.ir.violations.join("; ")))
            },
        ],
    ];
    b.push_str(&table(&["", "value"], &rows));
    let area: Vec<Vec<String>> = c
        .chip
        .area_by_component
        .iter()
        .map(|(n, a)| vec![esc(n), mm2(*a), pct(*a, c.chip.area_mm2)])
        .collect();
    b.push_str(&table(&["chip area by component", "area", "share"], &area));
}

fn reliability(b: &mut String, r: &RunReport) {
    let g = &r.cram.reliability;
    b.push_str("<h2>Reliability: gate error rates</h2>\n");
    let _ = writeln!(
        b,
        "<p>{} expected gate-output flips per inference; {} of inferences flip-free; \
         budget per gate {}; {}.</p>",
        si(g.expected_flips_per_inference, ""),
        pct(g.p_flip_free_inference, 1.0),
        si(g.max_gate_error, ""),
        if g.injected {
            "faults injected (run.inject_gate_errors)"
        } else {
            "not injected"
        }
    );
    let rows: Vec<Vec<String>> = g
        .gates
        .iter()
        .map(|x| {
            vec![
                esc(&x.gate),
                format!("{:.3e}", x.p_err),
                si(x.evaluations_per_inference, ""),
                si(x.expected_flips_per_inference, ""),
            ]
        })
        .collect();
    b.push_str(&table(
        &[
            "gate",
            "error probability per evaluation",
            "evaluations per inference",
            "expected flips per inference",
        ],
        &rows,
    ));
}

fn generation(b: &mut String, r: &RunReport) {
    let Some(g) = &r.generation else { return };
    let _ = writeln!(
        b,
        "<h2>Generation</h2>\n<p>A {}-token prompt's prefill, then {} generated token(s), each \
         decode step priced at its own cache length (batch 1).</p>",
        g.prompt_tokens, g.decode_tokens
    );
    let rows: Vec<Vec<String>> = g
        .machines
        .iter()
        .map(|m| {
            vec![
                esc(&m.machine),
                format!(
                    "{}, {}",
                    joules(m.prefill_energy_pj),
                    si(m.prefill_latency_s, "s")
                ),
                format!(
                    "{}, {}",
                    joules(m.energy_per_token_pj),
                    si(m.latency_per_token_s, "s")
                ),
                format!(
                    "{}, {}",
                    joules(m.total_energy_pj),
                    si(m.total_latency_s, "s")
                ),
            ]
        })
        .collect();
    b.push_str(&table(
        &[
            "machine",
            "prefill",
            "per generated token",
            "whole generation",
        ],
        &rows,
    ));
    let c = &g.cache;
    let _ = writeln!(
        b,
        "<p>Key and value caches: {} per token, {} at the end, reserved in the resident share \
         of {}; each cache cell is written once per generation, so {} generated tokens reach \
         the {:e}-write budget.</p>",
        si(c.bits_per_token as f64, "bit"),
        si(c.bits_at_end as f64, "bit"),
        si(c.resident_capacity_bits as f64, "bit"),
        si(c.cache_tokens_to_budget, ""),
        c.endurance_budget
    );
}

/// The assumptions behind the numbers: each shipped preset the run used, as its source
/// text (every number tagged with its provenance).
fn configuration(b: &mut String, r: &RunReport, resolved: Option<&str>) {
    b.push_str("<h2>Configuration and assumptions</h2>\n");
    if let Some(t) = resolved {
        let _ = writeln!(
            b,
            "<details><summary>The resolved configuration (resolved.toml: every default \
             written out; running it repeats the run)</summary><pre>{}</pre></details>",
            esc(t)
        );
    }
    b.push_str(
        "<p>The presets the run read, with the source and tag of each number (verified, \
         code, derived, recalled or an assumption; docs/model.md §0.1). Overrides \
         (<code>cram.device_params</code>, <code>cram.array_params</code>) apply on top; \
         the values used are those of the configuration above.</p>\n",
    );
    let mut sources: Vec<(String, &'static str)> = Vec::new();
    let device = r.cram.device.split(' ').next().unwrap_or("");
    if let Some(s) = cram_arch::presets::preset_source(device) {
        sources.push((format!("device preset '{device}'"), s));
    }
    let array = r.cram.array.split(' ').next().unwrap_or("");
    if let Some(s) = cram_arch::presets::array_source(array) {
        sources.push((format!("array preset '{array}'"), s));
    }
    for x in &r.baselines {
        if let Some(s) = cram_arch::presets::baseline_source(&x.name) {
            sources.push((format!("baseline preset '{}'", x.name), s));
        }
    }
    if sources.is_empty() {
        b.push_str("<p>No shipped preset: every value came from the configuration's files.</p>\n");
    }
    for (what, text) in sources {
        let _ = writeln!(
            b,
            "<details><summary>{}</summary><pre>{}</pre></details>",
            esc(&what),
            esc(text)
        );
    }
}

// ----- a sweep -----------------------------------------------------------------------------

fn sweep_page(dir: &Path, memory: MemoryLimit) -> Result<String, Error> {
    let read = |name: &str| plot::read_file(&dir.join(name), "report", memory);
    let summary: Summary = serde_json::from_str(&read("summary.json")?)
        .map_err(|e| Error::usage(format!("'{}': {e}", dir.join("summary.json").display())))?;
    let manifest: Option<SweepManifest> = read("manifest.json")
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut b = String::new();
    let subtitle = format!(
        "{} point(s), {} ok, {} failed · plan {}",
        summary.points,
        summary.ok,
        summary.failed,
        esc(&summary.plan_hash)
    );
    b.push_str("<h2>Axes</h2>\n");
    let axes: Vec<Vec<String>> = summary
        .axes
        .iter()
        .map(|a| {
            let values: Vec<String> = a.values.iter().map(|v| v.to_string()).collect();
            vec![
                esc(&a.key),
                esc(&values.join(", ")),
                esc(a.group.as_deref().unwrap_or("")),
                esc(unit(&a.key)),
            ]
        })
        .collect();
    b.push_str(&table(&["key", "values", "zipped with", "unit"], &axes));
    b.push_str("<h2>Best points</h2>\n");
    let best: Vec<Vec<String>> = summary
        .best
        .iter()
        .map(|x| {
            let set: Vec<String> = x.set.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            // The best points name CRAM's metrics without the results' `cram_` prefix.
            let column = format!("cram_{}", x.metric);
            vec![
                esc(&describe(&column)),
                esc(&with_unit(x.value, &column)),
                x.id.to_string(),
                esc(&set.join(", ")),
            ]
        })
        .collect();
    b.push_str(&table(&["metric", "best", "point", "its settings"], &best));
    let sp = |x: Option<String>, y: Option<String>, metric: &str| SweepPlot {
        input: dir.to_path_buf(),
        x,
        y,
        metric: metric.to_owned(),
        memory,
    };
    b.push_str("<h2>Energy against latency</h2>\n");
    b.push_str(&figure(plot::pareto(&sp(None, None, "cram_energy_pj")))?);
    // Along the first axis; the heat map over it and the first axis not zipped with it.
    if let Some(x) = summary.axes.first() {
        b.push_str("<h2>Along the axes</h2>\n");
        for metric in ["cram_energy_pj", "cram_latency_s"] {
            b.push_str(&figure(plot::line(&sp(Some(x.key.clone()), None, metric)))?);
        }
        let apart = |a: &crate::records::Axis| a.group.is_none() || a.group != x.group;
        if let Some(y) = summary.axes.iter().skip(1).find(|a| apart(a)) {
            b.push_str(&figure(plot::heatmap(&sp(
                Some(x.key.clone()),
                Some(y.key.clone()),
                "cram_energy_pj",
            )))?);
        }
    }
    let ranges: Vec<Vec<String>> = summary
        .ranges
        .iter()
        .map(|(k, [lo, hi])| {
            vec![
                esc(&describe(k)),
                esc(&with_unit(*lo, k)),
                esc(&with_unit(*hi, k)),
            ]
        })
        .collect();
    b.push_str("<h2>Ranges over the points</h2>\n");
    b.push_str(&table(&["metric", "lowest", "highest"], &ranges));
    results_table(&mut b, &read("results.csv")?)?;
    if let Some(m) = manifest {
        let _ = writeln!(
            b,
            "<details><summary>The plan (manifest.json)</summary><pre>{}</pre></details>",
            esc(&crate::records::to_json(&m))
        );
    }
    Ok(page(&format!("Sweep {}", summary.name), &subtitle, &b))
}

/// `value` of column `key` with the column's unit: energies in joules, seconds and J·s with
/// an SI prefix, units that carry one already (TOPS/W, ns, GHz, nm) or are squared without.
fn with_unit(value: f64, key: &str) -> String {
    if key.ends_with("_pj_per_inference") {
        return joules(value);
    }
    match unit(key) {
        "pJ" => joules(value),
        "" => si(value, ""),
        "×" => times(value),
        u @ ("s" | "J·s") => si(value, u),
        "1/s" => si(value, "/s"),
        u => plain(value, u),
    }
}

/// A figure inline, or a note saying why it could not be drawn (a sweep whose points all
/// failed has no Pareto front): the rest of the page still stands.
fn figure(made: Result<Figure, Error>) -> Result<String, Error> {
    match made {
        Ok(f) => svg(&f),
        Err(e) => Ok(format!(
            "<p class=\"note\">Figure not drawn: {}</p>\n",
            esc(&e.to_string())
        )),
    }
}

/// Every point's row of `results.csv`, numbers with their columns' units.
fn results_table(b: &mut String, csv_text: &str) -> Result<(), Error> {
    let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
    let head: Vec<String> = rd
        .headers()
        .map_err(|e| Error::usage(format!("results.csv: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| Error::usage(format!("results.csv: {e}")))?;
        rows.push(
            rec.iter()
                .zip(&head)
                .map(|(v, k)| match v.parse::<f64>() {
                    Ok(x) if !unit(k).is_empty() => esc(&with_unit(x, k)),
                    _ => esc(v),
                })
                .collect(),
        );
    }
    let heads: Vec<&str> = head.iter().map(String::as_str).collect();
    let _ = write!(
        b,
        "<h2>Every point</h2>\n<details><summary>results.csv, {} row(s)</summary><div \
         class=\"scroll\">{}</div></details>\n",
        rows.len(),
        table(&heads, &rows)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_numbers_carry_units() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(joules(1.5e6), "1.50 µJ");
        assert_eq!(with_unit(2.0e-3, "cram_latency_s"), "2.00 ms");
        assert_eq!(pct(1.0, 4.0), "25.0 %");
        assert_eq!(pct(1.0, 1e5), "0.001 %");
        assert_eq!(mm2(0.247), "0.247 mm²");
        assert_eq!(mm2(1500.0), "1500 mm²");
        assert_eq!(with_unit(0.5, "cram_tops_per_w"), "0.5 TOPS/W");
        assert_eq!(
            with_unit(1500.0, "cram.device_params.t_switch_ns"),
            "1500 ns"
        );
        assert_eq!(with_unit(1500.0, "cram_throughput_per_s"), "1.50 k/s");
        assert_eq!(
            with_unit(2e6, "cram_deployment_pj_per_inference"),
            "2.00 µJ"
        );
        assert_eq!(times(76.0004), "76×");
        assert_eq!(times(f64::INFINITY), "–");
    }
}
