//! Quantization: integer weight codes (1..=16 bits, per tensor or per output channel,
//! symmetric or affine), binary ±α weights, activation formats, and the integer
//! requantization (multiplier + shift) that an integer accelerator applies between layers.
//!
//! Conventions (Jacob et al., CVPR 2018, "Quantization and training of neural networks for
//! efficient integer-arithmetic-only inference", eqs. 1–6; ONNX QuantizeLinear):
//! * a real value is r = s·(q − z), with scale s > 0 and zero point z;
//! * **symmetric** weights use the narrow signed range ±(2^(b−1) − 1) with z = 0, so every
//!   level has its negative (b ≥ 2); **affine** weights use 0..=2^b − 1 with z chosen so that
//!   0.0 is exact (b ≥ 1);
//! * **binary** weights are ±1 with a scale α = mean|W| (XNOR-Net, Rastegari et al. 2016),
//!   and binary activations are ±1 (BNN, Courbariaux, Hubara et al. 2016);
//! * rounding is to nearest, ties away from zero (`f32::round`), everywhere.

use serde::{Deserialize, Serialize};

use crate::weights::Tensor;

/// How a weight tensor is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightMode {
    /// Signed, zero point 0, narrow range ±(2^(b−1) − 1).
    Symmetric,
    /// Unsigned 0..=2^b − 1 with a zero point.
    Affine,
    /// ±1 with a scale α = mean|W| (bits must be 1).
    Binary,
}

/// A weight quantization scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightScheme {
    /// Bits per weight: 1..=16 (1 only for affine and binary; 2..=16 for symmetric).
    pub bits: u32,
    /// The code.
    pub mode: WeightMode,
    /// One scale (and zero point) per output channel instead of one per tensor.
    pub per_channel: bool,
}

impl WeightScheme {
    /// Checks the bit-width against the mode.
    pub fn validate(&self) -> Result<(), String> {
        let ok = match self.mode {
            WeightMode::Symmetric => (2..=16).contains(&self.bits),
            WeightMode::Affine => (1..=16).contains(&self.bits),
            WeightMode::Binary => self.bits == 1,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} bits are not allowed for {:?} weights (symmetric 2..=16, affine 1..=16, \
                 binary 1; a 1-bit symmetric code has only the level 0, use binary)",
                self.bits, self.mode
            ))
        }
    }

    /// Smallest and largest code.
    pub fn range(&self) -> (i32, i32) {
        match self.mode {
            WeightMode::Symmetric => {
                let m = (1i32 << (self.bits - 1)) - 1;
                (-m, m)
            }
            WeightMode::Affine => (0, (1i32 << self.bits) - 1),
            WeightMode::Binary => (-1, 1),
        }
    }
}

/// A weight tensor's integer format as a quantized file records it: r = scale[c]·(q −
/// zero[c]) for output channel c (or one scale and zero point for the tensor), q an integer
/// of `bits` bits, signed or not (ONNX DequantizeLinear, QLinearConv's w_scale/w_zero_point).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightFormat {
    /// Bits of the integer type.
    pub bits: u32,
    /// Whether the type is signed.
    pub signed: bool,
    /// One scale, or one per output channel.
    pub scale: Vec<f32>,
    /// One zero point, or one per output channel.
    pub zero: Vec<i32>,
}

/// A quantized weight tensor: r = scale[c]·(values − zero[c]) for output channel c (dims[0]).
#[derive(Debug, Clone, PartialEq)]
pub struct QWeight {
    /// How it was coded.
    pub scheme: WeightScheme,
    /// Dimensions (output channels first).
    pub dims: Vec<usize>,
    /// Integer codes, row-major.
    pub values: Vec<i32>,
    /// One scale, or one per output channel.
    pub scale: Vec<f32>,
    /// One zero point, or one per output channel.
    pub zero: Vec<i32>,
}

