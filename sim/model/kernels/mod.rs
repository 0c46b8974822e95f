//! Kernels: micro-programs generated per gate set, each with its integer reference.
//!
//! A kernel works on operands stored bit-serially in columns (bit i of an operand in its own
//! column) and runs in every lane at once. [`KernelSpec::build`] generates the program;
//! [`Kernel::reference`] gives the expected output of one lane from `cram-workloads`' integer
//! arithmetic, which [`check`] compares lane by lane.

pub mod builder;
pub mod check;
pub mod heap;
pub mod tally;

use std::collections::BTreeSet;

use cram_arch::{GateKind, GateLibrary};
use cram_workloads::int::{self, IntFormat, Overflow};
use serde::Serialize;

pub use builder::{Builder, GateSet};
use heap::{BitHeap, HeapBit};
pub use tally::Tally;

use crate::error::Error;
use crate::model::engine::count::Counter;
use crate::model::engine::isa::{Col, Program};

/// Largest operand width a kernel accepts.
pub const MAX_BITS: u32 = 32;

/// Most input (or output) operands of any kernel.
pub const MAX_OPERANDS: usize = 3;

macro_rules! kernel_kinds {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// The kernels the generator knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
        pub enum KernelKind { $(#[doc = $doc] $variant,)* }

        impl KernelKind {
            /// Every kernel, in help order.
            pub const ALL: &'static [KernelKind] = &[$(KernelKind::$variant,)*];

            /// Command-line name.
            pub fn name(self) -> &'static str {
                match self { $(KernelKind::$variant => $name,)* }
            }

            /// One-line description.
            pub fn describe(self) -> &'static str {
                match self { $(KernelKind::$variant => $doc,)* }
            }
        }
    };
}

kernel_kinds! {
    Copy = "copy": "n-bit copy: out = a",
    Not = "not": "bitwise NOT: out = ¬a",
    And = "and": "bitwise AND of a and b",
    Or = "or": "bitwise OR of a and b",
    Xor = "xor": "bitwise XOR of a and b",
    Xnor = "xnor": "bitwise XNOR of a and b",
    Fa = "fa": "n independent full adders (a 3:2 carry-save compressor): sum = a⊕b⊕c, carry = MAJ(a,b,c)",
    Add = "add": "unsigned n-bit ripple add with carry-out: sum (n+1 bits) = a + b",
    Sub = "sub": "two's-complement n-bit subtract: diff = (a − b) mod 2^n",
    Mul = "mul": "unsigned n×m multiply: prod (n+m bits) = a·b",
    Smul = "smul": "signed n×m multiply (Baugh–Wooley): prod (n+m bits) = a·b",
    Mulc = "mulc": "signed n-bit times a compile-time constant (CSD shift-add, zero digits skipped)",
    Popcount = "popcount": "number of 1 bits of a (⌊log2 n⌋+1 bits)",
    Lt = "lt": "signed compare: lt = (a < b)",
    Ltu = "ltu": "unsigned compare: lt = (a < b)",
    Max = "max": "signed max(a, b)",
    Relu = "relu": "signed ReLU: max(a, 0)",
}

impl std::str::FromStr for KernelKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KernelKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::usage(format!(
                    "unknown kernel '{s}': expected one of {}",
                    KernelKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// What to generate: kernel, widths, constant, gate set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSpec {
    /// Which kernel.
    pub kind: KernelKind,
    /// Width n of operand a (and of b for two-operand kernels other than multiply).
    pub bits: u32,
    /// Width m of operand b for `mul`/`smul`.
    pub bits_b: u32,
    /// The constant of `mulc`.
    pub constant: i64,
    /// Gate set to generate from.
    pub gate_set: GateSet,
}

/// One operand of a kernel: its columns (bit 0 first) and how to read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operand {
    /// Name, e.g. `a` or `sum`.
    pub name: String,
    /// Columns, bit 0 first.
    pub cols: Vec<Col>,
    /// Integer format (width = number of columns).
    pub format: IntFormat,
}

