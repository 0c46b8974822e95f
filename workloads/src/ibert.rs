//! Integer-only transformer non-linearities after I-BERT (S. Kim, A. Gholami, Z. Yao,
//! M. W. Mahoney, K. Keutzer, "I-BERT: Integer-only BERT Quantization", ICML 2021;
//! `docs/references.md` [Kim2021]): softmax through an integer exponential, GELU through an integer
//! erf, and LayerNorm through an integer square root. Every function here is exact integer
//! arithmetic on codes; the float scales are used once, in the constructors, to derive the
//! integer constants (as `golden::Program::compile` does for every other layer).
//!
//! The constructions, with r = S·q a real value of internal scale S:
//! * **exp** (I-BERT §3.4, Algorithm 2): for x ≤ 0 write x = −ln2·z + p with p ∈ (−ln2, 0];
//!   exp(x) = 2^−z·exp(p) ≈ 2^−z·L(p) with L(p) = 0.35815147·p² + 0.96963238·p + 1
//!   [code: I-BERT's `IntSoftmax`, coefficients `[0.35815147, 0.96963238, 1.]`, x0 = −ln 2,
//!   n = 30]. In integers: z = ⌊x_q / x0_q⌋ with x0_q = ⌊−ln2 / S⌋, p_q = x_q − x0_q·z,
//!   L_q = p_q·(p_q + b_q) + c_q with b_q = ⌊(0.96963238/0.35815147)/S⌋,
//!   c_q = ⌊(1/0.35815147)/S²⌋, of scale 0.35815147·S²; then exp_q = L_q >> z. Inputs below
//!   −30·ln 2 are clamped there, as I-BERT does (their exponential is below 2^−30).
//! * **softmax** over a row: x_j = q_j − max q, e_j = exp_q(x_j), and
//!   p_j = min(⌊e_j·2^M / Σ e⌋, 2^M − 1): M-bit probabilities of scale 2^−M. I-BERT divides
//!   once per row and multiplies (⌊2^32/Σ⌋, then a shift); here each element is one exact
//!   integer division, so the result has a single floor.
//! * **GELU** (I-BERT §3.5): GELU(x) = x·(1 + erf(x/√2))/2 with
//!   erf(x) ≈ sign(x)·[a·(min(|x|, −b) + b)² + 1], a = −0.2888, b = −1.769 [code: I-BERT's
//!   `IntGELU`]. In integers at the erf input's scale S' = S/√2: b_q = ⌊b/S'⌋,
//!   c_q = ⌊1/(a·S'²)⌋, erf_q = sign(x_q)·((min(|x_q|, −b_q) + b_q)² + c_q) of scale a·S'²,
//!   then GELU_q = x_q·(erf_q + ⌊1/(a·S'²)⌋) of scale S·a·S'²/2.
//! * **LayerNorm** (I-BERT §3.6: integer mean and variance, square root by Newton's
//!   iterations): over n features, d_c = n·x_c − Σx (exactly n·(x_c − mean)),
//!   V = Σ d_c²·2^32 + E with E = round(n³·ε/s²·2^32), σ_q = ⌊√V⌋ (the integer square
//!   root, which Newton's iteration from above reaches exactly; the 2^32 keeps 16 fraction
//!   bits in σ_q however few features or codes there are), t_c = ⌊d_c·2^32 / σ_q⌋ (the
//!   normalized value with 16 fraction bits, over √n), and
//!   y_c = clamp(z_y + round((m_c·t_c + B_c) / 2^shift)) with m_c ≈ γ_c·√n/(2^16·s_y) and
//!   B_c ≈ β_c/s_y·2^shift: the affine γ, β folded into one per-channel requantization.
//!
//! **Internal precision.** I-BERT runs these on 32-bit accumulators with a fine scale; here
//! their inputs are M-bit activation codes whose step S may be coarse (0.1 or more), and
//! ⌊ln 2/S⌋ or ⌊b/S⌋ at such a step would misplace the polynomial's pieces. So exp and GELU
//! first refine the input: x_q·2^k at scale S/2^k, the smallest k ≥ 0 with
//! S/2^k ≤ 2^−[`FRAC_BITS`] (exact: a shift). This is this project's choice [A], stated in
//! `docs/model.md`.
//!
//! The float error of each function against the exact one, on the same dequantized inputs,
//! is bounded in this module's tests: softmax within [`SOFTMAX_ERROR`] + 2^−M per
//! probability, GELU within [`GELU_ERROR`] (relative to max(1, |x|)) before output rounding,
//! and LayerNorm within one output step plus [`LAYERNORM_ERROR`] times |γ|.

