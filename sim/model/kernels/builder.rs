//! Program builder: column allocation and the logic primitives of each gate set.
//!
//! Two gate sets (docs/model.md §1.2, §1.4.2):
//! * [`GateSet::Maj`] — the majority-based CRAM set (all ten threshold gates). Full adder:
//!   carry = MAJ3(a,b,c), ¬carry twice with INVMAJ3 (a cell cannot join one gate twice), sum =
//!   MAJ5(a,b,c,¬carry,¬carry) — 4 steps (docs/references.md L-A6, [D] identity checked
//!   exhaustively in the tests).
//! * [`GateSet::Nand`] — NOT, NAND, AND only, the set of the public PIM endurance simulator
//!   (docs/references.md L-A6, [C]): half adder 5 steps, full adder 9 NAND steps, so an n-bit
//!   ripple add takes 9n − 4.
//! * [`GateSet::NandNot`] — NOT and NAND only: the NAND set with each AND made of a NAND and
//!   a NOT (one more step and one temporary column). Both gates preset their output to 0 (P)
//!   and switch it to 1, which on STT devices gives them the widest windows and the lowest
//!   derived error rates (docs/model.md §1.2, `cramulator gates`), so it is the set a
//!   strict error budget leaves (`mapping.max_gate_error`).
//!
//! Every primitive allocates its result in a fresh column and frees its own temporaries.
//! Inputs are never freed by a primitive.
//!
//! A *counting* builder ([`Builder::counting`]) keeps no ops: it tallies them ([`Tally`])
//! and tracks columns the same way, so one generator serves both the functional executor and
//! the analytical cost model; bit heaps reduce in closed form there (`heap`).

use cram_arch::GateKind;

use super::Tally;
use crate::model::engine::isa::{Col, MAX_INPUTS, Op, Program};

/// The family of gates a kernel is generated from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum GateSet {
    /// Majority-based: MAJ3/MAJ5 adders plus every simple gate.
    Maj,
    /// NAND-based: only NOT, NAND and AND.
    Nand,
    /// NOT and NAND only (an AND is NOT(NAND)).
    NandNot,
}

impl GateSet {
    /// Every set.
    pub const ALL: [GateSet; 3] = [GateSet::Maj, GateSet::Nand, GateSet::NandNot];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            GateSet::Maj => "maj",
            GateSet::Nand => "nand",
            GateSet::NandNot => "nand-not",
        }
    }

    /// The set's position in [`GateSet::ALL`].
    pub fn index(self) -> usize {
        match self {
            GateSet::Maj => 0,
            GateSet::Nand => 1,
            GateSet::NandNot => 2,
        }
    }

    /// The gates this set's arithmetic is built from: what a device must run for the set
    /// to be usable. (A program may also copy a column that one gate would read twice; the
    /// maj set copies with COPY, the nand set with two NOTs: see [`Builder::copy`].)
    pub fn gates(self) -> &'static [GateKind] {
        match self {
            GateSet::Maj => &[
                GateKind::Not,
                GateKind::And,
                GateKind::Or,
                GateKind::Nand,
                GateKind::Nor,
                GateKind::Maj3,
                GateKind::InvMaj3,
                GateKind::Maj5,
            ],
            GateSet::Nand => &[GateKind::Not, GateKind::Nand, GateKind::And],
            GateSet::NandNot => &[GateKind::Not, GateKind::Nand],
        }
    }
}

impl std::str::FromStr for GateSet {
    type Err = String;

    /// A set by its name (`maj`, `nand`).
    fn from_str(s: &str) -> Result<GateSet, String> {
        GateSet::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = GateSet::ALL.iter().map(|g| g.name()).collect();
                format!("expected one of {}", names.join(", "))
            })
    }
}

/// Accumulates ops and manages columns for one kernel.
#[derive(Debug)]
pub struct Builder {
    set: GateSet,
    ops: Vec<Op>,
    /// The columns' names (none in counting mode, which keeps no program).
    names: Vec<String>,
    /// Columns declared (operands and temporaries).
    n_cols: usize,
    free: Vec<Col>,
    temp_counter: usize,
    /// Counting mode: the ops' tally instead of the ops.
    tally: Option<Tally>,
    /// Operand columns declared.
    operands: usize,
    /// Largest number of live temporaries plus a reserve announced by [`Builder::reserve`].
    reserved_peak: usize,
    /// Copies made so that no gate reads one cell twice (see [`Builder::distinct`]).
    shared_copies: u64,
}