impl Operand {
    fn new(name: &str, cols: Vec<Col>, signed: bool) -> Operand {
        let format = IntFormat::new(cols.len() as u32, signed).expect("operands have 1..=64 bits");
        Operand {
            name: name.into(),
            cols,
            format,
        }
    }
}

/// A generated kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// What was asked for.
    pub spec: KernelSpec,
    /// The op stream.
    pub program: Program,
    /// Operands loaded before the program runs.
    pub inputs: Vec<Operand>,
    /// Operands produced.
    pub outputs: Vec<Operand>,
}

impl KernelSpec {
    /// Checks widths and constant against what the kernel supports.
    pub fn validate(&self) -> Result<(), Error> {
        let range = |flag: &str, v: u32| {
            if (1..=MAX_BITS).contains(&v) {
                Ok(())
            } else {
                Err(Error::usage(format!(
                    "{flag} {v}: kernel {} needs a width in 1..={MAX_BITS}",
                    self.kind.name()
                )))
            }
        };
        range("--bits", self.bits)?;
        if matches!(self.kind, KernelKind::Mul | KernelKind::Smul) {
            range("--bits-b", self.bits_b)?;
        }
        if self.kind == KernelKind::Mulc && self.constant.unsigned_abs() >= 1 << 31 {
            return Err(Error::usage(format!(
                "--constant {}: mulc needs |constant| < 2^31",
                self.constant
            )));
        }
        Ok(())
    }

    /// Generates the kernel (call [`KernelSpec::validate`] first).
    pub fn build(&self) -> Kernel {
        let n = self.bits;
        let mut b = Builder::new(self.gate_set);
        let signed = matches!(
            self.kind,
            KernelKind::Sub
                | KernelKind::Smul
                | KernelKind::Mulc
                | KernelKind::Lt
                | KernelKind::Max
                | KernelKind::Relu
        );
        let operand = Operand::new;
        let a = b.operand("a", n);
        let mut inputs = vec![operand("a", a.clone(), signed)];
        let b_bits = if matches!(self.kind, KernelKind::Mul | KernelKind::Smul) {
            self.bits_b
        } else {
            n
        };
        let two_operand = !matches!(
            self.kind,
            KernelKind::Copy
                | KernelKind::Not
                | KernelKind::Mulc
                | KernelKind::Popcount
                | KernelKind::Relu
        );
        let bb = if two_operand {
            b.operand("b", b_bits)
        } else {
            Vec::new()
        };
        if two_operand {
            inputs.push(operand("b", bb.clone(), signed));
        }
        let outputs = self.outputs(&mut b, &a, &bb, signed, &mut inputs);
        let n_inputs: usize = inputs.iter().map(|o| o.cols.len()).sum();
        for o in &outputs {
            for (i, &c) in o.cols.iter().enumerate() {
                if usize::from(c) >= n_inputs {
                    b.rename(c, format!("{}[{i}]", o.name));
                }
            }
        }
        Kernel {
            spec: *self,
            program: b.finish(),
            inputs,
            outputs,
        }
    }