use ndarray::{Array3, ArrayView3};

use crate::exec::visible_keys;
use crate::quant::{Requant, round_shift};

/// I-BERT's exponential polynomial L(p) = c₀·p² + c₁·p + c₂ on (−ln 2, 0]
/// [code: I-BERT `IntSoftmax`].
pub const EXP_COEF: [f64; 3] = [0.358_151_47, 0.969_632_38, 1.0];

/// I-BERT's erf polynomial sign(x)·[a·(min(|x|, −b) + b)² + 1]: (a, b)
/// [code: I-BERT `IntGELU`].
pub const ERF_COEF: (f64, f64) = (-0.2888, -1.769);

/// Exponentials below 2^−[`EXP_CLAMP`] are those of −[`EXP_CLAMP`]·ln 2 (I-BERT's n = 30).
pub const EXP_CLAMP: i64 = 30;

/// Fraction bits of the internal scale of exp and GELU: inputs are refined to a step of at
/// most 2^−8 [A].
pub const FRAC_BITS: i32 = 8;

/// Fraction bits of LayerNorm's normalized value t = ⌊d·2^32/σ⌋ = d·2^16/√(Σd²), and of
/// its σ = ⌊√(Σd²·2^32 + E)⌋ (V scaled by 2^32 before the square root) [A].
pub const LAYERNORM_FRAC: u32 = 16;

/// Bound on |softmax − exact| per probability, beyond the 2^−M of the final floor
/// (the polynomial's error and the refined scale's rounding: at most 0.0016 over steps
/// 0.0025–0.5 and rows of 1–60 codes, measured while writing the tests).
pub const SOFTMAX_ERROR: f64 = 0.004;

/// Bound on |GELU − exact| / max(1, |x|) before the output's rounding (I-BERT's erf
/// polynomial and the refined step: at most 0.0103 over steps 0.0025–0.5 and every 8-bit
/// code, measured while writing the tests).
pub const GELU_ERROR: f64 = 0.012;

/// Bound on |LayerNorm − exact| / |γ| beyond one output step (t's 2^−16 resolution and
/// the eps rounding; measured in the tests).
pub const LAYERNORM_ERROR: f64 = 0.002;

/// The shift k ≥ 0 that refines step `s` to at most 2^−[`FRAC_BITS`] (capped at 40).
fn refine(s: f64) -> u32 {
    let mut k = 0u32;
    while s / 2f64.powi(k as i32) > 2f64.powi(-FRAC_BITS) && k < 40 {
        k += 1;
    }
    k
}

/// Refuses a step outside [2^−24, 10^6]: finer steps would take the polynomials' constants
/// (about 1/S²) past 2^50, and with them the products past 64 bits.
fn bad_scale(what: &str, s: f64) -> Result<(), String> {
    if s.is_finite() && (2f64.powi(-24)..1e6).contains(&s) {
        Ok(())
    } else {
        Err(format!(
            "{what}: step {s} is outside 2^-24 (5.96e-8) .. 10^6"
        ))
    }
}

/// I-BERT's integer exponential of inputs x_q ≤ 0 of step `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exp {
    /// Refinement shift: the input x_q·2^k is at scale S = s/2^k.
    pub k: u32,
    /// ⌊−ln 2 / S⌋ (negative).
    pub x0: i64,
    /// ⌊(c₁/c₀)/S⌋.
    pub b: i64,
    /// ⌊(c₂/c₀)/S²⌋.
    pub c: i64,
}

