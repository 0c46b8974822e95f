//! Energy: action counts × an energy table (Accelergy style, DESIGN §1.6).
//!
//! [`EnergyTable::derive`] prices every action from the device (gate library) and the array
//! (line capacitances, peripherals). [`account`] walks one subarray's op stream and returns
//! the energy of everything except the logic pulses, plus the selected-lane count of each
//! gate step; [`pulse_energy`] prices the pulses under a [`PulseModel`]:
//!
//! * **measured** — the executor's per-step histograms of input zeros (functional mode:
//!   exact, data-dependent);
//! * **expected** — per-step fractions of lanes with z zeros under random operands,
//!   characterized once per program by [`characterize`] on a seeded sample. Internal signals
//!   (carries, ¬carry) are neither uniform nor independent, so a Binomial(n, ½) input model
//!   would be biased; the characterization is the mean the data-dependent energy converges to;
//! * **worst** — every lane at its most expensive input pattern.
//!
//! Energy is charged only for what runs (a test proves it): pulses, presets and word-line
//! charges only in selected lanes; bit-select lines only for the columns a step drives (each
//! charged along its full length, all `lanes_per_subarray` cells); nothing for idle columns or
//! lanes. A selected row's logic word line is charged when the row becomes active (first
//! logic step after a selection change or a memory-mode access) and stays up across steps.
//! Line energy is the supply energy C·V² of charging a line.

use std::collections::BTreeMap;

use cram_arch::{Device, GateKind, GateLibrary, Org, Variant};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;

use crate::engine::exec::{Subarray, ZeroHistogram};
use crate::engine::isa::{Col, LaneMask, MAX_INPUTS, OpVisitor, Program};

/// Price of every action, pJ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyTable {
    /// Logic pulse per lane, per gate and input-zero count z (index z).
    pub pulse_pj: BTreeMap<GateKind, Vec<f64>>,
    /// Preset write of one cell to 0 and to 1.
    pub preset_pj: [f64; 2],
    /// Charging one bit-select line to a gate's bias.
    pub bsl_logic_pj: BTreeMap<GateKind, f64>,
    /// Charging one bit-select line to the write voltage (presets, row writes).
    pub bsl_write_pj: f64,
    /// Charging one selected lane's logic word line.
    pub wll_pj: f64,
    /// One decode (per command per subarray).
    pub decoder_pj: f64,
    /// Sensing one bit (memory-mode read).
    pub sense_pj_per_bit: f64,
    /// One controller command.
    pub controller_pj_per_command: f64,
    /// Moving one bit over a bank bus, the global bus, the host link.
    pub bus_pj_per_bit: [f64; 3],
}

/// Energy by component, pJ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EnergyBreakdown {
    /// Logic pulses through the gate cells.
    pub logic_pulses_pj: f64,
    /// Output presets (folded into gate steps) and stand-alone column presets.
    pub presets_pj: f64,
    /// Memory-mode reads (sensing).
    pub memory_reads_pj: f64,
    /// Memory-mode writes.
    pub memory_writes_pj: f64,
    /// Bit-select and logic word-line charging.
    pub line_drivers_pj: f64,
    /// Decoders.
    pub peripherals_pj: f64,
    /// Bank and global buses.
    pub bus_pj: f64,
    /// Host link.
    pub host_io_pj: f64,
    /// Controller.
    pub controller_pj: f64,
}

impl EnergyBreakdown {
    /// Sum of all components.
    pub fn total_pj(&self) -> f64 {
        self.logic_pulses_pj
            + self.presets_pj
            + self.memory_reads_pj
            + self.memory_writes_pj
            + self.line_drivers_pj
            + self.peripherals_pj
            + self.bus_pj
            + self.host_io_pj
            + self.controller_pj
    }

    /// Component-wise `self + k·other`.
    pub fn add_scaled(&mut self, other: &EnergyBreakdown, k: f64) {
        self.logic_pulses_pj += k * other.logic_pulses_pj;
        self.presets_pj += k * other.presets_pj;
        self.memory_reads_pj += k * other.memory_reads_pj;
        self.memory_writes_pj += k * other.memory_writes_pj;
        self.line_drivers_pj += k * other.line_drivers_pj;
        self.peripherals_pj += k * other.peripherals_pj;
        self.bus_pj += k * other.bus_pj;
        self.host_io_pj += k * other.host_io_pj;
        self.controller_pj += k * other.controller_pj;
    }
}

/// fF · V² → pJ.
const FF_V2_TO_PJ: f64 = 1e-3;