/// The smallest and largest of `v` and `init`, NaNs passed over (as `f32::min` and `max`
/// do). Eight running minima and maxima, not one, so that the loop does not wait on its
/// own result: the same values, since min and max do not depend on the order (a zero's
/// sign may differ, which no range reader sees: `ActQuant::from_range` takes
/// `lo.min(0.0)`, and a weight tensor's range [`QWeight::quantize`] compares with 0 and
/// subtracts).
#[inline]
pub(crate) fn min_max(v: &[f32], init: (f32, f32)) -> (f32, f32) {
    const LANES: usize = 8;
    let mut lo = [init.0; LANES];
    let mut hi = [init.1; LANES];
    let mut rows = v.chunks_exact(LANES);
    for row in &mut rows {
        for k in 0..LANES {
            lo[k] = lo[k].min(row[k]);
            hi[k] = hi[k].max(row[k]);
        }
    }
    let fold = |a: [f32; LANES], f: fn(f32, f32) -> f32| a.into_iter().reduce(f).expect("lanes");
    let (mut l, mut h) = (fold(lo, f32::min), fold(hi, f32::max));
    for &x in rows.remainder() {
        (l, h) = (l.min(x), h.max(x));
    }
    (l, h)
}

/// The code of a weight at `y` = w / scale: (round(y) + `z`) clamped to `lo..=hi` (rounding
/// halves away from zero, a NaN as 0), for zero points and code ranges within ±2^16 (codes
/// have at most 16 bits). Worked in floats, every step exact (integers below 2^24), and
/// turned into an integer by the bits of 1.5·2^23 + v, so that the loop vectorizes (a
/// saturating `as i32` cast does not).
#[inline(always)]
fn code_of(y: f32, z: i32, lo: i32, hi: i32) -> i32 {
    // Beyond ±2^20 every value gives an end code anyway.
    const LIMIT: f32 = (1 << 20) as f32;
    let y = if y.is_nan() {
        0.0
    } else {
        y.clamp(-LIMIT, LIMIT)
    };
    let t = y.trunc();
    let frac = y - t;
    let r = t + f32::from(u8::from(frac >= 0.5)) - f32::from(u8::from(frac <= -0.5));
    let v = (r + z as f32).clamp(lo as f32, hi as f32);
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: v + MAGIC has v in its low mantissa bits
    (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// [`QWeight::quantize`]'s work on valid, finite `data`: each channel's (`per` values)
/// scale and zero point, then its codes, appended to `q`'s.
#[inline(always)]
fn channel_codes(data: &[f32], per: usize, q: &mut QWeight) {
    let scheme = q.scheme;
    let (scales, zeros, values) = (&mut q.scale, &mut q.zero, &mut q.values);
    let (lo_q, hi_q) = scheme.range();
    for chunk in data.chunks(per) {
        let (s, z) = match scheme.mode {
            // The largest |x| is max(hi, −lo) over the chunk and 0, the same value
            // whatever the order (every weight is finite; only a zero's sign may
            // differ, and a zero range gives scale 1 either way).
            WeightMode::Symmetric => {
                let (lo, hi) = min_max(chunk, (0.0, 0.0));
                let m = hi.max(-lo);
                (if m > 0.0 { m / hi_q as f32 } else { 1.0 }, 0)
            }
            WeightMode::Affine => {
                let (lo, hi) = min_max(chunk, (0.0, 0.0));
                let s = if hi > lo {
                    (hi - lo) / hi_q as f32
                } else {
                    1.0
                };
                (s, ((-lo / s).round() as i32).clamp(0, hi_q))
            }
            WeightMode::Binary => {
                // Σ|w| / n, accumulated in f64 in index order.
                let a = chunk.iter().map(|x| f64::from(x.abs())).sum::<f64>() / per as f64;
                (if a > 0.0 { a as f32 } else { 1.0 }, 0)
            }
        };
        scales.push(s);
        zeros.push(z);
        // The mode decided once per channel, so that each loop vectorizes (plain loops
        // over slices, which inline into the callers compiled for wider vectors).
        let at = values.len();
        values.resize(at + chunk.len(), 0);
        let codes = &mut values[at..];
        if scheme.mode == WeightMode::Binary {
            for (c, &x) in codes.iter_mut().zip(chunk) {
                *c = if x >= 0.0 { 1 } else { -1 };
            }
        } else {
            for (c, &x) in codes.iter_mut().zip(chunk) {
                *c = code_of(x / s, z, lo_q, hi_q);
            }
        }
    }
}

/// [`channel_codes`] compiled for AVX2 (the same operations in the same order).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn channel_codes_avx2(data: &[f32], per: usize, q: &mut QWeight) {
    channel_codes(data, per, q);
}

/// [`channel_codes`] compiled for AVX-512 (the same operations in the same order).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn channel_codes_avx512(data: &[f32], per: usize, q: &mut QWeight) {
    channel_codes(data, per, q);
}

