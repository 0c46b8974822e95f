//! Criterion benches of whole-network mapping: the analytical (closed-form) cost of every
//! layer of ResNet-20 and ResNet-18, int8, strategy chosen per layer for energy (both
//! strategies are costed), on one thread.
//!
//! Target (issue 5): ResNet-18 analytical, whole network, single thread ≤ 100 ms.

use std::hint::black_box;

use cramulator::arch::{GateLibrary, presets};
use cramulator::experiment::config::{Config, zoo_program};
use cramulator::model::kernels::GateSet;
use cramulator::model::map::{Choice, Hw, Mode, Objective, RunOptions, run_network};
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array3;

fn analytical(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let lib = GateLibrary::derive(&presets::device("stt-projected").expect("preset"));
    let hw = Hw::new(
        lib,
        presets::array("cram-1k").expect("preset"),
        GateSet::Maj,
    );
    let opts = RunOptions {
        mode: Mode::Analytical,
        choice: Choice::auto(Objective::Energy),
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 1,
        limits: Default::default(),
    };
    let mut g = c.benchmark_group("analytical");
    for name in ["resnet20", "resnet18"] {
        let prog = zoo_program(
            name,
            &Config::default().compress_spec().expect("spec"),
            1,
            Default::default(),
        )
        .expect("zoo model compresses");
        let s = prog.network().input_shape();
        // Analytical runs need only the number of images.
        let images = vec![Array3::zeros((s.c, s.h, s.w))];
        g.bench_function(name, |b| {
            b.iter(|| {
                pool.install(|| black_box(run_network(&prog, &images, &hw, &opts).expect("maps")))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(3));
    targets = analytical
}
criterion_main!(benches);
