//! The von-Neumann baseline: a network's layers priced on a conventional machine
//! ([`cram_arch::Baseline`]) with the energy roofline of Choi et al. (IPDPS 2013) in the form
//! of `docs/references.md` A10 (docs/model.md §3):
//!
//! ```text
//! E_ℓ = M·(E_mul(bits) + E_add) + N_instr·E_instr + Σ_levels bits_moved·E_bit + P_static·T_ℓ
//! T_ℓ = max(compute time, bytes_level / bandwidth_level for every level) + layer overhead
//! ```
//!
//! Traffic per level (a blocking model in the spirit of Timeloop's, without a mapper search):
//! * the innermost level feeds every MAC its weight, input and accumulator (read + write),
//!   divided by the datapath's operand reuse;
//! * an outer level feeds the level below it the layer's weights, inputs and outputs once
//!   when they fit there together; otherwise the cheaper of two tilings: weight tiles of half
//!   the child's capacity with the inputs streamed once per tile, or input tiles with the
//!   weights streamed once per tile;
//! * weights stay, from one batch to the next, in the innermost level that holds all
//!   of the network's weights and allows it (`weights_resident`); activations stay in the
//!   innermost level that holds the layer's inputs and outputs. Levels outside those homes
//!   see no traffic for them (steady state, inferences back to back).
//!
//! The baseline runs the same layers at the same bit widths: operands narrower than the
//! datapath's `native_bits` are computed at that width but stored at their own; pruned
//! weights are skipped (stored as nonzeros with an index each) when the preset says so and
//! that format is the smaller one. A layer of 1-bit weights on 1-bit inputs (a binary
//! layer) runs bit-packed, XNOR-popcount: each slot of the datapath takes `native_bits`
//! of its MACs at once (docs/model.md §3.2).

use cram_arch::{Baseline, BaselineKind};
use cram_workloads::golden::{self, Step};
use cram_workloads::net::{Network, Op};
use rayon::prelude::*;

use crate::error::Error;

/// The work of one layer, as a machine without CRAM sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWork {
    /// Layer name.
    pub name: String,
    /// Whether it is a convolution or dense layer (what calibration sums).
    pub weighted: bool,
    /// Whether it is a convolution.
    pub conv: bool,
    /// Multiply-accumulates of the dense layer.
    pub macs: u64,
    /// Weights (without bias).
    pub weights: u64,
    /// Nonzero weights.
    pub nonzero_weights: u64,
    /// Input elements (all inputs).
    pub in_elems: u64,
    /// Output elements.
    pub out_elems: u64,
    /// Weight bits.
    pub w_bits: u32,
    /// Input activation bits.
    pub a_bits: u32,
    /// Output activation bits.
    pub out_bits: u32,
    /// Element-wise operations besides MACs (requantization, pooling, ReLU, residual adds).
    pub elem_ops: u64,
    /// Elements the layer streams in from where the weights live, one copy per inference of
    /// a batch, of `out_bits` bits each: a decode step's cached keys or values
    /// (`Op::KvCache`'s cached entries, read every token), or the rows a token or position
    /// table gives (`Op::Embedding`, `Op::Positional`).
    pub state_elems: u64,
    /// Elements of such a table (stored with the weights, at `out_bits`; never streamed
    /// whole).
    pub table_elems: u64,
}

/// Each layer's work in a compiled network (bit widths and nonzero weights from its codes).
pub fn work_of_program(prog: &golden::Program) -> Result<Vec<LayerWork>, Error> {
    let net = prog.network();
    let stats = net.stats()?;
    // The layers in parallel (each scans its own codes), collected in order.
    Ok((1..net.layers.len())
        .into_par_iter()
        .map(|i| program_layer_work(prog, &stats, i))
        .collect())
}