    /// The outputs of the kernel on operands `a` and `bb` (a full adder's third operand is
    /// declared here and added to `inputs`).
    fn outputs(
        &self,
        b: &mut Builder,
        a: &[Col],
        bb: &[Col],
        signed: bool,
        inputs: &mut Vec<Operand>,
    ) -> Vec<Operand> {
        let n = self.bits;
        let b_bits = if matches!(self.kind, KernelKind::Mul | KernelKind::Smul) {
            self.bits_b
        } else {
            n
        };
        let operand = Operand::new;
        match self.kind {
            KernelKind::Copy => vec![operand(
                "out",
                a.iter().map(|&x| b.copy(x)).collect(),
                false,
            )],
            KernelKind::Not => vec![operand("out", a.iter().map(|&x| b.not(x)).collect(), false)],
            KernelKind::And | KernelKind::Or | KernelKind::Xor | KernelKind::Xnor => {
                let f = match self.kind {
                    KernelKind::And => Builder::and,
                    KernelKind::Or => Builder::or,
                    KernelKind::Xor => Builder::xor,
                    _ => Builder::xnor,
                };
                vec![operand(
                    "out",
                    a.iter().zip(bb).map(|(&x, &y)| f(b, x, y)).collect(),
                    false,
                )]
            }
            KernelKind::Fa => {
                let c = b.operand("c", n);
                inputs.push(operand("c", c.clone(), false));
                let (mut sum, mut carry) = (Vec::new(), Vec::new());
                for i in 0..n as usize {
                    let (s, cy) = b.full_adder(a[i], bb[i], c[i], true);
                    sum.push(s);
                    carry.push(cy.expect("carry requested"));
                }
                vec![operand("sum", sum, false), operand("carry", carry, false)]
            }
            KernelKind::Add => {
                let mut h = BitHeap::new(n + 1);
                for i in 0..n {
                    h.push_col(i, a[i as usize]);
                    h.push_col(i, bb[i as usize]);
                }
                vec![operand("sum", h.reduce(b), false)]
            }
            KernelKind::Sub => {
                // a − b = a + ¬b + 1 (mod 2^n).
                let mut h = BitHeap::new(n);
                for i in 0..n {
                    h.push_col(i, a[i as usize]);
                    h.push(i, HeapBit::Not(bb[i as usize]));
                }
                h.add_constant(1);
                vec![operand("diff", h.reduce(b), true)]
            }
            KernelKind::Mul => {
                let mut h = BitHeap::new(n + b_bits);
                for (j, &y) in bb.iter().enumerate() {
                    for (i, &x) in a.iter().enumerate() {
                        h.push((i + j) as u32, HeapBit::And(x, y));
                    }
                }
                vec![operand("prod", h.reduce(b), false)]
            }
            KernelKind::Smul => vec![operand("prod", baugh_wooley(b, a, bb), true)],
            KernelKind::Mulc => vec![operand("prod", mul_const(b, a, self.constant), true)],
            KernelKind::Popcount => {
                let mut h = BitHeap::new(32 - n.leading_zeros());
                for &x in a {
                    h.push_col(0, x);
                }
                vec![operand("count", h.reduce(b), false)]
            }
            KernelKind::Lt | KernelKind::Ltu => {
                vec![operand("lt", vec![less_than(b, a, bb, signed)], false)]
            }
            KernelKind::Max => {
                let s = less_than(b, a, bb, true);
                let ns = b.not(s);
                let out = a
                    .iter()
                    .zip(bb)
                    .map(|(&x, &y)| b.mux(s, ns, x, y))
                    .collect();
                vec![operand("max", out, true)]
            }
            KernelKind::Relu => {
                let sign = a[n as usize - 1];
                let mut out: Vec<Col> = Vec::new();
                if n > 1 {
                    let ns = b.not(sign);
                    out.extend(a[..n as usize - 1].iter().map(|&x| b.and(x, ns)));
                }
                out.push(b.constant(false));
                vec![operand("relu", out, true)]
            }
        }
    }
}

/// Signed a (n bits) × b (m bits) by the Baugh–Wooley rewrite: the partial products that
/// involve exactly one sign bit enter inverted (NAND), plus the constant
/// 2^(n−1) + 2^(m−1) − 2^(n+m−1), all modulo 2^(n+m). (Baugh & Wooley, IEEE TC C-22, 1973.)
fn baugh_wooley(b: &mut Builder, a: &[Col], y: &[Col]) -> Vec<Col> {
    let (n, m) = (a.len(), y.len());
    let mut h = BitHeap::new((n + m) as u32);
    for (j, &yj) in y.iter().enumerate() {
        for (i, &ai) in a.iter().enumerate() {
            let w = (i + j) as u32;
            let (sa, sb) = (i == n - 1, j == m - 1);
            h.push(
                w,
                if sa ^ sb {
                    HeapBit::Nand(ai, yj)
                } else {
                    HeapBit::And(ai, yj)
                },
            );
        }
    }
    h.add_constant((1i128 << (n - 1)) + (1i128 << (m - 1)) - (1i128 << (n + m - 1)));
    h.reduce(b)
}

