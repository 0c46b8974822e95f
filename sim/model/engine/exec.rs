//! Functional executor: the bit-exact state of one subarray and the word-loop gate kernels.
//!
//! Storage (docs/model.md §1.5, §7): column-major, one column = `words` consecutive `u64`s, bit `l`
//! of word `w` is lane `64·w + l`. A gate step is one loop over the words of its columns,
//! so a 1024-lane subarray with a few hundred columns stays in L1/L2 while its whole program
//! runs. Lanes past `lanes` in the last word are padding: they compute garbage that no
//! accessor returns.

use bitvec::prelude::{BitVec, Lsb0};
use cram_arch::GateKind;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::isa::{Col, LaneMask, MAX_INPUTS, OpVisitor, Program, ProgramError};

/// Bit storage of cells and lane masks: `u64` words, bit 0 first.
pub type Cells = BitVec<u64, Lsb0>;

/// Bits per storage word.
pub const WORD_BITS: usize = 64;

/// Number of `u64` words that hold `lanes` bits.
pub const fn words_for(lanes: usize) -> usize {
    lanes.div_ceil(WORD_BITS)
}

/// The cells of one subarray: `lanes` rows × `cols` columns.
#[derive(Debug, Clone)]
pub struct Subarray {
    lanes: usize,
    cols: usize,
    words: usize,
    /// The cells, column-major: bit `l` of column `c` is bit `c·64·words + l`. The word loops
    /// read its raw `u64` words ([`BitVec::as_raw_slice`]), as do fault flips and row reads
    /// and writes (they run per lane; a BitVec decode per access would cost more than the
    /// access). They start `off` words in, on a 64-byte line ([`lined`]).
    data: Cells,
    off: usize,
    /// The selected lanes, padded to whole words; empty means all lanes.
    mask: Cells,
    reads: Vec<Vec<u64>>,
    /// Vector level of the word loops; `Avx2` only if the CPU supports it.
    simd: Simd,
    /// Random gate-output errors, if enabled.
    faults: Option<Faults>,
    /// Whether gate steps record their input-zero histograms (for data-dependent energy).
    track_zeros: bool,
    /// Per gate step, in program order: selected lanes with z inputs at 0, z = 0..=5.
    zero_hist: Vec<ZeroHistogram>,
    /// Whether gate steps add their input-zero histograms into their gate kind's sum instead.
    sum_zeros: bool,
    /// Per gate kind, the sum of its steps' input-zero histograms.
    zero_sums: [ZeroHistogram; GateKind::COUNT],
}

/// Selected lanes of one gate step by number of inputs at 0 (index z = 0..=5).
pub type ZeroHistogram = [u64; MAX_INPUTS + 1];

/// Random gate-output errors (docs/model.md §1.7): in every gate step each selected lane's output
/// flips independently with the probability of that step's gate (one rate for all gates, or
/// one per gate, e.g. derived from the noise margins).
///
/// Within a step, flip positions are drawn by geometric skipping (gap ~ Geometric(p)), so the
/// cost is proportional to the number of flips plus one draw per step. The stream is ChaCha8
/// keyed by a seed and a stream number that the caller derives from the data's position (the
/// executor block), never from a thread, so the pattern does not depend on thread count or
/// run order.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Error probability per gate ([`GateKind::index`]).
    p: [f64; GateKind::COUNT],
    rng: ChaCha8Rng,
    evaluations: u64,
    flips: u64,
}

impl Faults {
    /// The same error probability `p` (0 ≤ p ≤ 1) for every gate.
    pub fn new(p: f64, seed: u64, stream: u64) -> Faults {
        Faults::per_gate([p; GateKind::COUNT], seed, stream)
    }

    /// One error probability per gate ([`GateKind::index`] order).
    pub fn per_gate(p: [f64; GateKind::COUNT], seed: u64, stream: u64) -> Faults {
        debug_assert!(p.iter().all(|x| (0.0..=1.0).contains(x)));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Faults {
            p,
            rng,
            evaluations: 0,
            flips: 0,
        }
    }

    /// Flips injected so far.
    pub fn flips(&self) -> u64 {
        self.flips
    }

