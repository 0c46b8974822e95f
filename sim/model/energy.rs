//! Energy: action counts × an energy table (Accelergy style, docs/model.md §1.6).
//!
//! [`account`] walks one subarray's op stream once and returns its [`Actions`]: plain numbers
//! (cells preset, lines charged, decodes, …) and the lanes of every gate step. Pricing is the
//! pure function [`energy`]`(actions, table)`, so the same counts can be re-priced under
//! another device or array without re-simulating. [`EnergyTable::derive`] prices each action
//! from the device (gate library) and the array (line capacitances, peripherals).
//!
//! Logic pulses cost E(gate, z), z = inputs at 0. How a step's lanes split over z comes from a
//! [`PulseModel`]:
//!
//! * **measured**: the executor's per-step histograms (functional mode: exact, data-dependent);
//! * **expected**: per-step fractions under random operands, characterized once per program
//!   by [`characterize`] on a seeded sample. Internal signals (carries, ¬carry) are neither
//!   uniform nor independent, so a Binomial(n, ½) input model would be biased; this is the
//!   mean the data-dependent energy converges to (test below, bound stated there);
//!
//! and the **worst** case prices every lane at its gate's dearest z.
//!
//! Energy is charged only for what runs (a test proves it). Pulses, presets and word-line
//! charges apply only in selected lanes. Bit-select lines are charged only for the columns a
//! step drives, and only over the line segments holding a selected lane (each segment has its
//! own drivers, `lanes_per_line_segment` rows, the same segmentation the IR-drop check
//! assumes; [`Lines::cells`]). Idle columns, lanes and segments cost nothing. A selected row's logic word line is charged when the row becomes
//! active (the first logic step after a selection change or a memory-mode access) and stays
//! up across steps. Line energy is the supply energy C·V² of charging a line.

use cram_arch::{GateKind, GateLibrary, Lines, Org, Variant};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use smallvec::SmallVec;

use crate::model::engine::exec::{Subarray, ZeroHistogram};
use crate::model::engine::isa::{Col, LaneMask, MAX_INPUTS, OpVisitor, Program};

/// Gate kinds, for tables indexed by [`GateKind::index`].
const GATES: usize = GateKind::COUNT;
/// Input-zero counts z = 0..=5.
const ZS: usize = MAX_INPUTS + 1;

/// Price of every action, pJ.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyTable {
    /// Logic pulse per lane, by gate (index) and input-zero count z (0 beyond the arity).
    pub pulse_pj: [[f64; ZS]; GATES],
    /// Writing one cell to 0 and to 1 (presets, memory-mode writes).
    pub cell_write_pj: [f64; 2],
    /// Charging one cell's length of bit-select line to a gate's bias, by gate.
    pub bsl_logic_pj_per_cell: [f64; GATES],
    /// Charging one cell's length of bit-select line to the write voltage.
    pub bsl_write_pj_per_cell: f64,
    /// Charging one selected lane's logic word line.
    pub wll_pj: f64,
    /// One decode (per command per subarray).
    pub decoder_pj: f64,
    /// Sensing one bit (memory-mode read).
    pub sense_pj_per_bit: f64,
    /// One controller command.
    pub controller_pj_per_command: f64,
    /// Moving one bit over a bank bus, the global bus, the host link, the chip-to-chip link
    /// (0 when the array has none).
    pub moved_pj_per_bit: [f64; 4],
    /// One multiply-add of the periphery's function unit.
    pub function_unit_pj_per_op: f64,
}

