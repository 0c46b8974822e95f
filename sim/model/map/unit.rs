//! The periphery's function unit (docs/model.md §2.5.1): the pass of a layer the array does
//! not compute (local response normalization, `golden::Step::Host`:
//! `cram_workloads::golden::Step::on_unit`), charged to a unit of its own beside the
//! controller, with its own prices in the array file (`[function_unit]`).
//!
//! Such a layer is two passes. In the first, every input code is read out of its lane
//! (sensed, one row read and one decode per lane), crosses the global bus to the unit, and
//! the unit does [`ops_per_output`] operations per output element, each priced as a 32-bit
//! floating-point multiply-add. In the second, the results are written back into the lanes of their elements as
//! the loads of a copy are (`elem::parts`), where the next layer finds them. The unit
//! computes what the golden executor computes (`golden::Program::host`), so the layer is
//! exact by construction: its outputs are not evaluated gate by gate.

use super::stream::StreamCost;
use super::*;
use crate::model::energy::Actions;
use cram_workloads::golden::Program;
use cram_workloads::net::Op;

/// Multiply-adds of the power and the division that follow LRN's window sum, per output
/// element: (bias + α/size·Σ)^β as exp(β·ln(·)) by two 8-term polynomials (16), its
/// reciprocal by 2 Newton steps of 2 multiply-adds (4), and x times that (1). An assumption
/// of this project [A].
pub const LRN_TAIL_OPS: u64 = 21;

/// Operations the function unit spends per output element of `op`: LRN's window sum of
/// squares (`size`) and its tail ([`LRN_TAIL_OPS`]); 0 for an op it does not compute.
pub fn ops_per_output(op: &Op) -> u64 {
    match op {
        Op::Lrn { size, .. } => *size as u64 + LRN_TAIL_OPS,
        _ => 0,
    }
}

/// Cycles of `(reads, ops)` on the function unit: the longer of issuing the lane reads
/// (one command each) and the multiply-adds at the unit's rate, plus its pipeline latency;
/// 0 for no work.
pub(crate) fn cycles((reads, ops): (u64, u64), hw: &Hw) -> u64 {
    if (reads, ops) == (0, 0) {
        return 0;
    }
    let fu = &hw.org.params.function_unit;
    let issue = reads.div_ceil(u64::from(hw.org.params.issue_slots_per_cycle));
    issue.max(ops.div_ceil(u64::from(fu.ops_per_cycle))) + u64::from(fu.latency_cycles)
}

/// The first pass of host layer `i` of `prog` over `n_img` images: one run that reads the
/// input codes out, moves them to the unit (its `loaded_bits` cross the global bus on the
/// timeline before it starts) and holds the unit for [`cycles`].
pub(crate) fn unit_stream(prog: &Program, i: usize, n_img: usize, hw: &Hw) -> StreamCost {
    let layer = &prog.network().layers[i];
    let x = prog.shape(layer.inputs[0]);
    let elements = (x.c * x.h * x.w * n_img) as u64;
    let bits = elements * u64::from(prog.act(layer.inputs[0]).bits);
    let (codes, ops) = (elements, elements * ops_per_output(&layer.op));
    let unit_work = (codes, ops);
    let mut actions = Actions {
        read_bits: bits as f64,
        decodes: codes as f64,
        unit_ops: ops as f64,
        ..Actions::default()
    };
    // Over the global bus, as every operand load is (docs/model.md §2.6, §2.12), and the
    // chip link's share on several chips (as `charge_writes` and `reprice` set it).
    actions.moved_bits[1] = bits as f64;
    actions.moved_bits[3] = hw.link_bits(bits) as f64;
    StreamCost {
        runs: 1,
        cycles_per_run: cycles(unit_work, hw),
        unit_work,
        commands: codes + 1,
        loaded_bits: bits,
        actions: (&actions).into(),
        repeat: 1,
        pass: 0,
        new_subarrays: true,
        ..StreamCost::default()
    }
}