    /// Lane evaluations seen so far (selected or not).
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// Non-failing evaluations before the next failure at rate p: ⌊ln U / ln(1−p)⌋.
    fn gap(&mut self, p: f64) -> u64 {
        if p >= 1.0 {
            return 0;
        }
        // U uniform in (0, 1]: 53 random bits, shifted away from 0.
        let u = ((self.rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        (u.ln() / (-p).ln_1p()) as u64
    }

    /// Applies the flips of one gate step over `lanes` lanes.
    fn apply(&mut self, gate: GateKind, out: &mut [u64], mask: &Cells, lanes: usize) {
        self.evaluations += lanes as u64;
        let p = self.p[gate.index()];
        if p <= 0.0 {
            return;
        }
        // Word operations on the raw storage: at high rates this loop flips a large share of
        // the lanes, so it stays off bitvec's per-bit accessors.
        let mask = mask.as_raw_slice();
        let mut next = self.gap(p);
        while next < lanes as u64 {
            let l = next as usize;
            let bit = 1u64 << (l % WORD_BITS);
            if mask.is_empty() || mask[l / WORD_BITS] & bit != 0 {
                out[l / WORD_BITS] ^= bit;
                self.flips += 1;
            }
            next = next.saturating_add(1).saturating_add(self.gap(p));
        }
    }
}

/// Words per 64-byte cache line.
const LINE_WORDS: usize = 8;

/// `n` zero words in the storage of `words` (reused), and how many words in they start so
/// that they begin on a 64-byte line: columns of a multiple of 8 words (512 lanes, as full
/// executor blocks are) then all start on lines, and the word loops' 256-bit loads never
/// straddle two, whatever the allocator returned (a run's speed would otherwise depend on
/// where the heap placed each subarray; `simulate resnet18` varied by 20 % with it).
fn lined(mut words: Vec<u64>, n: usize) -> (Cells, usize) {
    words.clear();
    words.resize(n + LINE_WORDS - 1, 0);
    let cells = Cells::from_vec(words);
    let at = cells.as_raw_slice().as_ptr() as usize / std::mem::size_of::<u64>();
    let off = (LINE_WORDS - at % LINE_WORDS) % LINE_WORDS;
    (cells, off)
}

/// The `n` cell words of `data` from `off` on, writable (a borrow of the field alone, so
/// that the mask and fault fields stay usable beside it).
fn cells_mut(data: &mut Cells, off: usize, n: usize) -> &mut [u64] {
    &mut data.as_raw_mut_slice()[off..][..n]
}

/// Two subarrays are equal when their cells and state are, wherever their words sit.
impl PartialEq for Subarray {
    fn eq(&self, other: &Subarray) -> bool {
        self.lanes == other.lanes
            && self.cols == other.cols
            && self.words == other.words
            && self.cells() == other.cells()
            && self.mask == other.mask
            && self.reads == other.reads
            && self.simd == other.simd
            && self.faults == other.faults
            && self.track_zeros == other.track_zeros
            && self.zero_hist == other.zero_hist
            && self.sum_zeros == other.sum_zeros
            && self.zero_sums == other.zero_sums
    }
}

impl Subarray {
    /// A subarray with every cell at 0 (P).
    pub fn new(lanes: usize, cols: usize) -> Subarray {
        let words = words_for(lanes);
        let (data, off) = lined(Vec::new(), words * cols);
        Subarray {
            lanes,
            cols,
            words,
            data,
            off,
            mask: Cells::new(),
            reads: Vec::new(),
            simd: Simd::best(),
            faults: None,
            track_zeros: false,
            zero_hist: Vec::new(),
            sum_zeros: false,
            zero_sums: [[0; MAX_INPUTS + 1]; GateKind::COUNT],
        }
    }

    /// Makes every following gate step record how many selected lanes had z inputs at 0.
    pub fn set_track_zeros(&mut self, on: bool) {
        self.track_zeros = on;
    }

    /// The input-zero histograms of the gate steps run so far (see
    /// [`Subarray::set_track_zeros`]), one per gate step in program order.
    pub fn zero_histograms(&self) -> &[ZeroHistogram] {
        &self.zero_hist
    }

    /// Makes every following gate step add how many selected lanes had z inputs at 0 into
    /// its gate kind's sum ([`Subarray::zero_sums`]): what the pulse energy needs, in
    /// memory that does not grow with the program (a run of a long program would otherwise
    /// hold a histogram per step).
    pub fn set_sum_zeros(&mut self, on: bool) {
        self.sum_zeros = on;
    }

    /// Per gate kind ([`GateKind::index`]), the input-zero histograms of its gate steps run
    /// so far, summed (see [`Subarray::set_sum_zeros`]).
    pub fn zero_sums(&self) -> &[ZeroHistogram; GateKind::COUNT] {
        &self.zero_sums
    }

    /// Enables (or with `None` disables) random gate-output errors.
    pub fn set_faults(&mut self, faults: Option<Faults>) {
        self.faults = faults;
    }

    /// The fault injector, if enabled.
    pub fn faults(&self) -> Option<&Faults> {
        self.faults.as_ref()
    }

    /// Selects the vector level of the word loops; returns false (and keeps the current level)
    /// if this CPU does not support `simd`.
    pub fn set_simd(&mut self, simd: Simd) -> bool {
        let ok = simd.is_supported();
        if ok {
            self.simd = simd;
        }
        ok
    }

    /// The vector level in use.
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// Reshapes to `lanes` × `cols` and clears every cell, reusing the allocation.
    pub fn reset(&mut self, lanes: usize, cols: usize) {
        self.lanes = lanes;
        self.cols = cols;
        self.words = words_for(lanes);
        // The words are reused: a BitVec's storage converts to and from its Vec for free.
        let words = std::mem::take(&mut self.data).into_vec();
        (self.data, self.off) = lined(words, self.words * cols);
        self.mask.clear();
        self.reads.clear();
        self.faults = None;
        self.zero_hist.clear();
        self.zero_sums = [[0; MAX_INPUTS + 1]; GateKind::COUNT];
    }

    /// Number of lanes (rows).
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Words per column.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Runs a program on this subarray. The only fallible step is the size check; the op loop
    /// itself cannot fail.
    pub fn run(&mut self, program: &Program) -> Result<(), ProgramError> {
        program.check_fits(self.lanes, self.cols)?;
        self.mask.clear();
        self.zero_hist.clear();
        self.zero_sums = [[0; MAX_INPUTS + 1]; GateKind::COUNT];
        program.visit(self);
        Ok(())
    }

    /// Runs ops `range` of a program on the current cell state, keeping the lane mask at
    /// all lanes and appending to the zero histograms: one segment of a program whose
    /// operands are (re)loaded between segments.
    pub fn run_segment(
        &mut self,
        program: &Program,
        range: std::ops::Range<usize>,
    ) -> Result<(), ProgramError> {
        program.check_fits(self.lanes, self.cols)?;
        self.mask.clear();
        program.visit_range(range, self);
        Ok(())
    }

    /// Every cell's word, column-major (`words()` words per column): the raw storage, for
    /// loops that read many columns (one call, then plain indexing).
    pub fn cells(&self) -> &[u64] {
        &self.data.as_raw_slice()[self.off..][..self.words * self.cols]
    }

    /// The cells' words, writable.
    fn raw_mut(&mut self) -> &mut [u64] {
        cells_mut(&mut self.data, self.off, self.words * self.cols)
    }

    /// The packed words of one column.
    pub fn column(&self, col: Col) -> &[u64] {
        let c = usize::from(col);
        &self.cells()[c * self.words..(c + 1) * self.words]
    }

    /// The packed words of one column, writable (for loading data outside the op stream).
    pub fn column_mut(&mut self, col: Col) -> &mut [u64] {
        let c = usize::from(col);
        let words = self.words;
        &mut self.raw_mut()[c * words..(c + 1) * words]
    }

    /// Fills columns with random words from `rng`, in the order given (the operand data of
    /// kernel checks and energy characterization): word by word the values `rng.next_u64()`
    /// returns in turn, drawn a column at a time (ChaCha's block generator hands out its
    /// 32-bit outputs in order, a u64 being two of them, low first, as `fill_bytes` lays
    /// them out little-endian; the words drawn so far are whole, so no output is split).
    pub fn fill_random(&mut self, cols: &[Col], rng: &mut ChaCha8Rng) {
        for &c in cols {
            let words = self.column_mut(c);
            rng.fill_bytes(bytemuck::cast_slice_mut(words));
            for w in words.iter_mut() {
                *w = u64::from_le(*w);
            }
        }
    }

    /// One cell.
    pub fn get(&self, lane: usize, col: Col) -> bool {
        debug_assert!(lane < self.lanes);
        self.column(col)[lane / WORD_BITS] >> (lane % WORD_BITS) & 1 == 1
    }

    /// Sets one cell.
    pub fn set(&mut self, lane: usize, col: Col, value: bool) {
        debug_assert!(lane < self.lanes);
        let w = &mut self.column_mut(col)[lane / WORD_BITS];
        let bit = 1u64 << (lane % WORD_BITS);
        if value {
            *w |= bit;
        } else {
            *w &= !bit;
        }
    }

    /// Rows read by [`super::isa::Op::ReadRow`] so far, in order (one bit per column).
    pub fn reads(&self) -> &[Vec<u64>] {
        &self.reads
    }
}

/// How a step combines the gate function `f` with the output cell's old value.
#[derive(Clone, Copy)]
enum Combine {
    /// Output was preset in this step: out = f.
    Set,
    /// No preset, preset-0 gate: the pulse can only set bits: out |= f.
    Or,
    /// No preset, preset-1 gate: the pulse can only clear bits: out &= f.
    And,
}

/// The body of a word loop: `out[i] ∘= f(a[i], b[i], …)` under the combine rule and the
/// lane mask. Every input is cut to `out.len()` first, so the loop carries no bounds checks
/// and LLVM vectorizes it.
macro_rules! word_loop_body {
    ($out:ident, $mask:ident, $combine:ident, $f:ident; $($x:ident),+) => {{
        let w = $out.len();
        $(let $x = &$x[..w];)+
        if $mask.is_empty() {
            match $combine {
                Combine::Set => (0..w).for_each(|i| $out[i] = $f($($x[i]),+)),
                Combine::Or => (0..w).for_each(|i| $out[i] |= $f($($x[i]),+)),
                Combine::And => (0..w).for_each(|i| $out[i] &= $f($($x[i]),+)),
            }
        } else {
            let mask = &$mask[..w];
            for i in 0..w {
                let (old, v) = ($out[i], $f($($x[i]),+));
                let new = match $combine {
                    Combine::Set => v,
                    Combine::Or => old | v,
                    Combine::And => old & v,
                };
                $out[i] = (old & !mask[i]) | (new & mask[i]);
            }
        }
    }};
}

/// Generates the word loop of one gate arity twice — portable (SSE2 on x86-64) and AVX2 —
/// plus a dispatcher that picks one by the subarray's [`Simd`] level. Both are leaf
/// functions, so their slice arguments carry `noalias` and vectorize without overlap checks.
macro_rules! word_loop {
    ($name:ident, $portable:ident, $avx2:ident; $($x:ident),+) => {
        #[inline(never)]
        #[allow(clippy::too_many_arguments, reason = "one slice per gate input, as the hardware has")]
        fn $portable(out: &mut [u64], $($x: &[u64],)+ mask: &[u64], combine: Combine, f: impl Fn($(word_loop!(@ty $x)),+) -> u64) {
            word_loop_body!(out, mask, combine, f; $($x),+)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        #[inline(never)]
        #[allow(clippy::too_many_arguments, reason = "one slice per gate input, as the hardware has")]
        fn $avx2(out: &mut [u64], $($x: &[u64],)+ mask: &[u64], combine: Combine, f: impl Fn($(word_loop!(@ty $x)),+) -> u64) {
            word_loop_body!(out, mask, combine, f; $($x),+)
        }

        #[inline(always)]
        #[allow(clippy::too_many_arguments, reason = "one slice per gate input, as the hardware has")]
        fn $name(simd: Simd, out: &mut [u64], $($x: &[u64],)+ mask: &[u64], combine: Combine, f: impl Fn($(word_loop!(@ty $x)),+) -> u64) {
            #[cfg(target_arch = "x86_64")]
            if simd == Simd::Avx2 {
                // SAFETY: a `Simd::Avx2` value only exists in a `Subarray` after
                // `Simd::is_supported` confirmed the CPU has AVX2 (see `Subarray::set_simd`
                // and `Simd::best`), so the target-feature function runs on a CPU that has it.
                #[allow(unsafe_code)]
                return unsafe { $avx2(out, $($x,)+ mask, combine, f) };
            }
            let _ = simd;
            $portable(out, $($x,)+ mask, combine, f)
        }
    };
    (@ty $x:ident) => { u64 };
}

word_loop!(apply1, apply1_portable, apply1_avx2; a);
word_loop!(apply2, apply2_portable, apply2_avx2; a, b);
word_loop!(apply3, apply3_portable, apply3_avx2; a, b, c);
word_loop!(apply5, apply5_portable, apply5_avx2; a, b, c, d, e);

/// What a gate's input-zero count reads: cells column-major, `words` words a column, the
/// lane mask, and the vector level to count with.
struct Zeros<'a> {
    cells: &'a [u64],
    mask: &'a [u64],
    words: usize,
    lanes: usize,
    simd: Simd,
}

impl Zeros<'_> {
    /// Adds to `to` the selected lanes by number of zeros among `ins`, over the valid
    /// lanes. The counts are added where they are made: a histogram returned and then
    /// added would be read back in wider loads than it was written in, which stalls on
    /// every gate (store forwarding fails).
    #[inline(always)]
    fn add(&self, ins: &[Col], to: &mut ZeroHistogram) {
        #[cfg(target_arch = "x86_64")]
        if self.simd == Simd::Avx2 {
            // SAFETY: a `Simd::Avx2` value only exists in a `Subarray` after
            // `Simd::is_supported` confirmed the CPU has AVX2 and POPCNT (see
            // `Subarray::set_simd` and `Simd::best`).
            #[allow(unsafe_code)]
            return unsafe { count_zeros_avx2(self, ins, to) };
        }
        count_zeros_portable(self, ins, to)
    }
}

#[inline(never)]
fn count_zeros_portable(z: &Zeros<'_>, ins: &[Col], to: &mut ZeroHistogram) {
    add_counts(to, count_zeros_any(z, ins));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
#[inline(never)]
fn count_zeros_avx2(z: &Zeros<'_>, ins: &[Col], to: &mut ZeroHistogram) {
    add_counts(to, count_zeros_any(z, ins));
}

/// `to` += `h`, value by value.
#[inline(always)]
fn add_counts(to: &mut ZeroHistogram, h: ZeroHistogram) {
    for (t, n) in to.iter_mut().zip(h) {
        *t += n;
    }
}

/// [`count_zeros_n`] for the gate's arity.
#[inline(always)]
fn count_zeros_any(z: &Zeros<'_>, ins: &[Col]) -> ZeroHistogram {
    match ins.len() {
        1 => count_zeros_n::<1>(z, ins),
        2 => count_zeros_n::<2>(z, ins),
        3 => count_zeros_n::<3>(z, ins),
        4 => count_zeros_n::<4>(z, ins),
        5 => count_zeros_n::<5>(z, ins),
        n => unreachable!("gates have 1 to {MAX_INPUTS} inputs, not {n}"),
    }
}

/// Selected valid lanes by number of zeros among the `N` columns `ins`: per word, a
/// bit-sliced counter of ones (up to 5 fits 3 bits), then one population count per count
/// value; with every lane selected, the lanes with no zero are the rest of them, so that
/// count value needs none.
#[inline(always)]
fn count_zeros_n<const N: usize>(z: &Zeros<'_>, ins: &[Col]) -> ZeroHistogram {
    let mut h = [0u64; MAX_INPUTS + 1];
    let rows: [&[u64]; N] =
        std::array::from_fn(|i| &z.cells[usize::from(ins[i]) * z.words..][..z.words]);
    // The lane mask is a word per column word, or empty when every lane is selected.
    let mask = &z.mask[..if z.mask.is_empty() { 0 } else { z.words }];
    if mask.is_empty() {
        for w in 0..z.words {
            let valid = valid_bits(w, z.lanes);
            let (c0, c1, c2) = ones_counter(&rows, w);
            for ones in 0..N {
                let pick = |bit: usize, v: u64| if ones >> bit & 1 == 1 { v } else { !v };
                let lanes = pick(0, c0) & pick(1, c1) & pick(2, c2) & valid;
                h[N - ones] += u64::from(lanes.count_ones());
            }
        }
        h[0] = z.lanes as u64 - h[1..=N].iter().sum::<u64>();
        return h;
    }
    for (w, &m) in mask.iter().enumerate() {
        let selected = valid_bits(w, z.lanes) & m;
        let (c0, c1, c2) = ones_counter(&rows, w);
        for ones in 0..=N {
            let pick = |bit: usize, v: u64| if ones >> bit & 1 == 1 { v } else { !v };
            let lanes = pick(0, c0) & pick(1, c1) & pick(2, c2) & selected;
            h[N - ones] += u64::from(lanes.count_ones());
        }
    }
    h
}

/// The bits of word `w` that are lanes (all but past the last of `lanes`).
#[inline(always)]
fn valid_bits(w: usize, lanes: usize) -> u64 {
    if (w + 1) * WORD_BITS <= lanes {
        u64::MAX
    } else {
        (1u64 << (lanes % WORD_BITS)) - 1
    }
}

/// Per lane of word `w`, how many of the `N` rows hold a one, bit-sliced: (bit 0, bit 1,
/// bit 2) of the count.
#[inline(always)]
fn ones_counter<const N: usize>(rows: &[&[u64]; N], w: usize) -> (u64, u64, u64) {
    let (mut c0, mut c1, mut c2) = (0u64, 0u64, 0u64);
    for row in rows {
        let x = row[w];
        let k0 = c0 & x;
        c0 ^= x;
        let k1 = c1 & k0;
        c1 ^= k0;
        c2 |= k1;
    }
    (c0, c1, c2)
}

/// Vector instruction set the word loops run with. The build is portable (SSE2 on x86-64);
/// AVX2 is chosen at run time when the CPU has it (docs/model.md §7: wider vectors by runtime
/// dispatch, never a default that breaks older machines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Simd {
    /// The build's baseline (SSE2 on x86-64).
    Portable,
    /// 256-bit AVX2 loops, and POPCNT for the input-zero counts (x86-64 only).
    Avx2,
}

impl Simd {
    /// Whether this CPU can run this level.
    pub fn is_supported(self) -> bool {
        match self {
            Simd::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("popcnt")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Simd::Avx2 => false,
        }
    }

