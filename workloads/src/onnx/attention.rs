//! Attention in ONNX graphs: the heads of a [1, S, H·dₕ] token sequence as exporters write
//! them (Reshape to [1, S, H, dₕ], Transpose to [1, H, S, dₕ] for queries and values and to
//! [1, H, dₕ, S] for keys), the scores Q·Kᵀ, their 1/√dₕ scale, an additive causal mask, the
//! softmax over the keys and the context P·V, transposed and reshaped back to a sequence.
//!
//! The head views move no codes: queries, keys and values stay the F×S layers that computed
//! them, as the network's attention layers read them (`Op::AttnScores`, `Op::AttnSoftmax`,
//! `Op::AttnContext`, heads as contiguous blocks of dₕ features). A view is refused wherever
//! an op other than these reads it, and so is a scale other than 1/√dₕ (the scores layer's
//! own) or a mask that is neither zero nor causal.

use super::consts::{self, Folded};
use super::{Act, Importer, NodeResult, Unsupported, Val, proto};
use crate::net::Op;
use crate::weights::Tensor;

fn folded<T>(r: Folded<T>) -> Result<T, Unsupported> {
    r.map_err(Unsupported)
}

/// A view of activations as attention heads (the layer's codes are not moved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heads {
    /// [1, S, H, dₕ]: a token sequence's features split into H heads (an F×S layer).
    Split(usize),
    /// [1, H, S, dₕ]: a row per token in each of H heads: queries, values or a context (an
    /// F×S layer).
    Rows(usize),
    /// [1, H, dₕ, S]: keys, transposed (an F×S layer).
    Cols(usize),
    /// [1, H, Sq, Sk]: scores (an H·Sk × Sq layer), `scaled` once divided by √dₕ, `causal`
    /// once a causal mask is added, `probs` after the softmax.
    Scores {
        /// Heads.
        heads: usize,
        /// Divided by √dₕ.
        scaled: bool,
        /// A causal mask added.
        causal: bool,
        /// Probabilities (after the softmax).
        probs: bool,
    },
}

/// Every value of `t` at (i, j) of its last two axes is the same in each leading index.
fn mask_at(t: &Tensor, heads: usize, (sq, sk): (usize, usize)) -> Result<Vec<f32>, Unsupported> {
    let d = &t.dims;
    let n = d.len();
    let (tq, tk) = match n {
        0 => (1, 1),
        1 => (1, d[0]),
        _ => (d[n - 2], d[n - 1]),
    };
    // Leading axes: at most [batch 1, heads 1 or H], so the sum keeps the scores' shape.
    let lead_ok = n <= 4 && (n < 4 || d[0] == 1) && (n < 3 || d[n - 3] == 1 || d[n - 3] == heads);
    if !(tq == sq || tq == 1) || !(tk == sk || tk == 1) || !lead_ok {
        return Err(Unsupported(format!(
            "an attention mask of dimensions {d:?} over [1, {heads}, {sq}, {sk}] scores (one \
             that broadcasts to them without changing their shape: [{sq}, {sk}], [1, 1, {sq}, \
             {sk}] or [1, {heads}, {sq}, {sk}], any of those axes possibly 1)"
        )));
    }
    let v = t.to_vec();
    let plane = tq * tk;
    let at = |i: usize, j: usize| v[(i % tq) * tk + (j % tk)];
    if v.chunks(plane).any(|p| p != &v[..plane]) {
        return Err(Unsupported(
            "an attention mask that differs between heads (one mask for every head is \
             supported)"
                .into(),
        ));
    }
    Ok((0..sq)
        .flat_map(|i| (0..sk).map(move |j| (i, j)))
        .map(|(i, j)| at(i, j))
        .collect())
}