/// What a run does, as numbers (f64 so that counts can be scaled and expectations summed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actions {
    /// Lane evaluations by gate (index) and input-zero count z.
    pub pulse_lanes: [[f64; ZS]; GATES],
    /// Lane evaluations by gate, all z together.
    pub gate_lanes: [f64; GATES],
    /// Cells preset to 0 and to 1 (folded into gate steps or stand-alone).
    pub preset_cells: [f64; 2],
    /// Cells' length of bit-select line charged to a gate's bias, by gate.
    pub bsl_logic_cells: [f64; GATES],
    /// Cells' length of bit-select line charged to the write voltage.
    pub bsl_write_cells: f64,
    /// Logic word lines charged (one per selected lane when rows become active).
    pub wll_lanes: f64,
    /// Decodes.
    pub decodes: f64,
    /// Bits sensed by memory-mode reads.
    pub read_bits: f64,
    /// Bits written to 0 and to 1 by memory-mode writes.
    pub write_bits: [f64; 2],
    /// Controller commands.
    pub commands: f64,
    /// Bits moved over the bank buses, the global bus, the host link, the chip-to-chip link.
    pub moved_bits: [f64; 4],
    /// Multiply-adds of the periphery's function unit.
    pub unit_ops: f64,
}

/// Energy by component, pJ.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
    /// Off-chip links: the host link and, when a run spans several chips, the chip-to-chip
    /// link.
    pub host_io_pj: f64,
    /// Controller.
    pub controller_pj: f64,
    /// The periphery's function unit (docs/model.md §2.5.1).
    pub function_unit_pj: f64,
    /// Leakage of the periphery's CMOS over the run (static; docs/model.md §1.1.2).
    pub leakage_pj: f64,
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
            + self.function_unit_pj
            + self.leakage_pj
    }

    /// Adds `k` × `other`, component by component.
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
        self.function_unit_pj += k * other.function_unit_pj;
        self.leakage_pj += k * other.leakage_pj;
    }

    /// Computing: logic pulses, presets, line drivers, decoders and the controller in the
    /// array, and the periphery's function unit, pJ.
    pub fn compute_pj(&self) -> f64 {
        self.logic_pulses_pj
            + self.presets_pj
            + self.line_drivers_pj
            + self.peripherals_pj
            + self.controller_pj
            + self.function_unit_pj
    }

    /// Moving data: memory-mode reads and writes (loading operands, sensing results), the
    /// buses and the host link, pJ.
    pub fn data_movement_pj(&self) -> f64 {
        self.memory_reads_pj + self.memory_writes_pj + self.bus_pj + self.host_io_pj
    }

    /// The energy inside boundary `b`, pJ (docs/model.md §4.1):
    ///
    /// * the **array**, its cells and their lines: logic pulses, presets, memory-mode
    ///   writes and the line drivers' charging;
    /// * the **macro**, the array with its periphery: + sensing, decoders and the
    ///   periphery's leakage;
    /// * the **chip**: + the bank and global buses, the controller and the function unit;
    /// * the **system**: + the off-chip links (host, chip to chip): every component,
    ///   [`EnergyBreakdown::total_pj`].
    pub fn within_pj(&self, b: Boundary) -> f64 {
        let array =
            self.logic_pulses_pj + self.presets_pj + self.memory_writes_pj + self.line_drivers_pj;
        let macro_ = array + self.memory_reads_pj + self.peripherals_pj + self.leakage_pj;
        let chip = macro_ + self.bus_pj + self.controller_pj + self.function_unit_pj;
        match b {
            Boundary::Array => array,
            Boundary::Macro => macro_,
            Boundary::Chip => chip,
            Boundary::System => chip + self.host_io_pj,
        }
    }
}

/// Where an energy tally stops, innermost first: each boundary adds components to the one
/// inside it ([`EnergyBreakdown::within_pj`], docs/model.md §4.1). Papers compare CRAM at
/// any of them; the tables' energy is the system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// The cells and their lines.
    Array,
    /// The array and its periphery (sense amplifiers, decoders).
    Macro,
    /// The macros, the buses between them and the controller.
    Chip,
    /// The chip and its off-chip links.
    System,
}

