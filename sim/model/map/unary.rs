//! Element-wise layers mapped in place: ReLU (max(q, z)), ReLU6 (clamp(q, z, top)), Sign
//! (+1 if q > z) and any other function of one value as a lookup table, each one program
//! over the lanes that hold the producer's outputs. The first three are built from the
//! carry-only compare and saturation of [`super::arith`]; a table is a multiplexer network
//! ([`lut`]).

use std::collections::HashMap;

use crate::error::MapError;
use crate::model::engine::isa::Col;
use cram_workloads::golden::Step;
use cram_workloads::quant::ActQuant;

use super::arith::{self, Coding};
use super::linear::{Job, Load, Segment, Source};
use crate::model::kernels::{Builder, GateSet};

/// The in-place program of a ReLU, ReLU6 or Sign layer from input format `x` to `out`.
pub fn job(set: GateSet, step: &Step, x: ActQuant, out: ActQuant) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let cx = Coding::of(&x);
    let cols = b.operand("q", cx.bits);
    let s = cx.signal(&cols);
    let z = i128::from(x.zero);
    let outputs = match step {
        Step::Relu | Step::Relu6 { .. } => {
            if cx.binary {
                return Err(MapError::BinaryRelu);
            }
            let hi = match step {
                Step::Relu6 { hi } => i128::from(*hi),
                Step::Input
                | Step::Linear { .. }
                | Step::MaxPool
                | Step::SumPool(_)
                | Step::SumPoolCounted(_)
                | Step::Relu
                | Step::Sign
                | Step::Add { .. }
                | Step::Concat(_)
                | Step::Pass
                | Step::Downsample
                | Step::Move
                | Step::Host { .. }
                | Step::Attn(_)
                | Step::Lut { .. }
                | Step::Mul(_)
                | Step::Softmax(_)
                | Step::LayerNorm(_)
                | Step::Lookup { .. }
                | Step::Cache { .. }
                | Step::AddTable { .. } => s.hi,
            };
            arith::clamp(&mut b, &s, z, hi, cx)
        }
        Step::Sign => {
            let bit = if cx.binary || s.lo > z {
                // Binary inputs are their own sign; a range above z is always +1.
                if cx.binary { cols[0] } else { b.constant(true) }
            } else if s.hi <= z {
                b.constant(false)
            } else {
                // q > z ⇔ q ≥ z + 1.
                arith::compare_const(&mut b, &s, z + 1, true).0
            };
            vec![bit]
        }
        Step::Lut { lo, table } => {
            let cy = Coding::of(&out);
            lut(&mut b, &cols, cx, cy, |q| table[(q - lo) as usize])
        }
        Step::Input
        | Step::Linear { .. }
        | Step::MaxPool
        | Step::SumPool(_)
        | Step::SumPoolCounted(_)
        | Step::Add { .. }
        | Step::Concat(_)
        | Step::Pass
        | Step::Downsample
        | Step::Move
        | Step::Host { .. }
        | Step::Attn(_)
        | Step::Mul(_)
        | Step::Softmax(_)
        | Step::LayerNorm(_)
        | Step::Lookup { .. }
        | Step::Cache { .. }
        | Step::AddTable { .. } => return Err(MapError::NotElementWiseStep),
    };
    let n = b.len();
    let segments = vec![Segment {
        loads: vec![Load {
            source: Source::X(0),
            cols: cols.into(),
            coding: cx,
            resident: false,
        }],
        ops: 0..n,
        ..Default::default()
    }];
    Ok(Job::new(b, segments, vec![outputs], Coding::of(&out)))
}

/// A node of the table's decision diagram: a constant, an input bit, or a choice on input
/// bit `var` between two nodes (`lo` when the bit is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ref {
    Const(bool),
    Bit(usize),
    Node(usize),
}

/// The columns of `y = f(q)` for every code q of coding `cx` held in `x`, coded by `cy`: a
/// multiplexer network. Each output bit is a Boolean function of the input bits, expanded
/// on the most significant bit first (Shannon: g = x_k ? g₁ : g₀) into a reduced ordered
/// decision diagram shared by all output bits (Bryant, IEEE Trans. Comput. 1986 [recalled]):
/// equal subfunctions are built once, a choice between equal branches is its branch, and a
/// choice with a constant branch is one AND or OR. Every other node is one multiplexer
/// ([`Builder::mux`]). Nodes are emitted depth first, each released after its last reader,
/// so the program's columns stay near the diagram's widest level.
pub(crate) fn lut(
    b: &mut Builder,
    x: &[Col],
    cx: Coding,
    cy: Coding,
    f: impl Fn(i64) -> i64,
) -> Vec<Col> {
    let n = x.len();
    let patterns = 1usize << n;
    let words = patterns.div_ceil(64);
    // Truth table of each output bit over the input bit patterns.
    let mut truth = vec![vec![0u64; words]; cy.bits as usize];
    for p in 0..patterns {
        let y = cy.encode(f(cx.decode(p as u64)));
        for (j, t) in truth.iter_mut().enumerate() {
            if y >> j & 1 == 1 {
                t[p / 64] |= 1 << (p % 64);
            }
        }
    }
    let mut dd = Diagram::default();
    let roots: Vec<Ref> = truth.iter().map(|t| dd.build(t, n)).collect();
    dd.emit(b, x, &roots)
}

