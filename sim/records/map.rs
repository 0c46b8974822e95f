//! The record of `map` (every layer placed) and the per-layer cost report that `map` and
//! `simulate` print, converted from the mapper's types at the boundary.

use crate::model::map::{self, Strategy, place};
use crate::records::energy::EnergyBreakdown;
use cram_workloads::Shape;
use serde::Serialize;

// Converted from the mapper's [`map::LayerReport`].
/// Cost and placement of one layer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Strategy (weighted layers).
    pub strategy: Option<Strategy>,
    /// Reduction slices in space (weighted layers; 1: the reduction whole in each lane).
    pub slices: Option<u64>,
    /// Whether one program serves every lane block (weighted layers).
    pub shared_program: Option<bool>,
    /// Whether the weights and constants stay resident in the cells (weighted layers).
    pub resident: Option<bool>,
    /// Copies of resident weights the outputs take turns on (weighted layers; 0: a lane
    /// per output, docs/model.md §2.2).
    pub copies: Option<u64>,
    /// Independent op streams (programs).
    pub streams: u64,
    /// Subarray runs (one stream on one subarray).
    pub subarray_runs: u64,
    /// Largest number of subarrays busy at once.
    pub subarrays: u64,
    /// Lanes holding work, over all subarray runs.
    pub lanes_used: u64,
    /// lanes_used / (subarray_runs × lanes per subarray).
    pub lane_utilization: f64,
    /// Largest column count of a program / columns per subarray.
    pub column_utilization: f64,
    /// Gate steps over all streams.
    pub gate_steps: u64,
    /// Σ over gate steps of the lanes they ran in.
    pub lane_gate_evals: u64,
    /// Bits moved over the global bus into lanes before segments (inputs and stored
    /// weights): each distinct value once per subarray run (docs/model.md §2.6).
    pub loaded_bits: u64,
    /// Bits written into cells by those loads (every lane's operands).
    pub written_bits: u64,
    /// Cycles of its runs alone on the chips' timeline (docs/model.md §2.8, §2.11).
    pub cycles: u64,
    /// Lane-cycles the layer keeps busy: Σ over subarray runs of the lanes holding work ×
    /// the run's cycles.
    pub lane_cycles: u64,
    /// `lane_cycles` ÷ (lanes on the chip × `cycles`): the share of the chip's lanes the
    /// layer keeps busy over its time (0 for a layer that takes no time).
    pub chip_lane_utilization: f64,
    /// A lower bound on the layer's cycles for its work under any placement of it
    /// (docs/model.md §2.8).
    pub bound_cycles: u64,
    /// `bound_cycles` ÷ `cycles` (1 for a layer that takes no time).
    pub mapping_efficiency: f64,
    /// Energy by component (data-dependent in functional mode, mean in analytical mode).
    pub energy: EnergyBreakdown,
    /// Gate-output flips injected (functional mode with faults).
    pub flips: u64,
    /// Copies the generated programs made so that no gate reads a cell twice (functional
    /// mode only: the analytical closed form cannot see them, so it is short by these).
    pub shared_copies: u64,
    /// Writing the layer's resident data, once per deployment (zero when it reloads).
    pub deployment: Deployment,
}

// Converted from the mapper's [`map::Deployment`].
/// The one-time cost of writing resident weights and constants into the cells.
#[derive(Debug, Clone, Copy, Default, Serialize, schemars::JsonSchema)]
pub struct Deployment {
    /// Bits moved over the global bus.
    pub moved_bits: u64,
    /// Bits written into cells (each resident cell written once per deployment).
    pub written_bits: u64,
    /// Cycles.
    pub cycles: u64,
    /// Energy by component.
    pub energy: EnergyBreakdown,
}

impl From<&map::Deployment> for Deployment {
    fn from(d: &map::Deployment) -> Self {
        Deployment {
            moved_bits: d.moved_bits,
            written_bits: d.written_bits,
            cycles: d.cycles,
            energy: (&d.energy).into(),
        }
    }
}

