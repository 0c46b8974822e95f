//! Runs a kernel on random data in every lane and checks every lane against the integer
//! reference.
//!
//! The lanes are split into subarrays of `lanes_per_subarray`. Every subarray runs the same
//! broadcast program and subarrays do not interact during a kernel, so the executor packs
//! consecutive subarrays into *blocks* of about [`BLOCK_LANES`] lanes (whole subarrays; a
//! subarray size that is not a multiple of 64 gets blocks of one subarray): one op then
//! sweeps a whole block's column, which amortizes dispatch, and the block's state (a few
//! tens of KiB) stays in L1/L2 while its whole program runs. Blocks run in parallel (rayon);
//! each is generated, executed and checked, then its buffer is reused, so memory does not
//! grow with the lane count. Operand data is loaded into the input columns before the program
//! runs (not part of the kernel's op stream). Random data is counter-based — block b draws
//! from ChaCha8 stream b of the seed — so data, outputs and report do not depend on the
//! thread count.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rayon::prelude::*;

use super::Kernel;
use crate::model::bits::transpose64;
use crate::model::engine::exec::{Faults, Simd, Subarray, WORD_BITS, ZeroHistogram};
use crate::model::engine::isa::Col;
use crate::model::limits::Stop;

/// How to run a kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunConfig {
    /// Total lanes simulated.
    pub lanes: usize,
    /// Lanes per subarray.
    pub lanes_per_subarray: usize,
    /// Seed of the operand data (and, through a fixed key, of the injected faults).
    pub seed: u64,
    /// Probability that a gate step's output is wrong in a lane (0 = no fault injection);
    /// ignored when `error_rates_by_gate` is given.
    pub error_rate: f64,
    /// Per-gate error probabilities ([`cram_arch::GateKind::index`] order), e.g. derived
    /// from the device's noise margins.
    pub error_rates_by_gate: Option<[f64; cram_arch::GateKind::COUNT]>,
    /// Record every gate step's input-zero histogram (for data-dependent energy).
    pub track_zeros: bool,
    /// Polled between executor blocks.
    pub stop: Stop,
}

/// Key mixed into the seed for the fault stream, so faults and data are independent.
const FAULT_KEY: u64 = 0xFA01_7CAF_E000_0001;

/// One lane whose output disagreed with the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Global lane index.
    pub lane: u64,
    /// Raw input patterns.
    pub inputs: Vec<u64>,
    /// Raw output patterns the array produced.
    pub got: Vec<u64>,
    /// Raw output patterns of the reference.
    pub expected: Vec<u64>,
}

/// Outcome of [`run_and_check`].
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Lanes simulated and checked.
    pub lanes_checked: u64,
    /// Lanes whose output differed from the reference.
    pub mismatched_lanes: u64,
    /// The lowest-numbered mismatching lane, if any.
    pub first_mismatch: Option<Mismatch>,
    /// Order-independent digest of every output bit of every lane: equal digests mean equal
    /// results (compare runs with different thread counts).
    pub output_digest: u64,
    /// Gate-output flips injected (0 without `error_rate`).
    pub injected_flips: u64,
    /// Output bits checked (lanes × output width).
    pub output_bits: u64,
    /// Output bits that differ from the reference.
    pub output_bits_wrong: u64,
    /// Summed time inside the executor over all threads, seconds.
    pub exec_cpu_s: f64,
    /// With `track_zeros`: per gate step, lanes by input-zero count, summed over all lanes.
    pub zero_histograms: Vec<ZeroHistogram>,
    /// SIGINT stopped the run before every block ran (the counts cover only some lanes).
    pub interrupted: bool,
}

/// Target lanes per executor block.
pub const BLOCK_LANES: usize = 4096;

/// Lanes per executor block for a subarray size: whole subarrays, about [`BLOCK_LANES`].
pub fn block_lanes(lanes_per_subarray: usize) -> usize {
    let per = lanes_per_subarray.max(1);
    if per.is_multiple_of(WORD_BITS) {
        per * (BLOCK_LANES / per).max(1)
    } else {
        per
    }
}

/// Lanes of one executor block of `kernel` (what one thread holds at a time): whole
/// subarrays packed to about [`BLOCK_LANES`], or one subarray when an op addresses single
/// lanes (packing is only exact without such ops).
pub fn executor_block(kernel: &Kernel, lanes_per_subarray: usize) -> usize {
    let per = lanes_per_subarray.max(1);
    if kernel.program.addresses_lanes() {
        per
    } else {
        block_lanes(per)
    }
}

