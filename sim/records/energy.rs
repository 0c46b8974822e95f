//! Energy records: the model's energy breakdowns, action counts and baseline energies as
//! they are written (`report.json`, `kernel --json`, `simulate --json`), converted from the
//! model's types at the boundary.

use crate::model::{baseline, energy};
use serde::{Deserialize, Serialize};

/// Gate kinds in [`cram_arch::GateKind::index`] order.
const GATES: usize = cram_arch::GateKind::COUNT;
/// Input-zero counts z = 0..=5.
const ZS: usize = crate::model::engine::isa::MAX_INPUTS + 1;

// Converted from the model's [`energy::EnergyBreakdown`].
/// Energy by component, pJ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The components by name, in field order, pJ.
    pub fn components(&self) -> [(&'static str, f64); 11] {
        [
            ("logic pulses", self.logic_pulses_pj),
            ("presets", self.presets_pj),
            ("memory reads", self.memory_reads_pj),
            ("memory writes", self.memory_writes_pj),
            ("line drivers", self.line_drivers_pj),
            ("peripherals", self.peripherals_pj),
            ("bus", self.bus_pj),
            ("host I/O", self.host_io_pj),
            ("controller", self.controller_pj),
            ("function unit", self.function_unit_pj),
            ("leakage", self.leakage_pj),
        ]
    }

    /// Sum of all components, pJ (the same sum, in the same order, as the model's).
    pub fn total_pj(&self) -> f64 {
        self.components().iter().map(|(_, v)| v).sum()
    }
}

impl From<&energy::EnergyBreakdown> for EnergyBreakdown {
    fn from(e: &energy::EnergyBreakdown) -> Self {
        EnergyBreakdown {
            logic_pulses_pj: e.logic_pulses_pj,
            presets_pj: e.presets_pj,
            memory_reads_pj: e.memory_reads_pj,
            memory_writes_pj: e.memory_writes_pj,
            line_drivers_pj: e.line_drivers_pj,
            peripherals_pj: e.peripherals_pj,
            bus_pj: e.bus_pj,
            host_io_pj: e.host_io_pj,
            controller_pj: e.controller_pj,
            function_unit_pj: e.function_unit_pj,
            leakage_pj: e.leakage_pj,
        }
    }
}

// Converted from the model's [`energy::EnergyBreakdown::within_pj`].
/// Energy per inference inside each boundary, pJ (docs/model.md §4.1): the array (cells and
/// their lines), the macro (+ sensing and decoders), the chip (+ buses and controller) and
/// the system (+ off-chip links; the total). For a baseline's ratios (`Ratios`), the
/// baseline's whole energy ÷ CRAM's inside each boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ByBoundary {
    /// The cells and their lines.
    pub array: f64,
    /// The array and its periphery.
    #[serde(rename = "macro")]
    pub macro_: f64,
    /// The macros, the buses and the controller.
    pub chip: f64,
    /// Everything, the off-chip links included.
    pub system: f64,
}

impl ByBoundary {
    /// CRAM's energy inside each boundary, pJ.
    pub fn of(e: &energy::EnergyBreakdown) -> ByBoundary {
        use energy::Boundary::*;
        ByBoundary {
            array: e.within_pj(Array),
            macro_: e.within_pj(Macro),
            chip: e.within_pj(Chip),
            system: e.within_pj(System),
        }
    }

    /// The value at boundary `b`.
    pub fn at(&self, b: energy::Boundary) -> f64 {
        match b {
            energy::Boundary::Array => self.array,
            energy::Boundary::Macro => self.macro_,
            energy::Boundary::Chip => self.chip,
            energy::Boundary::System => self.system,
        }
    }

    /// `f` of each boundary's value.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> ByBoundary {
        ByBoundary {
            array: f(self.array),
            macro_: f(self.macro_),
            chip: f(self.chip),
            system: f(self.system),
        }
    }
}

// Converted from the model's [`energy::Actions`].
/// What a run does, as numbers.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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

impl From<&energy::Actions> for Actions {
    fn from(a: &energy::Actions) -> Self {
        Actions {
            pulse_lanes: a.pulse_lanes,
            gate_lanes: a.gate_lanes,
            preset_cells: a.preset_cells,
            bsl_logic_cells: a.bsl_logic_cells,
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

// Converted from the model's [`energy::RunEnergy`].
/// Energy of running a program on a number of lanes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunEnergy {
    /// The run's actions with the expected (mean) pulse split.
    pub actions: Actions,
    /// Data-dependent energy from the executor's histograms (functional mode only).
    pub data_dependent: Option<EnergyBreakdown>,
    /// Mean energy under random operands (characterized pulse model).
    pub mean: EnergyBreakdown,
    /// Worst-case total: every lane at its most expensive input pattern, pJ.
    pub worst_total_pj: f64,
}

impl From<&energy::RunEnergy> for RunEnergy {
    fn from(r: &energy::RunEnergy) -> Self {
        RunEnergy {
            actions: (&r.actions).into(),
            data_dependent: r.data_dependent.as_ref().map(Into::into),
            mean: (&r.mean).into(),
            worst_total_pj: r.worst_total_pj,
        }
    }
}

// Converted from the model's [`baseline::BaselineEnergy`].
/// Energy of one layer (or a whole run) on a baseline machine, by component, pJ.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineEnergy {
    /// Multiplies, accumulates and element-wise operations.
    pub arithmetic_pj: f64,
    /// Instruction fetch, decode and issue.
    pub instructions_pj: f64,
    /// Data moved at each memory level, innermost first.
    pub levels_pj: Vec<f64>,
    /// Static power × time.
    pub static_pj: f64,
}

impl From<&baseline::BaselineEnergy> for BaselineEnergy {
    fn from(e: &baseline::BaselineEnergy) -> Self {
        BaselineEnergy {
            arithmetic_pj: e.arithmetic_pj,
            instructions_pj: e.instructions_pj,
            levels_pj: e.levels_pj.clone(),
            static_pj: e.static_pj,
        }
    }
}