    /// The widest supported level, unless the environment variable `CRAMULATOR_SIMD=portable`
    /// asks for the baseline. Detected once per process.
    pub fn best() -> Simd {
        static BEST: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let forced =
                std::env::var("CRAMULATOR_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("portable"));
            if !forced && Simd::Avx2.is_supported() {
                Simd::Avx2
            } else {
                Simd::Portable
            }
        })
    }

    /// Every level this CPU supports.
    pub fn supported() -> Vec<Simd> {
        [Simd::Portable, Simd::Avx2]
            .into_iter()
            .filter(|s| s.is_supported())
            .collect()
    }
}

#[inline(always)]
fn maj3(a: u64, b: u64, c: u64) -> u64 {
    (a & b) | (c & (a | b))
}

/// Majority of five words: a bit-sliced count of ones compared with 3.
#[inline(always)]
fn maj5(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    // Full adder (a, b, c) → s1 (weight 1), c1 (weight 2); full adder (s1, d, e) → s0, c2.
    let s1 = a ^ b ^ c;
    let c1 = maj3(a, b, c);
    let s0 = s1 ^ d ^ e;
    let c2 = maj3(s1, d, e);
    // count = s0 + 2·(c1 + c2); count ≥ 3 ⇔ both weight-2 bits, or one of them and s0.
    (c1 & c2) | ((c1 | c2) & s0)
}

