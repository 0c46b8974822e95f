//! Mapping compressed networks onto CRAM cell blocks, and running them layer by layer
//! (docs/model.md §2): the only place that sees both the architecture and the workload.
//!
//! [`run_network`] takes a compiled integer network (the golden executor's
//! `cram_workloads::golden::Program`, so both sides use one set of constants), places every
//! layer on subarrays and plans its CRAM programs ([`linear`], [`unary`], [`elem`]). The plan
//! of a Dense or Conv2d layer — its gate tally, reduction chunk and column bound — comes from
//! a counting builder in closed form, in both modes. Analytical mode prices the plan;
//! functional mode also generates each program, checks it against the plan and executes it
//! bit by bit, reading every layer's outputs back out of the simulated cells and feeding them
//! to the next layer. Each layer gets a [`LayerReport`]: placement, utilization, steps,
//! cycles and energy by component.
//!
//! Data movement is counted, not assumed free: before each segment of a job the runner
//! writes the lanes' operands (receptive-field inputs, pooling windows, addends, stored
//! weights) as partial row writes, each distinct value sensed at its source and carried over
//! the global bus once per subarray run, each bit written into its cell (`Actions` fields
//! `read_bits`, `moved_bits`, `write_bits`, `bsl_write_cells`). ReLU, ReLU6 and Sign run in place on their producer's output columns;
//! Flatten and Softmax (the identity on codes) cost nothing.
//!
//! Latency comes from [`timeline`]: every subarray run scheduled on the subarrays and each
//! chip's controller, global bus and chip-link port, a layer's passes in turn, layers
//! overlapping where their inputs allow (a layer's own cycles: its runs alone).
//!
//! Many images ([`run_waves`]) are mapped onto the chip together, and what the simulator
//! holds does not grow with their number: an analytical run prices equal lane blocks once
//! (`StreamCost::repeat`), and a functional run executes the images in waves of a fixed
//! activation budget ([`wave_size`]), checks and drops each wave's values, and reports
//! what one run of all the images reports.

pub mod arith;
pub mod digit;
pub mod elem;
mod jobs;
pub mod linear;
pub mod norm;
pub mod place;
pub mod unary;
pub mod unit;

mod layer;
mod run;
mod stream;
pub mod timeline;

pub(crate) use layer::*;
pub use run::*;
pub(crate) use stream::*;

use cram_arch::{GateKind, GateLibrary, Org};
use ndarray::Array3;
use serde::{Deserialize, Serialize};

pub use linear::{Layout, Strategy};
pub use timeline::Timeline;

use crate::model::energy::{EnergyBreakdown, EnergyTable};
use crate::model::kernels::GateSet;
use crate::model::limits::Limits;
use crate::model::timing::StepCycles;

/// What the per-layer strategy choice minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Energy per inference.
    Energy,
    /// Latency.
    Latency,
    /// Energy × latency.
    Edp,
}

impl Objective {
    /// Its name in configs.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Energy => "energy",
            Objective::Latency => "latency",
            Objective::Edp => "edp",
        }
    }

    /// What the choice minimizes, from a layer's energy (pJ) and cycles.
    fn score(self, e_pj: f64, cycles: u64) -> f64 {
        match self {
            Objective::Energy => e_pj,
            Objective::Latency => cycles as f64,
            Objective::Edp => e_pj * cycles as f64,
        }
    }
}

/// How each weighted layer's layout is picked (docs/model.md §2.9): among the layouts its
/// pins leave ([`Choice::layouts`]), the one the cost model scores lowest under the
/// objective (the first of the lowest, in the order listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Choice {
    /// What the search minimizes.
    pub objective: Objective,
    /// Pinned strategy.
    pub strategy: Option<Strategy>,
    /// Pinned reduction slices (clamped to each layer's reduction length).
    pub slices: Option<usize>,
    /// Pinned program sharing (stored layouts).
    pub shared: Option<bool>,
    /// Pinned weight residency (stored layouts; `Some(true)` also when the network must be
    /// resident, `Some(false)` to reload the weights every run).
    pub resident: Option<bool>,
    /// Pinned copies of a resident, shared layout's weights ([`Layout::copies`]; 0: a lane
    /// per output).
    pub copies: Option<usize>,
    /// Inferences one deployment serves: a resident layout's deployment energy is charged
    /// to each inference as its 1/N share when the search scores energy.
    pub inferences_per_deployment: u64,
}

