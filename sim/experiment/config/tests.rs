//! Tests of run configurations: parsing, errors naming the key, `--set`, round trips and
//! the work a resolved network reads off its codes.

use super::keys::levenshtein;
use super::*;

#[test]
fn work_reads_bits_and_zeros_off_the_codes() {
    use crate::model::baseline::{LayerWork, work_of_program};
    let prog = |model: &str, bits: Option<u32>, sparsity: Option<f64>| {
        let c = Config {
            workload: WorkloadConfig {
                model: model.into(),
                weight_bits: bits,
                sparsity,
                ..Default::default()
            },
            ..Default::default()
        };
        work_of_program(&c.resolve(Default::default()).unwrap().prog).unwrap()
    };
    let fc_bits = |w: &[LayerWork]| -> Vec<u32> {
        w.iter().filter(|l| l.weighted).map(|l| l.w_bits).collect()
    };
    assert_eq!(fc_bits(&prog("digits-mlp-int8", None, None)), [8, 8]);
    assert_eq!(fc_bits(&prog("digits-mlp-int4", None, None)), [4, 4]);
    assert_eq!(fc_bits(&prog("digits-mlp-binary", None, None))[0], 1);
    // The digits input is 5-bit (pixel values 0..=16).
    assert_eq!(prog("digits-mlp-int8", None, None)[0].a_bits, 5);
    // A pruned zoo network: about half its weights are zero.
    let w = prog("lenet5", Some(4), Some(0.5));
    let (all, nz): (u64, u64) = w
        .iter()
        .fold((0, 0), |(a, n), l| (a + l.weights, n + l.nonzero_weights));
    let kept = nz as f64 / all as f64;
    assert!((0.45..0.55).contains(&kept), "{kept}");
    assert!(fc_bits(&w).iter().all(|&b| b <= 4));
}