impl OpVisitor for Subarray {
    fn preset(&mut self, col: Col, value: bool) {
        let fill = if value { u64::MAX } else { 0 };
        let words = self.words;
        let c = usize::from(col);
        let out = &mut cells_mut(&mut self.data, self.off, words * self.cols)[c * words..][..words];
        if self.mask.is_empty() {
            out.fill(fill);
        } else {
            for (o, m) in out.iter_mut().zip(self.mask.as_raw_slice()) {
                *o = (*o & !m) | (fill & m);
            }
        }
    }

    #[inline(always)]
    fn gate(&mut self, gate: GateKind, ins: &[Col], out: Col, preset: bool) {
        let combine = match (preset, gate.preset()) {
            (true, _) => Combine::Set,
            (false, false) => Combine::Or,
            (false, true) => Combine::And,
        };
        let words = self.words;
        if self.track_zeros || self.sum_zeros {
            // The fields apart: the cells and mask read, the histograms written.
            let z = Zeros {
                cells: &self.data.as_raw_slice()[self.off..][..words * self.cols],
                mask: self.mask.as_raw_slice(),
                words,
                lanes: self.lanes,
                simd: self.simd,
            };
            if self.track_zeros {
                let mut h = ZeroHistogram::default();
                z.add(ins, &mut h);
                self.zero_hist.push(h);
            }
            if self.sum_zeros {
                z.add(ins, &mut self.zero_sums[gate.index()]);
            }
        }
        {
            // Disjoint borrows: the output column mutably, the columns around it shared.
            let data = cells_mut(&mut self.data, self.off, self.words * self.cols);
            let mask = self.mask.as_raw_slice();
            let (before, rest) = data.split_at_mut(usize::from(out) * words);
            let (o, after) = rest.split_at_mut(words);
            let oc = usize::from(out);
            let col = |c: Col| -> &[u64] {
                let c = usize::from(c);
                if c < oc {
                    &before[c * words..(c + 1) * words]
                } else {
                    &after[(c - oc - 1) * words..(c - oc) * words]
                }
            };
            let (m, k, v) = (mask, combine, self.simd);
            match gate {
                GateKind::Not => apply1(v, o, col(ins[0]), m, k, |a| !a),
                GateKind::Copy => apply1(v, o, col(ins[0]), m, k, |a| a),
                GateKind::And | GateKind::Or | GateKind::Nand | GateKind::Nor => {
                    let (a, b) = (col(ins[0]), col(ins[1]));
                    match gate {
                        GateKind::And => apply2(v, o, a, b, m, k, |a, b| a & b),
                        GateKind::Or => apply2(v, o, a, b, m, k, |a, b| a | b),
                        GateKind::Nand => apply2(v, o, a, b, m, k, |a, b| !(a & b)),
                        _ => apply2(v, o, a, b, m, k, |a, b| !(a | b)),
                    }
                }
                GateKind::Maj3 | GateKind::InvMaj3 => {
                    let (a, b, c) = (col(ins[0]), col(ins[1]), col(ins[2]));
                    if gate == GateKind::Maj3 {
                        apply3(v, o, a, b, c, m, k, maj3);
                    } else {
                        apply3(v, o, a, b, c, m, k, |a, b, c| !maj3(a, b, c));
                    }
                }
                GateKind::Maj5 | GateKind::InvMaj5 => {
                    let (a, b, c, d, e) = (
                        col(ins[0]),
                        col(ins[1]),
                        col(ins[2]),
                        col(ins[3]),
                        col(ins[4]),
                    );
                    if gate == GateKind::Maj5 {
                        apply5(v, o, a, b, c, d, e, m, k, maj5);
                    } else {
                        apply5(v, o, a, b, c, d, e, m, k, |a, b, c, d, e| {
                            !maj5(a, b, c, d, e)
                        });
                    }
                }
            }
        }
        if let Some(faults) = self.faults.as_mut() {
            let o = usize::from(out) * words;
            faults.apply(
                gate,
                &mut cells_mut(&mut self.data, self.off, words * self.cols)[o..o + words],
                &self.mask,
                self.lanes,
            );
        }
    }

