//! A language model's generation (`workload.decode_tokens`): after the run has priced the
//! prompt's prefill, every decode step is priced at its own cache length on CRAM and on
//! each baseline, and the key/value cache is sized against the chips and its wear counted
//! (docs/model.md §2.1, §1.7).
//!
//! One quantized decode model serves every step, as a deployed model serves a growing
//! context: its synthetic weights are the prefill's (drawn first, `compress`), its caches
//! are drawn for the longest step and its activation formats calibrated there; step k keeps
//! the first prompt + k cache entries (`Model::with_past`) and is compiled and mapped on
//! its own, analytically, one sequence at a time.

use cram_arch::Baseline;
use cram_workloads::compress::CompressSpec;
use cram_workloads::golden;
use cram_workloads::net::{Network, Op};

use crate::error::Error;
use crate::experiment::config::Config;
use crate::experiment::config::synthetic_model;
use crate::experiment::simulate::one_image;
use crate::model::baseline::{self, LayerWork, work_of_program};
use crate::model::limits::MemoryLimit;
use crate::model::map::{self, Hw, Mode, NetRun, RunOptions};
use crate::records::{CacheReport, GenerationReport, GenerationSide};

/// What a generation is priced from.
pub(crate) struct Generation<'a> {
    /// The decode step over the longest cache, prompt + tokens − 1 entries (its float
    /// network; `cram_workloads::zoo::decode_step` for a zoo language model).
    pub decode: Network,
    /// Tokens of the prompt.
    pub prompt: usize,
    /// Decode steps after it (≥ 1): step k feeds the (k+1)-th generated token.
    pub tokens: usize,
    /// The compression of the run.
    pub spec: CompressSpec,
    /// Seed of the synthetic weights.
    pub seed: u64,
    /// Writes a cell survives.
    pub endurance_budget: f64,
    /// The prefill on CRAM: energy per inference (pJ) and latency (s).
    pub prefill: (f64, f64),
    /// The prefill's work per layer (its baselines are priced at batch 1 from it).
    pub prefill_work: &'a [LayerWork],
}

/// One decode step's costs.
struct Step {
    cram: (f64, f64),
    baselines: Vec<(f64, f64, usize, usize)>,
    compute_writes: u64,
    resident_weight_bits: u64,
    resident_capacity_bits: u64,
}

/// The decode step over the longest cache of the generation `config` asks for (filled:
/// `workload.decode_tokens` ≥ 1 after a `workload.seq_len`-token prompt), with the prompt's
/// and the generation's tokens; None when it generates nothing.
pub(crate) fn decode_network(config: &Config) -> Result<Option<(Network, usize, usize)>, Error> {
    let w = &config.workload;
    let (Some(tokens @ 1..), Some(prompt)) = (w.decode_tokens, w.seq_len) else {
        return Ok(None);
    };
    let net = cram_workloads::zoo::decode_step(&w.model, prompt + tokens - 1)
        .ok_or_else(|| Error::usage(format!("'{}' generates no tokens", w.model)))?;
    Ok(Some((net, prompt, tokens)))
}

/// Bits the caches hold at the end of the generation whose longest step is `decode`: that
/// step's caches (`map::state_bits`), the prompt's and every generated token's entries,
/// with the formats the quantized decode model gives them.
pub(crate) fn cache_bits_at_end(
    decode: &Network,
    spec: &CompressSpec,
    seed: u64,
    memory: MemoryLimit,
) -> Result<u64, Error> {
    let prog = synthetic_model(decode, spec, seed, memory)?.into_program()?;
    Ok(map::state_bits(&prog))
}