impl Builder {
    /// An empty program for a gate set.
    pub fn new(set: GateSet) -> Builder {
        Builder {
            set,
            ops: Vec::new(),
            names: Vec::new(),
            n_cols: 0,
            free: Vec::new(),
            temp_counter: 0,
            tally: None,
            operands: 0,
            reserved_peak: 0,
            shared_copies: 0,
        }
    }

    /// A builder that tallies its ops instead of keeping them (the analytical cost model).
    pub fn counting(set: GateSet) -> Builder {
        Builder {
            tally: Some(Tally::default()),
            ..Builder::new(set)
        }
    }

    /// Whether this builder only tallies.
    pub fn is_counting(&self) -> bool {
        self.tally.is_some()
    }

    /// The tally so far (counting mode), or that of the ops so far.
    pub fn tally(&self) -> Tally {
        match self.tally {
            Some(t) => t,
            None => Tally::of_ops(&self.ops),
        }
    }

    /// What its temporaries look like, up to which columns hold what: columns declared,
    /// columns free, and the peak of live temporaries plus announced reserves (all that a
    /// counting heap's closed-form reduction reads of the builder).
    pub fn temp_state(&self) -> (usize, usize, usize) {
        (self.n_cols, self.free.len(), self.reserved_peak)
    }

    /// Adds `n` times `t` to the tally (counting mode: ops generated in closed form).
    pub fn add_tally(&mut self, t: &Tally, n: u64) {
        self.tally
            .as_mut()
            .expect("closed-form ops need a counting builder")
            .add(t, n);
    }

    /// Announces that up to `extra` more temporaries than are live now may be needed at once
    /// (closed-form code in counting mode); [`Builder::cols`] includes it.
    pub fn reserve(&mut self, extra: usize) {
        let live = self.n_cols - self.operands - self.free.len();
        self.reserved_peak = self.reserved_peak.max(live + extra);
    }

    /// The gate set in use.
    pub fn set(&self) -> GateSet {
        self.set
    }

    /// Declares an `bits`-bit operand in fresh columns named `name[i]` (bit 0 first).
    pub fn operand(&mut self, name: &str, bits: u32) -> Vec<Col> {
        self.operands += bits as usize;
        (0..bits)
            .map(|i| self.new_col(|| format!("{name}[{i}]")))
            .collect()
    }

    /// [`Builder::operand`] named `{prefix}{index}`.
    pub fn operand_at(&mut self, prefix: &str, index: usize, bits: u32) -> Vec<Col> {
        if self.is_counting() {
            // A counting builder keeps no program, so its columns need no names.
            self.operand("", bits)
        } else {
            self.operand(&format!("{prefix}{index}"), bits)
        }
    }

    /// Declares `cols` more operand columns without listing them (counting mode, which
    /// keeps no program: a counted job reads one operand's columns for their count and
    /// coding, and needs the others only to be declared).
    pub fn declare_operands(&mut self, cols: usize) {
        assert!(self.is_counting(), "a program names its operand columns");
        self.operands += cols;
        self.n_cols += cols;
        assert!(
            self.n_cols <= 1 << 16,
            "kernels use fewer than 65536 columns"
        );
    }

    /// A new column; its name is dropped in counting mode.
    fn new_col(&mut self, name: impl FnOnce() -> String) -> Col {
        let c = Col::try_from(self.n_cols).expect("kernels use fewer than 65536 columns");
        self.n_cols += 1;
        if !self.is_counting() {
            self.names.push(name());
        }
        c
    }

    /// A column for a temporary result (reuses freed columns).
    pub fn alloc(&mut self) -> Col {
        if let Some(c) = self.free.pop() {
            return c;
        }
        self.temp_counter += 1;
        let t = self.temp_counter - 1;
        self.new_col(|| format!("t{t}"))
    }

    /// Returns a temporary column to the pool.
    pub fn release(&mut self, c: Col) {
        debug_assert!(!self.free.contains(&c));
        self.free.push(c);
    }

    /// Renames a column (for outputs) so traces read well; a counting builder keeps no
    /// names.
    pub fn rename(&mut self, c: Col, name: String) {
        if let Some(n) = self.names.get_mut(usize::from(c)) {
            *n = name;
        }
    }