/// Layer `i`'s work in a compiled network ([`work_of_program`]).
fn program_layer_work(
    prog: &golden::Program,
    stats: &[cram_workloads::net::LayerStats],
    i: usize,
) -> LayerWork {
    let net = prog.network();
    let layer = &net.layers[i];
    let a_bits = layer
        .inputs
        .iter()
        .map(|&j| prog.act(j).bits)
        .max()
        .unwrap_or(8);
    let (w_bits, nonzero) = match prog.step(i) {
        Step::Linear { w, xnor, .. } => {
            // One pass over the codes (in standard layout, as compiled), in pieces whose
            // counts fit 32 bits, so that the loop works on 32-bit lanes and vectorizes.
            let fold = |(max, nonzero): (u32, u32), &v: &i32| {
                (max.max(v.unsigned_abs()), nonzero + u32::from(v != 0))
            };
            let (max, nonzero) = match w.as_slice() {
                Some(s) => s.chunks(1 << 24).fold((0, 0), |(m, n), piece| {
                    let (pm, pn) = piece.iter().fold((0, 0), fold);
                    (m.max(u64::from(pm)), n + u64::from(pn))
                }),
                None => w.iter().fold((0, 0), |(m, n), &v| {
                    (m.max(u64::from(v.unsigned_abs())), n + u64::from(v != 0))
                }),
            };
            let bits = if xnor.is_some() || (max == 1 && nonzero == w.len() as u64) {
                // ±1 weights: one sign bit each.
                1
            } else {
                // Signed width of the codes: ±(2^(b−1) − 1) needs b bits.
                65 - max.leading_zeros().min(64)
            };
            (bits, nonzero)
        }
        Step::Input
        | Step::MaxPool
        | Step::SumPool(_)
        | Step::SumPoolCounted(_)
        | Step::Relu
        | Step::Relu6 { .. }
        | Step::Sign
        | Step::Add { .. }
        | Step::Concat(_)
        | Step::Pass
        | Step::Downsample
        | Step::Move
        | Step::Host { .. }
        | Step::Attn(_)
        | Step::Lut { .. }
        | Step::Mul(_)
        | Step::Softmax(_)
        | Step::LayerNorm(_)
        | Step::Lookup { .. }
        | Step::Cache { .. }
        | Step::AddTable { .. } => (0, 0),
    };
    layer_work(net, i, stats, w_bits, nonzero, a_bits, prog.act(i).bits)
}

/// Each layer's work in an uncompiled network at uniform `bits` (dense weights), for the
/// calibration against measured systems.
pub fn work_of_network(net: &Network, bits: u32) -> Result<Vec<LayerWork>, Error> {
    let stats = net.stats()?;
    Ok((1..net.layers.len())
        .map(|i| layer_work(net, i, &stats, bits, stats[i].weights, bits, bits))
        .collect())
}

/// Integer operations of I-BERT's softmax (`cram_workloads::ibert::Softmax`) per
/// probability on a baseline's vector unit: the row maximum's compare, the subtraction, the
/// clamp, the quotient and remainder by ⌊−ln2/S⌋ (2), the polynomial p·(p + b) + c (2), the
/// shift, the row sum's add and the division. An assumption of this project [A].
pub const SOFTMAX_OPS: u64 = 10;

/// Integer operations of I-BERT's LayerNorm (`cram_workloads::ibert::LayerNorm`) per
/// output on a baseline's vector unit: (1) the sum's add, (2) d = n·x − Σx, (3) d²'s
/// multiply-add, (4) the division by σ, (5) the requantization's multiply-add, (6) its
/// shift and clamp, and (7) a share of the square root's Newton steps (about 12 per
/// position, one per feature at n ≥ 12). An assumption of this project [A].
pub const LAYERNORM_OPS: u64 = 7;

