//! Bit-heap reduction: the one adder engine behind add, subtract, multiply, multiply by a
//! constant and popcount.
//!
//! A heap holds, per binary weight w, a queue of bits to be summed, plus a binary constant.
//! Reduction goes weight by weight from the bottom: while three or more bits wait at w, a
//! full adder turns them into a sum (back into w) and a carry (into w+1); two bits take a half
//! adder; a constant 1 folds in for free (x + 1 = ¬x with carry x; x + y + 1 = XNOR with carry
//! OR). With operands a and b this is exactly a ripple-carry adder (half adder at bit 0, full
//! adders above), so the NAND-set add of n bits costs 5 + 9(n−1) = 9n − 4 steps (docs/references.md
//! T1). Partial products are *lazy*: an AND/NAND/NOT is emitted only when its weight is
//! reduced, so an n×m multiply never holds more than a weight's worth of them in columns.
//! Results wider than the heap's width are dropped (arithmetic mod 2^width).
//!
//! On a counting builder the reduction runs in closed form: the gates of the loop above
//! depend only on how many bits of each kind wait at each weight and on the constant, so
//! the heap keeps those counts, and bits may be added n at a time ([`BitHeap::push_n`]). The
//! columns the real reduction would hold at once are bounded from the same counts and
//! announced with [`Builder::reserve`].

use std::collections::VecDeque;
use std::sync::OnceLock;

use super::builder::{Builder, GateSet};
use super::tally::Tally;
use crate::model::engine::isa::Col;

/// One bit waiting in the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapBit {
    /// A column; `owned` columns are temporaries the heap frees after use.
    Col {
        /// The column.
        col: Col,
        /// Whether the heap may free it.
        owned: bool,
    },
    /// a ∧ b, emitted when needed.
    And(Col, Col),
    /// ¬(a ∧ b), emitted when needed.
    Nand(Col, Col),
    /// ¬a, emitted when needed.
    Not(Col),
    /// ¬(a ⊕ b), emitted when needed: the product of two ±1 values stored as one bit each
    /// (set for +1) is 2·XNOR − 1 (the XNOR-popcount of binary networks).
    Xnor(Col, Col),
    /// a ⊕ b, emitted when needed (a negative XNOR term: −XNOR = XOR − 1).
    Xor(Col, Col),
}

/// Bits to be summed, by weight, modulo 2^width.
#[derive(Debug)]
pub struct BitHeap {
    width: u32,
    queues: Vec<VecDeque<HeapBit>>,
    constant: u64,
    /// Counting heap, per weight: bits waiting by kind (plain column, AND, NAND, NOT, XNOR,
    /// XOR).
    counts: Vec<[u64; KINDS]>,
    /// Counting heap: only the counts (and the owned columns, to free) are kept; it reduces
    /// on a counting builder only, and a real heap on a real builder only.
    counting: bool,
}

impl HeapBit {
    /// Index into the per-weight counts.
    fn kind(self) -> usize {
        match self {
            HeapBit::Col { .. } => 0,
            HeapBit::And(..) => 1,
            HeapBit::Nand(..) => 2,
            HeapBit::Not(_) => 3,
            HeapBit::Xnor(..) => 4,
            HeapBit::Xor(..) => 5,
        }
    }
}

/// Kinds of [`HeapBit`].
const KINDS: usize = 6;

impl BitHeap {
    /// An empty heap whose sum is taken modulo 2^width (width ≤ 64).
    pub fn new(width: u32) -> BitHeap {
        assert!((1..=64).contains(&width), "heap width {width}");
        BitHeap {
            width,
            queues: (0..width).map(|_| VecDeque::new()).collect(),
            constant: 0,
            counts: Vec::new(),
            counting: false,
        }
    }

    /// An empty heap that keeps counts only (reducible on a counting builder alone).
    pub fn counting(width: u32) -> BitHeap {
        assert!((1..=64).contains(&width), "heap width {width}");
        BitHeap {
            width,
            queues: Vec::new(),
            constant: 0,
            counts: vec![[0; KINDS]; width as usize],
            counting: true,
        }
    }

    /// Adds a bit of weight 2^w (ignored if w ≥ width).
    pub fn push(&mut self, w: u32, bit: HeapBit) {
        if w < self.width {
            if !self.counting {
                self.queues[w as usize].push_back(bit);
                return;
            }
            self.counts[w as usize][bit.kind()] += 1;
            if let HeapBit::Col { owned: true, .. } = bit {
                // Kept so the closed form can free it.
                if self.queues.is_empty() {
                    // Room for an accumulator's bits, one per weight, without regrowing.
                    self.queues
                        .push(VecDeque::with_capacity(self.width as usize));
                }
                self.queues[0].push_back(bit);
            }
        }
    }

    /// Adds `n` bits like `bit` at weight 2^w by count only (ignored if w ≥ width); counting
    /// heaps only.
    #[inline]
    pub fn push_n(&mut self, w: u32, bit: HeapBit, n: u64) {
        assert!(
            self.counting,
            "bits are added by count to a counting heap only"
        );
        if w < self.width && n > 0 {
            self.counts[w as usize][bit.kind()] += n;
        }
    }