    fn set_mask(&mut self, mask: LaneMask) {
        match mask {
            LaneMask::All => self.mask.clear(),
            LaneMask::Range { lo, hi } => {
                let (lo, hi) = (lo as usize, (hi as usize).min(self.lanes));
                self.mask.clear();
                self.mask.resize(self.words * WORD_BITS, false);
                if lo < hi {
                    self.mask[lo..hi].fill(true);
                }
            }
        }
    }

    fn read_row(&mut self, lane: u32) {
        let lane = lane as usize;
        assert!(
            lane < self.lanes,
            "read of lane {lane} in a {}-lane subarray",
            self.lanes
        );
        let (cells, words) = (self.cells(), self.words);
        let (w, shift) = (lane / WORD_BITS, lane % WORD_BITS);
        let mut row = vec![0u64; words_for(self.cols)];
        for c in 0..self.cols {
            row[c / WORD_BITS] |= (cells[c * words + w] >> shift & 1) << (c % WORD_BITS);
        }
        self.reads.push(row);
    }

    fn write_row(&mut self, lane: u32, bits: &[u64]) {
        let lane = lane as usize;
        assert!(
            lane < self.lanes,
            "write of lane {lane} in a {}-lane subarray",
            self.lanes
        );
        let words = self.words;
        let (w, bit) = (lane / WORD_BITS, 1u64 << (lane % WORD_BITS));
        let cols = self.cols;
        let cells = self.raw_mut();
        for c in 0..cols {
            let v = bits
                .get(c / WORD_BITS)
                .is_some_and(|x| x >> (c % WORD_BITS) & 1 == 1);
            let cell = &mut cells[c * words + w];
            if v {
                *cell |= bit;
            } else {
                *cell &= !bit;
            }
        }
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
