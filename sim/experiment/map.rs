//! The map experiment: where every layer of a network lands on the chip.

use crate::error::Error;
use crate::experiment::config::{Config, Resolved};
use crate::experiment::options::Options;
use crate::model::limits::Limits;
use crate::model::map::place::place;
use crate::model::map::{Mode, RunOptions, run_network};
use crate::records::{LayerPlacement, MapReport};
use ndarray::Array3;

/// Places every layer of `config`'s network (or the one `layer` names, by index or name) on
/// the chip: the strategy, lanes, columns, subarrays and waves of each, as the analytical
/// plan chooses them.
///
/// ```
/// use cramulator::experiment::{config::Config, map, options::Options};
///
/// let report = map::map(&Config::default(), None, &Options::default())?;
/// assert_eq!(report.model, "digits-mlp-int4");
/// assert!(!report.layers.is_empty());
/// # Ok::<(), cramulator::error::Error>(())
/// ```
pub fn map(config: &Config, layer: Option<&str>, options: &Options) -> Result<MapReport, Error> {
    options
        .pool()?
        .install(|| map_in(config, layer, options.limits))
}

fn map_in(config: &Config, layer: Option<&str>, limits: Limits) -> Result<MapReport, Error> {
    let Resolved {
        prog,
        hw,
        choice,
        ir,
        ..
    } = config.resolve(limits.memory)?;
    // Residency is decided for the whole network (one image, as placed): each layer is
    // placed in the layout the network's choice gave it.
    let s = prog.network().input_shape();
    let opts = RunOptions {
        mode: Mode::Analytical,
        choice,
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 0,
        limits,
    };
    let net = run_network(&prog, &[Array3::zeros((s.c, s.h, s.w))], &hw, &opts)?;
    crate::experiment::config::check_layer_gates(&net, &hw.lib, config.mapping.max_gate_error)?;
    let layers = &prog.network().layers;
    let which: Vec<usize> = match layer {
        None => (0..layers.len()).collect(),
        Some(s) => {
            let found = match s.parse::<usize>() {
                Ok(i) => (i < layers.len()).then_some(i),
                Err(_) => layers.iter().position(|l| l.name == s),
            };
            vec![found.ok_or_else(|| {
                Error::usage(format!(
                    "--layer {s}: network '{}' has layers 0..={} ({})",
                    prog.network().name,
                    layers.len() - 1,
                    layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?]
        }
    };
    let placed = which
        .iter()
        .map(|&i| {
            limits.stop.check()?;
            place(&prog, i, &hw, choice, net.layers[i].layout)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let p = &hw.org.params;
    let report = MapReport {
        model: prog.network().name.clone(),
        device: hw.lib.device.params.name.clone(),
        array: p.name.clone(),
        lanes_per_subarray: p.lanes_per_subarray,
        cols_per_subarray: p.cols_per_subarray,
        subarrays: hw.subarrays(),
        chips: hw.chips,
        strategy: choice.describe(),
        resident: net.residency.resident,
        resident_bits: net.residency.held_bits,
        wanted_resident_bits: net.residency.wanted_bits,
        residency: net.residency.describe(),
        resident_capacity_bits: net.residency.capacity_bits,
        reserved_bits: net.residency.reserved_bits,
        ir_violations: ir.violations(),
        cycles: net.cycles(),
        layers_cycles: net.layers.iter().map(|l| l.cycles).sum(),
        busy: (&net.timeline.busy).into(),
        layers: placed
            .iter()
            .zip(&which)
            .map(|(p, &i)| {
                let (start_cycle, end_cycle) = net.timeline.spans[i];
                LayerPlacement {
                    start_cycle,
                    end_cycle,
                    ..p.into()
                }
            })
            .collect(),
    };
    Ok(report)
}