impl Exp {
    /// The constants for input step `s`.
    pub fn new(s: f64) -> Result<Exp, String> {
        bad_scale("integer exp", s)?;
        let k = refine(s);
        let s = s / 2f64.powi(k as i32);
        let [c0, c1, c2] = EXP_COEF;
        Ok(Exp {
            k,
            x0: (-std::f64::consts::LN_2 / s).floor() as i64,
            b: (c1 / c0 / s).floor() as i64,
            c: (c2 / c0 / (s * s)).floor() as i64,
        })
    }

    /// The real value of one unit of [`Exp::eval`]: c₀·S² for the refined step S of input
    /// step `s`.
    pub fn scale(&self, s: f64) -> f64 {
        let s = s / 2f64.powi(self.k as i32);
        EXP_COEF[0] * s * s
    }

    /// exp(s·x) for x ≤ 0, in units of [`Exp::scale`] (non-negative).
    pub fn eval(&self, x: i64) -> i64 {
        debug_assert!(x <= 0);
        let x = (x << self.k).max(EXP_CLAMP * self.x0);
        // Both ≤ 0 with x0 < 0: the quotient is ≥ 0 and truncation is the floor.
        let z = x / self.x0;
        let p = x - self.x0 * z;
        (p * (p + self.b) + self.c).max(0) >> z
    }
}

/// I-BERT's integer softmax of codes of step `s` into `bits`-bit probabilities (scale
/// 2^−bits, zero point 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Softmax {
    /// The exponential.
    pub exp: Exp,
    /// Output bits M.
    pub bits: u32,
}

impl Softmax {
    /// The constants for input step `s` and `bits`-bit outputs (1..=16).
    pub fn new(s: f64, bits: u32) -> Result<Softmax, String> {
        if !(1..=16).contains(&bits) {
            return Err(format!("softmax output bits {bits} are outside 1..=16"));
        }
        Ok(Softmax {
            exp: Exp::new(s)?,
            bits,
        })
    }

    /// The probabilities of row `q` (codes of one format: the zero point cancels) into
    /// `out`, of the same length: p_j = min(⌊e_j·2^M/Σe⌋, 2^M − 1).
    pub fn row(&self, q: &[i64], out: &mut [i64]) {
        debug_assert_eq!(q.len(), out.len());
        let Some(&m) = q.iter().max() else {
            return;
        };
        let mut sum: i128 = 0;
        for (o, &x) in out.iter_mut().zip(q) {
            *o = self.exp.eval(x - m);
            sum += i128::from(*o);
        }
        let top = (1i64 << self.bits) - 1;
        for o in out.iter_mut() {
            // The row's maximum has e = c > 0, so the sum is positive.
            *o = ((i128::from(*o) << self.bits) / sum).min(i128::from(top)) as i64;
        }
    }
}

/// I-BERT's integer GELU of codes of step `s`, requantized into a format of step `s_y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gelu {
    /// Refinement shift of the input (scale S = s/2^k).
    pub k: u32,
    /// ⌊b/S'⌋ for S' = S/√2 (negative).
    pub b: i64,
    /// ⌊1/(a·S'²)⌋ (negative): the polynomial's constant, and its "+1" in GELU's 1 + erf.
    pub c: i64,
    /// The (negated) product's requantization into the output step: ×`mult` / 2^`shift`,
    /// `mult` in [2^30, 2^31) (31 significant bits however small the multiplier: I-BERT's
    /// internal scale makes it about 2^−40 or less, beyond [`Requant`]'s 62-bit shift).
    pub mult: i64,
    /// See `mult`.
    pub shift: u32,
}

