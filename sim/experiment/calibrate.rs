//! Calibration of the baseline model against three measured systems
//! (`docs/references.md` A9): Eyeriss on AlexNet's CONV layers, an MLPerf Tiny
//! ResNet-8 on a Cortex-M4, and the MLPerf Inference ResNet-50 run of a Jetson AGX Orin;
//! and of the CRAM periphery against a published STT-MRAM macro's read energy
//! (`docs/references.md` [MRAM22-ISSCC2020]). Each point states what was measured, what the model
//! counts, and the assumptions between them; `cramulator calibrate` prints them and a test
//! holds every ratio within [0.5, 2].

use crate::records::*;
use cram_arch::presets;
use cram_workloads::zoo;

use crate::error::Error;
use crate::model::baseline::{evaluate, work_of_network};
use crate::model::energy::{Actions, EnergyTable, Pricing, energy};

pub(crate) struct Spec {
    name: &'static str,
    system: &'static str,
    source: &'static str,
    preset: &'static str,
    model: &'static str,
    bits: u32,
    batch: u32,
    conv_only: bool,
    chip_only: bool,
    scope: &'static str,
    measured_mj: f64,
    measured_ms: f64,
    assumptions: &'static [&'static str],
}

pub(crate) const SPECS: [Spec; 3] = [
    Spec {
        name: "eyeriss-alexnet-conv",
        system: "Eyeriss (65 nm, 168 PEs, 200 MHz, 16-bit), AlexNet CONV1–5, 227×227, batch 4",
        source: "Chen et al., JSSC 52(1) 2017: 278 mW, 115.3 ms per batch of 4 (34.7 fps) \
                 → 8.0 mJ/image chip only (docs/references.md A9.1)",
        preset: "edge-npu-lpddr4",
        model: "alexnet",
        bits: 16,
        batch: 4,
        conv_only: true,
        chip_only: true,
        scope: "chip only (DRAM excluded)",
        measured_mj: 0.278 * 115.3 / 4.0,
        measured_ms: 115.3 / 4.0,
        assumptions: &[
            "only the five CONV layers are counted, as measured; ReLU is folded into them",
            "LRN is left out of the network (no MACs)",
            "access energies follow Eyeriss's normalised ratios anchored on a 16-bit MAC \
             scaled from Horowitz's 45 nm table to 65 nm at 1 V",
            "the clock network and control are not modelled (static power 0)",
            "PE utilization 0.7 is assumed, not measured",
        ],
    },
    Spec {
        name: "mlperf-tiny-resnet8-m4",
        system: "STM32L4R5 (Cortex-M4F, 120 MHz), MLPerf Tiny IC ResNet-8 int8, batch 1",
        source: "MLPerf Tiny v1.0, OctoML microTVM + CMSIS-NN on NUCLEO-L4R5ZI: 20.24 mJ and \
                 2.57 inferences/s (docs/references.md A9.2)",
        preset: "mcu-cortex-m4",
        model: "resnet8",
        bits: 8,
        batch: 1,
        conv_only: false,
        chip_only: false,
        scope: "DUT supply (board)",
        measured_mj: 20.24,
        measured_ms: 1000.0 / 2.57,
        assumptions: &[
            "the whole core energy is the datasheet run current (≈ 110 µA/MHz at 3.0 V), \
             charged per instruction at IPC ≈ 1",
            "0.3 MAC per cycle: half of CMSIS-NN's measured 0.57 MAC/cycle on a dual-issue \
             Cortex-M7 (Lai et al. 2018)",
            "no power beyond the MCU's run current (regulators, I/O and the power monitor's \
             share are not modelled)",
        ],
    },
    Spec {
        name: "mlperf-orin-resnet50",
        system: "Jetson AGX Orin 64 GB (GPU + 2 DLA), MLPerf Inference v3.1 MaxQ, ResNet-50 \
                 v1.5 int8, Offline",
        source: "MLPerf Inference v3.1 closed, NVIDIA Orin_TRT_MaxQ: 3,526.29 samples/s at \
                 ≈ 23.7 W at the wall → 6.7 mJ/image (docs/references.md A9.3)",
        preset: "edge-gpu-orin",
        model: "resnet50",
        bits: 8,
        batch: 16,
        conv_only: false,
        chip_only: false,
        scope: "whole system at the wall",
        measured_mj: 23.7 / 3526.29 * 1000.0,
        measured_ms: 1000.0 / 3526.29,
        assumptions: &[
            "Offline scenario modelled as batches of 16 sharing each weight fetch",
            "the dense int8 peak of GPU + DLAs (137.5 TOPS) at 30 % utilization; MaxQ clocks \
             are not known and not modelled",
            "10 W of module, carrier-board and supply losses that do not scale with work",
            "7 nm energy table for Samsung 8 nm; LPDDR5 at 5 pJ/bit (planning value)",
        ],
    },
];

/// A published STT-MRAM macro whose read energy the periphery model is held against.
pub(crate) struct MacroSpec {
    name: &'static str,
    system: &'static str,
    source: &'static str,
    node_nm: f64,
    access_bits: u32,
    measured_pj_per_bit: f64,
    assumptions: &'static [&'static str],
}