/// Inferences per deployment when a run does not state them.
pub const DEFAULT_INFERENCES_PER_DEPLOYMENT: u64 = 1_000_000;

impl Choice {
    /// Every layout searched under `objective`.
    pub const fn auto(objective: Objective) -> Choice {
        Choice {
            objective,
            strategy: None,
            slices: None,
            shared: None,
            resident: None,
            copies: None,
            inferences_per_deployment: DEFAULT_INFERENCES_PER_DEPLOYMENT,
        }
    }

    /// A strategy's plain layout ([`Layout::plain`]) for every layer.
    pub const fn force(strategy: Strategy) -> Choice {
        Choice::layout(Layout::plain(strategy))
    }

    /// One layout for every layer.
    pub const fn layout(l: Layout) -> Choice {
        Choice {
            objective: Objective::Energy,
            strategy: Some(l.strategy),
            slices: Some(l.slices),
            shared: Some(l.shared),
            resident: Some(l.resident),
            copies: Some(l.copies),
            inferences_per_deployment: DEFAULT_INFERENCES_PER_DEPLOYMENT,
        }
    }

    /// Whether the pins leave one layout.
    pub fn is_pinned(&self) -> bool {
        self.strategy.is_some()
            && self.slices.is_some()
            && self.shared.is_some()
            && self.resident.is_some()
            && self.copies.is_some()
    }