impl From<&map::LayerReport> for LayerReport {
    fn from(l: &map::LayerReport) -> Self {
        LayerReport {
            name: l.name.clone(),
            op: l.op,
            strategy: l.strategy(),
            slices: l.layout.map(|l| l.slices as u64),
            shared_program: l.layout.map(|l| l.shared),
            resident: l.layout.map(|l| l.resident),
            copies: l.layout.map(|l| l.copies as u64),
            deployment: (&l.deployment).into(),
            streams: l.streams,
            subarray_runs: l.subarray_runs,
            subarrays: l.subarrays,
            lanes_used: l.lanes_used,
            lane_utilization: l.lane_utilization,
            column_utilization: l.column_utilization,
            gate_steps: l.gate_steps,
            lane_gate_evals: l.lane_gate_evals,
            loaded_bits: l.loaded_bits,
            written_bits: l.written_bits,
            cycles: l.cycles,
            lane_cycles: l.lane_cycles,
            chip_lane_utilization: l.chip_lane_utilization,
            bound_cycles: l.bound_cycles,
            mapping_efficiency: l.mapping_efficiency,
            energy: (&l.energy).into(),
            flips: l.flips,
            shared_copies: l.shared_copies,
        }
    }
}

/// One subarray run of a program.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Run {
    /// Subarray index on the chip.
    pub subarray: u64,
    /// Its bank.
    pub bank: u64,
    /// Wave: how many runs the subarray took before this one.
    pub wave: u64,
    /// Lanes in the layer's lane order (first..end).
    pub lanes: [usize; 2],
}

/// One program of a layer and where it runs.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProgramPlace {
    /// Output channels it computes (first..end).
    pub channels: [usize; 2],
    /// Reduction inputs per segment (0: no chunked reduction).
    pub chunk: usize,
    /// Columns it needs (the plan's bound).
    pub cols: usize,
    /// Its subarray runs.
    pub runs: Vec<Run>,
}

/// A range of columns of a program and what it holds.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ColumnUse {
    /// First column.
    pub first: usize,
    /// One past the last column.
    pub end: usize,
    /// What the columns hold.
    pub holds: String,
}

/// An operand written into every lane of a run before a segment.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Move {
    /// Segment index.
    pub segment: usize,
    /// Operand kind: x (input), w (weight), k (channel constant), m (multiplier), m>0.
    pub kind: &'static str,
    /// Operands (as named in the column map).
    pub operands: String,
    /// Destination columns (first..end of the span).
    pub cols: [usize; 2],
    /// Bits written per lane.
    pub bits_per_lane: usize,
    /// Where each lane's value comes from.
    pub from: String,
}

// Converted from the mapper's [`place::LayerPlacement`].
/// The placement of one layer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LayerPlacement {
    /// Layer index.
    pub index: usize,
    /// Layer name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Input layers and their output shapes.
    pub inputs: Vec<(String, Shape)>,
    /// Output shape.
    pub output: Shape,
    /// Every searched layout with its cost, when the cost model chose (weighted layers).
    pub candidates: Vec<Candidate>,
    /// Which output a lane computes.
    pub lane_order: &'static str,
    /// Reduction length (weighted layers).
    pub reduction: Option<usize>,
    /// Programs and their runs.
    pub programs: Vec<ProgramPlace>,
    /// Column map of the first program (its generated code).
    pub columns: Vec<ColumnUse>,
    /// Output columns of the first program, bit 0 first: per channel of the program
    /// (constant-weight strategy), or one entry (channel None) for each lane's own channel.
    pub outputs: Vec<(Option<usize>, Vec<usize>)>,
    /// Operand moves of the first program, per segment.
    pub moves: Vec<Move>,
    /// Whether the layer runs in place on its producer's output columns (no moves).
    pub in_place: bool,
    /// The layer's cost report (one image).
    pub report: LayerReport,
    /// The cycle its first run starts on the network's timeline (docs/model.md §2.11).
    pub start_cycle: u64,
    /// The cycle its last run ends on the network's timeline.
    pub end_cycle: u64,
}

/// One layout the search priced for a layer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Candidate {
    /// Strategy.
    pub strategy: Strategy,
    /// Reduction slices in space.
    pub slices: u64,
    /// One program for every lane block.
    pub shared_program: bool,
    /// Weights resident in the cells.
    pub resident: bool,
    /// Copies of the resident weights (0: a lane per output).
    pub copies: u64,
    /// Energy, pJ (per run; a resident layout's deployment apart).
    pub energy_pj: f64,
    /// Cycles.
    pub cycles: u64,
}

