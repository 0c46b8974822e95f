//! Tests of the mapper.

use super::tests::hw;
use super::*;
use cram_workloads::compress::{
    Calibration, CompressSpec, compress, synthetic_inputs, synthetic_weights,
};
use cram_workloads::golden;
use cram_workloads::net::{Network, Op as NetOp, Shape, Window};
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

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
    /// A lane's input reads from the padded images (`Linear::padded`) equal the input at
    /// row oy·stride + ky − top and column ox·stride + kx − left, or the zero point outside
    /// it, for every output position, channel and reduction index: rectangular kernels,
    /// strides up to 3, uneven padding and grouped convolutions, over two images.
    #[test]
    fn padded_taps_read_the_input_or_the_zero_point(
        kh in 1usize..4, kw in 1usize..4, sy in 1usize..4, sx in 1usize..4,
        pad in proptest::array::uniform4(0usize..3), h in 1usize..8, w in 1usize..8,
        grouped in proptest::prelude::any::<bool>(), seed in 0u64..1000,
    ) {
        proptest::prop_assume!(h + pad[0] + pad[2] >= kh && w + pad[1] + pad[3] >= kw);
        let window = Window { kernel: [kh, kw], stride: [sy, sx], pad, ceil: false };
        let groups = if grouped { 2 } else { 1 };
        let mut net = Network::new("t", Shape::new(4, h, w));
        net.then("c", NetOp::Conv2d { out_channels: 6, window, groups, bias: true });
        let wts = synthetic_weights(&net, seed).unwrap();
        let calib = synthetic_inputs(net.input_shape(), 2, seed);
        let spec = CompressSpec::INT8;
        let prog = compress(&net, &wts, &spec, &calib).unwrap().0.program().unwrap();
        let i = prog.network().layers.iter().position(|x| x.name == "c").unwrap();
        let l = linear::Linear::at(&prog, i).unwrap();
        let images: Vec<Array3<i64>> = (0..2)
            .map(|k| Array3::from_shape_fn((4, h, w), |(c, y, x)| (k * 1000 + c * 100 + y * 10 + x) as i64))
            .collect();
        let xp = l.padded(&images);
        let zero = prog.act(0).zero;
        for (img, x) in images.iter().enumerate() {
            for oy in 0..l.out_shape.h {
                for ox in 0..l.out_shape.w {
                    for co in 0..l.channels() {
                        for r in 0..l.reduction() {
                            let (ci, ky, kx) = l.tap(co, r);
                            let y = (oy * sy + ky) as isize - pad[0] as isize;
                            let xx = (ox * sx + kx) as isize - pad[1] as isize;
                            let want = if y < 0 || xx < 0 || y as usize >= h || xx as usize >= w {
                                i64::from(zero)
                            } else {
                                x[[ci, y as usize, xx as usize]]
                            };
                            let got = xp.get(xp.base(img, oy, ox) + xp.tap((ci, ky, kx)));
                            proptest::prop_assert_eq!(got, want, "img {} oy {} ox {} co {} r {}", img, oy, ox, co, r);
                        }
                    }
                }
            }
        }
    }
}
