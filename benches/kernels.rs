//! Criterion benches of the functional executor: single gate steps over one subarray, and
//! whole kernels (program dispatch included). Throughput is in lane-gate evaluations.
//!
//! Targets (issue 2, single thread, release, portable build): MAJ3 column op ≥ 5×10^10
//! lane-gate evaluations/s; whole kernels ≥ 2×10^10.

use std::hint::black_box;

use cramulator::arch::GateKind;
use cramulator::model::engine::isa::{MAX_INPUTS, Op};
use cramulator::model::engine::{Counter, Program, Subarray};
use cramulator::model::kernels::{GateSet, KernelKind, KernelSpec};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A subarray of `lanes` lanes with every column filled with a fixed pseudo-random pattern.
fn filled(lanes: usize, cols: usize) -> Subarray {
    let mut sa = Subarray::new(lanes, cols);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for c in 0..cols {
        for w in sa.column_mut(c as u16) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *w = x;
        }
    }
    sa
}

fn single_gates(c: &mut Criterion) {
    let mut g = c.benchmark_group("gate");
    for lanes in [1024usize, 4096] {
        for gate in [
            GateKind::Maj3,
            GateKind::Nand,
            GateKind::Not,
            GateKind::Maj5,
        ] {
            let n = gate.arity();
            let mut ins = [0; MAX_INPUTS];
            (0..n).for_each(|i| ins[i] = i as u16);
            let op = Op::Gate {
                gate,
                ins,
                out: n as u16,
                preset: true,
            };
            let names = (0..=n).map(|i| format!("c{i}")).collect();
            let program = Program::new(vec![op], vec![], names).unwrap();
            let mut sa = filled(lanes, n + 1);
            g.throughput(Throughput::Elements(lanes as u64));
            g.bench_with_input(BenchmarkId::new(gate.mnemonic(), lanes), &lanes, |b, _| {
                b.iter(|| sa.run(black_box(&program)).unwrap());
            });
        }
    }
    g.finish();
}

/// The yardstick: a bare MAJ3 word loop over three columns into a fourth, no dispatch.
fn bare_loop(c: &mut Criterion) {
    let mut g = c.benchmark_group("bare");
    for lanes in [1024usize, 4096] {
        let w = lanes / 64;
        let (a, b, d) = (vec![0x5555u64; w], vec![0x3333u64; w], vec![0x0F0Fu64; w]);
        let mut o = vec![0u64; w];
        g.throughput(Throughput::Elements(lanes as u64));
        g.bench_with_input(BenchmarkId::new("MAJ3", lanes), &lanes, |bch, _| {
            bch.iter(|| {
                let (a, b, d) = (black_box(&a[..]), black_box(&b[..]), black_box(&d[..]));
                for (o, ((x, y), z)) in o.iter_mut().zip(a.iter().zip(b).zip(d)) {
                    *o = (x & y) | (z & (x | y));
                }
                black_box(&o);
            });
        });
    }
    g.finish();
}

/// Steady state: a program of 64 MAJ3 steps over one subarray, so the per-op cost includes
/// dispatch but not the per-program set-up of `Subarray::run`.
fn gate_streams(c: &mut Criterion) {
    const STEPS: usize = 64;
    let mut g = c.benchmark_group("stream64");
    for lanes in [1024usize, 4096] {
        for gate in [GateKind::Maj3, GateKind::Nand] {
            let n = gate.arity();
            let ops = (0..STEPS)
                .map(|s| {
                    let mut ins = [0; MAX_INPUTS];
                    (0..n).for_each(|i| ins[i] = ((s + i) % (n + 1)) as u16);
                    Op::Gate {
                        gate,
                        ins,
                        out: ((s + n) % (n + 1)) as u16,
                        preset: true,
                    }
                })
                .collect();
            let names = (0..=n).map(|i| format!("c{i}")).collect();
            let program = Program::new(ops, vec![], names).unwrap();
            let mut sa = filled(lanes, n + 1);
            g.throughput(Throughput::Elements((lanes * STEPS) as u64));
            g.bench_with_input(BenchmarkId::new(gate.mnemonic(), lanes), &lanes, |b, _| {
                b.iter(|| sa.run(black_box(&program)).unwrap());
            });
        }
    }
    g.finish();
}

fn whole_kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernel");
    let lanes = 4096;
    for (kind, bits) in [
        (KernelKind::Add, 8),
        (KernelKind::Mul, 8),
        (KernelKind::Add, 32),
    ] {
        for gate_set in GateSet::ALL {
            let spec = KernelSpec {
                kind,
                bits,
                bits_b: bits,
                constant: 0,
                gate_set,
            };
            let k = spec.build();
            let evals = Counter::count(&k.program, lanes).lane_gate_evals;
            let mut sa = filled(lanes, k.program.cols());
            g.throughput(Throughput::Elements(evals));
            let id = format!("{}{}-{}", kind.name(), bits, gate_set.name());
            g.bench_with_input(BenchmarkId::new(id, lanes), &lanes, |b, _| {
                b.iter(|| sa.run(black_box(&k.program)).unwrap());
            });
        }
    }
    g.finish();
}

/// Analytical accounting against functional execution of the same kernel at 4096 lanes.
/// The per-program analysis (op counts, actions, characterization) is done once, as a
/// compiler would; what a sweep point then costs is pricing the actions under its device
/// and array and the lockstep cycle count. Issue 3 asks for ≥ 100× faster than functional.
fn accounting(c: &mut Criterion) {
    use cramulator::arch::{GateLibrary, presets};
    use cramulator::model::energy::{EnergyTable, Placement, Pricing, energy, run_energy};
    use cramulator::model::timing::{StepCycles, broadcast_cycles};
    let mut g = c.benchmark_group("accounting");
    let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
    let org = presets::array("cram-1k").unwrap();
    let table = EnergyTable::derive(&lib, &org);
    let steps = StepCycles::derive(&lib.device, &org);
    for (kind, bits) in [(KernelKind::Add, 32), (KernelKind::Mul, 8)] {
        let k = KernelSpec {
            kind,
            bits,
            bits_b: bits,
            constant: 0,
            gate_set: GateSet::Maj,
        }
        .build();
        let inputs: Vec<u16> = k.inputs.iter().flat_map(|o| o.cols.clone()).collect();
        let counts = Counter::count(&k.program, 4096).ops();
        let at = Placement {
            lanes: 4096,
            lines: cramulator::arch::Lines::new(4096, 8),
            cols: 1024,
            commands: k.program.ops().len() as u64,
        };
        let actions = run_energy(&k.program, &inputs, &table, at, 1, None).actions;
        let id = format!("{}{}", kind.name(), bits);
        g.bench_function(BenchmarkId::new("analytical", &id), |b| {
            b.iter(|| {
                let e = energy(black_box(&actions), black_box(&table), Pricing::ByZeros);
                black_box((e.total_pj(), broadcast_cycles(black_box(&counts), &steps)))
            });
        });
        let mut sa = filled(4096, k.program.cols());
        g.bench_function(BenchmarkId::new("functional", &id), |b| {
            b.iter(|| sa.run(black_box(&k.program)).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bare_loop, single_gates, gate_streams, whole_kernels, accounting
}
criterion_main!(benches);