impl Boundary {
    /// Every boundary, innermost first.
    pub const ALL: [Boundary; 4] = [
        Boundary::Array,
        Boundary::Macro,
        Boundary::Chip,
        Boundary::System,
    ];

    /// Its name in records and metric keys.
    pub fn name(self) -> &'static str {
        match self {
            Boundary::Array => "array",
            Boundary::Macro => "macro",
            Boundary::Chip => "chip",
            Boundary::System => "system",
        }
    }
}

/// fF · V² → pJ.
const FF_V2_TO_PJ: f64 = 1e-3;

impl EnergyTable {
    /// Prices every action for a device (through its gate library) on an organisation.
    pub fn derive(lib: &GateLibrary, org: &Org) -> EnergyTable {
        let dev = &lib.device;
        let d = &dev.derived;
        let per = &org.periphery;
        let bsl_c_ff = per.c_bsl_ff_per_cell;
        let wll_c_ff = per.c_wll_ff_per_cell * f64::from(org.params.cols_per_subarray);
        // The write driver forces overdrive · I_c through the worst-case write path.
        let r_write = match dev.params.variant {
            Variant::Stt => d.r_access_ohm + d.r_ap_ohm,
            Variant::She => d.r_access_ohm + d.r_channel_ohm,
        };
        let i_write_ua = dev.params.write_overdrive * d.i_c_p_to_ap_ua.max(d.i_c_ap_to_p_ua);
        let v_write = i_write_ua * 1e-6 * r_write;
        let mut pulse_pj = [[0.0; ZS]; GATES];
        let mut bsl_logic_pj_per_cell = [0.0; GATES];
        for g in &lib.gates {
            pulse_pj[g.kind.index()][..g.e_pulse_pj.len()].copy_from_slice(&g.e_pulse_pj);
            bsl_logic_pj_per_cell[g.kind.index()] = bsl_c_ff * g.bias_v * g.bias_v * FF_V2_TO_PJ;
        }
        EnergyTable {
            pulse_pj,
            cell_write_pj: [dev.e_preset_pj(false), dev.e_preset_pj(true)],
            bsl_logic_pj_per_cell,
            bsl_write_pj_per_cell: bsl_c_ff * v_write * v_write * FF_V2_TO_PJ,
            wll_pj: wll_c_ff * per.v_wordline_v * per.v_wordline_v * FF_V2_TO_PJ,
            decoder_pj: per.e_decoder_pj,
            sense_pj_per_bit: per.e_sense_pj_per_bit,
            controller_pj_per_command: per.e_controller_pj_per_command,
            moved_pj_per_bit: [
                per.e_bank_bus_pj_per_bit,
                per.e_global_bus_pj_per_bit,
                org.params.host_link.e_pj_per_bit,
                org.params.chip_link.map_or(0.0, |l| l.e_pj_per_bit),
            ],
            function_unit_pj_per_op: per.e_function_unit_pj_per_op,
        }
    }
}

/// How logic pulses are priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// Each lane at its input-zero count (`Actions::pulse_lanes`).
    ByZeros,
    /// Each lane at its gate's dearest input-zero count (`Actions::gate_lanes`).
    Worst,
}