impl QWeight {
    /// Quantizes `t` (a dense float tensor) with `scheme`.
    pub fn quantize(t: &Tensor, scheme: WeightScheme) -> Result<QWeight, String> {
        scheme.validate()?;
        if t.dims.is_empty() || t.is_empty() {
            return Err("cannot quantize an empty tensor".into());
        }
        // The stored values read in place (a placeholder fill materialized).
        let data: std::borrow::Cow<'_, [f32]> = match &t.data {
            crate::weights::Data::F32(v) => v.as_slice().into(),
            crate::weights::Data::Fill(_) => t.to_vec().into(),
        };
        // Checked in a loop that vectorizes (no early exit); the first one found for the
        // message.
        if !data.iter().fold(true, |ok, x| ok & x.is_finite())
            && let Some(x) = data.iter().find(|x| !x.is_finite())
        {
            return Err(format!("cannot quantize the non-finite weight {x}"));
        }
        let groups = if scheme.per_channel { t.dims[0] } else { 1 };
        let per = data.len() / groups;
        let mut q = QWeight {
            scheme,
            dims: t.dims.clone(),
            values: Vec::with_capacity(data.len()),
            scale: Vec::with_capacity(groups),
            zero: Vec::with_capacity(groups),
        };
        match crate::simd::level() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd::level` gives AVX-512 only when the CPU has it.
            #[allow(unsafe_code)]
            crate::simd::Level::Avx512 => unsafe { channel_codes_avx512(&data, per, &mut q) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2.
            #[allow(unsafe_code)]
            crate::simd::Level::Avx2 => unsafe { channel_codes_avx2(&data, per, &mut q) },
            _ => channel_codes(&data, per, &mut q),
        }
        Ok(q)
    }

    /// The codes a quantized file gives the dense float tensor `t` (dequantized from them):
    /// q = round(t / scale[c]) + zero[c] per output channel c (or one scale and zero point),
    /// as symmetric codes when the file's are signed with zero point 0 inside the narrow
    /// range, else as affine codes (a signed file's shifted by 2^(b−1), zero points with
    /// them). `None` when `t` is not exactly those codes' values (weights changed since, e.g.
    /// by a folded BatchNorm) or a code falls outside the file's integer type.
    pub fn from_format(t: &Tensor, f: &WeightFormat) -> Option<QWeight> {
        let channels = *t.dims.first()?;
        let groups = f.scale.len();
        if !(1..=16).contains(&f.bits)
            || t.is_empty()
            || !(groups == 1 || groups == channels)
            || f.zero.len() != groups
            || f.scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return None;
        }
        let data = t.to_vec();
        let per = data.len() / channels;
        let (lo, hi) = if f.signed {
            (-(1i64 << (f.bits - 1)), (1i64 << (f.bits - 1)) - 1)
        } else {
            (0, (1i64 << f.bits) - 1)
        };
        let mut values = Vec::with_capacity(data.len());
        for (i, &x) in data.iter().enumerate() {
            let g = if groups == 1 { 0 } else { i / per };
            let (s, z) = (f.scale[g], i64::from(f.zero[g]));
            let q = (x / s).round() as i64 + z;
            if !(lo..=hi).contains(&q) || s * (q - z) as f32 != x {
                return None;
            }
            values.push(q as i32);
        }
        let narrow = (1i32 << (f.bits - 1)) - 1;
        let symmetric = f.signed
            && f.bits >= 2
            && f.zero.iter().all(|&z| z == 0)
            && values.iter().all(|q| q.abs() <= narrow);
        let (mode, shift) = match (symmetric, f.signed) {
            (true, _) => (WeightMode::Symmetric, 0),
            (false, true) => (WeightMode::Affine, 1i32 << (f.bits - 1)),
            (false, false) => (WeightMode::Affine, 0),
        };
        Some(QWeight {
            scheme: WeightScheme {
                bits: f.bits,
                mode,
                per_channel: groups > 1,
            },
            dims: t.dims.clone(),
            values: values.into_iter().map(|q| q + shift).collect(),
            scale: f.scale.clone(),
            zero: f.zero.iter().map(|z| z + shift).collect(),
        })
    }

    /// Elements per output channel.
    pub fn per_channel_len(&self) -> usize {
        self.values.len() / self.dims[0].max(1)
    }

    /// The codes less their output channel's zero point (w − z_w), in stored order.
    pub fn centred(&self) -> Vec<i32> {
        let mut v = self.values.clone();
        self.centre(&mut v, self.per_channel_len());
        v
    }

    /// [`QWeight::centred`], its codes' memory reused.
    pub fn into_centred(mut self) -> Vec<i32> {
        let per = self.per_channel_len();
        let mut values = std::mem::take(&mut self.values);
        self.centre(&mut values, per);
        values
    }

    /// Subtracts each output channel's zero point from its `per` codes in `v` (this
    /// weight's codes or a copy of them).
    fn centre(&self, v: &mut [i32], per: usize) {
        if self.zero.iter().all(|&z| z == 0) {
            return;
        }
        for (c, row) in v.chunks_mut(per.max(1)).enumerate() {
            let z = self.channel(c).1;
            for x in row {
                *x -= z;
            }
        }
    }

    /// Scale and zero point of output channel `c`.
    pub fn channel(&self, c: usize) -> (f32, i32) {
        let i = if self.scale.len() == 1 { 0 } else { c };
        (self.scale[i], self.zero[i])
    }

    /// The real values the codes stand for.
    pub fn dequantize(&self) -> Tensor {
        let mut v = Vec::with_capacity(self.values.len());
        self.dequantize_into(&mut v);
        Tensor::new(self.dims.clone(), v)
    }

    /// [`QWeight::dequantize`]'s values in `out` (cleared first; its memory reused).
    pub fn dequantize_into(&self, out: &mut Vec<f32>) {
        out.clear();
        out.reserve(self.values.len());
        // Row by row, each a loop of known length (which vectorizes).
        for ((s, z), row) in self.rows() {
            out.extend(row.iter().map(|&q| s * (q - z) as f32));
        }
    }

    /// Each output channel's (scale, zero point) with its codes, in order: value i is in
    /// channel i / [`QWeight::per_channel_len`].
    pub fn rows(&self) -> impl Iterator<Item = ((f32, i32), &[i32])> {
        self.values
            .chunks(self.per_channel_len().max(1))
            .enumerate()
            .map(|(c, row)| (self.channel(c), row))
    }

    /// Fraction of weights whose real value is exactly zero (code equal to the zero point).
    pub fn sparsity(&self) -> f64 {
        let zeros: usize = if self.scheme.mode == WeightMode::Binary {
            0
        } else {
            self.rows()
                .map(|((_, z), row)| row.iter().filter(|&&q| q == z).count())
                .sum()
        };
        zeros as f64 / self.values.len() as f64
    }

    /// Checks codes, scales and zero points against the scheme and the dims (for files).
    pub fn validate(&self) -> Result<(), String> {
        self.scheme.validate()?;
        let n: usize = self.dims.iter().product();
        if self.dims.is_empty() || n == 0 || self.values.len() != n {
            return Err(format!(
                "{} codes for dims {:?}",
                self.values.len(),
                self.dims
            ));
        }
        let groups = if self.scheme.per_channel {
            self.dims[0]
        } else {
            1
        };
        if self.scale.len() != groups || self.zero.len() != groups {
            return Err(format!(
                "{} scales and {} zero points, expected {groups}",
                self.scale.len(),
                self.zero.len()
            ));
        }
        if let Some(s) = self.scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("scale {s} is not a positive finite number"));
        }
        let (lo, hi) = self.scheme.range();
        // The codes' extremes first, in a loop that vectorizes (no early exit), then the
        // first code outside the range, for the message.
        let (min, max) = self
            .values
            .iter()
            .chain(&self.zero)
            .fold((i32::MAX, i32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        if (min < lo || max > hi)
            && let Some(v) = self
                .values
                .iter()
                .chain(&self.zero)
                .find(|v| !(lo..=hi).contains(*v))
        {
            return Err(format!("code {v} is outside {lo}..={hi}"));
        }
        if self.scheme.mode == WeightMode::Binary && self.values.contains(&0) {
            return Err("binary codes must be ±1".into());
        }
        if self.scheme.mode != WeightMode::Affine && self.zero.iter().any(|&z| z != 0) {
            return Err("symmetric and binary zero points must be 0".into());
        }
        Ok(())
    }
}

/// The integer format of an activation tensor: r = scale·(q − zero), q in the format's range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActQuant {
    /// Bits (1..=16; binary activations have 1).
    pub bits: u32,
    /// Signed two's-complement range instead of unsigned.
    pub signed: bool,
    /// ±1 values (BNN sign activations): q ∈ {−1, +1}, r = scale·q.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
    /// Real value of one step.
    pub scale: f32,
    /// Code of the real value 0 (0 for signed and binary formats).
    pub zero: i32,
}

impl ActQuant {
    /// Binary ±1 activations.
    pub const BINARY: ActQuant = ActQuant {
        bits: 1,
        signed: true,
        binary: true,
        scale: 1.0,
        zero: 0,
    };

    /// Token ids ([`crate::net::Op::Embedding`]'s input): unsigned 16-bit codes of scale 1,
    /// the code being the id.
    pub const TOKENS: ActQuant = ActQuant {
        bits: 16,
        signed: false,
        binary: false,
        scale: 1.0,
        zero: 0,
    };

    /// Probabilities of an integer softmax (I-BERT's output): unsigned `bits`-bit codes of
    /// scale 2^−bits, zero point 0.
    pub fn probabilities(bits: u32) -> ActQuant {
        ActQuant {
            bits,
            signed: false,
            binary: false,
            scale: 2f32.powi(-(bits as i32)),
            zero: 0,
        }
    }

    /// The format covering [lo, hi] (widened to include 0) with `bits` bits: unsigned affine,
    /// or signed symmetric (zero point 0) if `symmetric`.
    pub fn from_range(lo: f32, hi: f32, bits: u32, symmetric: bool) -> ActQuant {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        if symmetric {
            let m = lo.abs().max(hi);
            let top = ((1i64 << (bits - 1)) - 1).max(1) as f32;
            ActQuant {
                bits,
                signed: true,
                binary: false,
                scale: if m > 0.0 { m / top } else { 1.0 },
                zero: 0,
            }
        } else {
            let top = ((1i64 << bits) - 1) as f32;
            let scale = if hi > lo { (hi - lo) / top } else { 1.0 };
            ActQuant {
                bits,
                signed: false,
                binary: false,
                scale,
                zero: ((-lo / scale).round() as i32).clamp(0, top as i32),
            }
        }
    }

    /// Smallest and largest code.
    pub fn range(&self) -> (i64, i64) {
        if self.binary {
            (-1, 1)
        } else if self.signed {
            (-(1i64 << (self.bits - 1)), (1i64 << (self.bits - 1)) - 1)
        } else {
            (0, (1i64 << self.bits) - 1)
        }
    }

    /// The code of a real value (rounded and clamped; binary: sign, 0 counting as +).
    pub fn quantize(&self, r: f32) -> i64 {
        if self.binary {
            return if r >= 0.0 { 1 } else { -1 };
        }
        let (lo, hi) = self.range();
        ((r / self.scale).round() as i64 + i64::from(self.zero)).clamp(lo, hi)
    }

    /// The real value of a code.
    pub fn dequantize(&self, q: i64) -> f32 {
        self.scale * (q - i64::from(self.zero)) as f32
    }

    /// Checks the fields (for files).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=16).contains(&self.bits) {
            return Err(format!("bits {} is outside 1..=16", self.bits));
        }
        if self.binary && !(self.bits == 1 && self.signed && self.zero == 0) {
            return Err("binary activations have bits 1, signed true, zero 0".into());
        }
        if self.signed && !self.binary && self.bits < 2 {
            return Err(
                "a 1-bit signed format holds only −1 and 0; use 2 or more bits, or binary ±1"
                    .into(),
            );
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!(
                "scale {} is not a positive finite number",
                self.scale
            ));
        }
        let (lo, hi) = self.range();
        if !(lo..=hi).contains(&i64::from(self.zero)) || (self.signed && self.zero != 0) {
            return Err(format!(
                "zero point {} is outside {lo}..={hi} (signed formats have zero point 0)",
                self.zero
            ));
        }
        Ok(())
    }
}

/// Integer requantization y = round(v·mult / 2^shift), ties away from zero: the fixed-point
/// form of a real multiplier M = mult·2^−shift with mult a 31-bit integer in [2^30, 2^31)
/// (Jacob et al. 2018, eq. 6: M = 2^−n·M₀, M₀ ∈ [0.5, 1) held as a Q31 integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    /// Integer multiplier, 0 ≤ mult < 2^31.
    pub mult: i64,
    /// Right shift, 0..=62.
    pub shift: u32,
}

impl Requant {
    /// The fixed-point form of `m` (0 ≤ m < 2^31, after rounding to 31 significant bits).
    /// Multipliers below 2^−32 keep fewer than 31 significant bits (the shift stops at 62),
    /// and below about 2^−63 they become 0.
    pub fn from_real(m: f64) -> Result<Requant, String> {
        if !(m.is_finite() && m >= 0.0) {
            return Err(format!(
                "requantization multiplier {m} is not a finite m ≥ 0"
            ));
        }
        if m >= 2f64.powi(31) {
            return Err(format!("requantization multiplier {m} is not below 2^31"));
        }
        let (f, e) = frexp(m);
        if f == 0.0 {
            return Ok(Requant { mult: 0, shift: 0 });
        }
        let mut mult = (f * 2f64.powi(31)).round() as i64;
        let mut shift = 31 - e;
        if mult == 1 << 31 {
            mult >>= 1;
            shift -= 1;
        }
        if shift > 62 {
            let extra = (shift - 62) as u32;
            mult = if extra > 40 {
                0
            } else {
                round_shift(i128::from(mult), extra)
            };
            shift = 62;
        }
        if shift < 0 {
            return Err(format!("requantization multiplier {m} is not below 2^31"));
        }
        Ok(Requant {
            mult,
            shift: shift as u32,
        })
    }

    /// Several multipliers at one common shift (set by the largest), so that a sum of
    /// rescaled terms is rounded once: Σₖ multₖ·vₖ / 2^shift.
    pub fn common(ms: &[f64]) -> Result<(Vec<i64>, u32), String> {
        let top = ms.iter().copied().fold(0f64, f64::max);
        let shift = Requant::from_real(top)?.shift;
        let mults = ms
            .iter()
            .map(|&m| {
                Requant::from_real(m)?;
                Ok((m * 2f64.powi(shift as i32)).round() as i64)
            })
            .collect::<Result<_, String>>()?;
        Ok((mults, shift))
    }

    /// The real multiplier it stands for.
    pub fn real(&self) -> f64 {
        self.mult as f64 / 2f64.powi(self.shift as i32)
    }

    /// round(v·mult / 2^shift), saturated to i64.
    pub fn apply(&self, v: i64) -> i64 {
        round_shift(i128::from(v) * i128::from(self.mult), self.shift)
    }
}

/// round(p / 2^shift), ties away from zero, saturated to i64.
pub fn round_shift(p: i128, shift: u32) -> i64 {
    let r = if shift == 0 {
        p
    } else {
        let half = 1i128 << (shift - 1);
        let mag = (p.unsigned_abs() + half as u128) >> shift;
        let mag = i128::try_from(mag).unwrap_or(i128::MAX);
        if p < 0 { -mag } else { mag }
    };
    r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// m = f·2^e with f ∈ [0.5, 1) (f = 0 for 0 and subnormals).
fn frexp(m: f64) -> (f64, i32) {
    let bits = m.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        return (0.0, 0);
    }
    let f = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (f, exp - 1022)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`code_of`] is `(y.round() as i32 + z).clamp(lo, hi)` on every edge: halves and the
    /// floats next to them, the powers of two where floats become integers and where the
    /// cast saturates, the end codes of the widest range, zeros, infinities and NaN.
    #[test]
    fn code_of_is_round_on_the_edges() {
        let same = |y: f32| {
            for (z, lo, hi) in [
                (0, -32767, 32767),
                (0, 0, 65535),
                (40000, 0, 65535),
                (3, 0, 15),
            ] {
                let want = (i64::from(y.round() as i32) + i64::from(z)).clamp(lo, hi);
                assert_eq!(
                    i64::from(code_of(y, z, lo as i32, hi as i32)),
                    want,
                    "{y:e}"
                );
            }
        };
        for k in -8192..=8192 {
            let half = k as f32 / 2.0;
            for y in [half, half.next_up(), half.next_down()] {
                same(y);
            }
        }
        for p in [23, 24, 31, 32] {
            let b = 2f32.powi(p);
            for y in [b, b.next_up(), b.next_down(), b + 0.5, b - 0.5] {
                same(y);
                same(-y);
            }
        }
        for y in [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN,
        ] {
            same(y);
        }
    }

    proptest::proptest! {
        /// The vectorized code of a weight is the rounded value plus the zero point,
        /// clamped, for any f32 (NaN and infinities too) and any code range of up to 16
        /// bits.
        #[test]
        fn code_of_is_the_clamped_rounded_sum(
            bits in proptest::prelude::any::<u32>(), near in -70_000f32..70_000f32,
            pick in 0u8..3, b in 2u32..=16, zf in 0f64..1.0, affine in proptest::prelude::any::<bool>(),
        ) {
            let y = match pick { 0 => f32::from_bits(bits), 1 => near, _ => near.round() + 0.5 };
            let (lo, hi) = if affine { (0, (1i32 << b) - 1) } else { (-((1i32 << (b - 1)) - 1), (1i32 << (b - 1)) - 1) };
            let z = if affine { (zf * f64::from(hi)) as i32 } else { 0 };
            let want = (i64::from(y.round() as i32) + i64::from(z)).clamp(i64::from(lo), i64::from(hi));
            proptest::prop_assert_eq!(i64::from(code_of(y, z, lo, hi)), want, "y = {:e}", y);
        }

        /// The scales and zero points come out as the plain folds over each channel in
        /// order give them (the quantizer takes a channel's range in eight lanes):
        /// symmetric from max |x|, affine from min and max with 0, on channels of any
        /// length with zeros of both signs, all-zero channels and ties among the extremes.
        #[test]
        fn scales_are_those_of_the_ordered_folds(
            v in proptest::collection::vec(
                proptest::prop_oneof![-4.0f32..4.0, proptest::strategy::Just(0.0), proptest::strategy::Just(-0.0), proptest::strategy::Just(-2.5), proptest::strategy::Just(2.5)],
                1..60,
            ),
            channels in 1usize..4,
            bits in 2u32..9,
            affine in proptest::prelude::any::<bool>(),
        ) {
            let per = v.len();
            let data: Vec<f32> = (0..channels).flat_map(|c| v.iter().map(move |&x| if c == 1 { -x } else if c == 2 { 0.0 * x } else { x })).collect();
            let t = Tensor::new(vec![channels, per], data.clone());
            let mode = if affine { WeightMode::Affine } else { WeightMode::Symmetric };
            let scheme = WeightScheme { bits, mode, per_channel: true };
            let q = QWeight::quantize(&t, scheme).unwrap();
            let (_, hi_q) = scheme.range();
            for (c, chunk) in data.chunks(per).enumerate() {
                let (s, z) = if affine {
                    let lo = chunk.iter().fold(0f32, |a, &x| a.min(x));
                    let hi = chunk.iter().fold(0f32, |a, &x| a.max(x));
                    let s = if hi > lo { (hi - lo) / hi_q as f32 } else { 1.0 };
                    (s, ((-lo / s).round() as i32).clamp(0, hi_q))
                } else {
                    let m = chunk.iter().fold(0f32, |a, x| a.max(x.abs()));
                    (if m > 0.0 { m / hi_q as f32 } else { 1.0 }, 0)
                };
                proptest::prop_assert_eq!(q.scale[c].to_bits(), s.to_bits());
                proptest::prop_assert_eq!(q.zero[c], z);
            }
        }
    }

    #[test]
    fn requant_matches_the_hand_worked_examples() {
        // 0.3 = 0.6·2^−1: mult = round(0.6·2^31) = round(1288490188.8) = 1288490189, shift 32.
        let r = Requant::from_real(0.3).unwrap();
        assert_eq!(
            r,
            Requant {
                mult: 1_288_490_189,
                shift: 32
            }
        );
        // 1000·0.3 = 300.00000005 → 300; 5·0.3 = 1.5 → 2 (tie away from 0); −7·0.3 → −2.
        assert_eq!(
            [
                r.apply(1000),
                r.apply(5),
                r.apply(-5),
                r.apply(3),
                r.apply(-7)
            ],
            [300, 2, -2, 1, -2]
        );
        // A layer with s_x = 0.05, s_w = 0.01, s_y = 0.1: M = 0.005 = 0.64·2^−7,
        // mult = round(0.64·2^31) = round(1374389534.72) = 1374389535, shift 38;
        // acc 12345 → 12345·1374389535 / 2^38 = 61.7250000036 → 62.
        let r = Requant::from_real(0.05f64 * 0.01 / 0.1).unwrap();
        assert_eq!(
            r,
            Requant {
                mult: 1_374_389_535,
                shift: 38
            }
        );
        assert_eq!(r.apply(12_345), 62);
        // M = 0.5 is exact: 2^30 / 2^31; ties 1.5 → 2, 2.5 → 3, −1.5 → −2.
        let r = Requant::from_real(0.5).unwrap();
        assert_eq!(
            r,
            Requant {
                mult: 1 << 30,
                shift: 31
            }
        );
        assert_eq!([r.apply(3), r.apply(5), r.apply(-3)], [2, 3, -2]);
        // M just below 1 rounds its mantissa up to 2^31 and renormalises.
        let r = Requant::from_real(1.0 - 1e-12).unwrap();
        assert_eq!(
            r,
            Requant {
                mult: 1 << 30,
                shift: 30
            }
        );
        assert_eq!(Requant::from_real(0.0).unwrap().apply(99), 0);
        assert!(Requant::from_real(f64::NAN).is_err() && Requant::from_real(3e9).is_err());
        // Tiny multipliers keep the shift at 62.
        let r = Requant::from_real(2f64.powi(-40)).unwrap();
        assert_eq!((r.mult, r.shift), (1 << 22, 62));
        assert_eq!(r.apply(1 << 41), 2);
    }

    #[test]
    fn common_shift_rounds_a_sum_once() {
        let (m, shift) = Requant::common(&[0.5, 0.25]).unwrap();
        assert_eq!((m.clone(), shift), (vec![1 << 30, 1 << 29], 31));
        // 3·0.5 + 3·0.25 = 2.25 → 2, where rounding each term would give 2 + 1 = 3.
        assert_eq!(
            round_shift(3 * i128::from(m[0]) + 3 * i128::from(m[1]), shift),
            2
        );
    }

    #[test]
    fn symmetric_affine_and_binary_codes() {
        let t = Tensor::new(vec![2, 3], vec![-1.0, 0.6, 0.3, 0.0, 2.2, -4.0]);
        let s = |bits, mode, per_channel| WeightScheme {
            bits,
            mode,
            per_channel,
        };
        let q = QWeight::quantize(&t, s(4, WeightMode::Symmetric, true)).unwrap();
        // Channel 0: scale 1/7, codes −7, 4.2 → 4, 2.1 → 2; channel 1: scale 4/7, 3.85 → 4.
        assert_eq!(q.values, [-7, 4, 2, 0, 4, -7]);
        assert_eq!(q.scale, [1.0 / 7.0, 4.0 / 7.0]);
        assert!((q.sparsity() - 1.0 / 6.0).abs() < 1e-12);
        let q = QWeight::quantize(&t, s(8, WeightMode::Affine, false)).unwrap();
        // One range [−4, 2.2]: scale 6.2/255, zero point round(4/(6.2/255)) = round(164.5) = 165.
        assert_eq!(q.zero, [165]);
        let back = q.dequantize().to_vec();
        assert!(
            back.iter()
                .zip(t.to_vec())
                .all(|(a, b)| (a - b).abs() <= 3.1 / 255.0 + 1e-6)
        );
        assert_eq!(back[3], 0.0, "0.0 stays exact");
        let q = QWeight::quantize(&t, s(1, WeightMode::Binary, true)).unwrap();
        assert_eq!(q.values, [-1, 1, 1, 1, 1, -1]);
        assert!((q.scale[0] - 1.9 / 3.0).abs() < 1e-6 && (q.scale[1] - 6.2 / 3.0).abs() < 1e-6);
        assert!(q.validate().is_ok());
        let e = QWeight::quantize(&t, s(1, WeightMode::Symmetric, false)).unwrap_err();
        assert!(e.contains("binary"), "{e}");
        assert!(QWeight::quantize(&t, s(17, WeightMode::Affine, false)).is_err());
    }

    #[test]
    fn activation_formats() {
        let a = ActQuant::from_range(0.0, 6.0, 4, false);
        assert_eq!((a.zero, a.range()), (0, (0, 15)));
        assert_eq!(a.quantize(6.0), 15);
        assert_eq!(a.quantize(-1.0), 0);
        let a = ActQuant::from_range(-1.0, 3.0, 8, false);
        assert_eq!(a.zero, 64);
        assert_eq!(a.dequantize(64), 0.0);
        let a = ActQuant::from_range(-1.0, 3.0, 8, true);
        assert_eq!((a.zero, a.range()), (0, (-128, 127)));
        assert_eq!(ActQuant::BINARY.quantize(0.0), 1);
        assert!(ActQuant::BINARY.validate().is_ok());
        let mut bad = a;
        bad.scale = 0.0;
        assert!(bad.validate().is_err());
    }
}