/// Runs `kernel` in `cfg.lanes` lanes of random data and checks each lane. The blocks'
/// results are reduced as they finish, so memory does not grow with the lane count. Between
/// blocks the run polls `cfg.stop`: once it arrives, the blocks
/// not yet started are skipped and `interrupted` is set (the report then covers the blocks
/// that ran, and is not a result).
pub fn run_and_check(kernel: &Kernel, cfg: &RunConfig) -> CheckReport {
    let block = executor_block(kernel, cfg.lanes_per_subarray);
    let blocks = cfg.lanes.div_ceil(block);
    let cols = kernel.program.cols();
    let total = (0..blocks)
        .into_par_iter()
        .with_min_len(4)
        .map_init(
            || Subarray::new(0, 0),
            |sa, b| {
                if cfg.stop.requested() {
                    return None;
                }
                let lanes = block.min(cfg.lanes - b * block);
                sa.reset(lanes, cols);
                Some(one_block(kernel, sa, cfg, b, (b * block) as u64))
            },
        )
        // The first skipped block stops the iteration on every thread.
        .while_some()
        .reduce(Partial::empty, Partial::merge);
    CheckReport {
        lanes_checked: cfg.lanes as u64,
        mismatched_lanes: total.mismatches,
        first_mismatch: total.first,
        output_digest: total.digest,
        injected_flips: total.flips,
        output_bits: cfg.lanes as u64
            * kernel
                .outputs
                .iter()
                .map(|o| o.cols.len() as u64)
                .sum::<u64>(),
        output_bits_wrong: total.bits_wrong,
        exec_cpu_s: total.exec_s,
        zero_histograms: total.zeros,
        interrupted: cfg.stop.requested(),
    }
}

/// The results of some blocks: sums, the lowest-lane mismatch, and the summed histograms.
struct Partial {
    zeros: Vec<ZeroHistogram>,
    mismatches: u64,
    digest: u64,
    flips: u64,
    bits_wrong: u64,
    first: Option<Mismatch>,
    exec_s: f64,
}

impl Partial {
    fn empty() -> Partial {
        Partial {
            zeros: Vec::new(),
            mismatches: 0,
            digest: 0,
            flips: 0,
            bits_wrong: 0,
            first: None,
            exec_s: 0.0,
        }
    }

    /// Both parts together; commutative and associative (sums, wrapping sums, the lowest
    /// lane), so the result does not depend on the order blocks finish in.
    fn merge(mut a: Partial, b: Partial) -> Partial {
        a.mismatches += b.mismatches;
        a.digest = a.digest.wrapping_add(b.digest);
        a.flips += b.flips;
        a.bits_wrong += b.bits_wrong;
        a.exec_s += b.exec_s;
        if a.zeros.is_empty() {
            a.zeros = b.zeros;
        } else {
            for (acc, h) in a.zeros.iter_mut().zip(&b.zeros) {
                acc.iter_mut().zip(h).for_each(|(x, y)| *x += y);
            }
        }
        a.first = match (a.first, b.first) {
            (Some(x), Some(y)) => Some(if y.lane < x.lane { y } else { x }),
            (x, y) => x.or(y),
        };
        a
    }
}