/// Prices `g` on `hw` (the run's mapping `opts`, made analytical) and `baselines`.
pub(crate) fn price(
    g: &Generation,
    hw: &Hw,
    opts: &RunOptions,
    baselines: &[Baseline],
) -> Result<GenerationReport, Error> {
    if g.tokens == 0 {
        return Err(Error::usage(
            "a generation needs at least one decode step (workload.decode_tokens ≥ 1)",
        ));
    }
    let longest = g.prompt + g.tokens - 1;
    let mut m = synthetic_model(&g.decode, &g.spec, g.seed, opts.limits.memory)?;
    let opts = RunOptions {
        mode: Mode::Analytical,
        ..*opts
    };
    let mut steps = Vec::with_capacity(g.tokens);
    let mut cache_bits = 0;
    // Longest first: each step's caches are a prefix of the one before.
    for past in (g.prompt..=longest).rev() {
        opts.limits.stop.check()?;
        m.with_past(past)?;
        let prog = m.program()?;
        cache_bits = bits_per_token(&prog);
        steps.push(step(&prog, hw, &opts, baselines)?);
    }
    steps.reverse();
    let mut machines = vec![side(
        "cram",
        g.prefill,
        steps.iter().map(|s| s.cram).collect(),
        None,
    )];
    for (i, b) in baselines.iter().enumerate() {
        let r = baseline::evaluate(b, g.prefill_work, 1);
        let last = &steps[steps.len() - 1].baselines[i];
        machines.push(side(
            &b.params.name,
            (r.energy.total_pj(), r.latency_s),
            steps
                .iter()
                .map(|s| (s.baselines[i].0, s.baselines[i].1))
                .collect(),
            Some((last.2, last.3)),
        ));
    }
    let last = &steps[steps.len() - 1];
    let bits_at_end = cache_bits * (g.prompt + g.tokens) as u64;
    let budget = g.endurance_budget;
    let compute_writes =
        steps.iter().map(|s| s.compute_writes as f64).sum::<f64>() / g.tokens as f64;
    let org = &hw.org;
    let chip_cells = org.lanes() * u64::from(org.params.cols_per_subarray) * hw.chips;
    Ok(GenerationReport {
        prompt_tokens: g.prompt,
        decode_tokens: g.tokens,
        machines,
        cache: CacheReport {
            bits_per_token: cache_bits,
            bits_at_end,
            resident_capacity_bits: last.resident_capacity_bits,
            resident_weight_bits: last.resident_weight_bits,
            endurance_budget: budget,
            writes_per_cache_cell: 1,
            cache_tokens_to_budget: budget * g.tokens as f64,
            compute_writes_per_token: compute_writes,
            chip_cells,
            compute_tokens_to_budget_at_most: (compute_writes > 0.0)
                .then(|| budget * chip_cells as f64 / compute_writes),
        },
    })
}

/// Bits one token adds to the caches: every cache layer's features at its format's bits.
fn bits_per_token(prog: &golden::Program) -> u64 {
    let net = prog.network();
    net.layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.op, Op::KvCache { .. }))
        .map(|(i, _)| prog.shape(i).c as u64 * u64::from(prog.act(i).bits))
        .sum()
}

/// One decode step on CRAM (one inference, analytical) and on each baseline (batch 1).
fn step(
    prog: &golden::Program,
    hw: &Hw,
    opts: &RunOptions,
    baselines: &[Baseline],
) -> Result<Step, Error> {
    let run: NetRun = one_image(prog, hw, opts, None)?;
    let cycle_s = 1e-9 / hw.org.params.clock_ghz;
    let net = prog.network();
    // One report per layer, the input's first.
    debug_assert_eq!(run.layers.len(), net.layers.len());
    let compute_writes = run
        .layers
        .iter()
        .zip(&net.layers)
        .map(|(l, layer)| {
            let cache = matches!(layer.op, Op::KvCache { .. });
            l.lane_gate_evals + if cache { 0 } else { l.written_bits }
        })
        .sum();
    let work = work_of_program(prog)?;
    let baselines = baselines
        .iter()
        .map(|b| {
            let r = baseline::evaluate(b, &work, 1);
            let compute = r.layers.iter().filter(|l| l.bound == "compute").count();
            (
                r.energy.total_pj(),
                r.latency_s,
                r.layers.len() - compute,
                r.layers.len(),
            )
        })
        .collect();
    Ok(Step {
        cram: (run.energy_pj(), run.cycles() as f64 * cycle_s),
        baselines,
        compute_writes,
        resident_weight_bits: run.deployment().written_bits,
        resident_capacity_bits: run.residency.capacity_bits,
    })
}