pub(crate) const MACROS: [MacroSpec; 1] = [MacroSpec {
    name: "mram-22nm-1mb-isscc2020",
    system: "22 nm 1 Mb STT-MRAM macro with near-memory computing, 1024-bit read at 0.85 V \
             (ISSCC 2020, paper 13.4)",
    source: "its abstract: read energy 0.23 pJ/b over a 1024-b access (docs/references.md \
             [MRAM22-ISSCC2020], verified)",
    node_nm: 22.0,
    access_bits: 1024,
    measured_pj_per_bit: 0.23,
    assumptions: &[
        "the model reads one row of a cram-1k subarray with 1024 columns at node_nm = 22: \
         one decode and 1024 current-mode sense amplifiers (NVSim's 22 nm table)",
        "the macro's 0.85 V supply against the model's 0.8 V (CACTI's 22 nm HP); the read \
         current through the cells, the word line and the column multiplexers are not in \
         the model's read, so it should come out low",
        "the macro's near-memory computing logic is not part of its read energy (the \
         abstract reports it separately)",
    ],
}];

/// The report of `calibrate`: the baselines' measured systems and the MRAM macros.
pub fn report() -> Result<CalibrationReport, Error> {
    Ok(CalibrationReport {
        baselines: calibration()?,
        macros: macro_calibration()?,
    })
}

/// Each published macro against a row read of `cram-1k` at its node and access width,
/// priced through the model's energy table (`EnergyTable::derive`, `energy`).
pub fn macro_calibration() -> Result<Vec<MacroPoint>, Error> {
    let lib = cram_arch::GateLibrary::derive(&presets::device("stt-projected")?);
    MACROS
        .iter()
        .map(|m| {
            let mut p = presets::array("cram-1k")?.params;
            p.node_nm = Some(m.node_nm);
            p.cols_per_subarray = m.access_bits;
            let org = p.validate("cram-1k")?;
            let table = EnergyTable::derive(&lib, &org);
            let read = Actions {
                read_bits: f64::from(m.access_bits),
                decodes: 1.0,
                ..Actions::default()
            };
            let e = energy(&read, &table, Pricing::ByZeros);
            let bits = f64::from(m.access_bits);
            let model = e.total_pj() / bits;
            Ok(MacroPoint {
                name: m.name.into(),
                system: m.system.into(),
                source: m.source.into(),
                array: "cram-1k".into(),
                node_nm: m.node_nm,
                access_bits: m.access_bits,
                measured_pj_per_bit: m.measured_pj_per_bit,
                model_pj_per_bit: model,
                sense_pj_per_bit: e.memory_reads_pj / bits,
                decode_pj_per_bit: e.peripherals_pj / bits,
                ratio: model / m.measured_pj_per_bit,
                assumptions: m.assumptions.iter().map(|a| (*a).to_owned()).collect(),
            })
        })
        .collect()
}

/// Evaluates the three calibration points.
///
/// ```
/// let points = cramulator::experiment::calibrate::calibration()?;
/// assert!(points.iter().all(|p| p.within_band()));
/// # Ok::<(), cramulator::error::Error>(())
/// ```
pub fn calibration() -> Result<Vec<CalibrationPoint>, Error> {
    SPECS
        .iter()
        .map(|s| {
            let b = presets::baseline(s.preset)?;
            let net = zoo::model(s.model)?;
            let work: Vec<_> = work_of_network(&net, s.bits)?
                .into_iter()
                .filter(|l| !s.conv_only || l.conv)
                .collect();
            let run = evaluate(&b, &work, s.batch);
            let pj = if s.chip_only {
                run.chip_pj(&b)
            } else {
                run.energy.total_pj()
            };
            let model_mj = pj * 1e-9;
            Ok(CalibrationPoint {
                name: s.name.into(),
                system: s.system.into(),
                source: s.source.into(),
                preset: s.preset.into(),
                model: s.model.into(),
                bits: s.bits,
                batch: s.batch,
                scope: s.scope.into(),
                measured_mj: s.measured_mj,
                model_mj,
                ratio: model_mj / s.measured_mj,
                measured_ms: s.measured_ms,
                model_ms: run.latency_s * 1e3,
                assumptions: s.assumptions.iter().map(|a| (*a).to_owned()).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The periphery model reads within 2× of the published 22 nm macro, its sense
    /// amplifiers dominating (0.150 of 0.150 pJ/bit).
    #[test]
    fn a_published_mram_macro_within_a_factor_of_two() {
        let m = macro_calibration().unwrap();
        assert_eq!(m.len(), 1);
        let p = &m[0];
        assert!(p.within_band(), "{p:?}");
        assert!((p.sense_pj_per_bit - 0.150).abs() < 1e-12, "{p:?}");
        assert!(p.decode_pj_per_bit < 1e-3 && p.ratio < 1.0, "{p:?}");
    }

    #[test]
    fn three_measured_systems_within_a_factor_of_two() {
        let points = calibration().unwrap();
        assert_eq!(points.len(), 3);
        for p in &points {
            assert!(
                (0.5..=2.0).contains(&p.ratio),
                "{}: model {:.3} mJ vs measured {:.3} mJ (ratio {:.2})",
                p.name,
                p.model_mj,
                p.measured_mj,
                p.ratio
            );
            assert!(!p.assumptions.is_empty());
        }
        // The measured side is the published arithmetic, not a fit.
        assert!((points[0].measured_mj - 8.01).abs() < 0.01);
        assert!((points[2].measured_mj - 6.72).abs() < 0.01);
    }
}
