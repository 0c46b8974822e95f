//! Tests of the mapper.

use super::tests::hw;
use super::*;
use cram_workloads::compress::{
    Calibration, CompressSpec, compress, synthetic_inputs, synthetic_weights,
};
use cram_workloads::golden;
use cram_workloads::net::{Network, Op as NetOp, Shape};
use cram_workloads::prune::Prune;
use cram_workloads::quant::{WeightMode, WeightScheme};
use cram_workloads::zoo::{conv, dense};

/// A small CNN with every conv variant the mapper handles: grouped, strided, padded,
/// depthwise, a signed-activation chain and a Dense head on a spatial map.
fn small_cnn() -> Network {
    let mut n = Network::new("small-cnn", Shape { c: 4, h: 6, w: 6 });
    n.then("c1", conv(6, 3, 2, 1, 2, true));
    n.then("r1", NetOp::Relu);
    n.then("dw", conv(6, 3, 1, 1, 6, false));
    n.then("r2", NetOp::Relu6);
    n.then("pw", conv(5, 1, 1, 0, 1, true));
    n.then("fc", dense(7));
    n
}

fn model(bits: u32, mode: WeightMode, symmetric: bool, prune: Option<Prune>) -> golden::Program {
    let net = small_cnn();
    let w = synthetic_weights(&net, 7).unwrap();
    let calib = synthetic_inputs(net.input_shape(), 8, 3);
    let spec = CompressSpec {
        weights: WeightScheme {
            bits,
            mode,
            per_channel: true,
        },
        act_bits: 6,
        act_symmetric: symmetric,
        input: None,
        prune,
        calibration: Calibration::MinMax,
        binarize: None,
    };
    compress(&net, &w, &spec, &calib)
        .unwrap()
        .0
        .program()
        .unwrap()
}

/// Convolutions in both strategies equal the golden executor on every image, for
/// symmetric and affine weights, signed and unsigned activations, and a pruned model.
#[test]
fn small_cnn_is_bit_exact() {
    let hw = hw();
    let cases = [
        model(8, WeightMode::Symmetric, false, None),
        model(4, WeightMode::Affine, true, None),
        model(
            5,
            WeightMode::Symmetric,
            false,
            Some(Prune::Unstructured { sparsity: 0.5 }),
        ),
    ];
    for prog in &cases {
        let (lo, hi) = prog.act(0).range();
        let images: Vec<Array3<i64>> = synthetic_inputs(prog.network().input_shape(), 5, 9)
            .iter()
            .map(|x| x.mapv(|v| lo + ((hi - lo) as f32 * v) as i64))
            .collect();
        for s in Strategy::ALL {
            let run = run_network(
                prog,
                &images,
                &hw,
                &RunOptions {
                    mode: Mode::Functional,
                    choice: Choice::force(s),
                    error_rates: [0.0; cram_arch::GateKind::COUNT],
                    seed: 0,
                    limits: Default::default(),
                },
            )
            .unwrap();
            assert_eq!(run.outputs.len(), images.len());
            for (x, got) in images.iter().zip(&run.outputs) {
                assert_eq!(got, prog.run(x).unwrap().last().unwrap(), "{s:?}");
            }
        }
    }
}