/// A machine's side: the prefill and each step's (energy, latency), summed and averaged.
fn side(
    machine: &str,
    prefill: (f64, f64),
    steps: Vec<(f64, f64)>,
    memory_bound: Option<(usize, usize)>,
) -> GenerationSide {
    let n = steps.len().max(1) as f64;
    let decode_energy_pj: f64 = steps.iter().map(|s| s.0).sum();
    let decode_latency_s: f64 = steps.iter().map(|s| s.1).sum();
    GenerationSide {
        machine: machine.to_owned(),
        prefill_energy_pj: prefill.0,
        prefill_latency_s: prefill.1,
        step_energy_pj: steps.iter().map(|s| s.0).collect(),
        step_latency_s: steps.iter().map(|s| s.1).collect(),
        decode_energy_pj,
        decode_latency_s,
        energy_per_token_pj: decode_energy_pj / n,
        latency_per_token_s: decode_latency_s / n,
        total_energy_pj: prefill.0 + decode_energy_pj,
        total_latency_s: prefill.1 + decode_latency_s,
        last_step_memory_bound_layers: memory_bound.map(|m| m.0),
        last_step_layers: memory_bound.map(|m| m.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cram_arch::{GateLibrary, presets};
    use cram_workloads::compress::synthetic_model;
    use cram_workloads::net::Shape;
    use cram_workloads::zoo::dense;

    use crate::model::kernels::GateSet;
    use crate::model::map::Choice;

    /// One causal decoder layer on one new token after `past` cached ones (d 16, 2 heads,
    /// a 40-token table).
    fn decoder(past: usize) -> Network {
        let (d, heads) = (16, 2);
        let mut n = Network::new("tiny-decoder", Shape::new(1, 1, 1));
        n.then("emb", Op::Embedding { vocab: 40, dim: d });
        let x = n.then(
            "pos",
            Op::Positional {
                positions: 64,
                offset: past,
                token_types: 0,
            },
        );
        let h = n.push("ln", Op::LayerNorm { eps: 1e-5 }, &[x]);
        let q = n.push("q", dense(d), &[h]);
        let k = n.push("k", dense(d), &[h]);
        let k = n.push("k_cache", Op::KvCache { past }, &[k]);
        let v = n.push("v", dense(d), &[h]);
        let v = n.push("v_cache", Op::KvCache { past }, &[v]);
        let s = n.push("scores", Op::AttnScores { heads }, &[q, k]);
        let causal = true;
        let p = n.push("softmax", Op::AttnSoftmax { heads, causal }, &[s]);
        let c = n.push("context", Op::AttnContext { heads }, &[p, v]);
        let o = n.push("out", dense(d), &[c]);
        n.push("add", Op::Add, &[o, x]);
        n.then("head", dense(40));
        n
    }

    fn hw() -> Hw {
        let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
        Hw::new(lib, presets::array("cram-1k").unwrap(), GateSet::Maj)
    }

    /// The prefill's work: the decoder over one cached token.
    fn prefill_work() -> Vec<LayerWork> {
        let prefill = synthetic_model(&decoder(1), &CompressSpec::INT8, 3, 2)
            .unwrap()
            .program()
            .unwrap();
        work_of_program(&prefill).unwrap()
    }

    /// `tokens` generated after a `prompt`-token prompt, the prefill priced at 1 nJ, 1 µs.
    fn generation(prefill: &[LayerWork], prompt: usize, tokens: usize) -> Generation<'_> {
        Generation {
            decode: decoder(prompt + tokens - 1),
            prompt,
            tokens,
            spec: CompressSpec::INT8,
            seed: 3,
            endurance_budget: 1e7,
            prefill: (1000.0, 1e-6),
            prefill_work: prefill,
        }
    }

    /// The energy choice, no injected errors.
    fn options(mode: Mode) -> RunOptions {
        RunOptions {
            mode,
            choice: Choice::auto(crate::model::map::Objective::Energy),
            error_rates: [0.0; cram_arch::GateKind::COUNT],
            seed: 1,
            limits: Default::default(),
        }
    }

    /// The caches at the generation's end are those of its longest step, every entry at its
    /// activation bits; a step priced with them reserved keeps its resident weights to the
    /// rest of the share, and the report states both.
    #[test]
    fn the_caches_at_the_end_are_reserved_for_every_step() {
        let (prompt, tokens) = (6, 5);
        let spec = CompressSpec::INT8;
        let prefill = prefill_work();
        let g = generation(&prefill, prompt, tokens);
        let bits = cache_bits_at_end(&g.decode, &spec, 3, Default::default()).unwrap();
        assert_eq!(bits, 2 * 16 * 8 * (prompt + tokens) as u64);
        let cells = map::resident_cells(&hw());
        let opts = options(Mode::Analytical);
        // All but 100 bits reserved: the weights that fitted no longer do.
        let whole = price(&g, &hw(), &opts, &[]).unwrap().cache;
        assert!(whole.resident_weight_bits > 100, "{whole:?}");
        let tight = hw().with_state(cells - 100);
        let c = price(&g, &tight, &opts, &[]).unwrap().cache;
        assert_eq!(c.bits_at_end, bits);
        assert_eq!(c.resident_capacity_bits, cells);
        assert!(c.resident_weight_bits <= 100, "{c:?}");
    }

    /// Five tokens after a 6-token prompt: one step per token, each at its own cache
    /// length, the sums and means as stated, the cache's bits and wear as counted by hand,
    /// and step k priced exactly as the decode model shortened to prompt + k entries.
    #[test]
    fn a_generation_prices_every_step_at_its_own_cache_length() {
        let (prompt, tokens) = (6, 5);
        let spec = CompressSpec::INT8;
        let prefill = prefill_work();
        let g = generation(&prefill, prompt, tokens);
        let hw = hw();
        let opts = options(Mode::Functional);
        let gpu = presets::baseline("gpu-hbm2").unwrap();
        let r = price(&g, &hw, &opts, std::slice::from_ref(&gpu)).unwrap();
        assert_eq!((r.prompt_tokens, r.decode_tokens), (prompt, tokens));
        assert_eq!(r.machines.len(), 2);
        for m in &r.machines {
            assert_eq!(m.step_energy_pj.len(), tokens);
            let sum: f64 = m.step_energy_pj.iter().sum();
            assert!((m.decode_energy_pj - sum).abs() <= 1e-9 * sum);
            assert!((m.total_energy_pj - m.prefill_energy_pj - sum).abs() <= 1e-9 * sum);
            assert!((m.energy_per_token_pj * tokens as f64 - sum).abs() <= 1e-9 * sum);
            // Every later token attends over one more cached key and value.
            for w in m.step_energy_pj.windows(2) {
                assert!(w[1] > w[0], "{}: {:?}", m.machine, m.step_energy_pj);
            }
        }
        assert_eq!(r.machines[0].prefill_energy_pj, 1000.0);
        assert!(r.machines[1].last_step_layers.is_some());
        // Keys and values of one layer, 16 features of 8 bits each.
        let c = &r.cache;
        assert_eq!(c.bits_per_token, 2 * 16 * 8);
        assert_eq!(c.bits_at_end, 2 * 16 * 8 * (prompt + tokens) as u64);
        assert_eq!(c.cache_tokens_to_budget, 1e7 * tokens as f64);
        // The compute writes: every layer's logic pulses and operand writes but the
        // caches' own, counted by hand from the last step's run.
        let mut last = synthetic_model(&g.decode, &spec, 3, 2).unwrap();
        last.with_past(prompt + tokens - 1).unwrap();
        let last = last.program().unwrap();
        let aopts = RunOptions {
            mode: Mode::Analytical,
            ..opts
        };
        let run = one_image(&last, &hw, &aopts, None).unwrap();
        let by_hand: u64 = run
            .layers
            .iter()
            .map(|l| {
                l.lane_gate_evals
                    + if l.name.ends_with("_cache") {
                        0
                    } else {
                        l.written_bits
                    }
            })
            .sum();
        let cached: u64 = run
            .layers
            .iter()
            .filter(|l| l.name.ends_with("_cache"))
            .map(|l| l.written_bits)
            .sum();
        // The last step writes one token's keys and values, 2 × 16 features × 8 bits.
        assert_eq!(cached, 2 * 16 * 8);
        assert_eq!(
            step(&last, &hw, &aopts, &[]).unwrap().compute_writes,
            by_hand
        );
        assert!(
            run.layers
                .iter()
                .any(|l| l.name == "head" && l.lane_gate_evals > 0)
        );
        assert!(c.compute_writes_per_token > 0.0);
        assert_eq!(
            c.compute_tokens_to_budget_at_most,
            Some(1e7 * c.chip_cells as f64 / c.compute_writes_per_token)
        );
        // Step 2 (8 cached) is the shortened decode model, compiled and priced on its own.
        let mut m = synthetic_model(&g.decode, &spec, 3, 2).unwrap();
        m.with_past(prompt + 2).unwrap();
        let alone = step(
            &m.program().unwrap(),
            &hw,
            &RunOptions {
                mode: Mode::Analytical,
                ..opts
            },
            &[gpu],
        )
        .unwrap();
        assert_eq!(r.machines[0].step_energy_pj[2], alone.cram.0);
        assert_eq!(r.machines[0].step_latency_s[2], alone.cram.1);
        assert_eq!(r.machines[1].step_energy_pj[2], alone.baselines[0].0);
    }
}
