//! Tests of the mapper.

use super::*;
use cram_arch::presets;
use cram_workloads::digits::{Digits, SPLIT_SEED};
use cram_workloads::train::{code_inputs, shipped};

pub(crate) fn hw() -> Hw {
    let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
    Hw::new(lib, presets::array("cram-1k").unwrap(), GateSet::Maj)
}

fn opts(mode: Mode, strategy: Strategy) -> RunOptions {
    RunOptions {
        mode,
        choice: Choice::Force(strategy),
        error_rate: 0.0,
        seed: 1,
        limits: Default::default(),
    }
}

/// Every shipped quantized digits model, both strategies: every held-out image's final
/// codes equal the golden executor's.
#[test]
fn digits_models_are_bit_exact_in_both_strategies() {
    let (_, test) = Digits::embedded().split(SPLIT_SEED);
    let images = code_inputs(&test);
    let hw = hw();
    for name in [
        "digits-mlp-int8",
        "digits-mlp-int4",
        "digits-mlp-w4a4",
        "digits-mlp-binary",
    ] {
        let prog = shipped(name).unwrap().unwrap().program().unwrap();
        let want: Vec<Array3<i64>> = images
            .iter()
            .map(|x| prog.run(x).unwrap().pop().unwrap())
            .collect();
        for s in Strategy::ALL {
            let run = run_network(&prog, &images, &hw, &opts(Mode::Functional, s)).unwrap();
            assert_eq!(run.outputs.len(), want.len());
            for (i, (got, want)) in run.outputs.iter().zip(&want).enumerate() {
                assert_eq!(got, want, "{name} {s:?} image {i}");
            }
            assert!(run.energy_pj() > 0.0 && run.cycles() > 0);
        }
    }
}

/// The distinct input vectors of a block of stored lanes, (channel, image, position)
/// channel-major: one per (image, position) of each convolution group the block touches.
#[test]
fn stored_inputs_are_distinct_per_position_and_group() {
    // A dense layer at one image: 256 channels share one input vector.
    assert_eq!(stored_x_distinct(&(0..256), 1, 256), 1);
    // 1024 positions per channel: a block inside one channel, or across two of one group.
    assert_eq!(stored_x_distinct(&(0..1024), 1024, 16), 1024);
    assert_eq!(stored_x_distinct(&(512..1536), 1024, 16), 1024);
    assert_eq!(stored_x_distinct(&(0..100), 1024, 16), 100);
    // Depthwise (one channel per group), 4 positions: every channel its own inputs.
    assert_eq!(stored_x_distinct(&(0..16), 4, 1), 16);
    assert_eq!(stored_x_distinct(&(2..6), 4, 1), 4);
    // Groups of 2 channels, 3 positions: 6 lanes per group, 3 distinct vectors each.
    assert_eq!(stored_x_distinct(&(0..12), 3, 2), 6);
    assert_eq!(stored_x_distinct(&(4..8), 3, 2), 2 + 2);
}