/// Fills the inputs of block `b` from ChaCha8 stream `b`, runs, checks.
fn one_block(kernel: &Kernel, sa: &mut Subarray, cfg: &RunConfig, b: usize, lane0: u64) -> Partial {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(b as u64);
    for op in &kernel.inputs {
        sa.fill_random(&op.cols, &mut rng);
    }
    if let Some(p) = cfg.error_rates_by_gate {
        sa.set_faults(Some(Faults::per_gate(p, cfg.seed ^ FAULT_KEY, b as u64)));
    } else if cfg.error_rate > 0.0 {
        sa.set_faults(Some(Faults::new(
            cfg.error_rate,
            cfg.seed ^ FAULT_KEY,
            b as u64,
        )));
    }
    sa.set_track_zeros(cfg.track_zeros);
    let t = Instant::now();
    sa.run(&kernel.program)
        .expect("kernel columns fit the subarray");
    let exec_s = t.elapsed().as_secs_f64();

    let flips = sa.faults().map_or(0, Faults::flips);
    let mut out = Partial {
        zeros: sa.zero_histograms().to_vec(),
        flips,
        exec_s,
        ..Partial::empty()
    };
    let lanes = sa.lanes();
    let mut ins = vec![[0u64; 64]; kernel.inputs.len()];
    let mut outs = vec![[0u64; 64]; kernel.outputs.len()];
    let mut expected = [[0u64; 64]; 2];
    let (cells, words) = (sa.cells(), sa.words());
    // Lanes that may be wrong: those whose output differs from the bit-sliced reference,
    // or every lane when the kernel has none.
    let mut suspects = vec![u64::MAX; words];
    let column = |c: Col| &cells[usize::from(c) * words..][..words];
    kernel.wrong_lanes(&column, words, &mut suspects);
    for (w, &suspect) in suspects.iter().enumerate() {
        let valid = (lanes - w * WORD_BITS).min(WORD_BITS);
        for (m, op) in outs.iter_mut().zip(&kernel.outputs) {
            gather(sa, op, w, m);
        }
        for (i, m) in outs.iter().enumerate() {
            let d = digest(lane0 + (w * WORD_BITS) as u64, i as u64, &m[..valid]);
            out.digest = out.digest.wrapping_add(d);
        }
        if suspect == 0 {
            continue;
        }
        for (m, op) in ins.iter_mut().zip(&kernel.inputs) {
            gather(sa, op, w, m);
        }
        kernel.reference_block(&ins, valid, &mut expected);
        for l in (0..valid).filter(|&l| suspect >> l & 1 == 1) {
            // Compare first: bits are counted only for the rare wrong lane.
            if outs.iter().zip(&expected).any(|(m, e)| m[l] != e[l]) {
                let wrong: u32 = outs
                    .iter()
                    .zip(&expected)
                    .map(|(m, e)| (m[l] ^ e[l]).count_ones())
                    .sum();
                out.mismatches += 1;
                out.bits_wrong += u64::from(wrong);
                if out.first.is_none() {
                    out.first = Some(Mismatch {
                        lane: lane0 + (w * WORD_BITS + l) as u64,
                        inputs: ins.iter().map(|m| m[l]).collect(),
                        got: outs.iter().map(|m| m[l]).collect(),
                        expected: expected[..outs.len()].iter().map(|e| e[l]).collect(),
                    });
                }
            }
        }
    }
    out
}

/// Σ_l [`mix`](lane + l, operand, values[l]) (wrapping): the digest of consecutive lanes'
/// values of one output operand, vectorized with AVX2 where the CPU has it.
fn digest(lane: u64, operand: u64, values: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if Simd::best() == Simd::Avx2 {
        // SAFETY: `Simd::best` returns `Avx2` only after `Simd::is_supported` confirmed
        // the CPU has AVX2.
        #[allow(unsafe_code)]
        return unsafe { digest_avx2(lane, operand, values) };
    }
    digest_portable(lane, operand, values)
}