/// Σ a·b with eight independent partial sums (a serial f64 sum is latency-bound). Fixed
/// order, so deterministic.
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let mut acc = [0.0f64; 8];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// Energy of a set of actions: a pure function of counts and prices.
pub fn energy(a: &Actions, t: &EnergyTable, pricing: Pricing) -> EnergyBreakdown {
    let logic_pulses_pj = match pricing {
        Pricing::ByZeros => {
            // One partial sum per z over fixed-size rows: vectorizes, no bounds checks.
            let mut acc = [0.0f64; ZS];
            for (lanes, pj) in a.pulse_lanes.iter().zip(&t.pulse_pj) {
                for z in 0..ZS {
                    acc[z] += lanes[z] * pj[z];
                }
            }
            acc.iter().sum()
        }
        Pricing::Worst => (0..GATES)
            .map(|g| a.gate_lanes[g] * t.pulse_pj[g].iter().copied().fold(0.0, f64::max))
            .sum(),
    };
    EnergyBreakdown {
        logic_pulses_pj,
        presets_pj: dot(&a.preset_cells, &t.cell_write_pj),
        memory_reads_pj: a.read_bits * t.sense_pj_per_bit,
        memory_writes_pj: dot(&a.write_bits, &t.cell_write_pj),
        line_drivers_pj: dot(&a.bsl_logic_cells, &t.bsl_logic_pj_per_cell)
            + a.bsl_write_cells * t.bsl_write_pj_per_cell
            + a.wll_lanes * t.wll_pj,
        peripherals_pj: a.decodes * t.decoder_pj,
        bus_pj: a.moved_bits[0] * t.moved_pj_per_bit[0] + a.moved_bits[1] * t.moved_pj_per_bit[1],
        host_io_pj: a.moved_bits[2] * t.moved_pj_per_bit[2]
            + a.moved_bits[3] * t.moved_pj_per_bit[3],
        controller_pj: a.commands * t.controller_pj_per_command,
        function_unit_pj: a.unit_ops * t.function_unit_pj_per_op,
        // Static: added over a network's timeline (`NetRun::add_leakage`), not per action.
        leakage_pj: 0.0,
    }
}

impl Actions {
    /// Component-wise `self += k·other`.
    pub fn add_scaled(&mut self, other: &Actions, k: f64) {
        fn add<const N: usize>(a: &mut [f64; N], b: &[f64; N], k: f64) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += k * y);
        }
        for g in 0..GATES {
            add(&mut self.pulse_lanes[g], &other.pulse_lanes[g], k);
        }
        add(&mut self.gate_lanes, &other.gate_lanes, k);
        add(&mut self.preset_cells, &other.preset_cells, k);
        add(&mut self.bsl_logic_cells, &other.bsl_logic_cells, k);
        self.bsl_write_cells += k * other.bsl_write_cells;
        self.wll_lanes += k * other.wll_lanes;
        self.decodes += k * other.decodes;
        self.read_bits += k * other.read_bits;
        add(&mut self.write_bits, &other.write_bits, k);
        self.commands += k * other.commands;
        add(&mut self.moved_bits, &other.moved_bits, k);
        self.unit_ops += k * other.unit_ops;
    }

    /// Splits the lanes of each gate step (`(gate, lanes)`, program order) over input-zero
    /// counts with a model, and adds them to `pulse_lanes`.
    pub fn add_pulses(&mut self, gate_steps: &[(GateKind, u64)], model: PulseModel<'_>) {
        let per_step = match model {
            PulseModel::Measured(h) => h.len(),
            PulseModel::Expected(f) => f.len(),
        };
        assert_eq!(
            per_step,
            gate_steps.len(),
            "one histogram or fraction row per gate step"
        );
        for (i, &(gate, lanes)) in gate_steps.iter().enumerate() {
            let row = &mut self.pulse_lanes[gate.index()];
            match model {
                PulseModel::Measured(h) => {
                    row.iter_mut().zip(&h[i]).for_each(|(r, &n)| *r += n as f64)
                }
                PulseModel::Expected(f) => row
                    .iter_mut()
                    .zip(&f[i])
                    .for_each(|(r, p)| *r += lanes as f64 * p),
            }
        }
    }
}

impl Actions {
    /// Adds the lanes of gate steps by gate kind ([`GateKind::index`]) and input-zero count,
    /// summed over the steps ([`crate::model::engine::Subarray::zero_sums`]): the same
    /// pulses [`Actions::add_pulses`] adds step by step from the steps' histograms (counts
    /// are integers far below 2^53, so both sums are exact).
    pub fn add_pulse_sums(&mut self, sums: &[ZeroHistogram; GateKind::COUNT]) {
        for (row, sum) in self.pulse_lanes.iter_mut().zip(sums) {
            row.iter_mut().zip(sum).for_each(|(r, &n)| *r += n as f64);
        }
    }
}