impl Gelu {
    /// The constants for input step `s` and output step `s_y`.
    pub fn new(s: f64, s_y: f64) -> Result<Gelu, String> {
        bad_scale("integer GELU", s)?;
        bad_scale("integer GELU output", s_y)?;
        let k = refine(s);
        let s = s / 2f64.powi(k as i32);
        let s_erf = s / std::f64::consts::SQRT_2;
        let (a, b) = ERF_COEF;
        let c = (1.0 / (a * s_erf * s_erf)).floor() as i64;
        // The product x·(erf + 1) is at scale S·a·S'²/2, negative: requantize its negation.
        // It is below 2^−27 (S ≤ 2^−8) and s_y ≥ 2^−24, so the multiplier is below 1/8.
        let out = s * (-a) * s_erf * s_erf / 2.0;
        let m = out / s_y;
        let e = m.log2().floor() as i32;
        let (mut mult, mut shift) = ((m * 2f64.powi(30 - e)).round() as i64, (30 - e) as u32);
        if mult >= 1 << 31 {
            (mult, shift) = (mult >> 1, shift - 1);
        }
        Ok(Gelu {
            k,
            b: (b / s_erf).floor() as i64,
            c,
            mult,
            shift,
        })
    }

    /// GELU(s·x) in output steps (unclamped, before the output's zero point).
    pub fn eval(&self, x: i64) -> i64 {
        let (erf, x) = self.erf(x);
        // x·(1 + erf), negated: c and erf are at the negative scale a·S'². In i128: a
        // refined 16-bit code times a constant near 2^50 passes 64 bits.
        let p = -i128::from(x) * i128::from(erf + self.c);
        round_shift(p * i128::from(self.mult), self.shift)
    }

    /// The integer erf of the refined input x·2^k (scale a·S'²), and that input.
    pub fn erf(&self, x: i64) -> (i64, i64) {
        let x = x << self.k;
        let t = x.abs().min(-self.b) + self.b;
        (x.signum() * (t * t + self.c), x)
    }

    /// The real value of one unit of the unrequantized product x·(erf + c) for input step
    /// `s` (negative, as I-BERT's).
    pub fn product_scale(&self, s: f64) -> f64 {
        let s = s / 2f64.powi(self.k as i32);
        let s_erf = s / std::f64::consts::SQRT_2;
        s * ERF_COEF.0 * s_erf * s_erf / 2.0
    }
}

/// Integer LayerNorm over `n` features: input codes centred on their zero point, outputs
/// codes of the output format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNorm {
    /// E = round(n³·ε/s²·2^32), ε in code units (s the input step) at V's scale.
    pub eps: i128,
    /// Per channel: m_c, the signed multiplier of t_c.
    pub mult: Vec<i64>,
    /// Per channel: B_c, β_c in output steps at the common shift.
    pub bias: Vec<i64>,
    /// The common shift of `mult` and `bias`.
    pub shift: u32,
    /// The output's zero point and code range.
    pub out: (i64, i64, i64),
}

impl LayerNorm {
    /// The constants for `gamma`, `beta` (one per feature), `eps`, input step `s`, output
    /// step `s_y`, zero point `z_y` and code range `(lo, hi)`.
    pub fn new(
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
        s: f64,
        (s_y, z_y, lo, hi): (f64, i64, i64, i64),
    ) -> Result<LayerNorm, String> {
        bad_scale("integer LayerNorm", s)?;
        bad_scale("integer LayerNorm output", s_y)?;
        let n = gamma.len();
        if n == 0 || beta.len() != n {
            return Err(format!(
                "LayerNorm needs one γ and one β per feature, got {n} and {}",
                beta.len()
            ));
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(format!("LayerNorm ε {eps} is not a finite ε ≥ 0"));
        }
        let e = (n as f64).powi(3) * eps / (s * s) * 2f64.powi(2 * LAYERNORM_FRAC as i32);
        if e > 2f64.powi(110) {
            return Err(format!(
                "LayerNorm ε {eps} is too large for input step {s} ({e:e} code units)"
            ));
        }
        let ms: Vec<f64> = gamma
            .iter()
            .map(|&g| f64::from(g).abs() * (n as f64).sqrt() / (2f64.powi(16) * s_y))
            .collect();
        let (mags, shift) = Requant::common(&ms).map_err(|e| format!("LayerNorm γ: {e}"))?;
        let unit = 2f64.powi(shift as i32);
        let mut bias = Vec::with_capacity(n);
        for &b in beta {
            let v = (f64::from(b) / s_y * unit).round();
            if !v.is_finite() || v.abs() > 2f64.powi(62) {
                return Err(format!(
                    "LayerNorm β {b} does not fit the output step {s_y}"
                ));
            }
            bias.push(v as i64);
        }
        Ok(LayerNorm {
            eps: e.round() as i128,
            mult: mags
                .iter()
                .zip(gamma)
                .map(|(&m, &g)| if g < 0.0 { -m } else { m })
                .collect(),
            bias,
            shift,
            out: (z_y, lo, hi),
        })
    }

