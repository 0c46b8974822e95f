//! The importer's graph plumbing: shape operations on activations (views over a layer's
//! codes, see [`Act`]), constant folding of everything computed from constants (the ONNX
//! shape subgraphs, [`super::consts`]), element-wise arithmetic of an activation with a
//! per-channel constant (folded into the Conv, Dense or BatchNorm before it, or a new
//! BatchNorm), n-ary sums, Pad into the next window, ReduceMean over H×W (or a token
//! sequence's positions) as a global average
//! pool, and an NHWC input transposed at once.

use super::consts::{self, Folded};
use super::{Act, Importer, NodeResult, Unsupported, Val, dims_of, proto};
use crate::net::{Op, Shape};
use crate::weights::{Data, Tensor};

fn folded<T>(r: Folded<T>) -> Result<T, Unsupported> {
    r.map_err(Unsupported)
}

impl Importer<'_> {
    /// Every op that is not a layer of its own (see the module documentation).
    pub(super) fn graph_op(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let op = node.op_type.as_str();
        let all_const = !node.inputs.is_empty()
            && node
                .inputs
                .iter()
                .enumerate()
                .filter(|(_, n)| !n.is_empty())
                .all(|(i, _)| matches!(self.val(node, i), Ok(Val::Const { .. })));
        match op {
            "Shape" | "Size" => {
                let dims = match self.val(node, 0)? {
                    Val::Act(a) => a.dims.clone(),
                    Val::Const { t, .. } => t.dims.clone(),
                };
                let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
                let t = if op == "Size" {
                    Tensor::new(vec![], vec![dims.iter().product::<i64>() as f32])
                } else {
                    let r = dims.len() as i64;
                    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                    let (a, b) = (clamp(node.int("start", 0)), clamp(node.int("end", r)));
                    consts::from_ints(&dims[a..b.max(a)])
                };
                self.constant(node, t);
            }
            "Cast" | "CastLike" => match self.val(node, 0)?.clone() {
                Val::Const { t, w_bits } => {
                    // Float to integer truncates toward zero; to bool, non-zero is 1.
                    let to = node.int("to", 1);
                    let t = match to {
                        9 => consts::unary(&t, |x| f32::from(u8::from(x != 0.0))),
                        2..=7 | 12 | 13 => consts::unary(&t, f32::trunc),
                        _ => t,
                    };
                    self.alias(node, Val::Const { t, w_bits });
                }
                v @ Val::Act(_) => self.alias(node, v),
            },
            "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => self.reshape(node, label)?,
            "Transpose" => self.transpose(node, label)?,
            "Gather" if all_const => {
                let (data, indices) = (self.konst(node, 0)?.0, self.konst(node, 1)?.0);
                let t = folded(consts::gather(&data, &indices, node.int("axis", 0)))?;
                self.constant(node, t);
            }
            "Slice" if all_const => {
                let (data, _) = self.konst(node, 0)?;
                let keep = self.slice_keep(node, &data.dims)?;
                let t = folded(consts::slice(&data, &keep))?;
                self.constant(node, t);
            }
            "Slice" => {
                let a = self.view(node, 0)?;
                let keep = self.slice_keep(node, &a.dims)?;
                let whole = |k: &Vec<usize>, d: usize| {
                    k.len() == d && k.iter().enumerate().all(|(i, &j)| i == j)
                };
                let others_whole = keep
                    .iter()
                    .zip(&a.dims)
                    .enumerate()
                    .all(|(axis, (k, &d))| axis == 1 || whole(k, d));
                // A slice that keeps everything (x[:, :]) is a no-op; one of a contiguous
                // run of channels a Channels layer.
                if others_whole && keep.get(1).is_none_or(|k| whole(k, a.dims[1])) {
                    self.alias(node, Val::Act(a));
                } else if others_whole
                    && keep[1].windows(2).all(|w| w[1] == w[0] + 1)
                    && !keep[1].is_empty()
                {
                    let (start, len) = (keep[1][0], keep[1].len());
                    self.channels(node, label, &a, start, len, node.outputs.first(), true)?;
                } else {
                    return Err(Unsupported(format!(
                        "Slice of a {:?} activation other than a contiguous run of channels",
                        a.dims
                    )));
                }
            }
            "Gather" if !all_const => {
                // One channel of an activation (x[:, k]): the axis goes.
                let a = self.view(node, 0)?;
                let (idx, _) = self.konst(node, 1)?;
                let axis = folded(consts::axis(node.int("axis", 0), a.dims.len()))?;
                if axis != 1 || idx.len() != 1 {
                    return Err(Unsupported(format!(
                        "Gather of a {:?} activation other than one channel",
                        a.dims
                    )));
                }
                let n = a.dims[1] as i64;
                let k = idx.get(0) as i64;
                let k = if k < 0 { k + n } else { k };
                if !(0..n).contains(&k) {
                    return Err(Unsupported(format!("channel {k} of {n}")));
                }
                let keep_axis = !idx.dims.is_empty();
                self.channels(
                    node,
                    label,
                    &a,
                    k as usize,
                    1,
                    node.outputs.first(),
                    keep_axis,
                )?;
            }
            "Split" if !all_const => {
                let a = self.view(node, 0)?;
                let axis = folded(consts::axis(node.int("axis", 0), a.dims.len()))?;
                if axis != 1 {
                    return Err(Unsupported(format!(
                        "Split of a {:?} activation along axis {axis} (only channels)",
                        a.dims
                    )));
                }
                let sizes = self.split_sizes(node, a.dims[1])?;
                if sizes.iter().sum::<usize>() != a.dims[1] || sizes.contains(&0) {
                    return Err(Unsupported(format!(
                        "Split of {} channels into {sizes:?}",
                        a.dims[1]
                    )));
                }
                let mut start = 0;
                for (k, &len) in sizes.iter().enumerate() {
                    let name = format!("{label}.{k}");
                    self.channels(node, &name, &a, start, len, node.outputs.get(k), true)?;
                    start += len;
                }
            }
            "Split" if all_const => {
                let (data, _) = self.konst(node, 0)?;
                let a = folded(consts::axis(node.int("axis", 0), data.dims.len()))?;
                let sizes = self.split_sizes(node, data.dims[a])?;
                let parts = folded(consts::split(&data, a as i64, &sizes))?;
                for (out, t) in node.outputs.iter().zip(parts) {
                    self.vals
                        .insert(out.clone(), Val::Const { t, w_bits: None });
                }
            }
            "Concat" if all_const => {
                let ts = (0..node.inputs.len())
                    .map(|i| self.konst(node, i).map(|c| c.0))
                    .collect::<Result<Vec<_>, _>>()?;
                let t = folded(consts::concat(&ts, node.int("axis", 0)))?;
                self.constant(node, t);
            }
            "Concat" => {
                let rank = self.view(node, 0)?.dims.len();
                let a = folded(consts::axis(node.int("axis", 1), rank))?;
                if a != 1 {
                    return Err(Unsupported(format!(
                        "Concat along axis {a} of a rank-{rank} activation (only channels, axis 1)"
                    )));
                }
                let ins = (0..node.inputs.len())
                    .map(|i| self.act(node, i).map(|(x, _)| x))
                    .collect::<Result<Vec<_>, _>>()?;
                self.layer(node, label, Op::Concat, &ins, None)?;
            }
            "Where" if all_const => {
                let c = (0..3)
                    .map(|i| self.konst(node, i).map(|c| c.0))
                    .collect::<Result<Vec<_>, _>>()?;
                let t = folded(consts::select(&c[0], &c[1], &c[2]))?;
                self.constant(node, t);
            }
            "Range" if all_const => {
                let v = (0..3)
                    .map(|i| {
                        self.konst(node, i)
                            .and_then(|c| super::scalar(&c.0, "a Range bound"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let t = folded(consts::range(v[0], v[1], v[2]))?;
                self.constant(node, t);
            }
            "Expand" if all_const => {
                let (t, _) = self.konst(node, 0)?;
                let shape = folded(consts::ints(&self.konst(node, 1)?.0))?;
                let t = folded(consts::expand(&t, &shape))?;
                self.constant(node, t);
            }
            "Pad" => self.pad(node)?,
            "ReduceMean" => self.reduce_mean(node, label)?,
            "Add" | "Sum" | "Sub" | "Mul" | "Div" if !all_const => self.arith(node, label)?,
            _ if all_const && consts::binary_fn(op).is_some() => {
                let f = consts::binary_fn(op).expect("checked");
                let mut acc = self.konst(node, 0)?.0;
                for i in 1..node.inputs.len() {
                    acc = folded(consts::binary(&acc, &self.konst(node, i)?.0, f))?;
                }
                self.constant(node, acc);
            }
            _ if all_const && consts::unary_fn(op).is_some() => {
                let t = consts::unary(
                    &self.konst(node, 0)?.0,
                    consts::unary_fn(op).expect("checked"),
                );
                self.constant(node, t);
            }
            other => return Err(Unsupported(format!("op type {other} is not supported"))),
        }
        Ok(())
    }

    /// Channels `start..start + len` of activation `a` as a Channels layer named `label`,
    /// bound to `out`; `keep_axis` false drops the channel axis from the view (a Gather).
    #[allow(clippy::too_many_arguments)]
    fn channels(
        &mut self,
        _node: &proto::Node,
        label: &str,
        a: &Act,
        start: usize,
        len: usize,
        out: Option<&String>,
        keep_axis: bool,
    ) -> NodeResult {
        if a.tokens || a.pad != [0; 4] || a.dims.len() < 2 {
            return Err(Unsupported(format!(
                "channels of a {:?} token sequence or zero-padded activation",
                a.dims
            )));
        }
        let x = self.materialize(a)?;
        let l = self.push_layer(label, Op::Channels { start, len }, &[x])?;
        let mut dims = a.dims.clone();
        if keep_axis {
            dims[1] = len;
        } else {
            dims.remove(1);
        }
        if let Some(out) = out {
            self.vals.insert(
                out.clone(),
                Val::Act(Act {
                    layer: l,
                    dims,
                    ..a.clone()
                }),
            );
        }
        Ok(())
    }

    /// The com.microsoft contrib ops of ONNX Runtime's int8 models, as the layers of their
    /// float forms (the activation bits from the type of the output zero point): QLinearAdd,
    /// QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat and QGemm.
    pub(super) fn microsoft_op(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let bits = |me: &Self, i: usize| me.int_bits_of(node, i).or(Some(8));
        if node.int("channels_last", 0) != 0 {
            return Err(Unsupported(format!(
                "{} with channels_last = 1",
                node.op_type
            )));
        }
        match node.op_type.as_str() {
            "QLinearAdd" => {
                let (a, _) = self.act(node, 0)?;
                let (b, _) = self.act(node, 3)?;
                let out = bits(self, 7);
                let l = self.layer(node, label, Op::Add, &[a, b], out)?;
                self.record_format(node, l, 6, 7);
            }
            "QLinearGlobalAveragePool" => {
                let (x, _) = self.act(node, 0)?;
                let out = bits(self, 4);
                let l = self.layer(node, label, Op::GlobalAvgPool, &[x], out)?;
                self.record_format(node, l, 3, 4);
            }
            "QLinearAveragePool" => {
                let (x, _) = self.act(node, 0)?;
                let window = self.window(&node.ints("kernel_shape"), node, x, [0; 4])?;
                let count_pad =
                    node.int("count_include_pad", 0) == 1 || !(window.ceil || window.pad != [0; 4]);
                let out = bits(self, 4);
                let l = self.layer(node, label, Op::AvgPool { window, count_pad }, &[x], out)?;
                self.record_format(node, l, 3, 4);
            }
            "QLinearConcat" => {
                // Inputs: y_scale, y_zero_point, then (x, scale, zero point) per input.
                let rank = self.view(node, 2)?.dims.len();
                let a = folded(consts::axis(node.int("axis", 1), rank))?;
                if a != 1 || node.inputs.len() < 5 || !(node.inputs.len() - 2).is_multiple_of(3) {
                    return Err(Unsupported(format!(
                        "QLinearConcat of {} inputs along axis {a} (only channels)",
                        node.inputs.len()
                    )));
                }
                let ins = (2..node.inputs.len())
                    .step_by(3)
                    .map(|i| self.act(node, i).map(|(x, _)| x))
                    .collect::<Result<Vec<_>, _>>()?;
                let out = bits(self, 1);
                let l = self.layer(node, label, Op::Concat, &ins, out)?;
                self.record_format(node, l, 0, 1);
            }
            "QGemm" => self.dense(node, label)?,
            other => {
                return Err(Unsupported(format!(
                    "com.microsoft op type {other} is not supported"
                )));
            }
        }
        Ok(())
    }

    /// Binds the node's outputs to a folded constant.
    fn constant(&mut self, node: &proto::Node, t: Tensor) {
        self.alias(node, Val::Const { t, w_bits: None });
    }

    /// The axes list of a node: its attribute (before opset 13/18) or input `i`.
    fn axes(&self, node: &proto::Node, i: usize) -> Result<Vec<i64>, Unsupported> {
        if node.attr("axes").is_some() {
            return Ok(node.ints("axes"));
        }
        match self.opt_konst(node, i)? {
            Some(t) => folded(consts::ints(&t)),
            None => Ok(vec![]),
        }
    }

    /// The indices Slice keeps on each axis of `dims` (starts, ends, axes, steps from inputs
    /// 1–4, or the attributes of opset < 10).
    fn slice_keep(
        &self,
        node: &proto::Node,
        dims: &[usize],
    ) -> Result<Vec<Vec<usize>>, Unsupported> {
        let list = |attr: &str, i: usize| -> Result<Option<Vec<i64>>, Unsupported> {
            if node.attr(attr).is_some() {
                return Ok(Some(node.ints(attr)));
            }
            self.opt_konst(node, i)?
                .map(|t| folded(consts::ints(&t)))
                .transpose()
        };
        let starts =
            list("starts", 1)?.ok_or_else(|| Unsupported("Slice without starts".into()))?;
        let ends = list("ends", 2)?.ok_or_else(|| Unsupported("Slice without ends".into()))?;
        let axes = list("axes", 3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = list("steps", 4)?.unwrap_or_else(|| vec![1; starts.len()]);
        if [ends.len(), axes.len(), steps.len()]
            .iter()
            .any(|&n| n != starts.len())
        {
            return Err(Unsupported(format!(
                "Slice starts {starts:?}, ends {ends:?}, axes {axes:?}, steps {steps:?} differ in length"
            )));
        }
        let mut keep: Vec<Vec<usize>> = dims.iter().map(|&d| (0..d).collect()).collect();
        for k in 0..starts.len() {
            let a = folded(consts::axis(axes[k], dims.len()))?;
            keep[a] = folded(consts::slice_indices(dims[a], starts[k], ends[k], steps[k]))?;
        }
        Ok(keep)
    }

    /// The part sizes of a Split of `n` elements (input 1 or the `split` attribute, else
    /// `num_outputs` or one part per output).
    fn split_sizes(&self, node: &proto::Node, n: usize) -> Result<Vec<usize>, Unsupported> {
        let given = if node.attr("split").is_some() {
            Some(node.ints("split"))
        } else {
            self.opt_konst(node, 1)?
                .map(|t| folded(consts::ints(&t)))
                .transpose()?
        };
        let parts = node.int("num_outputs", node.outputs.len() as i64).max(0) as usize;
        folded(consts::split_sizes(n, given, parts))
    }

    /// Unsqueeze, Squeeze, Reshape and Flatten: new dimensions over the same elements. On an
    /// activation they make a view, and a Flatten layer where the view is a vector of
    /// another shape than the layer's.
    fn reshape(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let dims_in = match self.val(node, 0)? {
            Val::Act(a) => a.dims.clone(),
            Val::Const { t, .. } => t.dims.clone(),
        };
        let dims = match node.op_type.as_str() {
            "Unsqueeze" => folded(consts::unsqueeze_dims(&dims_in, &self.axes(node, 1)?))?,
            "Squeeze" => folded(consts::squeeze_dims(&dims_in, &self.axes(node, 1)?))?,
            "Reshape" => {
                let (target, _) = self.konst(node, 1)?;
                let target = folded(consts::ints(&target))?;
                folded(consts::reshape_dims(
                    &dims_in,
                    &target,
                    node.int("allowzero", 0) == 1,
                ))?
            }
            _ => {
                let a = folded(consts::axis(node.int("axis", 1), dims_in.len() + 1))?;
                let (outer, inner) = dims_in.split_at(a);
                vec![outer.iter().product(), inner.iter().product()]
            }
        };
        match self.val(node, 0)?.clone() {
            Val::Const { t, w_bits } => {
                self.alias(
                    node,
                    Val::Const {
                        t: consts::with_dims(&t, dims),
                        w_bits,
                    },
                );
            }
            Val::Act(a) => {
                if let Some(view) = self.head_reshape(&a, &dims) {
                    self.alias(node, Val::Act(view));
                    return Ok(());
                }
                if a.tokens || a.pad != [0; 4] || a.heads.is_some() {
                    return Err(Unsupported(format!(
                        "{} of a token sequence (other than into attention heads, [1, S, H, \
                         F/H]), of attention heads (other than back) or of a zero-padded \
                         activation",
                        node.op_type
                    )));
                }
                let view = Act { dims, ..a };
                // A view that is a vector of another shape is a Flatten layer of this node's
                // name; any other view waits for the op that reads it.
                let have = self.shapes[view.layer];
                match super::implied(&view.dims) {
                    Some(want) if want != have && want.h * want.w == 1 => {
                        let l = self.push_layer(label, Op::Flatten, &[view.layer])?;
                        self.flattened.insert(view.layer, l);
                        self.alias(node, Val::Act(Act { layer: l, ..view }));
                    }
                    _ => self.alias(node, Val::Act(view)),
                }
            }
        }
        Ok(())
    }

    /// Transpose: of a constant, folded; of an activation, a view when only axes of size 1
    /// move, or an NHWC graph input read only by this node ([0, 3, 1, 2]), which becomes its
    /// NCHW form (the input layer takes the transposed shape: feeding data is a layout
    /// choice, not work).
    fn transpose(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let perm = node.ints("perm");
        match self.val(node, 0)?.clone() {
            Val::Const { t, w_bits } => {
                let t = folded(consts::transpose(&t, &perm))?;
                self.alias(node, Val::Const { t, w_bits });
            }
            Val::Act(a) => {
                let rank = a.dims.len();
                let perm: Vec<usize> = if perm.is_empty() {
                    (0..rank).rev().collect()
                } else {
                    perm.iter()
                        .map(|&p| folded(consts::axis(p, rank)))
                        .collect::<Result<_, _>>()?
                };
                if a.heads.is_some() {
                    return self.head_transpose(node, a, &perm);
                }
                let dims: Vec<usize> = perm.iter().map(|&p| a.dims[p]).collect();
                let moved: Vec<usize> = perm.iter().copied().filter(|&p| a.dims[p] != 1).collect();
                let order_kept = moved.windows(2).all(|w| w[0] < w[1]);
                if order_kept && !a.tokens && a.pad == [0; 4] {
                    self.alias(node, Val::Act(Act { dims, ..a }));
                    return Ok(());
                }
                // A channel shuffle: [1, g, C/g, H, W] over a C×H×W layer, its two channel
                // axes swapped.
                let have = self.shapes[a.layer];
                if let [1, g, cg, h, w] = a.dims[..]
                    && perm == [0, 2, 1, 3, 4]
                    && !a.tokens
                    && a.pad == [0; 4]
                    && (g * cg, h, w) == (have.c, have.h, have.w)
                {
                    let l = self.push_layer(label, Op::Shuffle { groups: g }, &[a.layer])?;
                    self.alias(
                        node,
                        Val::Act(Act {
                            layer: l,
                            dims,
                            ..a
                        }),
                    );
                    return Ok(());
                }
                let sole = node
                    .inputs
                    .first()
                    .is_some_and(|n| self.readers.get(n) == Some(&1));
                if a.layer == 0
                    && perm == [0, 3, 1, 2]
                    && rank == 4
                    && sole
                    && self.net.layers.len() == 1
                {
                    let shape = Shape::new(a.dims[3], a.dims[1], a.dims[2]);
                    self.net.layers[0].op = Op::Input { shape };
                    self.shapes[0] = shape;
                    self.stats[0].out = shape;
                    self.alias(node, Val::Act(Act::new(0, a.a_bits, dims_of(shape, 4))));
                    return Ok(());
                }
                return Err(Unsupported(format!(
                    "Transpose {perm:?} of a {:?} activation (supported: moving axes of size 1, \
                     and an NHWC input transposed to NCHW at once)",
                    a.dims
                )));
            }
        }
        Ok(())
    }

    /// Pad with zeros on H and W of a 4-D activation: pending for the Conv or AveragePool
    /// that reads it.
    fn pad(&mut self, node: &proto::Node) -> NodeResult {
        let a = self.view(node, 0)?;
        if let Some(h) = a.heads {
            return Err(Unsupported(format!(
                "Pad of attention heads viewed as {h:?} (heads are read whole)"
            )));
        }
        let mode = node
            .attr("mode")
            .and_then(|m| m.s.clone())
            .map_or("constant".to_owned(), |s| {
                String::from_utf8_lossy(&s).into_owned()
            });
        let pads = if node.attr("pads").is_some() {
            node.ints("pads")
        } else {
            folded(consts::ints(&self.konst(node, 1)?.0))?
        };
        let value = match node.attr("value").and_then(|v| v.f) {
            Some(v) => v,
            None => match self.opt_konst(node, 2)? {
                Some(t) if !t.is_empty() => t.get(0),
                _ => 0.0,
            },
        };
        let rank = a.dims.len();
        let spatial_only = pads.len() == 2 * rank
            && rank == 4
            && pads.iter().all(|&p| p >= 0)
            && [0, 1, 4, 5].iter().all(|&k| pads[k] == 0);
        if mode != "constant"
            || value != 0.0
            || !spatial_only
            || node.inputs.get(3).is_some_and(|n| !n.is_empty())
        {
            return Err(Unsupported(format!(
                "Pad ({mode}, value {value}, pads {pads:?}) of a {:?} activation: only zero \
                 padding of height and width is supported",
                a.dims
            )));
        }
        let add = [pads[2], pads[3], pads[6], pads[7]].map(|p| p as usize);
        if add.iter().any(|&p| p > 1 << 20) {
            return Err(Unsupported(format!("pads {pads:?} above 2^20")));
        }
        let pad = std::array::from_fn(|k| a.pad[k] + add[k]);
        self.alias(node, Val::Act(Act { pad, ..a }));
        Ok(())
    }

    /// ReduceMean over height and width of a 4-D activation, or over the positions of a
    /// [1, S, F] token sequence: a global average pool.
    fn reduce_mean(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let a = self.view(node, 0)?;
        let rank = a.dims.len();
        let mut axes: Vec<usize> = self
            .axes(node, 1)?
            .iter()
            .map(|&x| folded(consts::axis(x, rank)))
            .collect::<Result<_, _>>()?;
        axes.sort_unstable();
        // The mean over a token sequence's positions: its global average pool.
        if a.tokens && axes == [1] {
            let (x, bits) = self.act(node, 0)?;
            let l = self.layer(node, label, Op::GlobalAvgPool, &[x], bits)?;
            let f = self.shapes[l].c;
            let view = if node.int("keepdims", 1) == 0 {
                Act::new(l, bits, vec![1, f])
            } else {
                Act {
                    tokens: true,
                    ..Act::new(l, bits, vec![1, 1, f])
                }
            };
            self.alias(node, Val::Act(view));
            return Ok(());
        }
        if rank != 4 || axes != [2, 3] || a.tokens {
            return Err(Unsupported(format!(
                "ReduceMean over axes {axes:?} of a {:?} activation (height and width, or a \
                 token sequence's positions, axis 1)",
                a.dims
            )));
        }
        let (x, bits) = self.act(node, 0)?;
        let l = self.layer(node, label, Op::GlobalAvgPool, &[x], bits)?;
        if node.int("keepdims", 1) == 0 {
            let c = self.shapes[l].c;
            self.alias(node, Val::Act(Act::new(l, bits, vec![1, c])));
        }
        Ok(())
    }

    /// Add, Sum, Sub, Mul and Div with an activation: two activations add (a Sum of more
    /// adds in a chain); an activation and a per-channel constant make y = s·x + b, folded
    /// into the Conv or Dense before it (its weights and bias) or the BatchNorm before it
    /// (γ and β) when this node is that layer's only reader, else a BatchNorm of its own
    /// (ε = 0, μ = 0, σ² = 1, γ = s, β = b).
    fn arith(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let op = node.op_type.as_str();
        if (0..node.inputs.len())
            .any(|i| matches!(self.val(node, i), Ok(Val::Act(a)) if a.heads.is_some()))
        {
            return self.head_arith(node);
        }
        let acts: Vec<usize> = (0..node.inputs.len())
            .filter(|&i| matches!(self.val(node, i), Ok(Val::Act(_))))
            .collect();
        if acts.len() == node.inputs.len() && op == "Mul" && node.inputs.len() == 2 {
            // The product of two activations, broadcast as ONNX does: equal dimensions, or
            // a gate of one value per channel (a squeeze-and-excitation gate's [1, C, 1, 1])
            // over a [1, C, H, W] activation, either first. The full-shaped one goes first.
            let (v0, v1) = (self.view(node, 0)?, self.view(node, 1)?);
            let (d0, d1) = (v0.dims, v1.dims);
            // A token sequence's channels are its last axis: only equal dimensions there.
            let gated = !(v0.tokens || v1.tokens);
            let (x0, bits) = self.act(node, 0)?;
            let (x1, _) = self.act(node, 1)?;
            let (a, b) = if d0 == d1 || (gated && channel_gate(&d0, &d1)) {
                (x0, x1)
            } else if gated && channel_gate(&d1, &d0) {
                (x1, x0)
            } else {
                return Err(Unsupported(format!(
                    "Mul of activations of dimensions {d0:?} and {d1:?} (equal dimensions, or \
                     one value per channel broadcast over the positions)"
                )));
            };
            self.layer(node, label, Op::Mul, &[a, b], bits)?;
            return Ok(());
        }
        if acts.len() == node.inputs.len() {
            if !matches!(op, "Add" | "Sum") || node.inputs.len() < 2 {
                return Err(Unsupported(format!(
                    "{op} of {} activations (two or more activations add, two multiply)",
                    node.inputs.len()
                )));
            }
            let (mut acc, bits) = self.act(node, 0)?;
            let last = node.inputs.len() - 1;
            for i in 1..=last {
                let (y, _) = self.act(node, i)?;
                if i == last {
                    self.layer(node, label, Op::Add, &[acc, y], bits)?;
                } else {
                    acc = self.push_layer(&format!("{label}.{i}"), Op::Add, &[acc, y])?;
                }
            }
            return Ok(());
        }
        if node.inputs.len() != 2 {
            return Err(Unsupported(format!(
                "{op} of {} inputs with constants (two are supported)",
                node.inputs.len()
            )));
        }
        let k = acts[0];
        let a = self.view(node, k)?;
        let (c, _) = self.konst(node, 1 - k)?;
        let (x, bits) = self.act(node, k)?;
        let channels = self.shapes[x].c;
        let per = per_channel(&c, &a, channels).ok_or_else(|| {
            Unsupported(format!(
                "{op} of a {:?} activation and a constant of dimensions {:?} (only a scalar or \
                 one value per channel)",
                a.dims, c.dims
            ))
        })?;
        // Stored values (a fill would read as a structure-only model's placeholder).
        let one = |v: f32| Tensor::new(vec![channels], vec![v; channels]);
        let (scale, shift) = match (op, k) {
            ("Add" | "Sum", _) => (one(1.0), per),
            ("Sub", 0) => (one(1.0), consts::unary(&per, |v| -v)),
            ("Sub", _) => (one(-1.0), per),
            ("Mul", _) => (per, one(0.0)),
            ("Div", 0) => (consts::unary(&per, |v| 1.0 / v), one(0.0)),
            _ => {
                return Err(Unsupported(
                    "Div of a constant by an activation (a reciprocal of values)".into(),
                ));
            }
        };
        let name = node.inputs[k].clone();
        // The layer's only reader, also through the Q/DQ pairs of a quantized graph (one
        // QuantizeLinear dequantized for two consumers is read twice).
        let root = self.roots.get(&x).unwrap_or(&name);
        let sole = self.readers.get(&name) == Some(&1)
            && self.through.get(root) == Some(&1)
            && x + 1 == self.net.layers.len()
            && x == a.layer;
        let layer_name = self.net.layers[x].name.clone();
        let folded_into = if sole {
            match self.net.layers[x].op {
                Op::Conv2d { .. } | Op::Dense { .. } => self.scale_weighted(x, &scale, &shift),
                Op::BatchNorm { .. } => {
                    let g = self.weights.get(&layer_name, "gamma").cloned();
                    let b = self.weights.get(&layer_name, "beta").cloned();
                    match (g, b) {
                        (Some(g), Some(b)) => {
                            let g2 = folded(consts::binary(&g, &scale, |x, y| x * y))?;
                            let b1 = folded(consts::binary(&b, &scale, |x, y| x * y))?;
                            let b2 = folded(consts::binary(&b1, &shift, |x, y| x + y))?;
                            self.weights.insert(&layer_name, "gamma", g2);
                            self.weights.insert(&layer_name, "beta", b2);
                            true
                        }
                        _ => false,
                    }
                }
                Op::Input { .. }
                | Op::MaxPool { .. }
                | Op::AvgPool { .. }
                | Op::GlobalAvgPool
                | Op::Relu
                | Op::Relu6
                | Op::Add
                | Op::Concat
                | Op::Flatten
                | Op::Downsample { .. }
                | Op::Softmax
                | Op::Sign
                | Op::AttnScores { .. }
                | Op::AttnContext { .. }
                | Op::Shuffle { .. }
                | Op::Channels { .. }
                | Op::Lrn { .. }
                | Op::Unary { .. }
                | Op::Mul
                | Op::LayerNorm { .. }
                | Op::AttnSoftmax { .. }
                | Op::Embedding { .. }
                | Op::Positional { .. }
                | Op::KvCache { .. } => false,
            }
        } else {
            false
        };
        if folded_into {
            // The layer's output is now the affine's: a format recorded on it before no
            // longer describes it.
            self.acts.remove(&layer_name);
            self.weights_q.remove(&layer_name);
            self.alias(node, Val::Act(Act { a_bits: bits, ..a }));
            return Ok(());
        }
        // A scalar's affine is a constant of the graph, not a parameter.
        let op = Op::BatchNorm {
            eps: 0.0,
            counted: c.len() != 1,
        };
        let l = self.layer(node, label, op, &[x], bits)?;
        let name = self.net.layers[l].name.clone();
        self.weights.insert(&name, "gamma", scale);
        self.weights.insert(&name, "beta", shift);
        self.weights.insert(&name, "mean", one(0.0));
        self.weights.insert(&name, "var", one(1.0));
        if let Some(Val::Act(v)) = node.outputs.first().and_then(|o| self.vals.get_mut(o)) {
            v.dims = a.dims.clone();
        }
        Ok(())
    }

    /// y = s·(W·x + b) + t folded into weighted layer `x`: its rows scaled by s, its bias
    /// s·b + t. False (nothing changed) when its weights are a placeholder that s would make
    /// uneven.
    fn scale_weighted(&mut self, x: usize, s: &Tensor, t: &Tensor) -> bool {
        let name = self.net.layers[x].name.clone();
        let Some(w) = self.weights.get(&name, "weight").cloned() else {
            return false;
        };
        let c = s.len();
        let uniform = |t: &Tensor| match &t.data {
            Data::Fill(v) => Some(*v),
            Data::F32(v) => v.iter().all(|&x| x == v[0]).then(|| v[0]),
        };
        let w = match (&w.data, uniform(s)) {
            (_, Some(k)) => super::scale(&w, k),
            (Data::Fill(_), None) => return false,
            (Data::F32(v), None) => {
                let per = v.len() / c;
                Tensor::new(
                    w.dims.clone(),
                    v.iter()
                        .enumerate()
                        .map(|(i, &x)| x * s.get(i / per))
                        .collect(),
                )
            }
        };
        let has_bias = matches!(
            self.net.layers[x].op,
            Op::Conv2d { bias: true, .. } | Op::Dense { bias: true, .. }
        );
        let b0 = match self.weights.get(&name, "bias") {
            Some(b) if has_bias => b.clone(),
            _ => Tensor::new(vec![c], vec![0.0; c]),
        };
        let Ok(b) =
            consts::binary(&b0, s, |x, y| x * y).and_then(|b| consts::binary(&b, t, |x, y| x + y))
        else {
            return false;
        };
        let needs_bias = has_bias || uniform(&b) != Some(0.0);
        if let Op::Conv2d { bias, .. } | Op::Dense { bias, .. } = &mut self.net.layers[x].op {
            *bias = needs_bias;
        }
        self.weights.insert(&name, "weight", w);
        if needs_bias {
            self.weights
                .insert(&name, "bias", Tensor { dims: vec![c], ..b });
        }
        true
    }
}

/// The values of constant `c` per channel of the activation `a` (`channels` of them), if
/// `c` is a scalar or holds one value per channel on the channel axis (numpy broadcasting
/// against `a`'s dimensions: [C, 1, 1], [1, C, 1, 1], [C] against a vector, …).
fn per_channel(c: &Tensor, a: &Act, channels: usize) -> Option<Tensor> {
    if c.len() == 1 {
        return Some(match &c.data {
            Data::Fill(v) => Tensor {
                dims: vec![channels],
                data: Data::Fill(*v),
            },
            Data::F32(v) => Tensor::new(vec![channels], vec![v[0]; channels]),
        });
    }
    let rank = a.dims.len();
    if c.dims.len() > rank {
        return None;
    }
    let off = rank - c.dims.len();
    // The channel axis of the view: 1 ([1, C, …], [1, N]), 0 ([N]), or the last, a token
    // sequence's features ([1, S, F]).
    let axis = if a.tokens {
        rank - 1
    } else if rank == 1 {
        0
    } else {
        1
    };
    let ok = (0..c.dims.len()).all(|k| {
        let d = c.dims[k];
        if k + off == axis {
            d == channels
        } else {
            d == 1
        }
    }) && off <= axis;
    ok.then(|| Tensor {
        dims: vec![channels],
        data: c.data.clone(),
    })
}

/// Whether an activation of ONNX dimensions `gate` broadcasts over one of `full` as one value
/// per channel (numpy broadcasting: right-aligned; every axis 1 but `full`'s channel axis,
/// which it equals): [1, C, 1, 1] or [C, 1, 1] over [1, C, H, W]. A [1, C] or [C] gate lines
/// up with W, not C, and is not one.
fn channel_gate(full: &[usize], gate: &[usize]) -> bool {
    let rank = full.len();
    if rank < 3 || gate.len() > rank {
        return false;
    }
    let off = rank - gate.len();
    (0..rank).all(|k| {
        let g = if k < off { 1 } else { gate[k - off] };
        if k == 1 { g == full[1] } else { g == 1 }
    })
}