    /// Emits a gate step into `out` (with the output preset).
    pub fn gate_into(&mut self, gate: GateKind, ins: &[Col], out: Col) {
        debug_assert_eq!(ins.len(), gate.arity());
        debug_assert!(
            ins.iter()
                .enumerate()
                .all(|(i, c)| !ins[..i].contains(c) && *c != out),
            "{gate:?} reads {ins:?} into {out}: a cell may take part once per step"
        );
        if gate == GateKind::And && self.set == GateSet::NandNot {
            // AND = NOT(NAND): the NAND into a temporary, its inverse into `out`.
            let t = self.alloc();
            self.gate_into(GateKind::Nand, ins, t);
            self.gate_into(GateKind::Not, &[t], out);
            self.release(t);
            return;
        }
        if let Some(t) = &mut self.tally {
            t.gates[gate.index()] += 1;
            return;
        }
        let mut a = [0; MAX_INPUTS];
        a[..ins.len()].copy_from_slice(ins);
        self.ops.push(Op::Gate {
            gate,
            ins: a,
            out,
            preset: true,
        });
    }

    /// Emits a gate step into a new column and returns it.
    pub fn gate(&mut self, gate: GateKind, ins: &[Col]) -> Col {
        let out = self.alloc();
        self.gate_into(gate, ins, out);
        out
    }

    /// A new column holding a constant in every lane.
    pub fn constant(&mut self, value: bool) -> Col {
        let c = self.alloc();
        match &mut self.tally {
            Some(t) => t.presets[usize::from(value)] += 1,
            None => self.ops.push(Op::Preset { col: c, value }),
        }
        c
    }

    /// Ops emitted so far (segment boundaries of multi-part programs).
    pub fn len(&self) -> usize {
        match &self.tally {
            Some(t) => t.ops() as usize,
            None => self.ops.len(),
        }
    }

    /// Whether no op has been emitted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Columns declared so far (operands and temporaries), or announced by
    /// [`Builder::reserve`].
    pub fn cols(&self) -> usize {
        self.n_cols.max(self.operands + self.reserved_peak)
    }

    /// Finishes the program.
    pub fn finish(self) -> Program {
        Program::new(self.ops, Vec::new(), self.names).expect("the builder emits only valid ops")
    }

    // ----- logic primitives, per gate set --------------------------------------------------

    /// ¬a.
    pub fn not(&mut self, a: Col) -> Col {
        self.gate(GateKind::Not, &[a])
    }

    /// Makes the columns of a gate's inputs distinct: a column met again is replaced by a
    /// new copy (a cell takes part in a step once: docs/model.md §1.4.1). Each entry is (column, owned);
    /// an owned duplicate hands its ownership to the first entry, the copy is owned. Counts
    /// the copies ([`Builder::shared_copies`]): the closed form cannot see column identity,
    /// so they are the one place where a counting builder's tally falls short of the real
    /// one.
    pub fn distinct(&mut self, ins: &mut [(Col, bool)]) {
        for i in 1..ins.len() {
            if let Some(k) = (0..i).find(|&k| ins[k].0 == ins[i].0) {
                ins[k].1 |= ins[i].1;
                ins[i] = (self.copy(ins[i].0), true);
                self.shared_copies += 1;
            }
        }
    }

    /// Copies [`Builder::distinct`] made so far.
    pub fn shared_copies(&self) -> u64 {
        self.shared_copies
    }

    /// A copy of a (COPY, or two NOTs in the NAND set).
    pub fn copy(&mut self, a: Col) -> Col {
        match self.set {
            GateSet::Maj => self.gate(GateKind::Copy, &[a]),
            GateSet::Nand | GateSet::NandNot => {
                let t = self.not(a);
                let r = self.not(t);
                self.release(t);
                r
            }
        }
    }

    /// a ∧ b.
    pub fn and(&mut self, a: Col, b: Col) -> Col {
        self.gate(GateKind::And, &[a, b])
    }

    /// ¬(a ∧ b).
    pub fn nand(&mut self, a: Col, b: Col) -> Col {
        self.gate(GateKind::Nand, &[a, b])
    }

    /// a ∨ b (NAND set: NAND(¬a, ¬b)).
    pub fn or(&mut self, a: Col, b: Col) -> Col {
        match self.set {
            GateSet::Maj => self.gate(GateKind::Or, &[a, b]),
            GateSet::Nand | GateSet::NandNot => self.with_inverted(a, b, GateKind::Nand),
        }
    }

    /// ¬(a ∨ b) (NAND set: AND(¬a, ¬b)).
    pub fn nor(&mut self, a: Col, b: Col) -> Col {
        match self.set {
            GateSet::Maj => self.gate(GateKind::Nor, &[a, b]),
            GateSet::Nand | GateSet::NandNot => self.with_inverted(a, b, GateKind::And),
        }
    }

    fn with_inverted(&mut self, a: Col, b: Col, gate: GateKind) -> Col {
        let (na, nb) = (self.not(a), self.not(b));
        let r = self.gate(gate, &[na, nb]);
        self.release(na);
        self.release(nb);
        r
    }

