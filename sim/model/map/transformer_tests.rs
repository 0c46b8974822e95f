//! Tests of the mapper on transformer layers: token lookup, position tables, I-BERT's
//! integer softmax (with and without a causal mask), GELU and LayerNorm, bit-exact against
//! the golden executor and with analytical runs equal to functional ones.

use super::analytical_tests::{analytical, check_equal, hw_for, spec};
use super::*;
use cram_workloads::compress::{compress, synthetic_inputs_of, synthetic_weights};
use cram_workloads::golden;
use cram_workloads::net::{Network, Op as NetOp, Shape, UnaryFn};
use cram_workloads::zoo::{dense, first_token};

/// A one-layer transformer on `seq` tokens of a 40-token table after `past` cached ones:
/// embeddings, position (and, unless `causal`, token-type) tables, a LayerNorm, 2-head
/// attention (causal or not; keys and values appended to caches when `past` > 0), a GELU
/// feed-forward block, residual adds and LayerNorms, the first token's features and a
/// 4-way classifier.
pub(super) fn tiny_transformer(seq: usize, causal: bool, past: usize) -> Network {
    let (d, heads) = (16, 2);
    let mut n = Network::new("tiny-transformer", Shape::new(1, seq, 1));
    n.then("emb", NetOp::Embedding { vocab: 40, dim: d });
    n.then(
        "pos",
        NetOp::Positional {
            positions: past + seq + 2,
            offset: past + 1,
            token_types: if causal { 0 } else { 2 },
        },
    );
    let x = n.then("ln0", NetOp::LayerNorm { eps: 1e-5 });
    let q = n.push("q", dense(d), &[x]);
    let mut k = n.push("k", dense(d), &[x]);
    let mut v = n.push("v", dense(d), &[x]);
    if past > 0 {
        k = n.push("k_cache", NetOp::KvCache { past }, &[k]);
        v = n.push("v_cache", NetOp::KvCache { past }, &[v]);
    }
    let s = n.push("scores", NetOp::AttnScores { heads }, &[q, k]);
    let p = n.push("softmax", NetOp::AttnSoftmax { heads, causal }, &[s]);
    let c = n.push("context", NetOp::AttnContext { heads }, &[p, v]);
    let o = n.push("out", dense(d), &[c]);
    n.push("add1", NetOp::Add, &[o, x]);
    let h = n.then("ln1", NetOp::LayerNorm { eps: 1e-5 });
    n.then("up", dense(2 * d));
    n.then("gelu", NetOp::Unary { f: UnaryFn::Gelu });
    let f = n.then("down", dense(d));
    n.push("add2", NetOp::Add, &[f, h]);
    n.then("ln2", NetOp::LayerNorm { eps: 1e-5 });
    n.then("cls", first_token(seq));
    n.then("head", dense(4));
    n
}

/// `net` compressed by the default int8 spec with synthetic weights of `seed`.
fn program(net: &Network, seed: u64) -> golden::Program {
    let w = synthetic_weights(net, seed).unwrap();
    let calib = synthetic_inputs_of(net, 3, seed + 1);
    compress(net, &w, &spec(None), &calib)
        .unwrap()
        .0
        .program()
        .unwrap()
}

/// `n` seeded token-id inputs of `prog`'s network.
fn tokens(prog: &golden::Program, n: usize, seed: u64) -> Vec<Array3<i64>> {
    synthetic_inputs_of(prog.network(), n, seed)
        .iter()
        .map(|x| x.mapv(|v| v as i64))
        .collect()
}

/// Every strategy's functional run equals the golden executor on every image, and the
/// analytical run's counts and cycles equal the functional run's, for an encoder and a
/// causal decoder layer.
#[test]
fn a_transformer_layer_is_bit_exact_and_analytical_equals_functional() {
    for causal in [false, true] {
        let prog = program(&tiny_transformer(5, causal, 0), 7);
        let imgs = tokens(&prog, 3, 11);
        // Different tokens give different outputs: the lookup is not constant.
        let outs: Vec<_> = imgs.iter().map(|x| prog.run(x).unwrap()).collect();
        assert_ne!(outs[0].last(), outs[1].last());
        for s in Strategy::ALL {
            check_equal(&prog, &imgs, Layout::plain(s));
        }
    }
}

/// A decode step: two new tokens over a cache of six (keys and values appended in CRAM,
/// the cached entries resident), bit-exact on every strategy and with analytical ==
/// functional; only the new entries are written, and query i sees the six cached keys and
/// the new ones up to its own.
#[test]
fn a_decode_step_over_a_kv_cache_is_bit_exact() {
    let prog = program(&tiny_transformer(2, true, 6), 9);
    let imgs = tokens(&prog, 2, 4);
    for s in Strategy::ALL {
        check_equal(&prog, &imgs, Layout::plain(s));
    }
    let sm = prog.network().find("softmax").unwrap();
    let p = prog.run(&imgs[0]).unwrap().swap_remove(sm);
    assert_eq!(p.dim(), (2 * 8, 2, 1));
    for h in 0..2 {
        assert_eq!(p[[h * 8 + 7, 0, 0]], 0, "query 0 does not see the last key");
        let sum: i64 = (0..8).map(|j| p[[h * 8 + j, 1, 0]]).sum();
        assert!((256 - 8..=256).contains(&sum));
    }
    let h = hw_for(&prog);
    let r = run_network(
        &prog,
        &imgs[..1],
        &h,
        &analytical(Choice::auto(Objective::Energy)),
    )
    .unwrap();
    let cache = r.layers.iter().find(|l| l.name == "k_cache").unwrap();
    // 2 new entries × 16 features of 8 bits are written (not the 6 cached ones).
    assert_eq!(cache.written_bits, 2 * 16 * 8);
}