impl EnergyTable {
    /// Prices every action for a device (through its gate library) on an organisation.
    pub fn derive(lib: &GateLibrary, org: &Org) -> EnergyTable {
        let dev: &Device = &lib.device;
        let d = &dev.derived;
        let per = &org.params.peripherals;
        let bsl_c_ff = per.c_bsl_ff_per_cell * f64::from(org.params.lanes_per_subarray);
        let wll_c_ff = per.c_wll_ff_per_cell * f64::from(org.params.cols_per_subarray);
        // The write driver forces overdrive · I_c through the worst-case write path.
        let r_write = match dev.params.variant {
            Variant::Stt => d.r_access_ohm + d.r_ap_ohm,
            Variant::She => d.r_access_ohm + d.r_channel_ohm,
        };
        let i_write_ua = dev.params.write_overdrive * d.i_c_p_to_ap_ua.max(d.i_c_ap_to_p_ua);
        let v_write = i_write_ua * 1e-6 * r_write;
        EnergyTable {
            pulse_pj: lib
                .gates
                .iter()
                .map(|g| (g.kind, g.e_pulse_pj.clone()))
                .collect(),
            preset_pj: [dev.e_preset_pj(false), dev.e_preset_pj(true)],
            bsl_logic_pj: lib
                .gates
                .iter()
                .map(|g| (g.kind, bsl_c_ff * g.bias_v * g.bias_v * FF_V2_TO_PJ))
                .collect(),
            bsl_write_pj: bsl_c_ff * v_write * v_write * FF_V2_TO_PJ,
            wll_pj: wll_c_ff * per.v_wordline_v * per.v_wordline_v * FF_V2_TO_PJ,
            decoder_pj: per.e_decoder_pj,
            sense_pj_per_bit: per.e_sense_pj_per_bit,
            controller_pj_per_command: per.e_controller_pj_per_command,
            bus_pj_per_bit: [
                org.params.bank_bus.e_pj_per_bit,
                org.params.global_bus.e_pj_per_bit,
                org.params.host_link.e_pj_per_bit,
            ],
        }
    }
}

/// What one subarray run of a program costs apart from the logic pulses, and the gate steps
/// whose pulses [`pulse_energy`] prices.
#[derive(Debug, Clone, PartialEq)]
pub struct Accounted {
    /// Everything but `logic_pulses_pj` (which is 0 here) and `controller_pj` (charged per
    /// command, not per subarray: see [`controller_energy`]).
    pub energy: EnergyBreakdown,
    /// Per gate step, in program order: its gate and the lanes it ran in.
    pub gate_steps: Vec<(GateKind, u64)>,
}

/// Walks one subarray's program with `lanes` valid lanes.
pub fn account(program: &Program, lanes: u64, cols: u64, table: &EnergyTable) -> Accounted {
    let mut v = Walker {
        t: table,
        lanes,
        cols,
        selected: lanes,
        rows_active: false,
        out: Accounted {
            energy: EnergyBreakdown::default(),
            gate_steps: Vec::new(),
        },
    };
    program.visit(&mut v);
    v.out
}

/// The accounting visitor behind [`account`].
struct Walker<'t> {
    t: &'t EnergyTable,
    lanes: u64,
    cols: u64,
    selected: u64,
    /// Whether the selected lanes' logic word lines are asserted.
    rows_active: bool,
    out: Accounted,
}

impl Walker<'_> {
    /// A logic step needs the selected rows' logic word lines up; they stay up across steps
    /// until the selection changes or a memory-mode access intervenes.
    fn activate_rows(&mut self) {
        if !self.rows_active {
            self.out.energy.line_drivers_pj += self.selected as f64 * self.t.wll_pj;
            self.rows_active = true;
        }
    }
}