fn layer_work(
    net: &Network,
    i: usize,
    stats: &[cram_workloads::net::LayerStats],
    w_bits: u32,
    nonzero_weights: u64,
    a_bits: u32,
    out_bits: u32,
) -> LayerWork {
    let layer = &net.layers[i];
    let s = &stats[i];
    let elems = |sh: cram_workloads::net::Shape| (sh.c * sh.h * sh.w) as u64;
    let in_elems: u64 = layer.inputs.iter().map(|&j| elems(stats[j].out)).sum();
    // A cache writes its new entries only, and streams its cached ones in from where the
    // caches live (for the attention layers to read); a token or position table streams in
    // the rows it reads, not the whole table.
    let (out_elems, state_elems, weights, table_elems) = match layer.op {
        Op::KvCache { past } => (in_elems, (past * s.out.c) as u64, s.weights, 0),
        Op::Embedding { .. } | Op::Positional { .. } => (elems(s.out), elems(s.out), 0, s.weights),
        _ => (elems(s.out), 0, s.weights, 0),
    };
    let (weighted, conv) = match layer.op {
        Op::Dense { .. } => (true, false),
        Op::Conv2d { .. } => (true, true),
        Op::Input { .. }
        | Op::MaxPool { .. }
        | Op::AvgPool { .. }
        | Op::GlobalAvgPool
        | Op::Relu
        | Op::Relu6
        | Op::Add
        | Op::Concat
        | Op::Flatten
        | Op::BatchNorm { .. }
        | Op::Downsample { .. }
        | Op::Softmax
        | Op::Sign
        | Op::AttnScores { .. }
        | Op::AttnContext { .. }
        | Op::Shuffle { .. }
        | Op::Channels { .. }
        | Op::Lrn { .. }
        | Op::Unary { .. }
        | Op::Mul
        | Op::LayerNorm { .. }
        | Op::AttnSoftmax { .. }
        | Op::Embedding { .. }
        | Op::Positional { .. }
        | Op::KvCache { .. } => (false, false),
    };
    let elem_ops = match &layer.op {
        // Requantization: one multiply and one add per output.
        Op::Dense { .. } | Op::Conv2d { .. } => 2 * out_elems,
        Op::MaxPool { window } | Op::AvgPool { window, .. } => {
            out_elems * (window.kernel[0] * window.kernel[1]) as u64
        }
        Op::GlobalAvgPool => in_elems + out_elems,
        // A product of two activations is requantized as a sum is.
        Op::Add | Op::Mul => 3 * out_elems,
        Op::Flatten | Op::Input { .. } | Op::Downsample { .. } | Op::Softmax => 0,
        Op::Relu
        | Op::Relu6
        | Op::Concat
        | Op::BatchNorm { .. }
        | Op::Sign
        | Op::AttnScores { .. }
        | Op::AttnContext { .. }
        | Op::Shuffle { .. }
        | Op::Channels { .. }
        // A table lookup per element (`golden::Step::Lut`).
        | Op::Unary { .. } => out_elems,
        // The multiply-adds CRAM's function unit does (docs/model.md §2.5.1): vector-unit
        // work.
        Op::Lrn { .. } => in_elems * crate::model::map::unit::ops_per_output(&layer.op),
        // The integer operations of I-BERT's softmax (over the visible scores only) and
        // LayerNorm: vector-unit work.
        Op::AttnSoftmax { heads, causal } => {
            let x = stats[layer.inputs[0]].out;
            cram_workloads::exec::visible_scores(*heads, *causal, x.c / heads, x.h) * SOFTMAX_OPS
        }
        Op::LayerNorm { .. } => in_elems * LAYERNORM_OPS,
        // A lookup reads each element once; a position table is added as a sum is.
        Op::Embedding { .. } | Op::KvCache { .. } => out_elems,
        Op::Positional { .. } => 3 * out_elems,
    };
    LayerWork {
        name: layer.name.clone(),
        weighted,
        conv,
        macs: s.macs,
        weights,
        nonzero_weights: nonzero_weights.min(weights),
        in_elems,
        out_elems,
        w_bits,
        a_bits,
        out_bits,
        elem_ops,
        state_elems,
        table_elems,
    }
}

/// Energy of one layer (or a whole run) on a baseline machine, by component, pJ.
#[derive(Debug, Clone, Default, PartialEq)]
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

impl BaselineEnergy {
    /// Σ of every component, pJ.
    pub fn total_pj(&self) -> f64 {
        self.compute_pj() + self.data_movement_pj() + self.static_pj
    }

    /// Arithmetic and instruction overhead, pJ.
    pub fn compute_pj(&self) -> f64 {
        self.arithmetic_pj + self.instructions_pj
    }

