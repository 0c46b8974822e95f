//! Element-wise layers mapped in place: ReLU (max(q, z)), ReLU6 (clamp(q, z, top)) and Sign
//! (+1 if q > z), each one program over the lanes that hold the producer's outputs, built
//! from the carry-only compare and saturation of [`super::arith`].

use crate::error::MapError;
use cram_workloads::golden::Step;
use cram_workloads::quant::ActQuant;

use super::arith::{self, Coding};
use super::linear::{Job, Load, Segment, Source};
use crate::model::kernels::{Builder, GateSet};

/// The in-place program of a ReLU, ReLU6 or Sign layer from input format `x` to `out`.
pub fn job(set: GateSet, step: &Step, x: ActQuant, out: ActQuant) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let cx = Coding::of(&x);
    let cols = b.operand("q", cx.bits);
    let s = cx.signal(&cols);
    let z = i128::from(x.zero);
    let outputs = match step {
        Step::Relu | Step::Relu6 { .. } => {
            if cx.binary {
                return Err(MapError::BinaryRelu);
            }
            let hi = match step {
                Step::Relu6 { hi } => i128::from(*hi),
                Step::Input
                | Step::Linear { .. }
                | Step::MaxPool
                | Step::SumPool(_)
                | Step::SumPoolCounted(_)
                | Step::Relu
                | Step::Sign
                | Step::Add { .. }
                | Step::Concat(_)
                | Step::Pass
                | Step::Downsample
                | Step::Move
                | Step::Host { .. }
                | Step::Attn(_) => s.hi,
            };
            arith::clamp(&mut b, &s, z, hi, cx)
        }
        Step::Sign => {
            let bit = if cx.binary || s.lo > z {
                // Binary inputs are their own sign; a range above z is always +1.
                if cx.binary { cols[0] } else { b.constant(true) }
            } else if s.hi <= z {
                b.constant(false)
            } else {
                // q > z ⇔ q ≥ z + 1.
                arith::compare_const(&mut b, &s, z + 1, true).0
            };
            vec![bit]
        }
        Step::Input
        | Step::Linear { .. }
        | Step::MaxPool
        | Step::SumPool(_)
        | Step::SumPoolCounted(_)
        | Step::Add { .. }
        | Step::Concat(_)
        | Step::Pass
        | Step::Downsample
        | Step::Move
        | Step::Host { .. }
        | Step::Attn(_) => return Err(MapError::NotElementWiseStep),
    };
    let n = b.len();
    let segments = vec![Segment {
        loads: vec![Load {
            source: Source::X(0),
            cols: cols.into(),
            coding: cx,
            resident: false,
        }],
        ops: 0..n,
    }];
    Ok(Job::new(b, segments, vec![outputs], Coding::of(&out)))
}