/// Canonical signed digits of c, least significant first, each in {−1, 0, 1}, no two adjacent
/// digits non-zero (Reitwiesner's recoding).
pub fn csd_digits(c: i128) -> Vec<i8> {
    let mut c = c;
    let mut digits = Vec::new();
    while c != 0 {
        let d = if c & 1 == 0 { 0 } else { 2 - (c & 3) as i8 };
        digits.push(d);
        c = (c - i128::from(d)) >> 1;
    }
    digits
}

/// Signed x (n bits) × constant c as a sum of shifted ±x over c's CSD digits. +x·2^k enters
/// as bits x_i (i < n−1), ¬x_(n−1) and the constant −2^(n−1+k); −x·2^k as ¬x_i (i < n−1),
/// x_(n−1) and −(2^(n−1) − 1)·2^k. Width n + bitlen(|c|) holds every product exactly.
fn mul_const(b: &mut Builder, x: &[Col], c: i64) -> Vec<Col> {
    let n = x.len();
    let width = n as u32 + (64 - c.unsigned_abs().leading_zeros());
    let mut h = BitHeap::new(width);
    for (k, &d) in csd_digits(i128::from(c)).iter().enumerate() {
        let k32 = k as u32;
        match d {
            1 => {
                for (i, &xi) in x.iter().enumerate().take(n - 1) {
                    h.push_col(i as u32 + k32, xi);
                }
                h.push((n - 1) as u32 + k32, HeapBit::Not(x[n - 1]));
                h.add_constant(-(1i128 << (n - 1 + k)));
            }
            -1 => {
                for (i, &xi) in x.iter().enumerate().take(n - 1) {
                    h.push(i as u32 + k32, HeapBit::Not(xi));
                }
                h.push_col((n - 1) as u32 + k32, x[n - 1]);
                h.add_constant(-(((1i128 << (n - 1)) - 1) << k));
            }
            _ => {}
        }
    }
    h.reduce(b)
}

/// a < b through the borrow chain of a + ¬b + 1: no carry out ⇔ a < b (unsigned). For signed
/// operands the sign bits enter swapped (¬a_msb, b_msb), which turns the unsigned compare of
/// a ⊕ 2^(n−1) and b ⊕ 2^(n−1) into the signed one. Only carries are computed.
fn less_than(b: &mut Builder, a: &[Col], y: &[Col], signed: bool) -> Col {
    let n = a.len();
    let mut carry: Option<Col> = None; // None = the constant carry-in 1.
    for i in 0..n {
        let last = i == n - 1;
        let (x, ny) = if signed && last {
            (b.not(a[i]), y[i])
        } else {
            (a[i], b.not(y[i]))
        };
        let next = match carry {
            // MAJ(x, ¬y, 1) = x ∨ ¬y; on the last bit we want its inverse.
            None if last => b.nor(x, ny),
            None => b.or(x, ny),
            Some(c) => {
                let r = b.maj3(x, ny, c, last);
                b.release(c);
                r
            }
        };
        b.release(if signed && last { x } else { ny });
        carry = Some(next);
    }
    carry.expect("n ≥ 1")
}

impl Kernel {
    /// Gate kinds the program uses.
    pub fn gates_used(&self) -> BTreeSet<GateKind> {
        Counter::count(&self.program, 1)
            .by_gate
            .into_keys()
            .collect()
    }