    /// Σ over memory levels, pJ.
    pub fn data_movement_pj(&self) -> f64 {
        self.levels_pj.iter().sum()
    }

    fn add(&mut self, o: &BaselineEnergy) {
        self.arithmetic_pj += o.arithmetic_pj;
        self.instructions_pj += o.instructions_pj;
        self.static_pj += o.static_pj;
        if self.levels_pj.len() < o.levels_pj.len() {
            self.levels_pj.resize(o.levels_pj.len(), 0.0);
        }
        for (a, b) in self.levels_pj.iter_mut().zip(&o.levels_pj) {
            *a += b;
        }
    }
}

/// One layer on a baseline machine, per inference.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineLayer {
    /// Layer name.
    pub name: String,
    /// MACs executed (pruned weights skipped when the machine skips them).
    pub macs_executed: u64,
    /// Datapath slots they take: one per MAC, or `native_bits` MACs per slot bit-packed.
    pub slots: u64,
    /// Bytes moved at each memory level, innermost first.
    pub level_bytes: Vec<f64>,
    /// Latency, s.
    pub latency_s: f64,
    /// What bounds the latency: `compute` or a memory level's name.
    pub bound: String,
    /// Energy by component.
    pub energy: BaselineEnergy,
}

/// A network on a baseline machine.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRun {
    /// Per layer.
    pub layers: Vec<BaselineLayer>,
    /// Σ over layers.
    pub energy: BaselineEnergy,
    /// Σ of layer latencies (layers run one after another), s.
    pub latency_s: f64,
}

impl BaselineRun {
    /// Energy per inference without off-chip levels (chip-only), pJ.
    pub fn chip_pj(&self, b: &Baseline) -> f64 {
        let off: f64 = b
            .params
            .levels
            .iter()
            .zip(&self.energy.levels_pj)
            .filter(|(l, _)| l.off_chip)
            .map(|(_, e)| e)
            .sum();
        self.energy.total_pj() - off
    }
}

/// Traffic of weights and activations from one level into the level below, bytes, given
/// the child's capacity: everything once when it fits together, else the cheaper tiling.
fn blocked(w: f64, i: f64, o: f64, child: f64, move_w: bool, move_a: bool) -> f64 {
    let (w, i, o) = (
        if move_w { w } else { 0.0 },
        if move_a { i } else { 0.0 },
        if move_a { o } else { 0.0 },
    );
    if w + i + o <= child {
        return w + i + o;
    }
    let half = (child / 2.0).max(1.0);
    let weight_tiles = w + i * (w / half).ceil().max(1.0);
    let input_tiles = i + w * (i / half).ceil().max(1.0);
    weight_tiles.min(input_tiles) + o
}

/// A way to price a network's layers on a von-Neumann machine. A baseline preset names
/// its kind (`model = "roofline"` in `configs/baselines/*.toml`); [`model_of`] gives the
/// implementation. Adding a kind: a variant of [`BaselineKind`], an implementation of this
/// trait, and its arm in [`model_of`] (the compiler lists the places).
pub trait BaselineModel: Sync {
    /// Evaluates `work` on `b` with `batch` inferences sharing each weight fetch; every
    /// figure is per inference.
    fn evaluate(&self, b: &Baseline, work: &[LayerWork], batch: u32) -> BaselineRun;
}

/// The energy roofline over a memory hierarchy (the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Roofline;

impl BaselineModel for Roofline {
    fn evaluate(&self, b: &Baseline, work: &[LayerWork], batch: u32) -> BaselineRun {
        roofline(b, work, batch)
    }
}

/// The model of a baseline kind.
pub fn model_of(kind: BaselineKind) -> &'static dyn BaselineModel {
    match kind {
        BaselineKind::Roofline => &Roofline,
    }
}

/// Evaluates `work` on `b` by the model its preset names, with `batch` inferences sharing
/// each weight fetch; every figure is per inference.
pub fn evaluate(b: &Baseline, work: &[LayerWork], batch: u32) -> BaselineRun {
    model_of(b.params.model).evaluate(b, work, batch)
}

