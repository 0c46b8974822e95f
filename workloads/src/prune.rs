//! Weight pruning: unstructured magnitude (Han et al., NIPS 2015), structured filter or
//! input-channel pruning by L1 norm (Li et al., ICLR 2017, "Pruning filters for efficient
//! ConvNets"), and N:M fine-grained structured sparsity (NVIDIA Ampere 2:4; Mishra et al.
//! 2021). Each returns the sparsity it achieved (zeros / weights, counting zeros that were
//! already there). Ties in magnitude go to the lower index, so pruning is deterministic.

use serde::{Deserialize, Serialize};

use crate::weights::{Data, Tensor};

/// A pruning method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Prune {
    /// Zero the given fraction of weights with the smallest |w|, per tensor.
    Unstructured {
        /// Fraction to zero, 0..=1.
        sparsity: f64,
    },
    /// Zero whole output filters (dims[0]) with the smallest L1 norm.
    Filters {
        /// Fraction of filters to zero, 0..=1.
        fraction: f64,
    },
    /// Zero whole input channels (dims[1], in every filter) with the smallest L1 norm.
    Channels {
        /// Fraction of input channels to zero, 0..=1.
        fraction: f64,
    },
    /// Keep the `n` largest |w| of every `m` consecutive weights of a filter (row-major over
    /// its input channels and kernel positions, the GEMM reduction dimension).
    NM {
        /// Weights kept per group.
        n: usize,
        /// Group size.
        m: usize,
    },
}

impl Prune {
    /// Parses `unstructured:F`, `filters:F`, `channels:F` or `N:M` (e.g. `2:4`).
    pub fn parse(s: &str) -> Result<Prune, String> {
        let bad = || {
            format!(
                "pruning '{s}' is not one of unstructured:F, filters:F, channels:F (F a fraction \
                 in 0..=1) or N:M (0 ≤ N ≤ M, M ≥ 1, e.g. 2:4)"
            )
        };
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let frac = || {
            b.parse::<f64>()
                .ok()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(bad)
        };
        match a {
            "unstructured" => Ok(Prune::Unstructured { sparsity: frac()? }),
            "filters" => Ok(Prune::Filters { fraction: frac()? }),
            "channels" => Ok(Prune::Channels { fraction: frac()? }),
            _ => {
                let n = a.parse::<usize>().map_err(|_| bad())?;
                let m = b.parse::<usize>().map_err(|_| bad())?;
                if m == 0 || n > m {
                    return Err(bad());
                }
                Ok(Prune::NM { n, m })
            }
        }
    }

    /// Applies the method to `t` in place and returns the achieved sparsity.
    pub fn apply(&self, t: &mut Tensor) -> Result<f64, String> {
        let Data::F32(v) = &mut t.data else {
            return Err("cannot prune placeholder (constant-filled) weights".into());
        };
        if v.is_empty() {
            return Err("cannot prune an empty tensor".into());
        }
        let dims = &t.dims;
        match *self {
            Prune::Unstructured { sparsity } => {
                let k = (sparsity * v.len() as f64).round() as usize;
                for i in smallest(v.len(), k, |i| f64::from(v[i].abs())) {
                    v[i] = 0.0;
                }
            }
            Prune::Filters { fraction } => {
                let per = v.len() / dims[0];
                let norm = |f: usize| {
                    v[f * per..(f + 1) * per]
                        .iter()
                        .map(|x| f64::from(x.abs()))
                        .sum()
                };
                let k = (fraction * dims[0] as f64).round() as usize;
                for f in smallest(dims[0], k, norm) {
                    v[f * per..(f + 1) * per].fill(0.0);
                }
            }
            Prune::Channels { fraction } => {
                if dims.len() < 2 {
                    return Err(format!(
                        "channel pruning needs 2 or more dims, not {dims:?}"
                    ));
                }
                let inner: usize = dims[2..].iter().product();
                let cin = dims[1];
                let idx = |c: usize| {
                    (0..dims[0])
                        .flat_map(move |f| (0..inner).map(move |k| (f * cin + c) * inner + k))
                };
                let norm = |c: usize| idx(c).map(|i| f64::from(v[i].abs())).sum();
                let k = (fraction * cin as f64).round() as usize;
                for c in smallest(cin, k, norm) {
                    for i in idx(c) {
                        v[i] = 0.0;
                    }
                }
            }
            Prune::NM { n, m } => {
                let per = v.len() / dims[0];
                if m == 0 || n > m || !per.is_multiple_of(m) {
                    return Err(format!(
                        "{n}:{m} sparsity needs groups of {m} to tile each filter of {per} weights"
                    ));
                }
                for g in v.chunks_mut(m) {
                    for i in smallest(m, m - n, |i| f64::from(g[i].abs())) {
                        g[i] = 0.0;
                    }
                }
            }
        }
        Ok(v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64)
    }
}

/// The `k` indices of 0..n with the smallest key (ties: lower index first).
fn smallest(n: usize, k: usize, key: impl Fn(usize) -> f64) -> Vec<usize> {
    let keys: Vec<f64> = (0..n).map(key).collect();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]).then(a.cmp(&b)));
    idx.truncate(k.min(n));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dims: Vec<usize>) -> Tensor {
        let n: usize = dims.iter().product();
        // Distinct magnitudes, alternating signs: |w| = i + 1.
        let v = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    (i + 1) as f32
                } else {
                    -((i + 1) as f32)
                }
            })
            .collect();
        Tensor::new(dims, v)
    }

    #[test]
    fn each_method_reaches_its_sparsity_and_keeps_the_largest() {
        let mut w = t(vec![4, 8]);
        assert_eq!(
            Prune::Unstructured { sparsity: 0.75 }.apply(&mut w),
            Ok(0.75)
        );
        let v = w.to_vec();
        assert!(v[..24].iter().all(|&x| x == 0.0) && v[24..].iter().all(|&x| x != 0.0));

        let mut w = t(vec![4, 2, 2]);
        assert_eq!(Prune::Filters { fraction: 0.5 }.apply(&mut w), Ok(0.5));
        assert!(
            w.to_vec()[..8].iter().all(|&x| x == 0.0),
            "filters 0 and 1 have the smallest L1"
        );

        let mut w = t(vec![2, 4, 1]);
        assert_eq!(Prune::Channels { fraction: 0.25 }.apply(&mut w), Ok(0.25));
        let v = w.to_vec();
        assert_eq!((v[0], v[4]), (0.0, 0.0), "input channel 0 of both filters");

        let mut w = t(vec![2, 8]);
        assert_eq!(Prune::NM { n: 2, m: 4 }.apply(&mut w), Ok(0.5));
        for g in w.to_vec().chunks(4) {
            assert_eq!(g.iter().filter(|&&x| x != 0.0).count(), 2);
            assert!(
                g[2] != 0.0 && g[3] != 0.0,
                "the two largest of each group survive: {g:?}"
            );
        }
        let mut w = t(vec![2, 6]);
        assert!(
            Prune::NM { n: 2, m: 4 }
                .apply(&mut w)
                .unwrap_err()
                .contains("tile")
        );
    }

    #[test]
    fn parse_accepts_the_documented_forms_only() {
        assert_eq!(Prune::parse("2:4"), Ok(Prune::NM { n: 2, m: 4 }));
        assert_eq!(
            Prune::parse("filters:0.5"),
            Ok(Prune::Filters { fraction: 0.5 })
        );
        for bad in [
            "5:4",
            "0:0",
            "unstructured:1.5",
            "x",
            "filters:-1",
            "rows:0.5",
        ] {
            let e = Prune::parse(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("N:M"), "{e}");
        }
    }
}