impl OpVisitor for Walker<'_> {
    fn preset(&mut self, _col: Col, value: bool) {
        self.activate_rows();
        let e = &mut self.out.energy;
        e.presets_pj += self.selected as f64 * self.t.preset_pj[usize::from(value)];
        e.line_drivers_pj += self.t.bsl_write_pj;
        e.peripherals_pj += self.t.decoder_pj;
    }

    fn gate(&mut self, gate: GateKind, ins: &[Col], _out: Col, preset: bool) {
        self.activate_rows();
        let (t, sel) = (self.t, self.selected as f64);
        let e = &mut self.out.energy;
        if preset {
            e.presets_pj += sel * t.preset_pj[usize::from(gate.preset())];
            e.line_drivers_pj += t.bsl_write_pj;
        }
        // The inputs' and the output's bit-select lines, charged to the gate's bias.
        e.line_drivers_pj += (ins.len() + 1) as f64 * t.bsl_logic_pj[&gate];
        e.peripherals_pj += t.decoder_pj;
        self.out.gate_steps.push((gate, self.selected));
    }

    fn set_mask(&mut self, mask: LaneMask) {
        self.selected = match mask {
            LaneMask::All => self.lanes,
            LaneMask::Range { lo, hi } => {
                u64::from(hi).min(self.lanes).saturating_sub(u64::from(lo))
            }
        };
        self.rows_active = false;
        self.out.energy.peripherals_pj += self.t.decoder_pj;
    }

    fn read_row(&mut self, _lane: u32) {
        self.rows_active = false;
        let e = &mut self.out.energy;
        e.memory_reads_pj += self.cols as f64 * self.t.sense_pj_per_bit;
        e.peripherals_pj += self.t.decoder_pj;
    }

    fn write_row(&mut self, _lane: u32, bits: &[u64]) {
        self.rows_active = false;
        let ones: u64 = bits
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum::<u64>()
            .min(self.cols);
        let e = &mut self.out.energy;
        e.memory_writes_pj +=
            ones as f64 * self.t.preset_pj[1] + (self.cols - ones) as f64 * self.t.preset_pj[0];
        // Every column's bit line is driven along its full length, plus the row's word line.
        e.line_drivers_pj += self.cols as f64 * self.t.bsl_write_pj + self.t.wll_pj;
        e.peripherals_pj += self.t.decoder_pj;
    }
}

/// Controller energy of `commands` issued commands.
pub fn controller_energy(table: &EnergyTable, commands: u64) -> f64 {
    table.controller_pj_per_command * commands as f64
}

/// How the lanes of each gate step split over input-zero counts.
#[derive(Debug, Clone, Copy)]
pub enum PulseModel<'a> {
    /// Lanes counted by the executor, per gate step (data-dependent).
    Measured(&'a [ZeroHistogram]),
    /// Expected fraction of lanes per z, per gate step (mean under random operands).
    Expected(&'a [[f64; MAX_INPUTS + 1]]),
    /// Every lane at the gate's most expensive z.
    Worst,
}

/// Pulse energy of the gate steps (`(gate, lanes)` per step) under a model, pJ. For
/// `Measured` the histograms carry the lane counts themselves.
pub fn pulse_energy(
    gate_steps: &[(GateKind, u64)],
    table: &EnergyTable,
    model: PulseModel<'_>,
) -> f64 {
    gate_steps
        .iter()
        .enumerate()
        .map(|(i, &(gate, lanes))| {
            let e = &table.pulse_pj[&gate];
            match model {
                PulseModel::Measured(h) => {
                    e.iter().zip(&h[i]).map(|(e, &n)| e * n as f64).sum::<f64>()
                }
                PulseModel::Expected(f) => {
                    lanes as f64 * e.iter().zip(&f[i]).map(|(e, p)| e * p).sum::<f64>()
                }
                PulseModel::Worst => lanes as f64 * e.iter().copied().fold(0.0, f64::max),
            }
        })
        .sum()
}

/// Lanes of the characterization sample.
pub const CHARACTERIZATION_LANES: usize = 4096;

/// Expected fraction of lanes with z input zeros, per gate step, under uniformly random input
/// operands: measured on [`CHARACTERIZATION_LANES`] lanes of seeded random data (ChaCha8,
/// `seed`). `inputs` are the program's input columns.
pub fn characterize(program: &Program, inputs: &[Col], seed: u64) -> Vec<[f64; MAX_INPUTS + 1]> {
    let mut sa = Subarray::new(CHARACTERIZATION_LANES, program.cols());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for &c in inputs {
        sa.column_mut(c)
            .iter_mut()
            .for_each(|w| *w = rng.next_u64());
    }
    sa.set_track_zeros(true);
    sa.run(program).expect("program fits its own columns");
    sa.zero_histograms()
        .iter()
        .map(|h| {
            let total: u64 = h.iter().sum();
            std::array::from_fn(|z| {
                if total == 0 {
                    0.0
                } else {
                    h[z] as f64 / total as f64
                }
            })
        })
        .collect()
}

/// Energy of running a program on `lanes` lanes spread over subarrays of `per` lanes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEnergy {
    /// Data-dependent energy from the executor's histograms (functional mode only).
    pub data_dependent: Option<EnergyBreakdown>,
    /// Mean energy under random operands (characterized pulse model).
    pub mean: EnergyBreakdown,
    /// Worst-case total: every lane at its most expensive input pattern, pJ.
    pub worst_total_pj: f64,
}