/// [`Roofline`]'s evaluation.
fn roofline(b: &Baseline, work: &[LayerWork], batch: u32) -> BaselineRun {
    let p = &b.params;
    let nb = p.native_bits as f64;
    let batch = batch.max(1) as f64;
    let n_levels = p.levels.len();
    // Bytes the weights of the whole network take as the machine stores them.
    let weight_store = |l: &LayerWork| -> (f64, bool) {
        let dense = l.weights as f64 * l.w_bits as f64 / 8.0;
        let sparse = l.nonzero_weights as f64 * (l.w_bits + p.sparse_index_bits) as f64 / 8.0;
        if p.skip_zero_weights && sparse < dense {
            (sparse, true)
        } else {
            (dense, false)
        }
    };
    let all_weights: f64 = work
        .iter()
        .map(|l| weight_store(l).0 + l.table_elems as f64 * l.out_bits as f64 / 8.0)
        .sum();
    let weight_home = (1..n_levels)
        .find(|&k| p.levels[k].weights_resident && all_weights <= b.capacity_bytes(k))
        .unwrap_or(n_levels - 1);
    // A decode step's caches, one set per inference of the batch, live with the weights:
    // at the innermost level that holds both, the caches read from there every token.
    let state_bytes = |l: &LayerWork| batch * l.state_elems as f64 * l.out_bits as f64 / 8.0;
    let all_state: f64 = work.iter().map(state_bytes).sum();
    let state_home = (1..n_levels)
        .find(|&k| p.levels[k].weights_resident && all_weights + all_state <= b.capacity_bytes(k))
        .unwrap_or(n_levels - 1);
    let mut layers = Vec::with_capacity(work.len());
    let mut total = BaselineEnergy {
        levels_pj: vec![0.0; n_levels],
        ..Default::default()
    };
    let mut latency_s = 0.0;
    for l in work {
        let (w_bytes, skipping) = weight_store(l);
        let macs = if skipping && l.weights > 0 {
            (l.macs as f64 * l.nonzero_weights as f64 / l.weights as f64).round()
        } else {
            l.macs as f64
        };
        let (wb, ab) = (
            (l.w_bits.max(1) as f64).max(nb),
            (l.a_bits.max(1) as f64).max(nb),
        );
        let acc = p.acc_bits as f64;
        // A binary layer: `native_bits` MACs per slot, each slot an XNOR of two packed words
        // and a popcount (an adder tree about as dear as one native_bits-wide add) added into
        // the accumulator; its operands are the packed words.
        let packed = l.w_bits == 1 && l.a_bits == 1;
        let (slots, e_slot) = if packed {
            ((macs / nb).ceil(), p.e_add_pj * (1.0 + nb / acc))
        } else {
            (macs, p.e_mul_pj * wb * ab / (nb * nb) + p.e_add_pj)
        };
        let arithmetic_pj = slots * e_slot + l.elem_ops as f64 * p.e_add_pj;
        let ops = slots + l.elem_ops as f64;
        let instructions_pj = ops / p.macs_per_instr * p.e_instr_pj;
        // Operand traffic at the innermost level.
        let mut bytes = vec![0.0; n_levels];
        bytes[0] =
            (slots * (wb + ab + 2.0 * acc) + l.elem_ops as f64 * 2.0 * acc) / p.rf_reuse / 8.0;
        let i_bytes = batch * l.in_elems as f64 * l.a_bits as f64 / 8.0;
        let o_bytes = batch * l.out_elems as f64 * l.out_bits as f64 / 8.0;
        let act_home = (1..n_levels)
            .find(|&k| i_bytes + o_bytes <= b.capacity_bytes(k))
            .unwrap_or(n_levels - 1);
        let s_bytes = state_bytes(l);
        for (k, slot) in bytes.iter_mut().enumerate().skip(1) {
            let child = b.capacity_bytes(k - 1);
            // Weights are shared by the batch; everything is reported per inference.
            *slot = blocked(
                w_bytes,
                i_bytes,
                o_bytes,
                child,
                k <= weight_home,
                k <= act_home,
            ) / batch;
            // A cache streams in once per inference from its home.
            if k <= state_home {
                *slot += s_bytes / batch;
            }
        }
        let compute_s = ops / (p.macs_per_cycle * p.utilization * p.clock_ghz * 1e9);
        let mut bound = ("compute".to_owned(), compute_s);
        for (lv, &by) in p.levels.iter().zip(&bytes) {
            let t = by / (lv.bandwidth_gb_s * 1e9);
            if t > bound.1 {
                bound = (lv.name.clone(), t);
            }
        }
        let t = bound.1 + p.layer_overhead_ns * 1e-9 / batch;
        let energy = BaselineEnergy {
            arithmetic_pj,
            instructions_pj,
            levels_pj: p
                .levels
                .iter()
                .zip(&bytes)
                .map(|(lv, by)| by * 8.0 * lv.e_pj_per_bit)
                .collect(),
            static_pj: p.static_power_w * t * 1e12,
        };
        total.add(&energy);
        latency_s += t;
        layers.push(BaselineLayer {
            name: l.name.clone(),
            macs_executed: macs as u64,
            slots: slots as u64,
            level_bytes: bytes,
            latency_s: t,
            bound: bound.0,
            energy,
        });
    }
    BaselineRun {
        layers,
        energy: total,
        latency_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cram_arch::presets;

    fn one_dense(weights: u64, nonzero: u64, bits: u32) -> LayerWork {
        LayerWork {
            name: "fc".into(),
            weighted: true,
            conv: false,
            macs: weights,
            weights,
            nonzero_weights: nonzero,
            in_elems: 1024,
            out_elems: weights / 1024,
            w_bits: bits,
            a_bits: 8,
            out_bits: 8,
            elem_ops: 0,
            state_elems: 0,
            table_elems: 0,
        }
    }

    #[test]
    fn energy_is_the_sum_of_its_parts_and_scales_with_work() {
        let b = presets::baseline("cpu-ddr4").unwrap();
        // 2 and 8 MiB of int8 weights: both past the 1 MiB L2, so read from DRAM each time.
        let small = evaluate(&b, &[one_dense(1 << 21, 1 << 21, 8)], 1);
        let big = evaluate(&b, &[one_dense(1 << 23, 1 << 23, 8)], 1);
        let e = &small.energy;
        let parts = e.arithmetic_pj + e.instructions_pj + e.levels_pj.iter().sum::<f64>();
        assert!((e.total_pj() - parts - e.static_pj).abs() < 1e-6 * e.total_pj());
        let ratio = big.energy.total_pj() / small.energy.total_pj();
        assert!((3.5..4.5).contains(&ratio), "{ratio}");
        // An 8 MiB int8 weight matrix used once is bound by DRAM bandwidth on the CPU.
        assert_eq!(big.layers[0].bound, "dram");
        // 512 KiB fits in L2: after the first inference no DRAM traffic at all.
        let cached = evaluate(&b, &[one_dense(1 << 19, 1 << 19, 8)], 1);
        assert_eq!(*cached.energy.levels_pj.last().unwrap(), 0.0);
    }

    #[test]
    fn pruning_pays_only_where_the_machine_skips_zeros() {
        let cpu = presets::baseline("cpu-ddr4").unwrap();
        let dense = evaluate(&cpu, &[one_dense(1 << 22, 1 << 22, 8)], 1);
        let pruned = evaluate(&cpu, &[one_dense(1 << 22, 1 << 20, 8)], 1);
        assert_eq!(dense.energy, pruned.energy);
        let mut p = cpu.params.clone();
        p.skip_zero_weights = true;
        let skipper = p.validate("t").unwrap();
        let pruned = evaluate(&skipper, &[one_dense(1 << 22, 1 << 20, 8)], 1);
        assert_eq!(pruned.layers[0].macs_executed, 1 << 20);
        // 75 % sparsity: a quarter of the MACs, 3/4 of the bytes (8-bit value + 16-bit index).
        let r = pruned.energy.total_pj() / dense.energy.total_pj();
        assert!((0.6..0.8).contains(&r), "{r}");
        // At 10 % sparsity the 16-bit index makes the sparse format larger: no skipping.
        let light = evaluate(&skipper, &[one_dense(1 << 22, 3_774_874, 8)], 1);
        assert_eq!(light.layers[0].macs_executed, 1 << 22);
    }

    #[test]
    fn narrow_weights_cost_less_traffic_but_native_width_arithmetic() {
        let cpu = presets::baseline("cpu-ddr4").unwrap();
        let w8 = evaluate(&cpu, &[one_dense(1 << 22, 1 << 22, 8)], 1);
        let w4 = evaluate(&cpu, &[one_dense(1 << 22, 1 << 22, 4)], 1);
        assert_eq!(w8.energy.arithmetic_pj, w4.energy.arithmetic_pj);
        let dram = |r: &BaselineRun| *r.energy.levels_pj.last().unwrap();
        assert!((dram(&w8) / dram(&w4) - 2.0).abs() < 0.1);
    }

    /// A decode step's cache streams in from where the weights live (here the outermost
    /// level: the weights do not fit inside), once per inference of a batch, unlike the
    /// weights, which the batch shares.
    #[test]
    fn a_kv_cache_streams_from_the_weights_home_per_inference() {
        let gpu = presets::baseline("gpu-hbm2").unwrap();
        let big = one_dense(1 << 32, 1 << 32, 8);
        let cache = LayerWork {
            name: "k_cache".into(),
            weighted: false,
            weights: 0,
            nonzero_weights: 0,
            macs: 0,
            in_elems: 768,
            out_elems: 768,
            state_elems: 768 * 1000,
            ..one_dense(0, 0, 8)
        };
        let outer = |r: &BaselineRun| *r.layers[1].level_bytes.last().unwrap();
        for batch in [1, 4] {
            let r = evaluate(&gpu, &[big.clone(), cache.clone()], batch);
            assert_eq!(outer(&r), 768.0 * 1000.0, "batch {batch}");
        }
        let without = LayerWork {
            state_elems: 0,
            ..cache
        };
        let r = evaluate(&gpu, &[big, without], 1);
        assert_eq!(outer(&r), 0.0);
    }

    /// A binary layer (1-bit weights on 1-bit inputs) runs bit-packed: `native_bits` MACs
    /// per slot at one add and a popcount each, so 8× fewer slots on an int8 machine; 1-bit
    /// weights on 8-bit inputs do not pack.
    #[test]
    fn binary_layers_run_bit_packed() {
        let cpu = presets::baseline("cpu-ddr4").unwrap();
        let p = &cpu.params;
        let n = 1u64 << 20;
        let binary = LayerWork {
            a_bits: 1,
            ..one_dense(n, n, 1)
        };
        let r = evaluate(&cpu, std::slice::from_ref(&binary), 1);
        let slots = n as f64 / 8.0;
        let want = slots * p.e_add_pj * (1.0 + 8.0 / 32.0);
        assert!((r.energy.arithmetic_pj - want).abs() < 1e-9 * want);
        let int8 = evaluate(&cpu, &[one_dense(n, n, 8)], 1);
        let compute = |r: &BaselineRun| r.energy.instructions_pj;
        assert!((compute(&int8) / compute(&r) - 8.0).abs() < 1e-9);
        assert!(r.latency_s < int8.latency_s);
        let w1a8 = evaluate(&cpu, &[one_dense(n, n, 1)], 1);
        assert_eq!(w1a8.energy.arithmetic_pj, int8.energy.arithmetic_pj);
    }

    #[test]
    fn batching_shares_weight_fetches() {
        let npu = presets::baseline("edge-npu-lpddr4").unwrap();
        let w = [one_dense(1 << 22, 1 << 22, 16)];
        let (b1, b4) = (evaluate(&npu, &w, 1), evaluate(&npu, &w, 4));
        assert!(b4.energy.levels_pj[2] < 0.3 * b1.energy.levels_pj[2]);
    }
}