    /// The normalized values t_c = ⌊d_c·2^32/σ⌋ (σ = ⌊√(Σd²·2^32 + E)⌋) of centred codes
    /// `x` (0 when every d_c is 0 and ε is 0).
    pub fn normalized(&self, x: &[i64], t: &mut [i64]) {
        let n = x.len() as i128;
        let sum: i128 = x.iter().map(|&v| i128::from(v)).sum();
        let d = |v: i64| n * i128::from(v) - sum;
        let frac = 2 * LAYERNORM_FRAC;
        let v: i128 = (x.iter().map(|&v| d(v) * d(v)).sum::<i128>() << frac) + self.eps;
        let sigma = (v as u128).isqrt() as i128;
        for (o, &v) in t.iter_mut().zip(x) {
            *o = if sigma == 0 {
                0
            } else {
                ((d(v) << frac).div_euclid(sigma)) as i64
            };
        }
    }

    /// Output codes of centred codes `x` (one position's features) into `out`.
    pub fn row(&self, x: &[i64], out: &mut [i64]) {
        self.normalized(x, out);
        let (z, lo, hi) = self.out;
        for (c, o) in out.iter_mut().enumerate() {
            let p = i128::from(self.mult[c]) * i128::from(*o) + i128::from(self.bias[c]);
            *o = z.saturating_add(round_shift(p, self.shift)).clamp(lo, hi);
        }
    }
}

/// [`Softmax::row`] over each head's visible keys at every query position of a score
/// tensor (heads·keys)×queries×1 ([`crate::net::Op::AttnSoftmax`]); masked keys get 0.
pub fn softmax_heads(sm: &Softmax, x: ArrayView3<i64>, heads: usize, causal: bool) -> Array3<i64> {
    let (c, q, w) = x.dim();
    let keys = c / heads;
    let mut y = Array3::zeros((c, q, w));
    let (mut row, mut out) = (vec![0; keys], vec![0; keys]);
    for h in 0..heads {
        for i in 0..q {
            let n = visible_keys(causal, i, keys, q);
            for j in 0..n {
                row[j] = x[[h * keys + j, i, 0]];
            }
            sm.row(&row[..n], &mut out[..n]);
            for j in 0..n {
                y[[h * keys + j, i, 0]] = out[j];
            }
        }
    }
    y
}

/// [`LayerNorm::row`] over the channels of every position of centred codes `x`.
pub fn layer_norm_positions(ln: &LayerNorm, x: ArrayView3<i64>) -> Array3<i64> {
    let (c, h, w) = x.dim();
    let mut y = Array3::zeros((c, h, w));
    let (mut col, mut out) = (vec![0; c], vec![0; c]);
    for i in 0..h {
        for j in 0..w {
            for ch in 0..c {
                col[ch] = x[[ch, i, j]];
            }
            ln.row(&col, &mut out);
            for ch in 0..c {
                y[[ch, i, j]] = out[ch];
            }
        }
    }
    y
}