    /// Checks the device can build every gate the kernel uses.
    pub fn check_buildable(&self, lib: &GateLibrary) -> Result<(), Error> {
        let missing: Vec<String> = self
            .gates_used()
            .into_iter()
            .filter_map(|g| lib.get(g).unavailable.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let other = GateSet::ALL
            .into_iter()
            .find(|&g| g != self.spec.gate_set)
            .expect("two sets");
        Err(Error::usage(format!(
            "kernel {} with gate set {} cannot run on device '{}': {} (see `cramulator gates --device {}`; \
             --gate-set {} uses other gates)",
            self.spec.kind.name(),
            self.spec.gate_set.name(),
            lib.device.params.name,
            missing.join("; "),
            lib.device.params.name,
            other.name()
        )))
    }

    /// Expected raw output patterns of one lane, from the integer reference, given the raw
    /// input patterns (one per input operand). Slot i is output operand i; unused slots are 0.
    pub fn reference(&self, ins: &[u64]) -> [u64; 2] {
        let mut block = [[0u64; 64]; MAX_OPERANDS];
        for (b, &v) in block.iter_mut().zip(ins) {
            b[0] = v;
        }
        let mut out = [[0u64; 64]; 2];
        self.reference_block(&block[..ins.len()], 1, &mut out);
        [out[0][0], out[1][0]]
    }

    /// Checks a ripple-sum kernel (`add`, `sub`) bit-sliced, against the low output bits of
    /// a ± b (each input sign- or zero-extended by its format), which [`int::add`] /
    /// [`int::sub`] with wrap-around give: `column(c)` is column c's `words` words as the
    /// array holds them, and `wrong[w]` receives the lanes of word w whose output differs.
    /// Returns false (and leaves `wrong`) for every other kernel.
    pub fn wrong_lanes<'a>(
        &self,
        column: &dyn Fn(Col) -> &'a [u64],
        words: usize,
        wrong: &mut [u64],
    ) -> bool {
        let negate = match self.spec.kind {
            KernelKind::Add => 0,
            KernelKind::Sub => u64::MAX,
            _ => return false,
        };
        let zeros = vec![0u64; words];
        // Bit k of an input: its column, the sign column past a signed input's width, else 0.
        let bit = |op: &Operand, k: usize| -> &[u64] {
            match (op.cols.get(k), op.cols.last()) {
                (Some(&c), _) => &column(c)[..words],
                (None, Some(&c)) if op.format.is_signed() => &column(c)[..words],
                _ => &zeros,
            }
        };
        // a − b = a + ¬b + 1.
        let mut carry = vec![negate; words];
        wrong[..words].fill(0);
        for (k, &oc) in self.outputs[0].cols.iter().enumerate() {
            let (a, b, got) = (bit(&self.inputs[0], k), bit(&self.inputs[1], k), column(oc));
            for w in 0..words {
                let (x, y, c) = (a[w], b[w] ^ negate, carry[w]);
                wrong[w] |= got[w] ^ x ^ y ^ c;
                carry[w] = (x & y) | (c & (x | y));
            }
        }
        true
    }