/// The causal mask: query i's probabilities over keys after it are 0, and each row's
/// probabilities sum to at most 1 (in steps of 2^−8) and at least 1 − keys·2^−8.
#[test]
fn a_causal_softmax_gives_later_keys_nothing() {
    let prog = program(&tiny_transformer(5, true, 0), 3);
    let sm = prog.network().find("softmax").unwrap();
    for x in tokens(&prog, 2, 5) {
        let p = prog.run(&x).unwrap().swap_remove(sm);
        for h in 0..2 {
            for i in 0..5 {
                let row: Vec<i64> = (0..5).map(|j| p[[h * 5 + j, i, 0]]).collect();
                assert!(row[i + 1..].iter().all(|&v| v == 0), "{row:?}");
                let sum: i64 = row.iter().sum();
                assert!((256 - 5..=256).contains(&sum), "{row:?}");
            }
        }
    }
}

/// Softmax and LayerNorm run in the array, in passes, with no function-unit energy: a
/// softmax takes a lane per row for its maximum and for its sum and a lane per visible
/// score for the exponential and for the quotient (masked scores take none); a LayerNorm a
/// lane per position for its statistics and one per output. The lookup and the position
/// table are loads (and an add) in the array, and GELU a table in place.
#[test]
fn softmax_and_layernorm_run_in_the_array_in_passes() {
    let h_of = |causal: bool| {
        let prog = program(&tiny_transformer(5, causal, 0), 5);
        let h = hw_for(&prog);
        let r = run_network(
            &prog,
            &tokens(&prog, 1, 2),
            &h,
            &analytical(Choice::auto(Objective::Energy)),
        )
        .unwrap();
        r.layers
    };
    let layers = h_of(false);
    let layer = |name: &str| layers.iter().find(|l| l.name == name).unwrap();
    // 2 heads, 5 queries; 25 visible scores per head, 15 with a causal mask.
    assert_eq!(layer("softmax").lanes_used, 2 * (5 + 25 + 5 + 25));
    for name in ["ln0", "ln1", "ln2"] {
        assert_eq!(layer(name).lanes_used, 5 + 16 * 5, "{name}");
    }
    for name in ["softmax", "ln0", "ln2", "emb", "pos", "gelu"] {
        assert_eq!(layer(name).energy.function_unit_pj, 0.0, "{name}");
        assert!(
            layer(name).energy.logic_pulses_pj > 0.0 || name == "emb",
            "{name}"
        );
    }
    // Every pass loads its operands: the statistics and the scores move between lanes.
    for name in ["softmax", "ln0", "emb", "pos"] {
        assert!(layer(name).energy.memory_writes_pj > 0.0, "{name}");
    }
    let causal = h_of(true);
    let softmax = causal.iter().find(|l| l.name == "softmax").unwrap();
    assert_eq!(softmax.lanes_used, 2 * (5 + 15 + 5 + 15));
}

/// A token id outside the table is refused by the golden executor, naming the layer.
#[test]
fn a_token_outside_the_table_is_refused() {
    let prog = program(&tiny_transformer(4, true, 0), 1);
    let mut x = tokens(&prog, 1, 1).remove(0);
    x[[0, 2, 0]] = 40;
    let e = prog.run(&x).unwrap_err().to_string();
    assert!(e.contains("'emb'") && e.contains("40"), "{e}");
}

/// A LayerNorm over more features than one chunk holds sums them in slices, a lane each,
/// then reduces the slices' partial sums in a lane per position: still bit-exact, with
/// analytical == functional, and more lanes than a lane per position would take.
#[test]
fn a_long_layer_norm_row_is_summed_in_slices() {
    let (d, seq) = (600, 3);
    let mut n = Network::new("wide-norm", Shape::new(1, seq, 1));
    n.then("emb", NetOp::Embedding { vocab: 40, dim: d });
    n.then("ln", NetOp::LayerNorm { eps: 1e-5 });
    n.then("cls", first_token(seq));
    n.then("head", dense(4));
    let prog = program(&n, 2);
    let imgs = tokens(&prog, 2, 6);
    for s in Strategy::ALL {
        check_equal(&prog, &imgs, Layout::plain(s));
    }
    let r = run_network(
        &prog,
        &imgs[..1],
        &hw_for(&prog),
        &analytical(Choice::auto(Objective::Energy)),
    )
    .unwrap();
    let ln = r.layers.iter().find(|l| l.name == "ln").unwrap();
    // Statistics (one lane per position) and outputs (d per position), plus the slices.
    assert!(ln.lanes_used > (seq + d * seq) as u64, "{}", ln.lanes_used);
}