/// One gate's rows of [`Actions`]: its `pulse_lanes` by input-zero count, its
/// `gate_lanes` and its `bsl_logic_cells`.
type GateRow = ([f64; ZS], f64, f64);

/// [`Actions`] without the gates they have no count for, as a stream's cost keeps them: a
/// program uses a few of the ten gate kinds (`nand-not` two, `nand` three), so most of the per-gate tables (640 of
/// the 752 bytes of an `Actions`) are zeros, and a sweep over subarray shapes keeps the
/// costs of about a hundred thousand streams. [`PackedActions::add_scaled_to`] adds what
/// [`Actions::add_scaled`] of the unpacked actions adds, bit for bit, for a finite k into
/// sums that started at +0.0: a gate left out has +0.0 in every entry, k·(+0.0) is ±0.0,
/// and adding ±0.0 leaves a sum as it is unless the sum is −0.0, which a sum that starts
/// at +0.0 never is (rounding to nearest gives +0.0 for an exact zero sum).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackedActions {
    /// Per gate with an entry other than +0.0, in index order: its index and its rows
    /// (in place for up to two gates, as many as the default `nand-not` set's programs use;
    /// the `nand` and `maj` sets' use more, kept on the heap).
    gates: SmallVec<[(u8, GateRow); 2]>,
    /// As in [`Actions`].
    pub preset_cells: [f64; 2],
    /// As in [`Actions`].
    pub bsl_write_cells: f64,
    /// As in [`Actions`].
    pub wll_lanes: f64,
    /// As in [`Actions`].
    pub decodes: f64,
    /// As in [`Actions`].
    pub read_bits: f64,
    /// As in [`Actions`].
    pub write_bits: [f64; 2],
    /// As in [`Actions`].
    pub commands: f64,
    /// As in [`Actions`].
    pub moved_bits: [f64; 4],
    /// As in [`Actions`].
    pub unit_ops: f64,
}

impl From<&Actions> for PackedActions {
    fn from(a: &Actions) -> PackedActions {
        let zero = |v: f64| v.to_bits() == 0;
        let gates = (0..GATES)
            .filter(|&g| {
                !(a.pulse_lanes[g].iter().all(|&v| zero(v))
                    && zero(a.gate_lanes[g])
                    && zero(a.bsl_logic_cells[g]))
            })
            .map(|g| {
                let row = (a.pulse_lanes[g], a.gate_lanes[g], a.bsl_logic_cells[g]);
                (g as u8, row)
            })
            .collect();
        PackedActions {
            gates,
            preset_cells: a.preset_cells,
            bsl_write_cells: a.bsl_write_cells,
            wll_lanes: a.wll_lanes,
            decodes: a.decodes,
            read_bits: a.read_bits,
            write_bits: a.write_bits,
            commands: a.commands,
            moved_bits: a.moved_bits,
            unit_ops: a.unit_ops,
        }
    }
}