    /// [`Kernel::reference`] for the first `lanes` (≤ 64) lanes of a block: `ins[k][l]` is
    /// input operand k of lane l, `out[i][l]` receives output operand i. The kernel is
    /// dispatched once per block, not per lane.
    pub fn reference_block(&self, ins: &[[u64; 64]], lanes: usize, out: &mut [[u64; 64]; 2]) {
        debug_assert!(ins.len() <= MAX_OPERANDS && self.outputs.len() <= 2 && lanes <= 64);
        let fa = self.inputs[0].format;
        let fb = self.inputs.get(1).map_or(fa, |o| o.format);
        let fo = self.outputs[0].format;
        let at = |k: usize, l: usize| ins.get(k).map_or(0, |v| v[l]);
        let [out0, out1] = out;
        let mut each = |f: &dyn Fn(u64, u64, u64) -> [u64; 2]| {
            for (l, (o0, o1)) in out0.iter_mut().zip(out1.iter_mut()).take(lanes).enumerate() {
                [*o0, *o1] = f(at(0, l), at(1, l), at(2, l));
            }
        };
        let (sa, sb) = (move |x: u64| fa.from_bits(x), move |y: u64| fb.from_bits(y));
        let bits = move |v: i128| fo.to_bits(v);
        let constant = i128::from(self.spec.constant);
        match self.spec.kind {
            KernelKind::Copy => each(&|x, _, _| [x, 0]),
            KernelKind::Not => each(&|x, _, _| [!x & fa.mask(), 0]),
            KernelKind::And => each(&|x, y, _| [x & y, 0]),
            KernelKind::Or => each(&|x, y, _| [x | y, 0]),
            KernelKind::Xor => each(&|x, y, _| [x ^ y, 0]),
            KernelKind::Xnor => each(&|x, y, _| [!(x ^ y) & fa.mask(), 0]),
            KernelKind::Fa => each(&|x, y, z| [x ^ y ^ z, (x & y) | (z & (x | y))]),
            KernelKind::Add => {
                each(&|x, y, _| [bits(int::add(sa(x), sb(y), fo, Overflow::Wrap)), 0])
            }
            KernelKind::Sub => {
                each(&|x, y, _| [bits(int::sub(sa(x), sb(y), fo, Overflow::Wrap)), 0])
            }
            KernelKind::Mul | KernelKind::Smul => {
                each(&|x, y, _| [bits(int::mul(sa(x), sb(y))), 0])
            }
            KernelKind::Mulc => each(&|x, _, _| [bits(int::mul(sa(x), constant)), 0]),
            KernelKind::Popcount => each(&|x, _, _| [bits(int::popcount(x, fa)), 0]),
            KernelKind::Lt | KernelKind::Ltu => {
                each(&|x, y, _| [bits(int::less_than(sa(x), sb(y))), 0])
            }
            KernelKind::Max => each(&|x, y, _| [bits(int::max(sa(x), sb(y))), 0]),
            KernelKind::Relu => each(&|x, _, _| [bits(int::relu(sa(x))), 0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::engine::count::Counter;

    fn spec(kind: KernelKind, bits: u32, gate_set: GateSet) -> KernelSpec {
        KernelSpec {
            kind,
            bits,
            bits_b: bits,
            constant: 0,
            gate_set,
        }
    }

    #[test]
    fn nand_ripple_add_takes_9n_minus_4_steps() {
        // docs/references.md T1: 4 → 32, 8 → 68, 16 → 140, 32 → 284.
        for n in 1..=MAX_BITS {
            let k = spec(KernelKind::Add, n, GateSet::Nand).build();
            let c = Counter::count(&k.program, 1);
            assert_eq!(c.gate_steps, u64::from(9 * n - 4), "n = {n}");
            assert!(
                c.by_gate
                    .keys()
                    .all(|g| matches!(g, GateKind::Nand | GateKind::Not))
            );
        }
    }

    #[test]
    fn majority_ripple_add_takes_4n_steps() {
        for n in 1..=MAX_BITS {
            let c = Counter::count(&spec(KernelKind::Add, n, GateSet::Maj).build().program, 1);
            assert_eq!(c.gate_steps, u64::from(4 * n), "n = {n}");
            // Bits 1..n use one MAJ3, two INVMAJ3 and one MAJ5 each.
            assert_eq!(
                c.by_gate.get(&GateKind::Maj5).copied().unwrap_or(0),
                u64::from(n - 1)
            );
        }
    }

    #[test]
    fn nand_set_uses_only_not_nand_and() {
        for &kind in KernelKind::ALL {
            let mut s = spec(kind, 6, GateSet::Nand);
            s.constant = -45;
            let used = s.build().gates_used();
            assert!(
                used.iter()
                    .all(|g| matches!(g, GateKind::Not | GateKind::Nand | GateKind::And)),
                "{kind:?}: {used:?}"
            );
        }
    }

    #[test]
    fn csd_has_no_adjacent_nonzero_digits_and_sums_back() {
        for c in -1000i64..=1000 {
            let d = csd_digits(i128::from(c));
            let v: i64 = d.iter().enumerate().map(|(k, &x)| i64::from(x) << k).sum();
            assert_eq!(v, c);
            assert!(d.windows(2).all(|w| w[0] == 0 || w[1] == 0), "{c}: {d:?}");
        }
        // 7 = 8 − 1: two nonzero digits instead of three.
        assert_eq!(csd_digits(7), vec![-1, 0, 0, 1]);
    }

    #[test]
    fn mulc_skips_zero_digits() {
        let steps = |c| {
            let mut s = spec(KernelKind::Mulc, 8, GateSet::Maj);
            s.constant = c;
            Counter::count(&s.build().program, 1).gate_steps
        };
        // A power of two is a shift: only the sign-bit fix-up, no adders for other digits.
        assert!(steps(64) < steps(0x55), "{} vs {}", steps(64), steps(0x55));
        assert!(steps(127) < steps(0x55), "CSD turns 127 into 128 − 1");
    }

    #[test]
    fn validation_names_the_flag_and_range() {
        let e = spec(KernelKind::Add, 0, GateSet::Maj)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--bits 0") && e.contains("1..=32"), "{e}");
        let mut s = spec(KernelKind::Mul, 8, GateSet::Maj);
        s.bits_b = 40;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("--bits-b 40")
        );
    }

    proptest::proptest! {
        /// The bit-sliced check of `add` and `sub` flags exactly the lanes whose output
        /// differs from the lane-by-lane reference, at every width and gate set.
        #[test]
        fn bit_sliced_check_flags_the_lanes_the_reference_rejects(
            sub in proptest::bool::ANY, bits in 1u32..=MAX_BITS, nand in proptest::bool::ANY,
            data in proptest::collection::vec(proptest::num::u64::ANY, 3 * 64 * 2),
            flips in proptest::collection::vec(proptest::num::u64::ANY, 0..4),
        ) {
            let kind = if sub { KernelKind::Sub } else { KernelKind::Add };
            let k = spec(kind, bits, if nand { GateSet::NandNot } else { GateSet::Maj }).build();
            // Two words of lanes; every column gets its own data, the output the true sum
            // with a few bits flipped.
            let words = 2;
            let cols = k.program.cols();
            let mut cells = vec![0u64; cols * words];
            for (i, v) in cells.iter_mut().enumerate() {
                *v = data[i % data.len()];
            }
            let lane = |cells: &[u64], op: &Operand, l: usize| {
                op.cols.iter().enumerate().fold(0u64, |v, (i, &c)| {
                    v | (cells[usize::from(c) * words + l / 64] >> (l % 64) & 1) << i
                })
            };
            let mut want = vec![[[0u64; 64]; 2]; words];
            for (w, out) in want.iter_mut().enumerate() {
                let ins: Vec<[u64; 64]> = k.inputs.iter()
                    .map(|op| std::array::from_fn(|l| lane(&cells, op, w * 64 + l)))
                    .collect();
                k.reference_block(&ins, 64, out);
            }
            let o = &k.outputs[0];
            for l in 0..words * 64 {
                for (i, &c) in o.cols.iter().enumerate() {
                    let bit = want[l / 64][0][l % 64] >> i & 1;
                    let cell = &mut cells[usize::from(c) * words + l / 64];
                    *cell = (*cell & !(1 << (l % 64))) | bit << (l % 64);
                }
            }
            for f in &flips {
                let (i, l) = ((f % o.cols.len() as u64) as usize, (f >> 32) as usize % (words * 64));
                cells[usize::from(o.cols[i]) * words + l / 64] ^= 1 << (l % 64);
            }
            let mut wrong = vec![0u64; words];
            let column = |c: Col| &cells[usize::from(c) * words..][..words];
            proptest::prop_assert!(k.wrong_lanes(&column, words, &mut wrong));
            for l in 0..words * 64 {
                let differs = lane(&cells, o, l) != want[l / 64][0][l % 64];
                proptest::prop_assert_eq!(wrong[l / 64] >> (l % 64) & 1 == 1, differs, "lane {}", l);
            }
            let mul = spec(KernelKind::Mul, bits.min(8), GateSet::Maj).build();
            proptest::prop_assert!(!mul.wrong_lanes(&column, words, &mut wrong));
        }
    }
}