/// Where a program runs, for [`run_energy`].
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// Lanes in all.
    pub lanes: u64,
    /// Lanes per subarray.
    pub lanes_per_subarray: u64,
    /// Columns per subarray.
    pub cols: u64,
    /// Controller commands issued in all (ops × passes for a broadcast kernel).
    pub commands: u64,
}

/// Key mixed into the seed for the characterization sample.
pub const CHARACTERIZATION_KEY: u64 = 0xC4A2_AC7E_21CE_0001;

/// Energy of a program on a placement: full subarrays plus one partial, the controller per
/// command, the pulses under the mean, worst and (if histograms are given) measured models.
pub fn run_energy(
    program: &Program,
    inputs: &[Col],
    table: &EnergyTable,
    at: Placement,
    seed: u64,
    measured: Option<&[ZeroHistogram]>,
) -> RunEnergy {
    let per = at.lanes_per_subarray.max(1);
    let (full, rem) = (at.lanes / per, at.lanes % per);
    let a_full = account(program, per, at.cols, table);
    let a_rem = (rem > 0).then(|| account(program, rem, at.cols, table));
    let mut base = EnergyBreakdown::default();
    base.add_scaled(&a_full.energy, full as f64);
    if let Some(r) = &a_rem {
        base.add_scaled(&r.energy, 1.0);
    }
    base.controller_pj = controller_energy(table, at.commands);
    let steps: Vec<(GateKind, u64)> = a_full
        .gate_steps
        .iter()
        .enumerate()
        .map(|(i, &(g, l))| {
            (
                g,
                l * full + a_rem.as_ref().map_or(0, |r| r.gate_steps[i].1),
            )
        })
        .collect();
    let fractions = characterize(program, inputs, seed ^ CHARACTERIZATION_KEY);
    let with = |pulses: f64| EnergyBreakdown {
        logic_pulses_pj: pulses,
        ..base
    };
    RunEnergy {
        data_dependent: measured
            .map(|h| with(pulse_energy(&steps, table, PulseModel::Measured(h)))),
        mean: with(pulse_energy(
            &steps,
            table,
            PulseModel::Expected(&fractions),
        )),
        worst_total_pj: with(pulse_energy(&steps, table, PulseModel::Worst)).total_pj(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::isa::Op;
    use crate::kernels::check::{RunConfig, run_and_check};
    use crate::kernels::{GateSet, KernelKind, KernelSpec};
    use cram_arch::presets;

    fn table() -> (GateLibrary, Org, EnergyTable) {
        let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
        let org = presets::array("cram-1k").unwrap();
        let t = EnergyTable::derive(&lib, &org);
        (lib, org, t)
    }

    fn nand_program(extra_cols: usize, mask: Option<(u32, u32)>) -> Program {
        let mut ops = Vec::new();
        if let Some((lo, hi)) = mask {
            ops.push(Op::SetMask(LaneMask::Range { lo, hi }));
        }
        ops.push(Op::Gate {
            gate: GateKind::Nand,
            ins: [0, 1, 0, 0, 0],
            out: 2,
            preset: true,
        });
        Program::new(
            ops,
            vec![],
            (0..3 + extra_cols).map(|i| format!("c{i}")).collect(),
        )
        .unwrap()
    }

    /// The table by hand: 0.1 fF/cell × 1024 cells = 102.4 fF per line.
    #[test]
    fn table_entries_by_hand() {
        let (lib, _, t) = table();
        assert!((t.wll_pj - 102.4e-3).abs() < 1e-12); // 102.4 fF × 1 V²
        let nand = lib.get(GateKind::Nand);
        assert!(
            (t.bsl_logic_pj[&GateKind::Nand] - 102.4 * nand.bias_v * nand.bias_v * 1e-3).abs()
                < 1e-15
        );
        assert_eq!(t.pulse_pj[&GateKind::Nand], nand.e_pulse_pj);
        assert_eq!(
            t.preset_pj,
            [lib.device.e_preset_pj(false), lib.device.e_preset_pj(true)]
        );
    }

    /// One NAND step on a full subarray, every component by hand.
    #[test]
    fn one_gate_step_by_hand() {
        let (_, _, t) = table();
        let a = account(&nand_program(0, None), 1024, 1024, &t);
        let e = &a.energy;
        assert!((e.presets_pj - 1024.0 * t.preset_pj[0]).abs() < 1e-9);
        let lines = 1024.0 * t.wll_pj + t.bsl_write_pj + 3.0 * t.bsl_logic_pj[&GateKind::Nand];
        assert!((e.line_drivers_pj - lines).abs() < 1e-9);
        assert_eq!(e.peripherals_pj, t.decoder_pj);
        assert_eq!(a.gate_steps, vec![(GateKind::Nand, 1024)]);
        // 1024 lanes with z = 0, 1, 2 in the proportions 1:2:1.
        let h = [256, 512, 256, 0, 0, 0];
        let e_nand = &t.pulse_pj[&GateKind::Nand];
        let by_hand = 256.0 * e_nand[0] + 512.0 * e_nand[1] + 256.0 * e_nand[2];
        assert!(
            (pulse_energy(&a.gate_steps, &t, PulseModel::Measured(&[h])) - by_hand).abs() < 1e-12
        );
        assert!(pulse_energy(&a.gate_steps, &t, PulseModel::Worst) >= by_hand);
    }

    /// Unselected lanes cost no pulse, preset or word-line energy; unused columns cost nothing.
    #[test]
    fn idle_lanes_and_columns_cost_nothing() {
        let (_, _, t) = table();
        let all = account(&nand_program(0, None), 1024, 1024, &t).energy;
        let wide = account(&nand_program(500, None), 1024, 1024, &t).energy;
        assert_eq!(all, wide);
        let ten = account(&nand_program(0, Some((0, 10))), 1024, 1024, &t);
        assert_eq!(ten.gate_steps, vec![(GateKind::Nand, 10)]);
        assert!((ten.energy.presets_pj - 10.0 * t.preset_pj[0]).abs() < 1e-12);
        // Word lines of 10 rows; the bit-select lines span the subarray whatever is selected.
        let lines = 10.0 * t.wll_pj + t.bsl_write_pj + 3.0 * t.bsl_logic_pj[&GateKind::Nand];
        assert!((ten.energy.line_drivers_pj - lines).abs() < 1e-12);
        assert_eq!(ten.energy.peripherals_pj, 2.0 * t.decoder_pj); // mask + step
    }

    /// Data-dependent pulse energy over N random lanes converges to the characterized mean.
    /// Bound: a lane's pulse energy lies in [lo, hi] (sum over steps of the cheapest and the
    /// dearest z), so its standard deviation is at most (hi − lo)/2 (Popoviciu); the mean of
    /// N lanes and the M-lane characterization then differ by at most
    /// 5 · (hi − lo)/2 · √(1/N + 1/M) per lane, with probability far above 1 − 1e-6.
    #[test]
    fn data_dependent_energy_converges_to_the_mean_model() {
        let (lib, org, t) = table();
        for (kind, set) in [
            (KernelKind::Add, GateSet::Maj),
            (KernelKind::Mul, GateSet::Nand),
            (KernelKind::Popcount, GateSet::Maj),
        ] {
            let k = KernelSpec {
                kind,
                bits: 12,
                bits_b: 12,
                constant: 0,
                gate_set: set,
            }
            .build();
            let n: u64 = 60_000;
            let cfg = RunConfig {
                lanes: n as usize,
                lanes_per_subarray: 1024,
                seed: 5,
                error_rate: 0.0,
                track_zeros: true,
            };
            let r = run_and_check(&k, &cfg);
            assert_eq!(r.mismatched_lanes, 0);
            let inputs: Vec<Col> = k.inputs.iter().flat_map(|o| o.cols.clone()).collect();
            let at = Placement {
                lanes: n,
                lanes_per_subarray: 1024,
                cols: 1024,
                commands: k.program.ops().len() as u64,
            };
            let e = run_energy(&k.program, &inputs, &t, at, 5, Some(&r.zero_histograms));
            let measured = e.data_dependent.unwrap().logic_pulses_pj / n as f64;
            let mean = e.mean.logic_pulses_pj / n as f64;
            let steps = account(&k.program, 1, 1024, &t).gate_steps;
            let range: f64 = steps
                .iter()
                .map(|(g, _)| {
                    let p = &t.pulse_pj[g];
                    p.iter().copied().fold(0.0, f64::max)
                        - p.iter().copied().fold(f64::INFINITY, f64::min)
                })
                .sum();
            let bound =
                5.0 * range / 2.0 * (1.0 / n as f64 + 1.0 / CHARACTERIZATION_LANES as f64).sqrt();
            assert!(
                (measured - mean).abs() <= bound,
                "{kind:?}: {measured} vs {mean} (bound {bound})"
            );
            // The executor ran exactly the lanes the accountant counts.
            let lanes_run: u64 = r
                .zero_histograms
                .iter()
                .map(|h| h.iter().sum::<u64>())
                .sum();
            assert_eq!(lanes_run, steps.len() as u64 * n);
            let _ = (&lib, &org);
        }
    }
}