    /// The three NANDs shared by the NAND-set XOR, XNOR and adders:
    /// returns (t1 = NAND(a,b), t2 = NAND(a,t1), t3 = NAND(b,t1)); XOR = NAND(t2,t3).
    fn nand_xor_parts(&mut self, a: Col, b: Col) -> (Col, Col, Col) {
        let t1 = self.nand(a, b);
        let t2 = self.nand(a, t1);
        let t3 = self.nand(b, t1);
        (t1, t2, t3)
    }

    /// a ⊕ b (maj: AND(OR, NAND), 3 steps; nand: 4 NANDs).
    pub fn xor(&mut self, a: Col, b: Col) -> Col {
        self.xor_impl(a, b, false)
    }

    /// ¬(a ⊕ b) (maj: OR(AND, NOR), 3 steps; nand: 3 NANDs + AND).
    pub fn xnor(&mut self, a: Col, b: Col) -> Col {
        self.xor_impl(a, b, true)
    }

    fn xor_impl(&mut self, a: Col, b: Col, invert: bool) -> Col {
        let (g1, g2, g3) = match (self.set, invert) {
            (GateSet::Maj, false) => (GateKind::Or, GateKind::Nand, GateKind::And),
            (GateSet::Maj, true) => (GateKind::And, GateKind::Nor, GateKind::Or),
            (GateSet::Nand | GateSet::NandNot, _) => {
                let (t1, t2, t3) = self.nand_xor_parts(a, b);
                let r = self.gate(
                    if invert {
                        GateKind::And
                    } else {
                        GateKind::Nand
                    },
                    &[t2, t3],
                );
                for t in [t1, t2, t3] {
                    self.release(t);
                }
                return r;
            }
        };
        let (t1, t2) = (self.gate(g1, &[a, b]), self.gate(g2, &[a, b]));
        let r = self.gate(g3, &[t1, t2]);
        self.release(t1);
        self.release(t2);
        r
    }

    /// Majority of three, or its inverse (maj: one gate; nand: 5 steps).
    pub fn maj3(&mut self, a: Col, b: Col, c: Col, invert: bool) -> Col {
        match self.set {
            GateSet::Maj => self.gate(
                if invert {
                    GateKind::InvMaj3
                } else {
                    GateKind::Maj3
                },
                &[a, b, c],
            ),
            GateSet::Nand | GateSet::NandNot => {
                // maj = ab ∨ ac ∨ bc = NAND(AND(NAND(a,b), NAND(a,c)), NAND(b,c)).
                let (t1, t2, t3) = (self.nand(a, b), self.nand(a, c), self.nand(b, c));
                let t4 = self.and(t1, t2);
                let r = self.gate(
                    if invert {
                        GateKind::And
                    } else {
                        GateKind::Nand
                    },
                    &[t4, t3],
                );
                for t in [t1, t2, t3, t4] {
                    self.release(t);
                }
                r
            }
        }
    }

    /// s ? b : a, given ¬s as well (compute it once per select line).
    pub fn mux(&mut self, s: Col, not_s: Col, a: Col, b: Col) -> Col {
        match self.set {
            GateSet::Maj => {
                let (t1, t2) = (self.and(b, s), self.and(a, not_s));
                let r = self.or(t1, t2);
                self.release(t1);
                self.release(t2);
                r
            }
            GateSet::Nand | GateSet::NandNot => {
                let (t1, t2) = (self.nand(b, s), self.nand(a, not_s));
                let r = self.nand(t1, t2);
                self.release(t1);
                self.release(t2);
                r
            }
        }
    }

    /// Half adder: (sum, carry); the carry is skipped when not needed.
    /// maj: XOR (3) + AND (1); nand: 4 NAND + NOT (5), 4 without the carry.
    pub fn half_adder(&mut self, a: Col, b: Col, need_carry: bool) -> (Col, Option<Col>) {
        match self.set {
            GateSet::Maj => {
                let s = self.xor(a, b);
                let c = need_carry.then(|| self.and(a, b));
                (s, c)
            }
            GateSet::Nand | GateSet::NandNot => {
                let (t1, t2, t3) = self.nand_xor_parts(a, b);
                let s = self.nand(t2, t3);
                let c = need_carry.then(|| self.not(t1));
                for t in [t1, t2, t3] {
                    self.release(t);
                }
                (s, c)
            }
        }
    }