impl PackedActions {
    /// `into += k·self`, component by component, as [`Actions::add_scaled`] of the
    /// unpacked actions (for a finite `k`, into sums that started at +0.0).
    pub fn add_scaled_to(&self, into: &mut Actions, k: f64) {
        debug_assert!(k.is_finite(), "a finite scale, k = {k}");
        fn add<const N: usize>(a: &mut [f64; N], b: &[f64; N], k: f64) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += k * y);
        }
        for (g, (pulses, lanes, bsl)) in self.gates.iter() {
            let g = usize::from(*g);
            add(&mut into.pulse_lanes[g], pulses, k);
            into.gate_lanes[g] += k * lanes;
            into.bsl_logic_cells[g] += k * bsl;
        }
        add(&mut into.preset_cells, &self.preset_cells, k);
        into.bsl_write_cells += k * self.bsl_write_cells;
        into.wll_lanes += k * self.wll_lanes;
        into.decodes += k * self.decodes;
        into.read_bits += k * self.read_bits;
        add(&mut into.write_bits, &self.write_bits, k);
        into.commands += k * self.commands;
        add(&mut into.moved_bits, &self.moved_bits, k);
        into.unit_ops += k * self.unit_ops;
    }

    /// The actions unpacked (the left-out gates' entries +0.0).
    pub fn unpacked(&self) -> Actions {
        let mut a = Actions {
            preset_cells: self.preset_cells,
            bsl_write_cells: self.bsl_write_cells,
            wll_lanes: self.wll_lanes,
            decodes: self.decodes,
            read_bits: self.read_bits,
            write_bits: self.write_bits,
            commands: self.commands,
            moved_bits: self.moved_bits,
            unit_ops: self.unit_ops,
            ..Actions::default()
        };
        for &(g, (pulses, lanes, bsl)) in self.gates.iter() {
            let g = usize::from(g);
            (a.pulse_lanes[g], a.gate_lanes[g], a.bsl_logic_cells[g]) = (pulses, lanes, bsl);
        }
        a
    }
}

