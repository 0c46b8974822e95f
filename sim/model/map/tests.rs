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