impl From<&place::LayerPlacement> for LayerPlacement {
    fn from(p: &place::LayerPlacement) -> Self {
        LayerPlacement {
            index: p.index,
            name: p.name.clone(),
            op: p.op,
            inputs: p.inputs.clone(),
            output: p.output,
            candidates: p
                .candidates
                .iter()
                .map(|&(l, energy_pj, cycles)| Candidate {
                    strategy: l.strategy,
                    slices: l.slices as u64,
                    shared_program: l.shared,
                    resident: l.resident,
                    copies: l.copies as u64,
                    energy_pj,
                    cycles,
                })
                .collect(),
            lane_order: p.lane_order,
            reduction: p.reduction,
            programs: p
                .programs
                .iter()
                .map(|g| ProgramPlace {
                    channels: g.channels,
                    chunk: g.chunk,
                    cols: g.cols,
                    runs: g
                        .runs
                        .iter()
                        .map(|r| Run {
                            subarray: r.subarray,
                            bank: r.bank,
                            wave: r.wave,
                            lanes: r.lanes,
                        })
                        .collect(),
                })
                .collect(),
            columns: p
                .columns
                .iter()
                .map(|c| ColumnUse {
                    first: c.first,
                    end: c.end,
                    holds: c.holds.clone(),
                })
                .collect(),
            outputs: p.outputs.clone(),
            moves: p
                .moves
                .iter()
                .map(|m| Move {
                    segment: m.segment,
                    kind: m.kind,
                    operands: m.operands.clone(),
                    cols: m.cols,
                    bits_per_lane: m.bits_per_lane,
                    from: m.from.clone(),
                })
                .collect(),
            in_place: p.in_place,
            report: (&p.report).into(),
            start_cycle: 0,
            end_cycle: 0,
        }
    }
}

/// The placement report.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MapReport {
    /// Network name.
    pub model: String,
    /// Device preset (or inline label).
    pub device: String,
    /// Array preset (or inline label).
    pub array: String,
    /// Lanes (rows) per subarray.
    pub lanes_per_subarray: u32,
    /// Columns per subarray.
    pub cols_per_subarray: u32,
    /// Subarrays on all the chips.
    pub subarrays: u64,
    /// Chips the network is spread over (`cram.chips`).
    pub chips: u64,
    /// The strategy choice in force.
    pub strategy: String,
    /// Whether the stored layers' weights stay resident (docs/model.md §2.7).
    pub resident: bool,
    /// Resident bits the chosen layouts hold.
    pub resident_bits: u64,
    /// Resident bits the layouts each layer's search preferred would need.
    pub wanted_resident_bits: u64,
    /// What the mapper did with the weights, in words.
    pub residency: String,
    /// Resident bits the chip holds (half of every subarray's cells).
    pub resident_capacity_bits: u64,
    /// Of which reserved for a decode step's key and value caches.
    pub reserved_bits: u64,
    /// Gates the IR drop keeps from switching in the far rows (under
    /// `--allow-ir-violation`); empty when every gate switches.
    pub ir_violations: Vec<String>,
    /// The network's cycles on its timeline: layers overlap where their inputs allow
    /// (docs/model.md §2.11).
    pub cycles: u64,
    /// Σ of the layers' cycles, each alone on the chips (no overlap).
    pub layers_cycles: u64,
    /// What the timeline's shared resources did.
    pub busy: TimelineBusy,
    /// Every layer placed.
    pub layers: Vec<LayerPlacement>,
}

// Converted from the mapper's [`map::timeline::Busy`].
/// Busy cycles of the timeline's resources, summed over their instances.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct TimelineBusy {
    /// Σ over subarrays of the cycles they held a run.
    pub subarray_cycles: u64,
    /// Σ over the chips' global buses of their occupied cycles.
    pub bus_cycles: u64,
    /// Σ over the chips' link ports of their occupied cycles.
    pub link_cycles: u64,
    /// Σ over the chips' controllers of their issuing cycles.
    pub issue_cycles: u64,
}

impl From<&map::timeline::Busy> for TimelineBusy {
    fn from(b: &map::timeline::Busy) -> Self {
        TimelineBusy {
            subarray_cycles: b.subarray_cycles,
            bus_cycles: b.bus_cycles,
            link_cycles: b.link_cycles,
            issue_cycles: b.issue_cycles,
        }
    }
}