    /// The layouts of a layer (`channels` output channels over `rounds` images × output
    /// positions, `reduction` long) the pins leave, in search order: `const`, then `stored`
    /// by slices (powers of two while the slices' lanes fit the chip's `chip_lanes`, or
    /// with residency pinned whatever the lanes, and at most the reduction), each with a
    /// program per channel group, then shared, each reloading its weights and then
    /// resident; a resident shared layout first with a lane per output, then with 1, 2,
    /// 4, … copies of its weights (fewer than the rounds, their lanes within the chip's).
    /// `const` has one slice, no shared program and no stored weights.
    pub fn layouts(
        &self,
        channels: usize,
        rounds: usize,
        reduction: usize,
        chip_lanes: usize,
    ) -> Vec<Layout> {
        let red = reduction.max(1);
        let outputs = channels * rounds;
        let mut out = Vec::new();
        for strategy in Strategy::ALL {
            if self.strategy.is_some_and(|s| s != strategy) {
                continue;
            }
            if strategy == Strategy::Const {
                if self.slices.is_none_or(|s| s <= 1)
                    && self.shared != Some(true)
                    && self.resident != Some(true)
                    && self.copies.is_none_or(|c| c == 0)
                {
                    out.push(Layout::plain(strategy));
                }
                continue;
            }
            // A lane per output needs outputs × slices lanes at once; copies, a copy's
            // channels × slices lanes. Pinned resident, a long reduction may need more
            // slices than the chip has lanes for at once to fit its resident columns.
            let pinned_slices = self.slices.is_some();
            let fits_outputs = |s: usize| {
                s == 1 || pinned_slices || s * outputs <= chip_lanes || self.resident == Some(true)
            };
            let copies_allowed = self.resident != Some(false)
                && self.shared != Some(false)
                && self.copies != Some(0);
            let slices: Vec<usize> = match self.slices {
                Some(s) => vec![s.clamp(1, red)],
                None => std::iter::successors(Some(1usize), |s| Some(s * 2))
                    .take_while(|&s| {
                        s == 1
                            || (s <= red
                                && (fits_outputs(s)
                                    || (copies_allowed && s * channels <= chip_lanes)))
                    })
                    .collect(),
            };
            let pins = |p: Option<bool>| -> &[bool] {
                match p {
                    Some(true) => &[true],
                    Some(false) => &[false],
                    None => &[false, true],
                }
            };
            for &s in &slices {
                for &sh in pins(self.shared) {
                    for &resident in pins(self.resident) {
                        let per_output = fits_outputs(s).then_some(0);
                        let copies: Vec<usize> = if !(sh && resident) {
                            per_output.into_iter().collect()
                        } else {
                            match self.copies {
                                // At most the rounds, and one wave within the chips' lanes.
                                Some(c) => vec![
                                    c.min(rounds.max(1))
                                        .min((chip_lanes / (channels * s).max(1)).max(1)),
                                ],
                                None => per_output
                                    .into_iter()
                                    .chain(
                                        std::iter::successors(Some(1usize), |r| Some(r * 2))
                                            .take_while(|&r| {
                                                r < rounds && r * channels * s <= chip_lanes
                                            }),
                                    )
                                    .collect(),
                            }
                        };
                        for copies in copies {
                            if self.copies.is_some_and(|c| (c == 0) != (copies == 0)) {
                                continue;
                            }
                            out.push(Layout {
                                strategy,
                                slices: s,
                                shared: sh,
                                resident,
                                copies,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// How the choice reads in reports: `auto (energy)`, a pinned layout's name, or the pins
    /// and the objective.
    pub fn describe(&self) -> String {
        let obj = self.objective.name();
        if let (Some(st), Some(s), Some(sh), Some(r), Some(c)) = (
            self.strategy,
            self.slices,
            self.shared,
            self.resident,
            self.copies,
        ) {
            return Layout {
                strategy: st,
                slices: s,
                shared: sh,
                resident: r,
                copies: c,
            }
            .name();
        }
        let mut pins = Vec::new();
        if let Some(s) = self.strategy {
            pins.push(s.name().to_owned());
        }
        if let Some(s) = self.slices {
            pins.push(format!("{s} slices"));
        }
        if let Some(sh) = self.shared {
            pins.push(if sh { "shared" } else { "per-group" }.to_owned());
        }
        if let Some(r) = self.resident {
            pins.push(if r { "resident" } else { "reload" }.to_owned());
        }
        match self.copies {
            Some(0) => pins.push("a lane per output".to_owned()),
            Some(c) => pins.push(format!("{c} copies")),
            None => {}
        }
        if pins.is_empty() {
            format!("auto ({obj})")
        } else {
            format!("{}, the rest by {obj}", pins.join(", "))
        }
    }
}

/// Functional (every bit executed) or analytical (counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Execute every gate in every lane.
    Functional,
    /// Count the same programs without executing them.
    Analytical,
}

/// The hardware a network is mapped onto.
#[derive(Debug, Clone)]
pub struct Hw {
    /// Gate library of the device.
    pub lib: GateLibrary,
    /// Chip organisation.
    pub org: Org,
    /// Gate set the programs are generated from.
    pub set: GateSet,
    /// Energy prices.
    pub table: EnergyTable,
    /// Step latencies.
    pub steps: StepCycles,
    /// Mean input-zero split per gate kind (analytical pricing), see [`gate_fractions`].
    fractions: [[f64; 6]; GateKind::COUNT],
    /// Identical chips the network is spread over, joined by the array's chip link
    /// (docs/model.md §2.10).
    pub chips: u64,
    /// Resident bits reserved for the model's state, out of the resident share: a
    /// generation's key and value caches at its end (docs/model.md §2.7).
    pub state_bits: u64,
}

impl Hw {
    /// Derives prices and step latencies.
    pub fn new(lib: GateLibrary, org: Org, set: GateSet) -> Hw {
        let table = EnergyTable::derive(&lib, &org);
        let steps = StepCycles::derive(&lib.device, &org);
        Hw {
            lib,
            org,
            set,
            table,
            steps,
            fractions: gate_fractions(set),
            chips: 1,
            state_bits: 0,
        }
    }

    /// The same hardware with `bits` of its resident share reserved for the model's state
    /// (the key and value caches), which the weights then cannot use.
    pub fn with_state(mut self, bits: u64) -> Hw {
        self.state_bits = bits;
        self
    }

    /// The same hardware spread over `chips` identical chips (at least 1); more than one
    /// needs the array's chip link ([`Hw::chip_link`]).
    pub fn with_chips(mut self, chips: u64) -> Hw {
        self.chips = chips.max(1);
        self
    }

    /// Subarrays on all the chips.
    pub fn subarrays(&self) -> u64 {
        self.org.subarrays() * self.chips
    }

    /// Lanes on all the chips.
    pub fn machine_lanes(&self) -> u64 {
        self.org.lanes() * self.chips
    }

    /// The chip-to-chip link, when the run spans several chips.
    pub fn chip_link(&self) -> Option<cram_arch::HostLinkParams> {
        (self.chips > 1)
            .then_some(self.org.params.chip_link)
            .flatten()
    }

    /// Of `bits` moved onto the chips, those that cross a chip link: a value's producer
    /// (or, for weights, the store beside the first chip) is taken to lie on any of the
    /// chips alike, so (chips − 1) / chips of them (an assumption, docs/model.md §2.10).
    pub fn link_bits(&self, bits: u64) -> u64 {
        if self.chips <= 1 {
            0
        } else {
            ((u128::from(bits) * u128::from(self.chips - 1)) / u128::from(self.chips)) as u64
        }
    }

    /// Chips a pass of `runs` subarray runs occupies: the runs fill one chip's subarrays
    /// before the next chip's.
    pub fn chips_used(&self, runs: u64) -> u64 {
        runs.div_ceil(self.org.subarrays().max(1))
            .clamp(1, self.chips)
    }

    fn lanes(&self) -> usize {
        self.org.params.lanes_per_subarray as usize
    }

    fn cols(&self) -> usize {
        self.org.params.cols_per_subarray as usize
    }
}

/// Options of a network run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Functional or analytical.
    pub mode: Mode,
    /// Strategy choice.
    pub choice: Choice,
    /// Gate-output error probability per gate kind ([`cram_arch::GateKind::index`]) in
    /// functional mode; all zero for an error-free run.
    pub error_rates: [f64; cram_arch::GateKind::COUNT],
    /// Seed of the fault streams.
    pub seed: u64,
    /// When to stop, and the memory limit of functional runs.
    pub limits: Limits,
}

/// Cost and placement of one layer.
#[derive(Debug, Clone)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Layout (weighted layers).
    pub layout: Option<Layout>,
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
    /// `lane_gate_evals` by gate kind ([`cram_arch::GateKind::index`]): how often each gate
    /// is evaluated, what its error rate applies to (docs/model.md §1.7.1).
    pub lane_evals_by_gate: [u64; cram_arch::GateKind::COUNT],
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
    /// (docs/model.md §2.8): ⌈Σ lane-gate evaluations × cycles of the shortest gate step ÷
    /// lanes on the chip⌉.
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
    /// Writing the layer's resident weights and constants, once per deployment (zero for a
    /// layer that reloads them every run).
    pub deployment: Deployment,
}

/// The one-time cost of writing resident data into the cells (docs/model.md §2.6).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Deployment {
    /// Bits moved over the global bus.
    pub moved_bits: u64,
    /// Bits written into cells (the resident footprint; each cell written once).
    pub written_bits: u64,
    /// Cycles (a bound: every run's rows written at once, the commands at the issue rate,
    /// the moves at the bus width and link).
    pub cycles: u64,
    /// Energy by component.
    pub energy: EnergyBreakdown,
}

impl Deployment {
    /// Adds another layer's deployment (layers deploy one after another).
    pub fn add(&mut self, o: &Deployment) {
        self.moved_bits += o.moved_bits;
        self.written_bits += o.written_bits;
        self.cycles += o.cycles;
        self.energy.add_scaled(&o.energy, 1.0);
    }
}

/// Whether a network's weights stay resident in the cells, and the capacity that decided
/// it (docs/model.md §2.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Residency {
    /// Resident bits the layouts the search preferred need (0: none preferred).
    pub wanted_bits: u64,
    /// Resident bits the chips hold: the resident share of every subarray's cells.
    pub capacity_bits: u64,
    /// Of which reserved for the model's state (a generation's caches, [`Hw::state_bits`]):
    /// the weights have the rest.
    pub reserved_bits: u64,
    /// Chips the run spans.
    pub chips: u64,
    /// Resident bits the chosen layouts hold (at most `capacity_bits`).
    pub held_bits: u64,
    /// Stored layers whose chosen layout reloads its weights every run.
    pub reloading: usize,
    /// Whether any layer's weights are resident (false: none wanted, or none fit and every
    /// layer reloads its weights).
    pub resident: bool,
}

impl Residency {
    /// Chips whose resident share would hold the wanted bits beside the reserved ones (at
    /// least 1).
    pub fn chips_needed(&self) -> u64 {
        let per_chip = (self.capacity_bits / self.chips.max(1)).max(1);
        (self.wanted_bits + self.reserved_bits)
            .div_ceil(per_chip)
            .max(1)
    }

    /// Resident bits left for the weights beside the reserved ones.
    pub fn free_bits(&self) -> u64 {
        self.capacity_bits.saturating_sub(self.reserved_bits)
    }

    /// Whether the preferred resident layouts did not fit (some or all layers then reload
    /// their weights).
    pub fn spilled(&self) -> bool {
        self.wanted_bits > self.free_bits()
    }

    /// What the mapper did, in words (docs/model.md §2.7).
    pub fn describe(&self) -> String {
        let chips = if self.chips > 1 {
            format!("the {} chips'", self.chips)
        } else {
            "the chip's".to_owned()
        };
        let (w, c, h) = (self.wanted_bits, self.capacity_bits, self.held_bits);
        // The weights' share: all of it, or what the caches leave.
        let cap = match self.reserved_bits {
            0 => format!("{chips} {c}"),
            _ => format!("the {} of {chips} {c}", self.free_bits()),
        };
        let more = format!("cram.chips = {} would hold them", self.chips_needed());
        let what = match (self.spilled(), h > 0) {
            (false, true) if self.reloading == 0 => format!(
                "resident: the stored layers' weights and constants ({h} of {cap} \
                 resident bits) are written once per deployment"
            ),
            (false, true) => format!(
                "resident where the search preferred it: {h} of {cap} resident bits \
                 are written once per deployment; {} stored layer(s) reload their weights \
                 every run, their best layout",
                self.reloading
            ),
            (false, false) => {
                "reload: no layer's chosen layout keeps its weights resident".to_owned()
            }
            (true, true) if self.reloading == 0 => format!(
                "resident in fewer bits: the resident layouts each layer preferred need {w} \
                 bits, more than {cap}; the layers that gain least per bit take \
                 layouts holding fewer (fewer copies of their weights), {h} bits in all \
                 ({more})"
            ),
            (true, true) => format!(
                "partly resident: the resident layouts each layer preferred need {w} bits, \
                 more than {cap}; the layers that gain most per bit keep {h} bits \
                 resident and {} stored layer(s) reload their weights every run ({more})",
                self.reloading
            ),
            (true, false) => format!(
                "reload: the resident layouts each layer preferred need {w} bits, more than \
                 {cap}, so every layer reloads its weights ({more})"
            ),
        };
        match self.reserved_bits {
            0 => what,
            r => format!("{what}; {r} resident bits are reserved for the key and value caches"),
        }
    }
}

/// A network run.
#[derive(Debug, Clone)]
pub struct NetRun {
    /// One report per layer.
    pub layers: Vec<LayerReport>,
    /// Whether its weights are resident.
    pub residency: Residency,
    /// Final layer's codes per image (functional mode; empty otherwise).
    pub outputs: Vec<Array3<i64>>,
    /// Every layer's runs on the network's cycle-level timeline (docs/model.md §2.11).
    pub timeline: Timeline,
}

impl LayerReport {
    /// The layout's strategy (weighted layers).
    pub fn strategy(&self) -> Option<Strategy> {
        self.layout.map(|l| l.strategy)
    }
}

impl NetRun {
    /// Stored layers whose layout reloads its weights every run.
    pub fn reloading(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| {
                l.layout
                    .is_some_and(|l| l.strategy == Strategy::Stored && !l.resident)
            })
            .count()
    }

    /// Adds the periphery's leakage over the run's timeline to its layers
    /// (`EnergyBreakdown::leakage_pj`; docs/model.md §1.1.2): the whole run's
    /// ([`cram_arch::Org::leakage_pj`]), each layer's share its span's share of the layers'
    /// spans (a layer with no span gets none). Every run is built with it.
    pub(crate) fn add_leakage(&mut self, hw: &Hw) {
        let busy = self.timeline.busy.subarray_cycles;
        let total = hw.org.leakage_pj(hw.chips, self.cycles(), busy);
        let spans: Vec<u64> = (0..self.layers.len())
            .map(|i| self.timeline.layer_cycles(i))
            .collect();
        let sum: u64 = spans.iter().sum();
        if sum == 0 || total == 0.0 {
            return;
        }
        for (l, s) in self.layers.iter_mut().zip(spans) {
            l.energy.leakage_pj += total * s as f64 / sum as f64;
        }
    }

    /// Σ of the layers' energy, pJ.
    pub fn energy_pj(&self) -> f64 {
        self.layers.iter().map(|l| l.energy.total_pj()).sum()
    }

    /// The network's cycles: its timeline's, from the first run's start to the last run's
    /// end, layers overlapping where their inputs allow (docs/model.md §2.11).
    pub fn cycles(&self) -> u64 {
        self.timeline.cycles
    }

    /// Σ of the layers' lane-cycles ÷ (lanes on the chip × the network's cycles): the share
    /// of the chip's lanes the network keeps busy over its time.
    pub fn chip_lane_utilization(&self, chip_lanes: u64) -> f64 {
        let used: u64 = self.layers.iter().map(|l| l.lane_cycles).sum();
        ratio(used as f64, chip_lanes as f64 * self.cycles() as f64, 0.0)
    }

    /// The network's deployment: Σ over its layers.
    pub fn deployment(&self) -> Deployment {
        let mut d = Deployment::default();
        for l in &self.layers {
            d.add(&l.deployment);
        }
        d
    }

    /// Σ over the layers of the lane evaluations of each gate kind.
    pub fn lane_evals_by_gate(&self) -> [u64; cram_arch::GateKind::COUNT] {
        let mut n = [0u64; cram_arch::GateKind::COUNT];
        for l in &self.layers {
            for (a, b) in n.iter_mut().zip(&l.lane_evals_by_gate) {
                *a += b;
            }
        }
        n
    }

    /// Σ of the layers' lower bounds ÷ the network's cycles.
    pub fn mapping_efficiency(&self) -> f64 {
        let bound: u64 = self.layers.iter().map(|l| l.bound_cycles).sum();
        ratio(bound as f64, self.cycles() as f64, 1.0)
    }
}

/// `x ÷ y`, or `otherwise` when `y` is 0.
pub(crate) fn ratio(x: f64, y: f64, otherwise: f64) -> f64 {
    if y > 0.0 { x / y } else { otherwise }
}

#[cfg(test)]
mod conv_tests;

#[cfg(test)]
mod analytical_tests;
#[cfg(test)]
mod norm_tests;
#[cfg(test)]
mod transformer_tests;

#[cfg(test)]
mod tests;
