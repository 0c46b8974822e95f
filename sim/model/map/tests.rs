//! Tests of the mapper.

use super::*;
use crate::error::MapError;
use cram_arch::presets;
use cram_workloads::digits::{Digits, SPLIT_SEED, code_inputs};
use cram_workloads::train::shipped;

pub(crate) fn hw() -> Hw {
    let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
    Hw::new(lib, presets::array("cram-1k").unwrap(), GateSet::Maj)
}

fn opts(mode: Mode, layout: Layout) -> RunOptions {
    RunOptions {
        mode,
        choice: Choice::layout(layout),
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 1,
        limits: Default::default(),
    }
}

/// Every shipped quantized digits model under every layout a `[mapping]` pin can force
/// (both strategies; stored with its 64-input reductions whole or split over 2, 3, 7 and
/// 64 slices, each with programs per channel group and shared, reloading its weights and
/// resident): every held-out image's final codes equal the golden executor's.
#[test]
fn digits_models_are_bit_exact_under_every_layout() {
    let (_, test) = Digits::embedded().split(SPLIT_SEED);
    let hw = hw();
    for name in [
        "digits-mlp-int8",
        "digits-mlp-int4",
        "digits-mlp-w4a4",
        "digits-mlp-binary",
    ] {
        let prog = shipped(name).unwrap().unwrap().program().unwrap();
        let images = code_inputs(&test, prog.network().input_shape());
        let want: Vec<Array3<i64>> = images
            .iter()
            .map(|x| prog.run(x).unwrap().pop().unwrap())
            .collect();
        let layouts = Strategy::ALL.map(Layout::plain).into_iter().chain(
            [1, 2, 3, 7, 64]
                .into_iter()
                .flat_map(|slices| {
                    [(false, false), (true, false), (false, true), (true, true)]
                        .into_iter()
                        .flat_map(move |(shared, resident)| {
                            // Copies (outputs over time) are of resident shared weights.
                            let copies: &[usize] = if shared && resident {
                                &[0, 1, 5, 64]
                            } else {
                                &[0]
                            };
                            copies.iter().map(move |&copies| Layout {
                                strategy: Strategy::Stored,
                                slices,
                                shared,
                                resident,
                                copies,
                            })
                        })
                })
                .skip(1),
        );
        for s in layouts {
            let run = match run_network(&prog, &images, &hw, &opts(Mode::Functional, s)) {
                Ok(run) => run,
                // 64 int8 weights and their constants exceed the resident columns.
                Err(crate::error::Error::Layer { why, .. })
                    if s.resident && matches!(*why, MapError::ResidentColumns { .. }) =>
                {
                    continue;
                }
                Err(e) => panic!("{name} {s:?}: {e}"),
            };
            assert_eq!(run.outputs.len(), want.len());
            for (i, (got, want)) in run.outputs.iter().zip(&want).enumerate() {
                assert_eq!(got, want, "{name} {s:?} image {i}");
            }
            assert!(run.energy_pj() > 0.0 && run.cycles() > 0);
        }
    }
}

/// The acceptance of issue 25 for `digits-transformer`: on all 360 held-out digits the
/// functional run (the layouts the default search picks, and both plain strategies) gives
/// the golden executor's final codes, the analytical run matches the functional one
/// (`analytical_matches`), and the predictions are ≥ 95 % correct.
#[test]
fn the_digits_transformer_is_bit_exact_on_every_held_out_digit() {
    let (_, test) = Digits::embedded().split(SPLIT_SEED);
    let prog = shipped("digits-transformer")
        .unwrap()
        .unwrap()
        .program()
        .unwrap();
    let images = code_inputs(&test, prog.network().input_shape());
    assert_eq!(images.len(), 360);
    let want: Vec<Array3<i64>> = images
        .iter()
        .map(|x| prog.run(x).unwrap().pop().unwrap())
        .collect();
    let correct = want
        .iter()
        .zip(&test.labels)
        .filter(|(z, y)| cram_workloads::exec::argmax(z) == usize::from(**y))
        .count();
    assert!(correct * 100 >= 95 * 360, "{correct}/360");
    let hw = hw();
    let choices = [Choice::auto(Objective::Energy)]
        .into_iter()
        .chain(Strategy::ALL.map(Choice::force));
    for choice in choices {
        let run_in = |mode| {
            let o = RunOptions {
                choice,
                ..opts(mode, Layout::plain(Strategy::Stored))
            };
            run_network(&prog, &images, &hw, &o).unwrap()
        };
        let f = run_in(Mode::Functional);
        assert_eq!(f.outputs, want, "{choice:?}");
        let a = run_in(Mode::Analytical);
        analytical_matches(&f, &a).unwrap_or_else(|e| panic!("{choice:?}: {e}"));
    }
}

/// The values a block of stored lanes, (channel, image, position[, slice]) channel-major,
/// moves over the bus: each input vector, (channel, slice)'s weights and channel's
/// constants with the first lane of the layer that loads it (multicast).
#[test]
fn a_block_moves_what_no_earlier_lane_loaded() {
    // A dense layer at one image: 256 channels share one input vector.
    assert_eq!(first_lanes(&(0..256), 256, 1), 1);
    // 1024 positions per channel, 16 channels per group: the first channel's lanes move
    // the inputs, the others' find them sent.
    assert_eq!(first_lanes(&(0..1024), 16 * 1024, 1024), 1024);
    assert_eq!(first_lanes(&(512..1536), 16 * 1024, 1024), 512);
    assert_eq!(first_lanes(&(1024..2048), 16 * 1024, 1024), 0);
    assert_eq!(first_lanes(&(0..100), 16 * 1024, 1024), 100);
    // Depthwise (one channel per group), 4 positions: every channel its own inputs.
    assert_eq!(first_lanes(&(0..16), 4, 4), 16);
    assert_eq!(first_lanes(&(2..6), 4, 4), 4);
    // Groups of 2 channels, 3 positions: 6 lanes per group, 3 vectors each.
    assert_eq!(first_lanes(&(0..12), 6, 3), 6);
    assert_eq!(first_lanes(&(4..8), 6, 3), 2);
    // 4 positions × 2 slices per channel: each (channel, slice)'s weights once, each
    // channel's constants once.
    assert_eq!(first_lanes(&(0..16), 8, 2), 4);
    assert_eq!(first_lanes(&(4..20), 8, 1), 2);
}