    /// Full adder: (sum, carry); the carry is skipped when not needed.
    /// maj: MAJ3 + 2 INVMAJ3 + MAJ5 (4 steps, 3 without the carry); nand: 9 NANDs (8).
    pub fn full_adder(&mut self, a: Col, b: Col, c: Col, need_carry: bool) -> (Col, Option<Col>) {
        match self.set {
            GateSet::Maj => {
                let carry = need_carry.then(|| self.gate(GateKind::Maj3, &[a, b, c]));
                let n1 = self.gate(GateKind::InvMaj3, &[a, b, c]);
                let n2 = self.gate(GateKind::InvMaj3, &[a, b, c]);
                let s = self.gate(GateKind::Maj5, &[a, b, c, n1, n2]);
                self.release(n1);
                self.release(n2);
                (s, carry)
            }
            GateSet::Nand | GateSet::NandNot => {
                // s1 = a ⊕ b from (t1, t2, t3); then the same with c; carry = NAND(t4, t1).
                let (t1, t2, t3) = self.nand_xor_parts(a, b);
                let s1 = self.nand(t2, t3);
                self.release(t2);
                self.release(t3);
                let (t4, t5, t6) = self.nand_xor_parts(s1, c);
                let s = self.nand(t5, t6);
                let carry = need_carry.then(|| self.nand(t4, t1));
                for t in [t1, s1, t4, t5, t6] {
                    self.release(t);
                }
                (s, carry)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::engine::{Counter, Subarray};

    /// Runs a 3-input primitive over all 8 input combinations and returns its output per lane.
    fn eval3(
        set: GateSet,
        f: impl Fn(&mut Builder, Col, Col, Col) -> Vec<Col>,
    ) -> (Vec<Vec<bool>>, u64) {
        let mut b = Builder::new(set);
        let ins = [
            b.operand("a", 1)[0],
            b.operand("b", 1)[0],
            b.operand("c", 1)[0],
        ];
        let outs = f(&mut b, ins[0], ins[1], ins[2]);
        let p = b.finish();
        let mut sa = Subarray::new(8, p.cols());
        for lane in 0..8 {
            for (i, &c) in ins.iter().enumerate() {
                sa.set(lane, c, lane >> i & 1 == 1);
            }
        }
        sa.run(&p).unwrap();
        let vals = (0..8)
            .map(|lane| outs.iter().map(|&c| sa.get(lane, c)).collect())
            .collect();
        (vals, Counter::count(&p, 8).gate_steps)
    }

    #[test]
    fn full_adder_is_exact_with_documented_step_counts() {
        for (set, steps) in [(GateSet::Maj, 4), (GateSet::Nand, 9)] {
            let (vals, n) = eval3(set, |b, x, y, z| {
                let (s, c) = b.full_adder(x, y, z, true);
                vec![s, c.unwrap()]
            });
            assert_eq!(n, steps, "{set:?}");
            for (lane, v) in vals.iter().enumerate() {
                let ones = lane.count_ones() as usize;
                assert_eq!(
                    (v[0], v[1]),
                    (ones % 2 == 1, ones >= 2),
                    "{set:?} lane {lane}"
                );
            }
        }
    }

    #[test]
    fn half_adder_step_counts() {
        for (set, steps) in [(GateSet::Maj, 4), (GateSet::Nand, 5)] {
            let (vals, n) = eval3(set, |b, x, y, _| {
                let (s, c) = b.half_adder(x, y, true);
                vec![s, c.unwrap()]
            });
            assert_eq!(n, steps);
            for (lane, v) in vals.iter().enumerate() {
                let (x, y) = (lane & 1 == 1, lane & 2 == 2);
                assert_eq!((v[0], v[1]), (x ^ y, x && y));
            }
        }
    }

    #[test]
    fn logic_primitives_are_exact_in_both_sets() {
        for set in GateSet::ALL {
            let (vals, _) = eval3(set, |b, x, y, z| {
                let nz = b.not(z);
                vec![
                    b.copy(x),
                    b.or(x, y),
                    b.nor(x, y),
                    b.xor(x, y),
                    b.xnor(x, y),
                    b.maj3(x, y, z, false),
                    b.maj3(x, y, z, true),
                    b.mux(z, nz, x, y),
                ]
            });
            for (lane, v) in vals.iter().enumerate() {
                let (x, y, z) = (lane & 1 == 1, lane & 2 == 2, lane & 4 == 4);
                let maj = (x as u8 + y as u8 + z as u8) >= 2;
                let expect = [
                    x,
                    x || y,
                    !(x || y),
                    x ^ y,
                    x == y,
                    maj,
                    !maj,
                    if z { y } else { x },
                ];
                assert_eq!(v.as_slice(), expect.as_slice(), "{set:?} lane {lane}");
            }
        }
    }
}