/// How the lanes of each gate step split over input-zero counts.
#[derive(Debug, Clone, Copy)]
pub enum PulseModel<'a> {
    /// Lanes counted by the executor, per gate step (data-dependent; carries its own counts).
    Measured(&'a [ZeroHistogram]),
    /// Expected fraction of lanes per z, per gate step (mean under random operands).
    Expected(&'a [[f64; ZS]]),
}

/// One subarray run's actions and the lanes of each gate step.
#[derive(Debug, Clone, PartialEq)]
pub struct Accounted {
    /// Everything but the z split of the pulses (`pulse_lanes` is zero; see
    /// [`Actions::add_pulses`]) and the controller (per command, not per subarray).
    pub actions: Actions,
    /// Per gate step, in program order: its gate and the lanes it ran in.
    pub gate_steps: Vec<(GateKind, u64)>,
}

/// Walks one subarray's program with `lanes` valid lanes (the first rows) and `cols`
/// columns, on a subarray whose bit-select lines are `lines`.
pub fn account(program: &Program, lanes: u64, cols: u64, lines: Lines) -> Accounted {
    let mut v = Walker {
        lanes,
        cols,
        lines,
        selected: (0, lanes.min(lines.rows)),
        rows_active: false,
        out: Accounted {
            actions: Actions::default(),
            gate_steps: Vec::new(),
        },
    };
    program.visit(&mut v);
    v.out
}

/// The accounting visitor behind [`account`].
struct Walker {
    lanes: u64,
    cols: u64,
    lines: Lines,
    /// The selected lanes, lo..hi.
    selected: (u64, u64),
    /// Whether the selected lanes' logic word lines are asserted.
    rows_active: bool,
    out: Accounted,
}

impl Walker {
    /// A logic step needs the selected rows' logic word lines up; they stay up across steps
    /// until the selection changes or a memory-mode access intervenes.
    fn activate_rows(&mut self) {
        if !self.rows_active {
            self.out.actions.wll_lanes += self.count() as f64;
            self.rows_active = true;
        }
    }

    /// Selected lanes.
    fn count(&self) -> u64 {
        self.selected.1.saturating_sub(self.selected.0)
    }

    /// Cells of one bit-select line a step charges: the segments holding selected lanes.
    fn line_cells(&self) -> f64 {
        self.lines.cells(self.selected.0, self.selected.1) as f64
    }
}

impl OpVisitor for Walker {
    fn preset(&mut self, _col: Col, value: bool) {
        self.activate_rows();
        let (sel, cells) = (self.count() as f64, self.line_cells());
        let a = &mut self.out.actions;
        a.preset_cells[usize::from(value)] += sel;
        a.bsl_write_cells += cells;
        a.decodes += 1.0;
    }

    fn gate(&mut self, gate: GateKind, ins: &[Col], _out: Col, preset: bool) {
        self.activate_rows();
        let (n, cells) = (self.count(), self.line_cells());
        let sel = n as f64;
        let a = &mut self.out.actions;
        if preset {
            a.preset_cells[usize::from(gate.preset())] += sel;
            a.bsl_write_cells += cells;
        }
        // The inputs' and the output's bit-select lines, charged to the gate's bias.
        a.bsl_logic_cells[gate.index()] += (ins.len() + 1) as f64 * cells;
        a.gate_lanes[gate.index()] += sel;
        a.decodes += 1.0;
        self.out.gate_steps.push((gate, n));
    }

    fn set_mask(&mut self, mask: LaneMask) {
        self.selected = match mask {
            LaneMask::All => (0, self.lanes),
            LaneMask::Range { lo, hi } => {
                let hi = u64::from(hi).min(self.lanes);
                (u64::from(lo).min(hi), hi)
            }
        };
        debug_assert_eq!(self.count(), mask.selected(self.lanes));
        self.rows_active = false;
        self.out.actions.decodes += 1.0;
    }

    fn read_row(&mut self, _lane: u32) {
        self.rows_active = false;
        let a = &mut self.out.actions;
        a.read_bits += self.cols as f64;
        a.decodes += 1.0;
    }

    fn write_row(&mut self, lane: u32, bits: &[u64]) {
        self.rows_active = false;
        let ones = bits
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum::<u64>()
            .min(self.cols);
        let a = &mut self.out.actions;
        a.write_bits[1] += ones as f64;
        a.write_bits[0] += (self.cols - ones) as f64;
        // Every column's bit line is driven over the row's segment, plus the row's word line.
        let lane = u64::from(lane);
        a.bsl_write_cells += (self.cols * self.lines.cells(lane, lane + 1)) as f64;
        a.wll_lanes += 1.0;
        a.decodes += 1.0;
    }
}

/// Lanes of the characterization sample.
pub const CHARACTERIZATION_LANES: usize = 4096;

/// Expected fraction of lanes with z input zeros, per gate step, under uniformly random input
/// operands: measured on [`CHARACTERIZATION_LANES`] lanes of seeded random data (ChaCha8,
/// `seed`). `inputs` are the program's input columns.
pub fn characterize(program: &Program, inputs: &[Col], seed: u64) -> Vec<[f64; ZS]> {
    let mut sa = Subarray::new(CHARACTERIZATION_LANES, program.cols());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    sa.fill_random(inputs, &mut rng);
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

/// Where a program runs, for [`run_energy`].
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// Lanes in all.
    pub lanes: u64,
    /// The bit-select lines of a subarray (`rows` = lanes per subarray).
    pub lines: Lines,
    /// Columns per subarray.
    pub cols: u64,
    /// Controller commands issued in all (ops × passes for a broadcast kernel).
    pub commands: u64,
}

/// Energy of running a program on `lanes` lanes spread over subarrays of `per` lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnergy {
    /// The run's actions with the expected (mean) pulse split: re-price them with
    /// [`energy`] under another table without re-simulating.
    pub actions: Actions,
    /// Data-dependent energy from the executor's histograms (functional mode only).
    pub data_dependent: Option<EnergyBreakdown>,
    /// Mean energy under random operands (characterized pulse model).
    pub mean: EnergyBreakdown,
    /// Worst-case total: every lane at its most expensive input pattern, pJ.
    pub worst_total_pj: f64,
}

impl RunEnergy {
    /// Adds the periphery's leakage over the run, `pj`, to every pulse model's energy
    /// (docs/model.md §1.1.2).
    pub fn add_leakage(&mut self, pj: f64) {
        self.mean.leakage_pj += pj;
        if let Some(d) = &mut self.data_dependent {
            d.leakage_pj += pj;
        }
        self.worst_total_pj += pj;
    }
}

