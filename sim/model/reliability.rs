//! The expected effect of gate errors on a network run: how often each gate is evaluated,
//! its derived error probability, and what follows for an inference (docs/model.md §1.7.1).
//!
//! The estimate an analytical run states and a functional run with injected errors is
//! checked against (`experiment::run`, `tests::estimate_meets_injection` there):
//! - a gate of kind g evaluated n_g times per inference at error probability p_g gives
//!   λ = Σ_g n_g·p_g expected output flips per inference (exact: each evaluation flips
//!   independently, as `engine::exec::Faults` injects them);
//! - the inference is free of flips with probability P₀ = Π_g (1 − p_g)^{n_g} [D];
//! - an inference without a flip computes the golden result; one with a flip may still
//!   (the flip can be masked), so P₀ is a lower bound on the bit-exact share, and the
//!   accuracy lies between `clean × P₀` (every flipped inference wrong) and
//!   `clean × P₀ + (1 − P₀)` (every one right) [D].

use cram_arch::{GateKind, GateLibrary};

/// What gate errors do to one inference.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Per gate kind the run evaluates: (kind, derived error probability, evaluations per
    /// inference).
    pub gates: Vec<(GateKind, f64, f64)>,
    /// λ: expected gate-output flips per inference.
    pub expected_flips: f64,
    /// P₀: probability that an inference sees no flip.
    pub p_flip_free: f64,
}

impl Estimate {
    /// From the lane evaluations of each gate kind over `images` inferences and the
    /// device's gate library.
    pub fn new(evals: &[u64; GateKind::COUNT], images: usize, lib: &GateLibrary) -> Estimate {
        let per = 1.0 / images.max(1) as f64;
        let gates: Vec<(GateKind, f64, f64)> = GateKind::ALL
            .iter()
            .filter(|g| evals[g.index()] > 0)
            .map(|&g| (g, lib.get(g).error_prob, evals[g.index()] as f64 * per))
            .collect();
        Estimate::of(gates)
    }

    /// From (kind, probability, evaluations per inference) triples.
    pub fn of(gates: Vec<(GateKind, f64, f64)>) -> Estimate {
        let expected_flips = gates.iter().map(|&(_, p, n)| p * n).sum();
        // ln P₀ = Σ n·ln(1 − p), with ln_1p for small p; a gate that always fails gives 0.
        let ln_p0: f64 = gates.iter().map(|&(_, p, n)| n * (-p).ln_1p()).sum();
        Estimate {
            gates,
            expected_flips,
            p_flip_free: ln_p0.exp(),
        }
    }

    /// The accuracy bounds for a clean (error-free) accuracy `clean`: every inference with
    /// a flip counted wrong, and every one counted right.
    pub fn accuracy_bounds(&self, clean: f64) -> (f64, f64) {
        let p0 = self.p_flip_free;
        (clean * p0, clean * p0 + (1.0 - p0))
    }
}

/// The per-gate error probabilities a functional run injects ([`GateKind::index`] order).
pub fn derived_rates(lib: &GateLibrary) -> [f64; GateKind::COUNT] {
    std::array::from_fn(|i| lib.get(GateKind::ALL[i]).error_prob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_free_probability_is_the_product_of_the_gates() {
        let e = Estimate::of(vec![
            (GateKind::Nand, 1e-3, 1000.0),
            (GateKind::Not, 2e-3, 500.0),
        ]);
        assert!((e.expected_flips - 2.0).abs() < 1e-12);
        let want = (1.0f64 - 1e-3).powf(1000.0) * (1.0f64 - 2e-3).powf(500.0);
        assert!((e.p_flip_free - want).abs() < 1e-12, "{}", e.p_flip_free);
        let (lo, hi) = e.accuracy_bounds(0.9);
        assert!((lo - 0.9 * want).abs() < 1e-12 && (hi - (lo + 1.0 - want)).abs() < 1e-12);
    }

    #[test]
    fn no_errors_means_certainty_and_a_sure_failure_means_none() {
        let clean = Estimate::of(vec![(GateKind::Nand, 0.0, 1e9)]);
        assert_eq!((clean.expected_flips, clean.p_flip_free), (0.0, 1.0));
        let sure = Estimate::of(vec![(GateKind::Maj5, 1.0, 1.0)]);
        assert_eq!(sure.p_flip_free, 0.0);
    }
}