/// e^x for x ≤ 0 (a softmax after subtracting the maximum, training), the same on every
/// IEEE-754 machine (no libm): x = k·ln 2 + r with |r| ≤ ln2/2,
/// e^r by its Taylor series to r¹², times 2^k. Relative error below 1e-14.
pub fn exp_det(x: f64) -> f64 {
    if x < -700.0 {
        return 0.0;
    }
    let k = (x / std::f64::consts::LN_2).round();
    let r = x - k * std::f64::consts::LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..=12 {
        term = term * r / f64::from(n);
        sum += term;
    }
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// The error function, the float reference of GELU (`exec`), not an integer path: the
/// Maclaurin series 2/√π·Σ (−1)ⁿ x^(2n+1)/(n!·(2n+1)) below |x| = 2.5 (its largest term is
/// under e^6.25, so cancellation costs under 10^−13), and above it erfc's continued fraction
/// e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) evaluated from 80 levels down
/// (Abramowitz & Stegun 7.1.5 and 7.1.14 [recalled]); tested against tabulated values.
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let r = if z < 2.5 {
        let (mut term, mut sum, mut n) = (z, z, 0.0f64);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut f = z;
        for k in (1..=80).rev() {
            f = z + (f64::from(k) / 2.0) / f;
        }
        1.0 - exp_det(-z * z) / (std::f64::consts::PI.sqrt() * f)
    };
    if x < 0.0 { -r } else { r }
}