/// The decision diagram under construction: its choice nodes (var, lo, hi), each one once.
#[derive(Default)]
struct Diagram {
    nodes: Vec<(usize, Ref, Ref)>,
    unique: HashMap<(usize, Ref, Ref), usize>,
    /// Subfunctions already built: (variables, truth bits) → node.
    memo: HashMap<(usize, Vec<u64>), Ref>,
}

impl Diagram {
    /// The node of the function of input bits 0..k whose truth table is `t` (2^k bits).
    fn build(&mut self, t: &[u64], k: usize) -> Ref {
        let len = 1usize << k;
        let bit = |p: usize| t[p / 64] >> (p % 64) & 1 == 1;
        let key = (k, t.to_vec());
        if let Some(&r) = self.memo.get(&key) {
            return r;
        }
        // The table's ones, a word at a time (bits past 2^k in a short table are clear).
        let ones: usize = t.iter().map(|w| w.count_ones() as usize).sum();
        if ones == 0 || ones == len {
            return Ref::Const(ones == len);
        }
        // Halves: bit k − 1 clear (lo) and set (hi), each a table of 2^(k−1) bits.
        let half = len / 2;
        let split = |from: usize| -> Vec<u64> {
            let mut h = vec![0u64; half.div_ceil(64)];
            for p in 0..half {
                if bit(from + p) {
                    h[p / 64] |= 1 << (p % 64);
                }
            }
            h
        };
        let (lo, hi) = (
            self.build(&split(0), k - 1),
            self.build(&split(half), k - 1),
        );
        let r = if lo == hi {
            lo
        } else if (lo, hi) == (Ref::Const(false), Ref::Const(true)) {
            Ref::Bit(k - 1)
        } else {
            let key = (k - 1, lo, hi);
            let next = self.nodes.len();
            let id = *self.unique.entry(key).or_insert(next);
            if id == next {
                self.nodes.push(key);
            }
            Ref::Node(id)
        };
        self.memo.insert(key, r);
        r
    }

    /// Gates for the nodes the roots reach, depth first; returns one distinct column per
    /// root (a root met before, or an input bit, is copied).
    fn emit(&self, b: &mut Builder, x: &[Col], roots: &[Ref]) -> Vec<Col> {
        let mut readers = vec![0usize; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<usize> = roots
            .iter()
            .filter_map(|r| match r {
                Ref::Node(i) => Some(*i),
                Ref::Const(_) | Ref::Bit(_) => None,
            })
            .collect();
        for r in roots {
            if let Ref::Node(i) = r {
                readers[*i] += 1;
            }
        }
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let (_, lo, hi) = self.nodes[i];
            for c in [lo, hi] {
                if let Ref::Node(j) = c {
                    readers[j] += 1;
                    stack.push(j);
                }
            }
        }
        let mut cols: Vec<Option<Col>> = vec![None; self.nodes.len()];
        let mut nots: Vec<Option<Col>> = vec![None; x.len()];
        let mut out = Vec::with_capacity(roots.len());
        for r in roots {
            let col = match *r {
                Ref::Const(v) => b.constant(v),
                Ref::Bit(k) => b.copy(x[k]),
                Ref::Node(i) => {
                    let c = self.node(b, x, i, &mut cols, &mut nots, &mut readers);
                    // A node read again later (by another root) keeps its column; this root
                    // gets its own copy.
                    readers[i] -= 1;
                    if readers[i] > 0 { b.copy(c) } else { c }
                }
            };
            out.push(col);
        }
        for c in nots.into_iter().flatten() {
            b.release(c);
        }
        out
    }