#[inline(never)]
fn digest_portable(lane: u64, operand: u64, values: &[u64]) -> u64 {
    digest_body(lane, operand, values)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
fn digest_avx2(lane: u64, operand: u64, values: &[u64]) -> u64 {
    digest_body(lane, operand, values)
}

#[inline(always)]
fn digest_body(lane: u64, operand: u64, values: &[u64]) -> u64 {
    values.iter().enumerate().fold(0u64, |d, (l, &v)| {
        d.wrapping_add(mix(lane + l as u64, operand, v))
    })
}

/// SplitMix64-style mix of (lane, output operand, value); summed over lanes it digests a run.
#[inline(always)]
fn mix(lane: u64, operand: u64, value: u64) -> u64 {
    let mut z = value
        ^ lane.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ operand.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per-lane values of one operand for the 64 lanes of word `w`.
fn gather(sa: &Subarray, op: &super::Operand, w: usize, m: &mut [u64; 64]) {
    m.fill(0);
    let (cells, words) = (sa.cells(), sa.words());
    for (i, &c) in op.cols.iter().enumerate() {
        m[i] = cells[usize::from(c) * words + w];
    }
    transpose64(m);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::engine::isa::Op;
    use crate::model::kernels::{GateSet, KernelKind, KernelSpec};
    use cram_arch::GateKind;

    fn add8() -> Kernel {
        KernelSpec {
            kind: KernelKind::Add,
            bits: 8,
            bits_b: 8,
            constant: 0,
            gate_set: GateSet::Maj,
        }
        .build()
    }

    /// Runs `f` on a rayon pool of `threads` threads.
    fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    fn cfg(lanes: usize) -> RunConfig {
        RunConfig {
            lanes,
            lanes_per_subarray: 1024,
            seed: 7,
            error_rate: 0.0,
            error_rates_by_gate: None,
            track_zeros: false,
            stop: Default::default(),
        }
    }

    /// The checker must be able to fail: a program with one wrong gate is caught, and the
    /// first bad lane is reported with its operands.
    #[test]
    fn a_corrupted_program_is_caught() {
        let mut k = add8();
        let mut ops = k.program.ops().to_vec();
        let i = ops
            .iter()
            .position(|op| {
                matches!(
                    op,
                    Op::Gate {
                        gate: GateKind::Maj5,
                        ..
                    }
                )
            })
            .unwrap();
        if let Op::Gate { gate, .. } = &mut ops[i] {
            *gate = GateKind::InvMaj5;
        }
        k.program = k.program.with_ops(ops).unwrap();
        let r = run_and_check(&k, &cfg(3000));
        assert!(r.mismatched_lanes > 1000, "{}", r.mismatched_lanes);
        let m = r.first_mismatch.unwrap();
        assert_eq!(m.expected, vec![m.inputs[0] + m.inputs[1]]);
        assert_ne!(m.got, m.expected);
    }

    #[test]
    fn a_dropped_preset_is_caught() {
        let mut k = add8();
        // Columns are reused, so a gate that skips its preset sees a stale value.
        let ops: Vec<Op> = k
            .program
            .ops()
            .iter()
            .map(|op| match *op {
                Op::Gate { gate, ins, out, .. } => Op::Gate {
                    gate,
                    ins,
                    out,
                    preset: false,
                },
                other => other,
            })
            .collect();
        k.program = k.program.with_ops(ops).unwrap();
        assert!(run_and_check(&k, &cfg(2000)).mismatched_lanes > 0);
    }

    #[test]
    fn digest_is_independent_of_threads_and_depends_on_data() {
        let k = add8();
        let run = |threads, seed| {
            with_threads(threads, || {
                run_and_check(
                    &k,
                    &RunConfig {
                        seed,
                        ..cfg(50_000)
                    },
                )
            })
        };
        let (one, two) = (run(1, 7), run(2, 7));
        assert_eq!(one.output_digest, two.output_digest);
        assert_eq!(one.mismatched_lanes, 0);
        assert_ne!(one.output_digest, run(2, 8).output_digest);
    }

    /// Each output bit of `not` is exactly one gate step, so the observed output bit-error
    /// rate must be p (5 σ binomial bound), and a faulty run is identical for 1 and 2 threads.
    #[test]
    fn injected_faults_reach_the_outputs_at_rate_p_whatever_the_thread_count() {
        let k = KernelSpec {
            kind: KernelKind::Not,
            bits: 16,
            bits_b: 16,
            constant: 0,
            gate_set: GateSet::Nand,
        }
        .build();
        let p = 1e-3;
        let run = |threads| {
            with_threads(threads, || {
                run_and_check(
                    &k,
                    &RunConfig {
                        error_rate: p,
                        ..cfg(200_000)
                    },
                )
            })
        };
        let (one, two) = (run(1), run(2));
        let n = one.output_bits as f64;
        let sigma = (n * p * (1.0 - p)).sqrt();
        assert!(
            (one.output_bits_wrong as f64 - n * p).abs() <= 5.0 * sigma,
            "{} of {n}",
            one.output_bits_wrong
        );
        assert_eq!(one.injected_flips, one.output_bits_wrong);
        assert_eq!(
            (one.output_digest, one.injected_flips, one.mismatched_lanes),
            (two.output_digest, two.injected_flips, two.mismatched_lanes)
        );
        // A clean run of the same kernel has none of it.
        let clean = run_and_check(&k, &cfg(200_000));
        assert_eq!((clean.injected_flips, clean.output_bits_wrong), (0, 0));
    }

    #[test]
    fn block_sizes() {
        assert_eq!(block_lanes(1024), 4096);
        assert_eq!(block_lanes(4096), 4096);
        assert_eq!(block_lanes(8192), 8192);
        assert_eq!(block_lanes(1000), 1000);
        assert_eq!(block_lanes(192), 4032);
    }
}