/// GELU(x) = x·(1 + erf(x/√2))/2 (Hendrycks & Gimpel 2016), the float reference.
pub fn gelu(x: f64) -> f64 {
    x * (1.0 + erf(x / std::f64::consts::SQRT_2)) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exp_det_agrees_with_libm() {
        for i in 0..2000 {
            let x = -(i as f64) * 0.05;
            let (a, b) = (exp_det(x), x.exp());
            assert!((a - b).abs() <= 1e-14 * b, "{x}: {a} vs {b}");
        }
        assert_eq!(exp_det(0.0), 1.0);
        assert_eq!(exp_det(-1000.0), 0.0);
    }

    #[test]
    fn erf_matches_known_values() {
        // erf(0.5), erf(1), erf(2) to 10 digits (A&S Table 7.1) [recalled].
        for (x, want) in [
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265_0),
        ] {
            assert!((erf(x) - want).abs() < 1e-9, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 1e-9);
        }
        assert_eq!(erf(0.0), 0.0);
    }

    #[test]
    fn exp_is_exact_at_zero_and_halves_per_ln2() {
        let s = 0.01;
        let e = Exp::new(s).unwrap();
        let one = e.eval(0) as f64 * e.scale(s);
        assert!((one - 1.0).abs() < 1e-3, "{one}");
        // x = −ln 2 / s steps: about one half.
        let x = -(std::f64::consts::LN_2 / s).round() as i64;
        let half = e.eval(x) as f64 * e.scale(s);
        assert!((half - 0.5).abs() < 0.01, "{half}");
    }

    fn softmax_f(x: &[f64]) -> Vec<f64> {
        let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    /// Layer-norm of real values, the float reference.
    fn layernorm_f(x: &[f64], g: &[f32], b: &[f32], eps: f64) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        x.iter()
            .zip(g.iter().zip(b))
            .map(|(v, (&g, &b))| f64::from(g) * (v - mean) / (var + eps).sqrt() + f64::from(b))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Each probability is within SOFTMAX_ERROR + 2^−M of the exact softmax of the same
        /// dequantized codes, and the row sums to at most 1.
        #[test]
        fn softmax_is_within_its_bound(
            codes in proptest::collection::vec(-128i64..=127, 1..64),
            s in 0.001f64..0.5,
            bits in 6u32..=12,
        ) {
            let sm = Softmax::new(s, bits).unwrap();
            let mut out = vec![0; codes.len()];
            sm.row(&codes, &mut out);
            let exact = softmax_f(&codes.iter().map(|&q| q as f64 * s).collect::<Vec<_>>());
            let step = 2f64.powi(-(bits as i32));
            for (o, e) in out.iter().zip(&exact) {
                let p = *o as f64 * step;
                prop_assert!((p - e).abs() <= SOFTMAX_ERROR + step, "{p} vs {e}");
            }
            prop_assert!(out.iter().sum::<i64>() <= 1 << bits);
        }

        /// GELU of every code is within GELU_ERROR·max(1, |x|) plus half an output step
        /// (the output's rounding) of the exact GELU.
        #[test]
        fn gelu_is_within_its_bound(s in 0.002f64..0.2, s_y in 0.002f64..0.2) {
            let g = Gelu::new(s, s_y).unwrap();
            for q in -128i64..=127 {
                let x = q as f64 * s;
                let got = g.eval(q) as f64 * s_y;
                let bound = GELU_ERROR * x.abs().max(1.0) + s_y * 0.5 + 1e-9;
                prop_assert!((got - gelu(x)).abs() <= bound, "x {x}: {got} vs {}", gelu(x));
            }
        }

        /// Each LayerNorm output is within one output step plus LAYERNORM_ERROR·|γ| of the
        /// exact one, where the exact one is inside the output's range.
        #[test]
        fn layernorm_is_within_its_bound(
            codes in proptest::collection::vec(-128i64..=127, 2..96),
            s in 0.005f64..0.5,
            seed in 0u64..1000,
        ) {
            let n = codes.len();
            let g: Vec<f32> = (0..n).map(|c| 0.5 + ((c as u64 * 7 + seed) % 13) as f32 / 10.0
                * if (c as u64 + seed).is_multiple_of(3) { -1.0 } else { 1.0 }).collect();
            let b: Vec<f32> = (0..n).map(|c| ((c as u64 * 5 + seed) % 11) as f32 / 10.0 - 0.5)
                .collect();
            let (s_y, z_y) = (8.0 / 255.0, 128i64);
            let ln = LayerNorm::new(&g, &b, 1e-5, s, (s_y, z_y, 0, 255)).unwrap();
            let mut out = vec![0; n];
            ln.row(&codes, &mut out);
            let xs: Vec<f64> = codes.iter().map(|&q| q as f64 * s).collect();
            let exact = layernorm_f(&xs, &g, &b, 1e-5);
            for c in 0..n {
                let e = exact[c];
                if !(-4.0..=4.0).contains(&e) {
                    continue;
                }
                let got = (out[c] - z_y) as f64 * s_y;
                let bound = s_y + LAYERNORM_ERROR * f64::from(g[c].abs());
                prop_assert!((got - e).abs() <= bound, "channel {c}: {got} vs {e}");
            }
        }
    }

    #[test]
    fn constant_rows_normalize_to_beta() {
        let ln = LayerNorm::new(&[1.0; 4], &[0.5; 4], 0.0, 0.1, (0.01, 0, -128, 127)).unwrap();
        let mut out = [0; 4];
        ln.row(&[3, 3, 3, 3], &mut out);
        assert_eq!(out, [50; 4]);
    }

    #[test]
    fn bad_constants_are_refused() {
        assert!(Exp::new(0.0).is_err());
        assert!(Exp::new(1e-9).is_err() && Gelu::new(0.1, 1e-9).is_err());
        // The finest step allowed keeps every product inside its integers.
        let s = 2f64.powi(-24);
        let g = Gelu::new(s, 1e-6).unwrap();
        assert_eq!(g.eval(0), 0);
        assert!(g.eval(32767) > 0 && g.eval(-32768) <= 0);
        let sm = Softmax::new(s, 8).unwrap();
        let mut out = [0; 2];
        sm.row(&[-32768, 32767], &mut out);
        // 65,535 steps of 2^−24 apart: e^−0.0039, nearly even.
        assert_eq!(out, [127, 128]);
        assert!(Softmax::new(0.1, 0).is_err());
        assert!(Gelu::new(f64::NAN, 0.1).is_err());
        assert!(LayerNorm::new(&[1.0], &[], 1e-5, 0.1, (0.1, 0, -128, 127)).is_err());
        assert!(LayerNorm::new(&[1.0], &[0.0], -1.0, 0.1, (0.1, 0, -128, 127)).is_err());
    }
}