/// Key mixed into the seed for the characterization sample.
pub const CHARACTERIZATION_KEY: u64 = 0xC4A2_AC7E_21CE_0001;

/// Actions of a program on a placement: full subarrays plus one partial, the controller per
/// command; and the lanes of each gate step over all subarrays.
pub fn placed_actions(program: &Program, at: Placement) -> (Actions, Vec<(GateKind, u64)>) {
    let per = at.lines.rows.max(1);
    let (full, rem) = (at.lanes / per, at.lanes % per);
    let a_full = account(program, per, at.cols, at.lines);
    let a_rem = (rem > 0).then(|| account(program, rem, at.cols, at.lines));
    let mut actions = Actions::default();
    actions.add_scaled(&a_full.actions, full as f64);
    if let Some(r) = &a_rem {
        actions.add_scaled(&r.actions, 1.0);
    }
    actions.commands = at.commands as f64;
    let steps = a_full
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
    (actions, steps)
}

/// Energy of a program on a placement under the mean, worst and (given histograms) measured
/// pulse models.
pub fn run_energy(
    program: &Program,
    inputs: &[Col],
    table: &EnergyTable,
    at: Placement,
    seed: u64,
    measured: Option<&[ZeroHistogram]>,
) -> RunEnergy {
    let (base, steps) = placed_actions(program, at);
    let fractions = characterize(program, inputs, seed ^ CHARACTERIZATION_KEY);
    let mut mean_actions = base.clone();
    mean_actions.add_pulses(&steps, PulseModel::Expected(&fractions));
    let data_dependent = measured.map(|h| {
        let mut a = base.clone();
        a.add_pulses(&steps, PulseModel::Measured(h));
        energy(&a, table, Pricing::ByZeros)
    });
    RunEnergy {
        mean: energy(&mean_actions, table, Pricing::ByZeros),
        worst_total_pj: energy(&base, table, Pricing::Worst).total_pj(),
        data_dependent,
        actions: mean_actions,
    }
}

/// Actions of a chip-level transfer command (a row move or a host transfer), for `cols`
/// columns per row. The row's contents are not known here, so the write is priced as half
/// zeros and half ones (the mean of random data). Array commands are accounted per subarray
/// by [`account`].
pub fn transfer_actions(op: &crate::model::timing::ChipOp, org: &Org) -> Actions {
    use crate::model::timing::ChipOp;
    let cols = f64::from(org.params.cols_per_subarray);
    let lines = org.lines();
    let mut a = Actions {
        commands: 1.0,
        ..Actions::default()
    };
    let read = |a: &mut Actions| {
        a.read_bits += cols;
        a.decodes += 1.0;
    };
    // The row's bit lines are driven over the segment holding it.
    let write = |a: &mut Actions, lane: u32| {
        let lane = u64::from(lane);
        a.write_bits = [cols / 2.0, cols / 2.0];
        a.bsl_write_cells += cols * lines.cells(lane, lane + 1) as f64;
        a.wll_lanes += 1.0;
        a.decodes += 1.0;
    };
    match *op {
        ChipOp::Array { .. } => a.commands = 0.0,
        ChipOp::MoveRow {
            src, dst, dst_lane, ..
        } => {
            read(&mut a);
            let link = usize::from(org.bank_of(src) != org.bank_of(dst));
            a.moved_bits[link] += cols;
            write(&mut a, dst_lane);
        }
        ChipOp::HostLoad { lane, .. } => {
            a.moved_bits[2] += cols;
            write(&mut a, lane);
        }
        ChipOp::HostStore { .. } => {
            read(&mut a);
            a.moved_bits[2] += cols;
        }
    }
    a
}

#[cfg(test)]
#[path = "energy_tests.rs"]
mod tests;