    /// Adds an input column (never freed) at weight 2^w.
    pub fn push_col(&mut self, w: u32, col: Col) {
        self.push(w, HeapBit::Col { col, owned: false });
    }

    /// Adds a constant (any integer; taken modulo 2^width).
    pub fn add_constant(&mut self, value: i128) {
        let mask = if self.width == 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        };
        self.constant = self.constant.wrapping_add(value as u64) & mask;
    }

    /// Emits the reduction and returns one column per weight (bit 0 first). Result columns
    /// may alias input columns; they are never freed.
    pub fn reduce(mut self, b: &mut Builder) -> Vec<Col> {
        self.reduce_and_empty(b)
    }

    /// [`BitHeap::reduce`], leaving the heap empty (no bits, constant 0) to be filled again
    /// for a chunked reduction's next chunk: a counting heap keeps its counts' room, so it
    /// is not allocated again.
    pub fn reduce_and_empty(&mut self, b: &mut Builder) -> Vec<Col> {
        assert_eq!(
            self.counting,
            b.is_counting(),
            "a counting heap reduces on a counting builder, a real one on a real builder"
        );
        if self.counting {
            return self.reduce_counted(b);
        }
        let mut result = Vec::with_capacity(self.width as usize);
        // Each weight's queue is taken as it is reduced; the constant is read here.
        let constant = std::mem::take(&mut self.constant);
        for w in 0..self.width as usize {
            let need_carry = w + 1 < self.width as usize;
            let mut q = std::mem::take(&mut self.queues[w]);
            let one = constant >> w & 1 == 1;
            while q.len() >= 3 {
                let mut xyz = [(); 3].map(|_| materialize(b, q.pop_front().expect("len ≥ 3")));
                b.distinct(&mut xyz);
                let [x, y, z] = xyz;
                let (s, c) = b.full_adder(x.0, y.0, z.0, need_carry);
                release(b, xyz);
                q.push_back(HeapBit::Col {
                    col: s,
                    owned: true,
                });
                if let Some(c) = c {
                    self.queues[w + 1].push_back(HeapBit::Col {
                        col: c,
                        owned: true,
                    });
                }
            }
            let mut bits: Vec<(Col, bool)> = q.into_iter().map(|h| materialize(b, h)).collect();
            b.distinct(&mut bits);
            let (sum, carry) = match (bits.as_slice(), one) {
                ([], false) => (b.constant(false), None),
                ([], true) => (b.constant(true), None),
                (&[x], false) => (x.0, None),
                (&[x], true) => {
                    // x + 1: sum ¬x, carry x (no gate for the carry; it keeps x's ownership).
                    let s = b.not(x.0);
                    if need_carry {
                        (
                            s,
                            Some(HeapBit::Col {
                                col: x.0,
                                owned: x.1,
                            }),
                        )
                    } else {
                        release(b, [x]);
                        (s, None)
                    }
                }
                (&[x, y], false) => {
                    let (s, c) = b.half_adder(x.0, y.0, need_carry);
                    release(b, [x, y]);
                    (s, c.map(|col| HeapBit::Col { col, owned: true }))
                }
                (&[x, y], true) => {
                    let s = b.xnor(x.0, y.0);
                    let c = need_carry.then(|| b.or(x.0, y.0));
                    release(b, [x, y]);
                    (s, c.map(|col| HeapBit::Col { col, owned: true }))
                }
                _ => unreachable!("at most two bits remain after full adders"),
            };
            if let Some(c) = carry {
                self.queues[w + 1].push_back(c);
            }
            result.push(sum);
        }
        result
    }
}