    /// The column of node `i`, emitting it (and its unbuilt children) if needed; a child
    /// column is released after its last reader.
    fn node(
        &self,
        b: &mut Builder,
        x: &[Col],
        i: usize,
        cols: &mut [Option<Col>],
        nots: &mut [Option<Col>],
        readers: &mut [usize],
    ) -> Col {
        if let Some(c) = cols[i] {
            return c;
        }
        let (var, lo, hi) = self.nodes[i];
        let mut child = |b: &mut Builder, r: Ref| -> Option<Col> {
            match r {
                Ref::Const(_) => None,
                Ref::Bit(k) => Some(x[k]),
                Ref::Node(j) => Some(self.node(b, x, j, cols, nots, readers)),
            }
        };
        let (c0, c1) = (child(b, lo), child(b, hi));
        let s = x[var];
        let mut not_s = |b: &mut Builder| *nots[var].get_or_insert_with(|| b.not(s));
        let col = match (lo, hi) {
            // Two constant branches: equal ones are never a node and 0/1 is the bit itself,
            // so this is 1/0, the bit's complement.
            (Ref::Const(_), Ref::Const(_)) => b.not(s),
            (Ref::Const(false), _) => b.and(s, c1.expect("a column")),
            (Ref::Const(true), _) => {
                let ns = not_s(b);
                b.or(ns, c1.expect("a column"))
            }
            (_, Ref::Const(false)) => {
                let ns = not_s(b);
                b.and(ns, c0.expect("a column"))
            }
            (_, Ref::Const(true)) => b.or(s, c0.expect("a column")),
            _ => {
                let ns = not_s(b);
                b.mux(s, ns, c0.expect("a column"), c1.expect("a column"))
            }
        };
        for r in [lo, hi] {
            if let Ref::Node(j) = r {
                readers[j] -= 1;
                if readers[j] == 0 {
                    b.release(cols[j].expect("emitted"));
                }
            }
        }
        cols[i] = Some(col);
        col
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::engine::Subarray;
    use proptest::prelude::*;

    /// Every input pattern of `cx` in its own lane through [`lut`] of `f`: the output codes.
    fn run_lut(set: GateSet, cx: Coding, cy: Coding, f: &dyn Fn(i64) -> i64) -> (Vec<i64>, usize) {
        let mut b = Builder::new(set);
        let x = b.operand("x", cx.bits);
        let y = lut(&mut b, &x, cx, cy, f);
        let distinct: std::collections::BTreeSet<Col> = y.iter().copied().collect();
        assert_eq!(distinct.len(), y.len(), "one column per output bit");
        let p = b.finish();
        let lanes = 1usize << cx.bits;
        let mut sa = Subarray::new(lanes, p.cols());
        for lane in 0..lanes {
            for (i, &c) in x.iter().enumerate() {
                sa.set(lane, c, lane >> i & 1 == 1);
            }
        }
        sa.run(&p).unwrap();
        let out = (0..lanes)
            .map(|l| {
                let bits: u64 = y
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| u64::from(sa.get(l, c)) << i)
                    .sum();
                cy.decode(bits)
            })
            .collect();
        (out, p.cols())
    }

    fn coding(bits: u32, signed: bool) -> Coding {
        Coding {
            bits,
            signed,
            binary: false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any table from any input coding to any output coding: every lane's output is
        /// the table's entry for its input code, in every gate set.
        #[test]
        fn a_table_in_the_array_equals_the_table(
            in_bits in 1u32..=8, out_bits in 1u32..=9, in_signed in any::<bool>(),
            out_signed in any::<bool>(), seed in proptest::collection::vec(any::<u64>(), 256),
            smooth in any::<bool>(),
            set in prop_oneof![Just(GateSet::Maj), Just(GateSet::Nand), Just(GateSet::NandNot)],
        ) {
            let (cx, cy) = (coding(in_bits, in_signed), coding(out_bits, out_signed));
            let (lo, hi) = cy.range();
            let (xlo, _) = cx.range();
            let span = (hi - lo + 1) as u64;
            // Random entries, or a monotone staircase (the shape of an activation).
            let f = |q: i64| -> i64 {
                let k = (i128::from(q) - xlo) as usize;
                if smooth {
                    (lo + ((k as i128 * span as i128) >> in_bits)) as i64
                } else {
                    (lo + i128::from(seed[k] % span)) as i64
                }
            };
            let (got, _) = run_lut(set, cx, cy, &f);
            for (p, g) in got.iter().enumerate() {
                let q = cx.decode(p as u64);
                prop_assert_eq!(*g, f(q), "input code {}", q);
            }
        }
    }

    /// A 16-bit table (an activation at the widest format) builds and computes its
    /// entries, on a sample of lanes' worth of inputs, with a bounded number of columns.
    #[test]
    fn a_sixteen_bit_sigmoid_table_is_exact() {
        let (cx, cy) = (coding(16, true), coding(16, false));
        let f = |q: i64| ((1.0 / (1.0 + (-(q as f64) / 4096.0).exp())) * 65535.0).round() as i64;
        let (got, cols) = run_lut(GateSet::Maj, cx, cy, &f);
        for (p, g) in got.iter().enumerate() {
            assert_eq!(*g, f(cx.decode(p as u64)), "pattern {p}");
        }
        assert!(cols < 4096, "{cols} columns");
    }
}
