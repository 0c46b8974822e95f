//! Bit-heap reduction: the one adder engine behind add, subtract, multiply, multiply by a
//! constant and popcount.
//!
//! A heap holds, per binary weight w, a queue of bits to be summed, plus a binary constant.
//! Reduction goes weight by weight from the bottom: while three or more bits wait at w, a
//! full adder turns them into a sum (back into w) and a carry (into w+1); two bits take a half
//! adder; a constant 1 folds in for free (x + 1 = ¬x with carry x; x + y + 1 = XNOR with carry
//! OR). With operands a and b this is exactly a ripple-carry adder (half adder at bit 0, full
//! adders above), so the NAND-set add of n bits costs 5 + 9(n−1) = 9n − 4 steps (cram-literature
//! T1). Partial products are *lazy*: an AND/NAND/NOT is emitted only when its weight is
//! reduced, so an n×m multiply never holds more than a weight's worth of them in columns.
//! Results wider than the heap's width are dropped (arithmetic mod 2^width).

use std::collections::VecDeque;

use super::builder::Builder;
use crate::engine::isa::Col;

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
}

/// Bits to be summed, by weight, modulo 2^width.
#[derive(Debug)]
pub struct BitHeap {
    width: u32,
    queues: Vec<VecDeque<HeapBit>>,
    constant: u64,
}

impl BitHeap {
    /// An empty heap whose sum is taken modulo 2^width (width ≤ 64).
    pub fn new(width: u32) -> BitHeap {
        assert!((1..=64).contains(&width), "heap width {width}");
        BitHeap {
            width,
            queues: (0..width).map(|_| VecDeque::new()).collect(),
            constant: 0,
        }
    }

    /// Adds a bit of weight 2^w (ignored if w ≥ width).
    pub fn push(&mut self, w: u32, bit: HeapBit) {
        if w < self.width {
            self.queues[w as usize].push_back(bit);
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
        let mut result = Vec::with_capacity(self.width as usize);
        for w in 0..self.width as usize {
            let need_carry = w + 1 < self.width as usize;
            let mut q = std::mem::take(&mut self.queues[w]);
            let one = self.constant >> w & 1 == 1;
            while q.len() >= 3 {
                let x = materialize(b, q.pop_front().expect("len ≥ 3"));
                let y = materialize(b, q.pop_front().expect("len ≥ 3"));
                let z = materialize(b, q.pop_front().expect("len ≥ 3"));
                let (s, c) = b.full_adder(x.0, y.0, z.0, need_carry);
                release(b, [x, y, z]);
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
            let bits: Vec<(Col, bool)> = q.into_iter().map(|h| materialize(b, h)).collect();
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

fn materialize(b: &mut Builder, bit: HeapBit) -> (Col, bool) {
    match bit {
        HeapBit::Col { col, owned } => (col, owned),
        HeapBit::And(x, y) => (b.and(x, y), true),
        HeapBit::Nand(x, y) => (b.nand(x, y), true),
        HeapBit::Not(x) => (b.not(x), true),
    }
}

fn release<const N: usize>(b: &mut Builder, bits: [(Col, bool); N]) {
    for (col, owned) in bits {
        if owned {
            b.release(col);
        }
    }
}
