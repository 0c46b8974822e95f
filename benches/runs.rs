//! Criterion benches of the whole-run rows of the README's performance table (issue 23),
//! each scaled down where the full row takes too long to sample:
//!
//! * `runs/compress/resnet18`: synthetic weights, calibration and compilation of ResNet-18,
//!   the part of `run --set workload.model=resnet18 --mode analytical` that
//!   `network`'s `analytical/resnet18` (the mapping) leaves out;
//! * `runs/kernel-add32/4194304`: `kernel add --bits 32` at 2^22 lanes, operands generated
//!   and every lane checked (the table's row has 2^26);
//! * `runs/simulate/resnet18-32px`: a functional, bit-exact int8 inference of ResNet-18's
//!   layers on a 32×32 input (1/49 of the 224×224 network's MACs);
//! * `runs/geometry-sweep/resnet20-4-points`: a 4-point sweep of subarray lanes on ResNet-20,
//!   analytical, as one `sweep run` shard (the table's row sweeps ResNet-18);
//! * `runs/chip-sweep/resnet20-16-points`: a 16-point sweep of subarrays per bank × banks on
//!   ResNet-20, analytical, as one shard (the table's chip rows sweep ResNet-18).
//!
//! Threads: every core (the table's rows run on 2 threads).

use std::hint::black_box;
use std::path::Path;

use cram_arch::{GateLibrary, presets};
use cram_workloads::{golden, net::Op, net::Shape, zoo};
use cramulator::experiment::config::{Config, zoo_program};
use cramulator::experiment::kernel::{self, KernelRequest};
use cramulator::experiment::options::Options;
use cramulator::experiment::sweep::{Plan, run_points};
use cramulator::model::kernels::KernelKind;
use cramulator::model::map::{Choice, Hw, Mode, Objective, RunOptions, run_network};
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array3;

fn compress(c: &mut Criterion) {
    let spec = Config::default().compress_spec().expect("spec");
    c.bench_function("runs/compress/resnet18", |b| {
        b.iter(|| {
            black_box(zoo_program("resnet18", &spec, 1, Default::default()).expect("compresses"))
        })
    });
}

fn kernel_add(c: &mut Criterion) {
    let lanes = 1 << 22;
    let mut request = KernelRequest::new(KernelKind::Add, 32);
    request.lanes = lanes;
    let options = Options::default();
    c.bench_function(&format!("runs/kernel-add32/{lanes}"), |b| {
        b.iter(|| black_box(kernel::run(&request, &options, &mut |_| Ok(())).expect("runs")))
    });
}

fn simulate(c: &mut Criterion) {
    let mut net = zoo::model("resnet18").expect("zoo model");
    net.layers[0].op = Op::Input {
        shape: Shape::new(3, 32, 32),
    };
    let spec = Config::default().compress_spec().expect("spec");
    let m = cram_workloads::compress::synthetic_model(&net, &spec, 1, 2).expect("compresses");
    let prog = golden::Program::compile(&m.net, &m.weights, m.quant.as_ref().expect("quantized"))
        .expect("compiles");
    let (lo, hi) = prog.act(0).range();
    let image = Array3::from_shape_fn((3, 32, 32), |(c, y, x)| {
        lo + ((c * 7 + y * 5 + x * 3) as i64).rem_euclid(hi - lo + 1)
    });
    let hw = Hw::new(
        GateLibrary::derive(&presets::device("stt-projected").expect("preset")),
        presets::array("cram-1k").expect("preset"),
        Config::default().cram.gate_set,
    );
    let opts = RunOptions {
        mode: Mode::Functional,
        choice: Choice::auto(Objective::Energy),
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 1,
        limits: Default::default(),
    };
    let images = vec![image];
    let mut g = c.benchmark_group("runs/simulate");
    g.sample_size(10);
    g.bench_function("resnet18-32px", |b| {
        b.iter(|| {
            let r = run_network(&prog, &images, &hw, &opts).expect("maps");
            assert_eq!(
                &r.outputs[0],
                prog.run(&images[0])
                    .expect("golden")
                    .last()
                    .expect("a layer"),
                "bit-exact"
            );
            black_box(r)
        })
    });
    g.finish();
}

fn geometry_sweep(c: &mut Criterion) {
    sweep_bench(
        c,
        "runs/geometry-sweep",
        "resnet20-4-points",
        r#"
[sweep]
name = "bench-geometry"
seed = 1
set = ["workload.model=resnet20", "run.mode=analytical", "mapping.max_gate_error=1"]

[[axis]]
key = "cram.array_params.lanes_per_subarray"
values = [256, 512, 1024, 2048]
"#,
    );
}

fn chip_sweep(c: &mut Criterion) {
    sweep_bench(
        c,
        "runs/chip-sweep",
        "resnet20-16-points",
        r#"
[sweep]
name = "bench-chip"
seed = 1
set = ["workload.model=resnet20", "run.mode=analytical", "mapping.max_gate_error=1"]

[[axis]]
key = "cram.array_params.subarrays_per_bank"
values = [4, 8, 16, 32]

[[axis]]
key = "cram.array_params.banks"
values = [2, 4, 8, 16]
"#,
    );
}

/// Every point of the sweep file `text`, as one `sweep run` shard, each iteration from
/// empty caches.
fn sweep_bench(c: &mut Criterion, group: &str, name: &str, text: &str) {
    let options = Options::default();
    let plan = Plan::from_text(text, Path::new("bench-sweep.toml"), options.limits.stop)
        .expect("a sweep plan");
    let ids: Vec<u64> = (0..plan.manifest.points).collect();
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.bench_function(name, |b| {
        b.iter(|| {
            let run = run_points(&plan, &ids, &options, &|p| {
                black_box(p);
            })
            .expect("runs");
            assert_eq!((run.ran, run.failed), (ids.len() as u64, 0));
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(5));
    targets = compress, kernel_add, simulate, geometry_sweep, chip_sweep
}
criterion_main!(benches);