fn parse(text: &str) -> Result<Config, String> {
    let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

#[test]
fn empty_file_is_the_default() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn errors_name_the_key_and_value() {
    let e = parse("[cram]\ndevise = 'x'\n").unwrap_err();
    assert!(e.contains("devise") && e.contains("device"), "{e}");
    let e = parse("[mapping]\nstrategy = 'fast'\n").unwrap_err();
    assert!(e.contains("fast") && e.contains("const"), "{e}");
    let e = parse("[workload]\nmodel = 'resnet20'\nsparsity = 1.5\n").unwrap_err();
    assert!(
        e.contains("workload.sparsity = 1.5") && e.contains("[0, 1)"),
        "{e}"
    );
    let e = parse("[workload]\nmodel = 'digits-mlp-int8'\nweight_bits = 4\n").unwrap_err();
    assert!(
        e.contains("digits-mlp-int8") && e.contains("resnet20"),
        "{e}"
    );
    let e = parse("[workload]\nmodel = 'lenet5'\nact_bits = 40\n").unwrap_err();
    assert!(e.contains("workload.act_bits = 40"), "{e}");
}

#[test]
fn set_overrides_and_names_bad_keys_and_values() {
    let c = Config::load_with(
        None,
        &[
            "workload.model=resnet20".into(),
            "workload.sparsity=0.5".into(),
            "compare.baselines=gpu-hbm2,nmp".into(),
            "run.mode=analytical".into(),
        ],
    )
    .unwrap();
    assert_eq!(c.workload.sparsity, Some(0.5));
    assert_eq!(c.compare.baselines, ["gpu-hbm2".into(), "nmp".into()]);
    assert_eq!(c.run.mode, Mode::Analytical);
    let e = Config::load_with(None, &["cram.devise=x".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown key 'cram.devise'") && e.contains("cram.device"),
        "{e}"
    );
    let e = Config::load_with(None, &["mapping.strategy=fast".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--set mapping.strategy=fast") && e.contains("const"),
        "{e}"
    );
    let e = Config::load_with(None, &["run.seed=-3".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--set run.seed=-3"), "{e}");
    assert_eq!(levenshtein("kitten", "sitting"), 3);
}

#[test]
fn config_round_trips_through_toml() {
    let c = parse(
        "[workload]\nmodel = 'resnet20'\nweight_bits = 4\nsparsity = 0.5\n\
         [mapping]\nstrategy = 'stored'\nobjective = 'edp'\n[run]\nmode = 'analytical'\n",
    )
    .unwrap();
    assert_eq!(parse(&toml::to_string(&c).unwrap()).unwrap(), c);
    assert!(c.compressed() && !c.dense_int8().compressed());
}

/// `workload.seq_len` and `workload.cached_tokens` size the transformer zoo networks:
/// refused elsewhere or out of range (naming the key, the value and what is allowed),
/// written into `resolved.toml` at their defaults for those networks only, and the
/// network built with them.
#[test]
fn token_counts_size_the_transformers_only() {
    let e = parse("[workload]\nmodel = 'resnet20'\nseq_len = 64\n").unwrap_err();
    assert!(
        e.contains("workload.seq_len = 64") && e.contains("gpt2-small-decode"),
        "{e}"
    );
    let e = parse("[workload]\nmodel = 'gpt2-small'\ncached_tokens = 8\n").unwrap_err();
    assert!(
        e.contains("workload.cached_tokens = 8") && e.contains("prefill"),
        "{e}"
    );
    let e =
        parse("[workload]\nmodel = 'gpt2-small'\nseq_len = 8\ncached_tokens = 8\n").unwrap_err();
    assert!(e.contains("workload.cached_tokens = 8"), "{e}");
    let e = parse("[workload]\nmodel = 'resnet20'\ncached_tokens = 8\n").unwrap_err();
    assert!(e.contains("workload.cached_tokens = 8"), "{e}");
    let e = parse("[workload]\nmodel = 'bert-base'\nseq_len = 513\n").unwrap_err();
    assert!(e.contains("1 to 512"), "{e}");
    let e = parse("[workload]\nmodel = 'gpt2-small-decode'\ncached_tokens = 1024\n").unwrap_err();
    assert!(e.contains("1 to 1024") && e.contains("1024 cached"), "{e}");
    let c = parse("[workload]\nmodel = 'gpt2-small-decode'\ncached_tokens = 300\n").unwrap();
    let f = c.filled().workload;
    assert_eq!((f.seq_len, f.cached_tokens), (Some(1), Some(300)));
    let f = parse("[workload]\nmodel = 'bert-base'\n")
        .unwrap()
        .filled()
        .workload;
    assert_eq!((f.seq_len, f.cached_tokens), (Some(128), None));
    let f = Config::default().filled().workload;
    assert_eq!((f.seq_len, f.cached_tokens), (None, None));
    let net = cram_workloads::zoo::model_sized("gpt2-small-decode", Some(2), Some(300)).unwrap();
    let sm = net.find("h0.attn.softmax").unwrap();
    assert_eq!(
        net.stats().unwrap()[sm].out,
        cram_workloads::Shape::new(12 * 302, 2, 1)
    );
}

/// `workload.decode_tokens` applies to a language model only, fits its positions after the
/// prompt (naming the key, the value and what is allowed), defaults to
/// `zoo::DECODE_TOKENS` (fewer when the prompt leaves fewer positions) and brings the
/// endurance budget into `resolved.toml`; `run.endurance_budget` must be ≥ 1 write.
#[test]
fn decode_tokens_apply_to_a_language_model_within_its_positions() {
    let e = parse("[workload]\nmodel = 'bert-base'\ndecode_tokens = 4\n").unwrap_err();
    assert!(
        e.contains("workload.decode_tokens = 4") && e.contains("generates none"),
        "{e}"
    );
    let e = parse("[workload]\nmodel = 'gpt2-small'\nseq_len = 1000\ndecode_tokens = 25\n")
        .unwrap_err();
    assert!(
        e.contains("workload.decode_tokens = 25") && e.contains("use 0 to 24"),
        "{e}"
    );
    let f = parse("[workload]\nmodel = 'gpt2-small'\n")
        .unwrap()
        .filled();
    assert_eq!(
        (f.workload.decode_tokens, f.run.endurance_budget),
        (
            Some(cram_workloads::zoo::DECODE_TOKENS),
            Some(DEFAULT_ENDURANCE_BUDGET)
        )
    );
    let f = parse("[workload]\nmodel = 'gpt2-small'\nseq_len = 1020\n")
        .unwrap()
        .filled();
    assert_eq!(f.workload.decode_tokens, Some(4));
    let f = parse("[workload]\nmodel = 'gpt2-small'\ndecode_tokens = 0\n")
        .unwrap()
        .filled();
    assert_eq!(
        (f.workload.decode_tokens, f.run.endurance_budget),
        (Some(0), None)
    );
    let f = Config::default().filled();
    assert_eq!(
        (f.workload.decode_tokens, f.run.endurance_budget),
        (None, None)
    );
    let e = parse("[run]\nendurance_budget = 0.5\n").unwrap_err();
    assert!(e.contains("run.endurance_budget = 0.5"), "{e}");
    for text in [
        "[workload]\nmodel = 'bert-base'\n[run]\nendurance_budget = 1e9\n",
        "[workload]\nmodel = 'gpt2-small'\ndecode_tokens = 0\n[run]\nendurance_budget = 1e9\n",
    ] {
        let e = parse(text).unwrap_err();
        assert!(
            e.contains("run.endurance_budget = 1000000000") && e.contains("generates nothing"),
            "{e}"
        );
    }
    parse("[workload]\nmodel = 'gpt2-small'\n[run]\nendurance_budget = 1e9\n").unwrap();
}

/// A reservation for a generation's caches is refused before anything is compiled when it
/// alone outgrows the chips (naming the chips that would hold it), and otherwise carried in
/// the hardware the run uses; a model with no caches reserves nothing of its own.
#[test]
fn a_reservation_is_refused_before_compiling_when_it_outgrows_the_chips() {
    let c = Config::default();
    let free = c.resolve(Default::default()).unwrap();
    assert_eq!(free.hw.state_bits, 0);
    let cells = crate::model::map::resident_cells(&free.hw);
    let e = match c.resolve_reserving(None, Default::default(), 4 * cells) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{} bits reserved in a {cells}-bit share", 4 * cells),
    };
    assert!(
        e.contains(&format!("need {} resident bits", 4 * cells)) && e.contains("cram.chips = 4"),
        "{e}"
    );
    let r = c
        .resolve_reserving(None, Default::default(), cells / 2)
        .unwrap();
    assert_eq!(r.hw.state_bits, cells / 2);
    assert_eq!(
        crate::model::map::resident_capacity(&r.hw),
        cells - cells / 2
    );
}