impl Importer<'_> {
    /// Input `i` as an activation with its head view, if any.
    pub(super) fn heads_of(&self, node: &proto::Node, i: usize) -> Option<(Act, Heads)> {
        match self.val(node, i) {
            Ok(Val::Act(a)) if a.pad == [0; 4] => a.heads.map(|h| (a.clone(), h)),
            _ => None,
        }
    }

    /// A Reshape of a token sequence into heads ([1, S, F] → [1, S, H, F/H]), or of split
    /// heads back into a sequence; None for any other reshape.
    pub(super) fn head_reshape(&self, a: &Act, dims: &[usize]) -> Option<Act> {
        match (a.heads, &a.dims[..], dims) {
            (None, &[1, s, f], &[1, s2, h, dh]) if a.tokens && s == s2 && h * dh == f => {
                Some(Act {
                    dims: dims.to_vec(),
                    tokens: false,
                    heads: Some(Heads::Split(h)),
                    ..a.clone()
                })
            }
            (Some(Heads::Split(_)), &[1, s, h, dh], &[1, s2, f]) if s == s2 && h * dh == f => {
                Some(Act {
                    dims: dims.to_vec(),
                    tokens: true,
                    heads: None,
                    ..a.clone()
                })
            }
            _ => None,
        }
    }

    /// A Transpose of a head view: split heads to rows ([0, 2, 1, 3]) or to transposed keys
    /// ([0, 2, 3, 1]), rows to transposed keys ([0, 1, 3, 2]) or back to split heads
    /// ([0, 2, 1, 3]).
    pub(super) fn head_transpose(
        &mut self,
        node: &proto::Node,
        a: Act,
        perm: &[usize],
    ) -> NodeResult {
        let h = a.heads.expect("a head view");
        let to = match (h, perm) {
            (Heads::Split(n), [0, 2, 1, 3]) => Heads::Rows(n),
            (Heads::Split(n), [0, 2, 3, 1]) | (Heads::Rows(n), [0, 1, 3, 2]) => Heads::Cols(n),
            (Heads::Rows(n), [0, 2, 1, 3]) => Heads::Split(n),
            _ => {
                return Err(Unsupported(format!(
                    "Transpose {perm:?} of attention heads viewed as {h:?} (heads split, to \
                     rows, keys transposed and back are supported)"
                )));
            }
        };
        let dims = perm.iter().map(|&p| a.dims[p]).collect();
        self.alias(
            node,
            Val::Act(Act {
                dims,
                heads: Some(to),
                ..a
            }),
        );
        Ok(())
    }

    /// MatMul of two activations: queries by transposed keys (the scores) or probabilities
    /// by values (the context).
    pub(super) fn attention_matmul(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let (a, b) = match (self.heads_of(node, 0), self.heads_of(node, 1)) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(Unsupported(
                    "MatMul of two activations that are not attention heads (queries by \
                     transposed keys, or probabilities by values; weights are a MatMul's \
                     second operand, a constant)"
                        .into(),
                ));
            }
        };
        let (op, heads, dims) = match (a.1, b.1) {
            (Heads::Rows(h), Heads::Cols(h2)) if h == h2 => {
                let (sq, sk) = (a.0.dims[2], b.0.dims[3]);
                let heads = Heads::Scores {
                    heads: h,
                    scaled: false,
                    causal: false,
                    probs: false,
                };
                (Op::AttnScores { heads: h }, heads, vec![1, h, sq, sk])
            }
            (
                Heads::Scores {
                    heads: h,
                    probs: true,
                    ..
                },
                Heads::Rows(h2),
            ) if h == h2 => {
                let (sq, dh) = (a.0.dims[2], b.0.dims[3]);
                (
                    Op::AttnContext { heads: h },
                    Heads::Rows(h),
                    vec![1, h, sq, dh],
                )
            }
            (x, y) => {
                return Err(Unsupported(format!(
                    "MatMul of attention heads viewed as {x:?} and {y:?} (queries by \
                     transposed keys, or probabilities after a Softmax by values, with one \
                     head count)"
                )));
            }
        };
        self.head_layer(node, label, op, &[a.0.layer, b.0.layer], (heads, dims))
    }

    /// A layer of the attention ops, bound to the node's output with its head view.
    fn head_layer(
        &mut self,
        node: &proto::Node,
        label: &str,
        op: Op,
        inputs: &[usize],
        (heads, dims): (Heads, Vec<usize>),
    ) -> NodeResult {
        let l = self.push_layer(label, op, inputs)?;
        if let Some(out) = node.outputs.first() {
            self.roots.insert(l, out.clone());
            self.vals.insert(
                out.clone(),
                Val::Act(Act {
                    heads: Some(heads),
                    ..Act::new(l, None, dims)
                }),
            );
        }
        Ok(())
    }

    /// Div or Mul of scores by a constant (their 1/√dₕ scale), or Add of a constant mask
    /// (zero, or causal: 0 where key j ≤ i + Sk − Sq, at most −10⁴ above).
    pub(super) fn head_arith(&mut self, node: &proto::Node) -> NodeResult {
        let op = node.op_type.as_str();
        let k = usize::from(self.heads_of(node, 0).is_none());
        let (a, h) = self.heads_of(node, k).expect("an input with heads");
        let Heads::Scores {
            heads,
            scaled,
            causal,
            probs: false,
        } = h
        else {
            return Err(Unsupported(format!(
                "{op} of attention heads viewed as {h:?} (only the scores' scale and mask are \
                 supported)"
            )));
        };
        let c = match self.val(node, 1 - k)? {
            Val::Const { t, .. } => t.clone(),
            Val::Act(_) => {
                return Err(Unsupported(format!(
                    "{op} of attention scores and an activation (a constant scale or mask is \
                     supported)"
                )));
            }
        };
        // dₕ of the queries' layer: its features over the heads.
        let q = self.net.layers[a.layer].inputs[0];
        let dh = self.shapes[q].c / heads;
        let (sq, sk) = (a.dims[2], a.dims[3]);
        // A scale divides the scores (Div of the scores by c, or Mul either way round).
        let scale_op = (op == "Div" && k == 0) || op == "Mul";
        let to = if scale_op && !scaled {
            if c.len() != 1 {
                return Err(Unsupported(format!(
                    "attention scores scaled by a constant of dimensions {:?} (one value, \
                     √dₕ to divide by or 1/√dₕ to multiply by, is supported)",
                    c.dims
                )));
            }
            let v = super::scalar(&c, "the scores' scale")?;
            let scale = if op == "Div" { 1.0 / v } else { v };
            let want = 1.0 / (dh as f32).sqrt();
            if (scale - want).abs() > 1e-4 * want {
                return Err(Unsupported(format!(
                    "attention scores scaled by {scale} (only 1/√dₕ = {want}, the scores \
                     layer's own, is supported)"
                )));
            }
            Heads::Scores {
                heads,
                scaled: true,
                causal,
                probs: false,
            }
        } else if op == "Add" && scaled && !causal {
            let m = mask_at(&c, heads, (sq, sk))?;
            let zero = m.iter().all(|&v| v == 0.0);
            let is_causal = (0..sq).all(|i| {
                (0..sk).all(|j| {
                    let v = m[i * sk + j];
                    if j + sq <= i + sk {
                        v == 0.0
                    } else {
                        v <= -1e4
                    }
                })
            });
            if !(zero || is_causal) {
                return Err(Unsupported(
                    "an attention mask that is neither zero nor causal (0 up to each query's \
                     own position, at most -1e4 after it)"
                        .into(),
                ));
            }
            Heads::Scores {
                heads,
                scaled,
                causal: is_causal && !zero,
                probs: false,
            }
        } else {
            return Err(Unsupported(format!(
                "{op} of attention scores {} (a Div of the scores by √dₕ or a Mul by 1/√dₕ, \
                 then the Add of a zero or causal constant mask, are supported)",
                if scaled {
                    "already scaled"
                } else {
                    "not yet scaled"
                }
            )));
        };
        self.alias(
            node,
            Val::Act(Act {
                heads: Some(to),
                ..a
            }),
        );
        Ok(())
    }

    /// Softmax of scaled scores over the keys (the last axis): an attention softmax layer.
    pub(super) fn head_softmax(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let (a, h) = self.heads_of(node, 0).expect("an input with heads");
        // Before opset 13 a Softmax's default axis is 1, over the inputs flattened from it.
        let default = if self.opset < 13 { 1 } else { -1 };
        let axis = folded(consts::axis(node.int("axis", default), a.dims.len()))?;
        match h {
            Heads::Scores {
                heads,
                scaled: true,
                causal,
                probs: false,
            } if axis == 3 => {
                let view = Heads::Scores {
                    heads,
                    scaled: true,
                    causal,
                    probs: true,
                };
                let op = Op::AttnSoftmax { heads, causal };
                self.head_layer(node, label, op, &[a.layer], (view, a.dims.clone()))
            }
            _ => Err(Unsupported(format!(
                "Softmax over axis {axis} of attention heads viewed as {h:?} (over the keys, \
                 axis 3, of scores divided by √dₕ)"
            ))),
        }
    }
}