impl BitHeap {
    /// The closed form of [`BitHeap::reduce`] on a counting builder: the same gates, tallied
    /// per weight from the counts, and a bound on the temporaries live at once (results so
    /// far, carries queued, the carries and sums in the current weight, three materialized
    /// inputs and a primitive's own). Returns fresh result columns.
    fn reduce_counted(&mut self, b: &mut Builder) -> Vec<Col> {
        let p = prims(b.set());
        let width = self.width as usize;
        // How many times each primitive runs: and, nand, not, fa[2], ha[2], xnor, or,
        // constant[2], and the XOR of a negative XNOR input.
        let mut n_xor = 0u64;
        let mut n_and = 0u64;
        let mut n_nand = 0u64;
        let mut n_not = 0u64;
        let mut n_fa = [0u64; 2];
        let mut n_ha = [0u64; 2];
        let (mut n_xnor, mut n_or) = (0u64, 0u64);
        let mut n_const = [0u64; 2];
        let mut carry_in = 0u64;
        let mut extra = 0u64;
        for (w, c) in self.counts.iter().enumerate() {
            let need = w + 1 < width;
            n_and += c[1];
            n_nand += c[2];
            n_not += c[3];
            n_xnor += c[4];
            n_xor += c[5];
            let n = c.iter().sum::<u64>() + carry_in;
            let fa = if n >= 3 { (n - 1) / 2 } else { 0 };
            n_fa[usize::from(need)] += fa;
            let mut out = if need { fa } else { 0 };
            let one = self.constant >> w & 1 == 1;
            match (n - 2 * fa, one) {
                (0, v) => n_const[usize::from(v)] += 1,
                (1, false) => {}
                (1, true) => {
                    n_not += 1;
                    out += u64::from(need);
                }
                (2, false) => {
                    n_ha[usize::from(need)] += 1;
                    out += u64::from(need);
                }
                (2, true) => {
                    n_xnor += 1;
                    if need {
                        n_or += 1;
                        out += 1;
                    }
                }
                _ => unreachable!("at most two bits remain after full adders"),
            }
            extra = extra.max(w as u64 + 1 + (fa + 1) + carry_in + fa + 3 + p.temps);
            carry_in = out;
        }
        let mut t = Tally::default();
        for (prim, n) in [
            (&p.and, n_and),
            (&p.nand, n_nand),
            (&p.not, n_not),
            (&p.fa[0], n_fa[0]),
            (&p.fa[1], n_fa[1]),
            (&p.ha[0], n_ha[0]),
            (&p.ha[1], n_ha[1]),
            (&p.xnor, n_xnor),
            (&p.xor, n_xor),
            (&p.or, n_or),
            (&p.constant[0], n_const[0]),
            (&p.constant[1], n_const[1]),
        ] {
            if n > 0 {
                t.add(prim, n);
            }
        }
        b.add_tally(&t, 1);
        b.reserve(extra as usize);
        let result = (0..width).map(|_| b.alloc()).collect();
        // Owned inputs are consumed (the real reduction frees each as it goes).
        for q in &mut self.queues {
            for bit in q.drain(..) {
                if let HeapBit::Col { col, owned: true } = bit {
                    b.release(col);
                }
            }
        }
        self.counts.fill([0; KINDS]);
        self.constant = 0;
        result
    }
}

/// The tallies of the builder primitives a heap reduction uses, for one gate set.
#[derive(Debug)]
struct Prims {
    /// Full adder without / with the carry.
    fa: [Tally; 2],
    /// Half adder without / with the carry.
    ha: [Tally; 2],
    xnor: Tally,
    xor: Tally,
    or: Tally,
    not: Tally,
    and: Tally,
    nand: Tally,
    /// Constant 0 / 1.
    constant: [Tally; 2],
    /// Most temporaries (outputs included) any of them holds at once.
    temps: u64,
}

/// Measures every primitive once on a scratch builder.
fn prims(set: GateSet) -> &'static Prims {
    static CACHE: [OnceLock<Prims>; GateSet::ALL.len()] =
        [const { OnceLock::new() }; GateSet::ALL.len()];
    CACHE[set.index()].get_or_init(|| {
        let mut temps = 0;
        let mut one = |f: &dyn Fn(&mut Builder, &[Col])| -> Tally {
            let mut b = Builder::new(set);
            let ins = b.operand("x", 3);
            f(&mut b, &ins);
            temps = temps.max((b.cols() - 3) as u64);
            b.tally()
        };
        Prims {
            fa: [
                one(&|b, x| {
                    let _ = b.full_adder(x[0], x[1], x[2], false);
                }),
                one(&|b, x| {
                    let _ = b.full_adder(x[0], x[1], x[2], true);
                }),
            ],
            ha: [
                one(&|b, x| {
                    let _ = b.half_adder(x[0], x[1], false);
                }),
                one(&|b, x| {
                    let _ = b.half_adder(x[0], x[1], true);
                }),
            ],
            xnor: one(&|b, x| {
                let _ = b.xnor(x[0], x[1]);
            }),
            xor: one(&|b, x| {
                let _ = b.xor(x[0], x[1]);
            }),
            or: one(&|b, x| {
                let _ = b.or(x[0], x[1]);
            }),
            not: one(&|b, x| {
                let _ = b.not(x[0]);
            }),
            and: one(&|b, x| {
                let _ = b.and(x[0], x[1]);
            }),
            nand: one(&|b, x| {
                let _ = b.nand(x[0], x[1]);
            }),
            constant: [
                one(&|b, _| {
                    let _ = b.constant(false);
                }),
                one(&|b, _| {
                    let _ = b.constant(true);
                }),
            ],
            temps,
        }
    })
}

fn materialize(b: &mut Builder, bit: HeapBit) -> (Col, bool) {
    match bit {
        HeapBit::Col { col, owned } => (col, owned),
        HeapBit::And(x, y) => (b.and(x, y), true),
        HeapBit::Nand(x, y) => (b.nand(x, y), true),
        HeapBit::Not(x) => (b.not(x), true),
        HeapBit::Xnor(x, y) => (b.xnor(x, y), true),
        HeapBit::Xor(x, y) => (b.xor(x, y), true),
    }
}

fn release<const N: usize>(b: &mut Builder, bits: [(Col, bool); N]) {
    for (col, owned) in bits {
        if owned {
            b.release(col);
        }
    }
}
