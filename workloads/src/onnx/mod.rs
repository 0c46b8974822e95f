//! ONNX import: graph and weights into the network IR (`docs/references.md` B5).
//!
//! Supported ops: Conv, Gemm, MatMul, Relu, Clip (as ReLU/ReLU6), MaxPool, AveragePool,
//! GlobalAveragePool, Add/Sum of two activations (or a constant bias after MatMul/Conv),
//! Concat, Flatten, Reshape (to a vector), BatchNormalization, Softmax, Dropout and Identity
//! (inference no-ops), Constant and ConstantOfShape (weights of structure-only models), and the
//! quantized forms: QuantizeLinear/DequantizeLinear around Conv/MatMul/Gemm, QLinearConv,
//! QLinearMatMul, MatMulInteger and ConvInteger; multi-head attention over a [1, S, F] token
//! sequence with separate query, key and value projections and a constant mask
//! (`attention`). Quantized weights are imported dequantized
//! ((q − zero point) · scale, per tensor or per channel) and the layer records its weight and
//! activation bit-widths from the integer types; a per-tensor activation format (the scale and
//! zero point of a QuantizeLinear of a layer's output, or of a QLinear op's output) is kept in
//! `Imported::acts` for compression to use instead of calibrating.
//!
//! Any other op is an error naming the node and op type; with `skip_unsupported` the node is
//! listed in `Imported::skipped` and its first input passes through unchanged.

mod attention;
pub mod consts;
mod graph;
pub mod proto;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::WorkloadError;
use crate::net::{Bits, LayerStats, Network, Op, Shape, UnaryFn, Window};
use crate::quant::{ActQuant, WeightFormat};
use crate::weights::{Data, Tensor, Weights};

/// An imported model.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The graph.
    pub net: Network,
    /// Its parameters.
    pub weights: Weights,
    /// Nodes skipped (`name (op_type)`), with `skip_unsupported`.
    pub skipped: Vec<String>,
    /// ONNX opset of the default domain.
    pub opset: i64,
    /// The activation formats the file records, by layer: the scale and zero point of a
    /// per-tensor QuantizeLinear of the layer's output, or of a QLinear op's output. Only
    /// formats an [`ActQuant`] holds are kept (see [`Importer::record_format`]).
    pub acts: BTreeMap<String, ActQuant>,
    /// The weight formats the file records, by layer: the integer type, scales and zero
    /// points of its weight tensor's DequantizeLinear (or a QLinear op's w_scale and
    /// w_zero_point), per tensor or per output channel. Compression gives the layer those
    /// codes where its weights still are exactly their values (`QWeight::from_format`).
    pub weights_q: BTreeMap<String, WeightFormat>,
}

/// How a DequantizeLinear's constant input is coded: r = scale·(q − zero) per tensor or
/// along `axis`, q an integer of `bits` bits, signed or not.
#[derive(Debug, Clone)]
struct Coding {
    scale: Tensor,
    zero: Option<Tensor>,
    axis: usize,
    bits: u32,
    signed: bool,
}

/// A value flowing between nodes.
#[derive(Debug, Clone)]
enum Val {
    /// An activation: a layer's output as the graph sees it.
    Act(Act),
    /// A constant, with the bit-width of its integer type if quantized.
    Const { t: Tensor, w_bits: Option<u32> },
}

/// A layer's output as the graph sees it: its ONNX dimensions (batch first) over the layer's
/// codes, and a zero padding still to apply.
#[derive(Debug, Clone)]
struct Act {
    /// The layer.
    layer: usize,
    /// Bit-width of a quantized activation.
    a_bits: Option<u32>,
    /// ONNX dimensions, batch first. The layer's codes in their C×H×W order are these
    /// dimensions' elements in row-major order, except for a token sequence (`tokens`).
    dims: Vec<usize>,
    /// A [1, S, F] token sequence, whose layer is F×S (features×positions).
    tokens: bool,
    /// Zero padding of a Pad node for the next windowed op: top, left, bottom, right.
    pad: [usize; 4],
    /// A view of the layer's features as attention heads (`attention`).
    heads: Option<attention::Heads>,
}

impl Act {
    fn new(layer: usize, a_bits: Option<u32>, dims: Vec<usize>) -> Act {
        Act {
            layer,
            a_bits,
            dims,
            tokens: false,
            pad: [0; 4],
            heads: None,
        }
    }
}

/// ONNX dimensions of `rank` for a layer output of `shape` (a rank it cannot have: 4).
fn dims_of(shape: Shape, rank: usize) -> Vec<usize> {
    match rank {
        1 if shape.h * shape.w == 1 => vec![shape.c],
        2 if shape.h * shape.w == 1 => vec![1, shape.c],
        3 if shape.w == 1 => vec![1, shape.c, shape.h],
        _ => vec![1, shape.c, shape.h, shape.w],
    }
}

/// The layer shape whose C×H×W order is the row-major order of ONNX `dims` (batch first):
/// [1, C, H, W], [1, C, L] (C×L×1), [1, N] and [N] (vectors); None for any other.
fn implied(dims: &[usize]) -> Option<Shape> {
    match *dims {
        [n] | [1, n] => Some(Shape::vector(n)),
        [1, c, l] => Some(Shape::new(c, l, 1)),
        [1, c, h, w] => Some(Shape::new(c, h, w)),
        _ => None,
    }
}

/// Imports the ONNX model in `bytes`; `origin` (the file name) is quoted in errors.
pub fn import(
    bytes: &[u8],
    origin: &str,
    skip_unsupported: bool,
) -> Result<Imported, WorkloadError> {
    let model = proto::decode_model(bytes).map_err(|e| WorkloadError::File {
        path: origin.to_owned(),
        why: format!("not a readable ONNX model: {e}"),
    })?;
    let mut im = Importer {
        origin,
        opset: model.opset,
        net: Network::new(stem(origin), Shape::vector(1)),
        shapes: vec![],
        stats: vec![],
        names: HashSet::new(),
        dups: HashMap::new(),
        flattened: HashMap::new(),
        weights: Weights::default(),
        vals: HashMap::new(),
        readers: HashMap::new(),
        through: HashMap::new(),
        roots: HashMap::new(),
        dtypes: HashMap::new(),
        skipped: vec![],
        acts: BTreeMap::new(),
        codings: HashMap::new(),
        weights_q: BTreeMap::new(),
    };
    for name in model
        .graph
        .nodes
        .iter()
        .flat_map(|n| &n.inputs)
        .chain(model.graph.outputs.iter().map(|o| &o.name))
    {
        *im.readers.entry(name.clone()).or_insert(0) += 1;
    }
    // Readers through pass-through nodes, last node first (ONNX lists nodes in topological
    // order, so a node's output has its count before the node is met).
    for o in &model.graph.outputs {
        *im.through.entry(o.name.clone()).or_insert(0) += 1;
    }
    for node in model.graph.nodes.iter().rev() {
        let pass = matches!(
            node.op_type.as_str(),
            "QuantizeLinear" | "DequantizeLinear" | "Identity" | "Dropout"
        ) && matches!(node.domain.as_str(), "" | "ai.onnx");
        for (k, name) in node.inputs.iter().enumerate() {
            let n = match node.outputs.first() {
                Some(out) if pass && k == 0 => im.through.get(out).copied().unwrap_or(0),
                _ => 1,
            };
            *im.through.entry(name.clone()).or_insert(0) += n;
        }
    }
    for t in &model.graph.initializers {
        let c = const_of(t).map_err(|why| im.err_tensor(&t.name, &why))?;
        im.vals.insert(t.name.clone(), c);
        im.dtypes.insert(t.name.clone(), t.data_type);
    }
    let input = model
        .graph
        .inputs
        .iter()
        .find(|v| !im.vals.contains_key(&v.name))
        .ok_or_else(|| im.file_err("the graph has no non-constant input".into()))?;
    let shape = input_shape(&input.dims).map_err(|why| {
        im.file_err(format!(
            "graph input '{}' has an unsupported shape: {why}",
            input.name
        ))
    })?;
    im.net = Network::new(stem(origin), shape);
    im.shapes = vec![shape];
    im.stats = im.net.stats()?;
    im.names = im.net.layers.iter().map(|l| l.name.clone()).collect();
    let tokens = input.dims.len() == 3;
    let dims = if tokens {
        vec![1, shape.h, shape.c]
    } else {
        dims_of(shape, input.dims.len())
    };
    im.vals.insert(
        input.name.clone(),
        Val::Act(Act {
            tokens,
            ..Act::new(0, None, dims)
        }),
    );
    for (i, node) in model.graph.nodes.iter().enumerate() {
        let label = if node.name.is_empty() {
            format!("#{i}")
        } else {
            node.name.clone()
        };
        match im.node(node, &label) {
            Ok(()) => {}
            Err(Unsupported(why)) if skip_unsupported => {
                im.skipped
                    .push(format!("{label} ({}): {why}", node.op_type));
                let first = node
                    .inputs
                    .first()
                    .and_then(|n| im.vals.get(n).cloned())
                    .ok_or_else(|| im.node_err(&label, node, "has no input to pass through"))?;
                for out in &node.outputs {
                    im.vals.insert(out.clone(), first.clone());
                }
            }
            Err(Unsupported(why)) => return Err(im.node_err(&label, node, &why)),
        }
    }
    im.net.stats()?;
    Ok(Imported {
        net: im.net,
        weights: im.weights,
        skipped: im.skipped,
        opset: model.opset,
        acts: im.acts,
        weights_q: im.weights_q,
    })
}

/// Why a node cannot be imported.
struct Unsupported(String);

type NodeResult = Result<(), Unsupported>;

struct Importer<'a> {
    origin: &'a str,
    /// ONNX opset of the default domain.
    opset: i64,
    net: Network,
    shapes: Vec<Shape>,
    /// Every layer's stats so far (the graph is checked one layer at a time).
    stats: Vec<LayerStats>,
    /// Every layer name so far.
    names: HashSet<String>,
    /// The last suffix given to each repeated label.
    dups: HashMap<String, usize>,
    /// The Flatten layer made of each layer whose output a reshape viewed as a vector.
    flattened: HashMap<usize, usize>,
    weights: Weights,
    vals: HashMap<String, Val>,
    /// Element types of the constants from the file (initializers and Constant nodes).
    dtypes: HashMap<String, i32>,
    /// How many nodes (and graph outputs) read each value.
    readers: HashMap<String, usize>,
    /// How many nodes (and graph outputs) read each value through QuantizeLinear,
    /// DequantizeLinear, Identity and Dropout (which pass it on): a value quantized once and
    /// dequantized for two consumers has two.
    through: HashMap<String, usize>,
    /// The ONNX output that made each layer (its first), by layer.
    roots: HashMap<usize, String>,
    skipped: Vec<String>,
    /// Recorded activation formats by layer name ([`Imported::acts`]).
    acts: BTreeMap<String, ActQuant>,
    /// How each dequantized constant was coded, by the DequantizeLinear's output name.
    codings: HashMap<String, Coding>,
    /// Recorded weight formats by layer name ([`Imported::weights_q`]).
    weights_q: BTreeMap<String, WeightFormat>,
}

fn stem(origin: &str) -> &str {
    let base = origin.rsplit(['/', '\\']).next().unwrap_or(origin);
    base.strip_suffix(".onnx").unwrap_or(base)
}

fn input_shape(dims: &[Option<i64>]) -> Result<Shape, String> {
    let d = |i: usize| -> Result<usize, String> {
        match dims.get(i).copied().flatten() {
            Some(v) if v > 0 => Ok(v as usize),
            _ => Err(format!("dimension {i} is not a positive number ({dims:?})")),
        }
    };
    match dims.len() {
        4 => Ok(Shape::new(d(1)?, d(2)?, d(3)?)),
        3 => Ok(Shape::new(d(2)?, d(1)?, 1)),
        2 => Ok(Shape::vector(d(1)?)),
        1 => Ok(Shape::vector(d(0)?)),
        n => Err(format!("{n} dimensions (1 to 4 are supported)")),
    }
}

/// Bits of an ONNX integer element type.
fn int_bits(data_type: i32) -> Option<u32> {
    match data_type {
        2 | 3 => Some(8),
        4 | 5 => Some(16),
        6 => Some(32),
        21 | 22 => Some(4),
        _ => None,
    }
}

/// The values of a tensor as f64, from whichever field holds them.
fn values(t: &proto::Tensor) -> Result<Vec<f64>, String> {
    if t.external {
        return Err("its data is in an external file, which is not supported".into());
    }
    let n = element_count(&t.dims)?;
    let raw = &t.raw;
    let v: Vec<f64> = if !raw.is_empty() {
        let width = match t.data_type {
            1 | 6 | 12 => 4,
            2 | 3 | 9 => 1,
            4 | 5 | 10 | 16 => 2,
            7 | 11 | 13 => 8,
            21 | 22 => return nibbles(raw, n, t.data_type == 22),
            d => return Err(format!("element type {d} is not supported")),
        };
        if raw.len() != n * width {
            return Err(format!(
                "raw_data has {} bytes, {} elements of {width} bytes need {}",
                raw.len(),
                n,
                n * width
            ));
        }
        raw.chunks_exact(width)
            .map(|c| match t.data_type {
                1 => f32::from_le_bytes(c.try_into().expect("4")) as f64,
                6 => i32::from_le_bytes(c.try_into().expect("4")) as f64,
                12 => u32::from_le_bytes(c.try_into().expect("4")) as f64,
                2 | 9 => c[0] as f64,
                3 => c[0] as i8 as f64,
                4 => u16::from_le_bytes(c.try_into().expect("2")) as f64,
                5 => i16::from_le_bytes(c.try_into().expect("2")) as f64,
                10 => f16_to_f32(u16::from_le_bytes(c.try_into().expect("2"))) as f64,
                16 => f32::from_bits((u16::from_le_bytes(c.try_into().expect("2")) as u32) << 16)
                    as f64,
                7 => i64::from_le_bytes(c.try_into().expect("8")) as f64,
                13 => u64::from_le_bytes(c.try_into().expect("8")) as f64,
                _ => f64::from_le_bytes(c.try_into().expect("8")),
            })
            .collect()
    } else {
        match t.data_type {
            1 => t.floats.iter().map(|&x| x as f64).collect(),
            7 => t.int64s.iter().map(|&x| x as f64).collect(),
            11 => t.doubles.clone(),
            10 => t
                .int32s
                .iter()
                .map(|&x| f16_to_f32(x as u16) as f64)
                .collect(),
            2 | 3 | 4 | 5 | 6 | 9 => t.int32s.iter().map(|&x| x as i32 as f64).collect(),
            d => return Err(format!("element type {d} is not supported")),
        }
    };
    if v.len() != n {
        return Err(format!(
            "holds {} values but its dimensions {:?} need {n}",
            v.len(),
            t.dims
        ));
    }
    Ok(v)
}

/// Number of elements of a tensor of `dims` (at most 2^40; negative dims are refused).
fn element_count(dims: &[i64]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1u64, |a, &d| {
            u64::try_from(d).ok().and_then(|d| a.checked_mul(d))
        })
        .filter(|&n| n <= 1 << 40)
        .map(|n| n as usize)
        .ok_or_else(|| format!("dimensions {dims:?} are negative or hold more than 2^40 elements"))
}

/// 4-bit elements, two per byte, low nibble first.
fn nibbles(raw: &[u8], n: usize, signed: bool) -> Result<Vec<f64>, String> {
    if raw.len() != n.div_ceil(2) {
        return Err(format!(
            "raw_data has {} bytes for {n} 4-bit values",
            raw.len()
        ));
    }
    Ok((0..n)
        .map(|i| {
            let b = (raw[i / 2] >> (4 * (i % 2))) & 0xf;
            if signed && b >= 8 {
                b as f64 - 16.0
            } else {
                b as f64
            }
        })
        .collect())
}

/// IEEE half to single precision.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

/// The first element of a scalar-like constant, or why there is none.
fn scalar(t: &Tensor, what: &str) -> Result<f32, Unsupported> {
    if t.is_empty() {
        return Err(Unsupported(format!("{what} has no element")));
    }
    Ok(t.get(0))
}

/// Largest constant the importer expands element by element (2^26; placeholder weights
/// stay unexpanded fills).
const MAX_EXPANDED: usize = 1 << 26;

/// Every element of `t`, refusing to expand a huge fill.
fn expand(t: &Tensor, what: &str) -> Result<Vec<f32>, Unsupported> {
    if !t.is_dense() && t.len() > MAX_EXPANDED {
        return Err(Unsupported(format!(
            "{what} would expand {} elements (at most 2^26)",
            t.len()
        )));
    }
    Ok(t.to_vec())
}

fn const_of(t: &proto::Tensor) -> Result<Val, String> {
    let v = values(t)?;
    let dims = t.dims.iter().map(|&d| d as usize).collect();
    Ok(Val::Const {
        t: Tensor::new(dims, v.into_iter().map(|x| x as f32).collect()),
        w_bits: int_bits(t.data_type),
    })
}

impl Importer<'_> {
    fn file_err(&self, why: String) -> WorkloadError {
        WorkloadError::File {
            path: self.origin.to_owned(),
            why,
        }
    }

    fn err_tensor(&self, name: &str, why: &str) -> WorkloadError {
        self.file_err(format!("tensor '{name}' {why}"))
    }

    fn node_err(&self, label: &str, node: &proto::Node, why: &str) -> WorkloadError {
        self.file_err(format!(
            "node '{label}' (op type {}): {why} (`cramulator inspect {} --skip-unsupported` \
             lists every such node)",
            node.op_type, self.origin
        ))
    }

    fn val(&self, node: &proto::Node, i: usize) -> Result<&Val, Unsupported> {
        let name = node
            .inputs
            .get(i)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Unsupported(format!("input {i} is missing")))?;
        self.vals
            .get(name)
            .ok_or_else(|| Unsupported(format!("input '{name}' is produced by no earlier node")))
    }

    /// Input `i` as an activation, as the graph sees it.
    fn view(&self, node: &proto::Node, i: usize) -> Result<Act, Unsupported> {
        match self.val(node, i)? {
            Val::Act(a) => Ok(a.clone()),
            Val::Const { .. } => Err(Unsupported(format!(
                "input {i} is a constant where an activation is expected"
            ))),
        }
    }

    /// Input `i` as the layer whose C×H×W output it is (a Flatten layer is added for a
    /// reshape to a vector), with its bits; a pending Pad is refused (only windowed ops
    /// take it, through [`Importer::windowed`]).
    fn act(&mut self, node: &proto::Node, i: usize) -> Result<(usize, Option<u32>), Unsupported> {
        let (x, a, pad) = self.windowed(node, i)?;
        if pad != [0; 4] {
            return Err(Unsupported(format!(
                "input {i} is zero-padded by a Pad node; only a Conv or AveragePool (counting \
                 the padding) can take the padding"
            )));
        }
        Ok((x, a))
    }

    /// [`Importer::act`] with the pending zero padding, for a windowed op.
    fn windowed(
        &mut self,
        node: &proto::Node,
        i: usize,
    ) -> Result<(usize, Option<u32>, [usize; 4]), Unsupported> {
        let a = self.view(node, i)?;
        Ok((self.materialize(&a)?, a.a_bits, a.pad))
    }

    /// The layer whose C×H×W output is the activation `a` as viewed (see [`implied`]).
    fn materialize(&mut self, a: &Act) -> Result<usize, Unsupported> {
        if let Some(h) = a.heads {
            return Err(Unsupported(format!(
                "attention heads viewed as {h:?} read by an op other than the attention ops \
                 (Transpose, Reshape, MatMul, the scores' scale and mask, Softmax)"
            )));
        }
        if a.tokens {
            return Ok(a.layer);
        }
        let have = self.shapes[a.layer];
        match implied(&a.dims) {
            Some(want) if want == have => Ok(a.layer),
            Some(want) if want.h * want.w == 1 => {
                if let Some(&f) = self.flattened.get(&a.layer) {
                    return Ok(f);
                }
                let name = format!("{}.flatten", self.net.layers[a.layer].name);
                let f = self.push_layer(&name, Op::Flatten, &[a.layer])?;
                self.flattened.insert(a.layer, f);
                Ok(f)
            }
            _ => Err(Unsupported(format!(
                "a {have} activation viewed as {:?}: only reshapes that keep it or flatten it \
                 are supported",
                a.dims
            ))),
        }
    }

    fn konst(&self, node: &proto::Node, i: usize) -> Result<(Tensor, Option<u32>), Unsupported> {
        match self.val(node, i)? {
            Val::Const { t, w_bits } => Ok((t.clone(), *w_bits)),
            Val::Act(_) => Err(Unsupported(format!(
                "input {i} is computed at run time where a constant (weights) is expected"
            ))),
        }
    }

    fn opt_konst(&self, node: &proto::Node, i: usize) -> Result<Option<Tensor>, Unsupported> {
        if node.inputs.get(i).is_none_or(|n| n.is_empty()) {
            return Ok(None);
        }
        self.konst(node, i).map(|(t, _)| Some(t))
    }

    /// Adds a layer, infers its shape, and binds the node's first output to it, viewed with
    /// `rank` dimensions (see [`dims_of`]; a token sequence stays one).
    fn layer(
        &mut self,
        node: &proto::Node,
        label: &str,
        op: Op,
        inputs: &[usize],
        a_bits: Option<u32>,
    ) -> Result<usize, Unsupported> {
        let first = node
            .inputs
            .first()
            .and_then(|n| self.vals.get(n))
            .and_then(|v| match v {
                Val::Act(a) => Some((a.dims.len(), a.tokens)),
                Val::Const { .. } => None,
            });
        let rank = match op {
            Op::Conv2d { .. }
            | Op::MaxPool { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::Downsample { .. } => 4,
            Op::Flatten => 2,
            Op::Input { .. }
            | Op::Dense { .. }
            | Op::Relu
            | Op::Relu6
            | Op::Add
            | Op::Concat
            | Op::BatchNorm { .. }
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
            | Op::KvCache { .. } => first.map_or(4, |f| f.0),
        };
        let tokens = first.is_some_and(|f| f.1) && rank != 4;
        let i = self.push_layer(label, op, inputs)?;
        if let Some(out) = node.outputs.first() {
            self.roots.insert(i, out.clone());
            let s = self.shapes[i];
            let dims = if tokens {
                vec![1, s.h, s.c]
            } else {
                dims_of(s, rank)
            };
            self.vals.insert(
                out.clone(),
                Val::Act(Act {
                    tokens,
                    ..Act::new(i, a_bits, dims)
                }),
            );
        }
        Ok(i)
    }

    /// Adds a layer named `label` (made unique) and infers its shape.
    fn push_layer(&mut self, label: &str, op: Op, inputs: &[usize]) -> Result<usize, Unsupported> {
        // A repeated label gets the first free `_2`, `_3`, … (counted per label, so many
        // nodes of one name stay linear).
        let mut name = label.to_owned();
        if self.names.contains(&name) {
            let k = self.dups.entry(label.to_owned()).or_insert(1);
            loop {
                *k += 1;
                name = format!("{label}_{k}");
                if !self.names.contains(&name) {
                    break;
                }
            }
        }
        let i = self.net.push(name.clone(), op, inputs);
        // Only the new layer is checked: the earlier ones were, one at a time.
        match self.net.stats_at(i, &self.stats) {
            Ok(s) => {
                self.shapes.push(s.out);
                self.stats.push(s);
                self.names.insert(name);
            }
            Err(e) => {
                self.net.layers.pop();
                return Err(Unsupported(e.to_string()));
            }
        }
        Ok(i)
    }

    fn alias(&mut self, node: &proto::Node, v: Val) {
        for out in &node.outputs {
            self.vals.insert(out.clone(), v.clone());
        }
    }

    fn node(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        if node.domain == "com.microsoft" {
            return self.microsoft_op(node, label);
        }
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(Unsupported(format!(
                "domain '{}' is not supported",
                node.domain
            )));
        }
        match node.op_type.as_str() {
            "Constant" => {
                let t = node
                    .attr("value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| {
                        Unsupported("only the `value` tensor form is supported".into())
                    })?;
                let v = const_of(t).map_err(Unsupported)?;
                for out in &node.outputs {
                    self.dtypes.insert(out.clone(), t.data_type);
                }
                self.alias(node, v);
            }
            "ConstantOfShape" => {
                let (shape, _) = self.konst(node, 0)?;
                let dims64: Vec<i64> = expand(&shape, "the shape")?
                    .iter()
                    .map(|&d| d as i64)
                    .collect();
                element_count(&dims64).map_err(Unsupported)?;
                let dims = dims64.iter().map(|&d| d as usize).collect();
                let fill = match node.attr("value").and_then(|a| a.t.as_ref()) {
                    Some(t) => values(t)
                        .map_err(Unsupported)?
                        .first()
                        .copied()
                        .unwrap_or(0.0),
                    None => 0.0,
                } as f32;
                self.alias(
                    node,
                    Val::Const {
                        t: Tensor {
                            dims,
                            data: Data::Fill(fill),
                        },
                        w_bits: None,
                    },
                );
            }
            "Dropout" | "Identity" => {
                let v = self.val(node, 0)?.clone();
                self.alias(node, v);
            }
            "Relu" => {
                let (x, a) = self.act(node, 0)?;
                self.layer(node, label, Op::Relu, &[x], a)?;
            }
            "Clip" => {
                let (x, a) = self.act(node, 0)?;
                let bound = |attr_name: &str, input: usize| -> Result<Option<f32>, Unsupported> {
                    if let Some(v) = node.attr(attr_name).and_then(|a| a.f) {
                        return Ok(Some(v));
                    }
                    self.opt_konst(node, input)?
                        .map(|t| scalar(&t, "the Clip bound"))
                        .transpose()
                };
                let op = match (bound("min", 1)?, bound("max", 2)?) {
                    (Some(0.0), None) => Op::Relu,
                    (Some(lo), Some(hi)) if lo == 0.0 && hi == 6.0 => Op::Relu6,
                    (lo, hi) => Op::Unary {
                        f: UnaryFn::Clip {
                            min: lo.unwrap_or(f32::NEG_INFINITY),
                            max: hi.unwrap_or(f32::INFINITY),
                        },
                    },
                };
                self.layer(node, label, op, &[x], a)?;
            }
            "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" | "LeakyRelu" | "Elu" | "Selu"
            | "Celu" | "Softplus" | "Softsign" | "Mish" | "ThresholdedRelu" | "PRelu" | "Erf" => {
                let (x, a) = self.act(node, 0)?;
                let f =
                    |name: &str, default: f32| node.attr(name).and_then(|a| a.f).unwrap_or(default);
                let f = match node.op_type.as_str() {
                    "Sigmoid" => UnaryFn::Sigmoid,
                    "Tanh" => UnaryFn::Tanh,
                    "HardSigmoid" => UnaryFn::HardSigmoid {
                        alpha: f("alpha", 0.2),
                        beta: f("beta", 0.5),
                    },
                    "HardSwish" => UnaryFn::HardSwish,
                    "LeakyRelu" => UnaryFn::LeakyRelu {
                        alpha: f("alpha", 0.01),
                    },
                    "Elu" => UnaryFn::Elu {
                        alpha: f("alpha", 1.0),
                    },
                    // The defaults are the ONNX specification's, to f32 precision.
                    "Selu" => UnaryFn::Selu {
                        alpha: f("alpha", 1.673_263_2),
                        gamma: f("gamma", 1.050_701),
                    },
                    "Celu" => UnaryFn::Celu {
                        alpha: f("alpha", 1.0),
                    },
                    "Softplus" => UnaryFn::Softplus,
                    "Softsign" => UnaryFn::Softsign,
                    "Erf" => UnaryFn::Erf,
                    "Mish" => UnaryFn::Mish,
                    "ThresholdedRelu" => UnaryFn::ThresholdedRelu {
                        alpha: f("alpha", 1.0),
                    },
                    _ => {
                        // PRelu: one slope for every element is a leaky ReLU. A slope per
                        // channel is refused even where its values are equal: in a
                        // structure-only model they are a placeholder's.
                        let (slope, _) = self.konst(node, 1)?;
                        let v = expand(&slope, "the PRelu slope")?;
                        match v[..] {
                            [alpha] => UnaryFn::LeakyRelu { alpha },
                            _ => {
                                return Err(Unsupported(format!(
                                    "PRelu with a slope per element or channel (dimensions \
                                     {:?}; one slope for all is supported)",
                                    slope.dims
                                )));
                            }
                        }
                    }
                };
                self.layer(node, label, Op::Unary { f }, &[x], a)?;
            }
            "LRN" => {
                let (x, a) = self.act(node, 0)?;
                let f =
                    |name: &str, default: f32| node.attr(name).and_then(|a| a.f).unwrap_or(default);
                let size = usize::try_from(node.int("size", 0))
                    .ok()
                    .filter(|&s| (1..=1 << 16).contains(&s))
                    .ok_or_else(|| Unsupported(format!("LRN size {}", node.int("size", 0))))?;
                let op = Op::Lrn {
                    size,
                    alpha: f("alpha", 1e-4),
                    beta: f("beta", 0.75),
                    bias: f("bias", 1.0),
                };
                self.layer(node, label, op, &[x], a)?;
            }
            "Softmax" if self.heads_of(node, 0).is_some() => self.head_softmax(node, label)?,
            "Softmax" => {
                let (x, a) = self.act(node, 0)?;
                self.layer(node, label, Op::Softmax, &[x], a)?;
            }
            // GELU (opset 20) with the exact erf form; the tanh approximation is another
            // function.
            "Gelu" => {
                let (x, a) = self.act(node, 0)?;
                let approx = node.attr("approximate").and_then(|a| a.s.clone());
                if approx.as_deref().is_some_and(|s| s != b"none") {
                    return Err(Unsupported(
                        "Gelu with approximate = \"tanh\" (the exact erf form, \"none\", is \
                         supported)"
                            .into(),
                    ));
                }
                self.layer(node, label, Op::Unary { f: UnaryFn::Gelu }, &[x], a)?;
            }
            "LayerNormalization" => self.layer_norm(node, label)?,
            "GlobalAveragePool" => {
                let (x, a) = self.act(node, 0)?;
                self.layer(node, label, Op::GlobalAvgPool, &[x], a)?;
            }
            "MaxPool" | "AveragePool" => {
                let max = node.op_type == "MaxPool";
                let (x, a, pad) = if max {
                    let (x, a) = self.act(node, 0)?;
                    (x, a, [0; 4])
                } else {
                    self.windowed(node, 0)?
                };
                let window = self.window(&node.ints("kernel_shape"), node, x, [0; 4])?;
                let op = if max {
                    Op::MaxPool { window }
                } else {
                    // A Pad node's zeros are elements, counted in every mode.
                    let window = Window {
                        pad: std::array::from_fn(|k| window.pad[k] + pad[k]),
                        ..window
                    };
                    let own = window.pad != pad;
                    let count_pad = node.int("count_include_pad", 0) == 1 || !(window.ceil || own);
                    if !count_pad && pad != [0; 4] {
                        return Err(Unsupported(
                            "AveragePool leaving its own padding out of the divisor \
                             (count_include_pad = 0) after a Pad node, whose zeros count"
                                .into(),
                        ));
                    }
                    Op::AvgPool { window, count_pad }
                };
                self.layer(node, label, op, &[x], a)?;
            }

            "BatchNormalization" => {
                if matches!(self.val(node, 0), Ok(Val::Act(v)) if v.tokens) {
                    return Err(Unsupported(
                        "BatchNormalization of a [1, S, F] token sequence (ONNX normalizes its \
                         axis 1, the positions; LayerNormalization over the features is \
                         supported)"
                            .into(),
                    ));
                }
                let (x, a) = self.act(node, 0)?;
                let eps = node.attr("epsilon").and_then(|a| a.f).unwrap_or(1e-5);
                let roles = ["gamma", "beta", "mean", "var"];
                let ts = (1..=4)
                    .map(|i| self.konst(node, i).map(|(t, _)| t))
                    .collect::<Result<Vec<_>, _>>()?;
                let l = self.layer(node, label, Op::BatchNorm { eps, counted: true }, &[x], a)?;
                let name = self.net.layers[l].name.clone();
                for (role, t) in roles.into_iter().zip(ts) {
                    self.weights.insert(&name, role, t);
                }
            }
            "Conv" | "ConvInteger" | "QLinearConv" => self.conv(node, label)?,
            "MatMul"
                if matches!(self.val(node, 0), Ok(Val::Act(_)))
                    && matches!(self.val(node, 1), Ok(Val::Act(_))) =>
            {
                self.attention_matmul(node, label)?
            }
            "Gemm" | "MatMul" | "MatMulInteger" | "QLinearMatMul" => self.dense(node, label)?,
            "QuantizeLinear" | "DequantizeLinear" => self.qdq(node)?,
            _ => self.graph_op(node, label)?,
        }
        Ok(())
    }

    /// LayerNormalization over the features of a [1, S, F] token sequence or a [1, F]
    /// vector (the last axis), with its scale γ and optional bias β (F each; constants).
    fn layer_norm(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let (x, a) = self.act(node, 0)?;
        let (rank, tokens) = match self.val(node, 0)? {
            Val::Act(v) => (v.dims.len() as i64, v.tokens),
            Val::Const { .. } => unreachable!("act() took an activation"),
        };
        let axis = node.int("axis", -1);
        let last = if axis < 0 { axis + rank } else { axis } == rank - 1;
        if !(last && (tokens || rank == 2)) {
            return Err(Unsupported(format!(
                "LayerNormalization over axis {axis} of a rank-{rank} tensor (the last axis of \
                 a [1, S, F] sequence or a [1, F] vector is supported)"
            )));
        }
        let f = self.shapes[x].c;
        let eps = node.attr("epsilon").and_then(|a| a.f).unwrap_or(1e-5);
        let gamma = self.konst(node, 1)?.0;
        let beta = self
            .opt_konst(node, 2)?
            .unwrap_or_else(|| Tensor::new(vec![f], vec![0.0; f]));
        for (what, t) in [("scale", &gamma), ("bias", &beta)] {
            if t.len() != f {
                return Err(Unsupported(format!(
                    "LayerNormalization {what} of {} elements for {f} features",
                    t.len()
                )));
            }
        }
        let l = self.layer(node, label, Op::LayerNorm { eps }, &[x], a)?;
        let name = self.net.layers[l].name.clone();
        // A placeholder (a structure-only model's fill) stays one.
        let flat = |t: Tensor| Tensor {
            dims: vec![f],
            data: t.data,
        };
        self.weights.insert(&name, "gamma", flat(gamma));
        self.weights.insert(&name, "beta", flat(beta));
        Ok(())
    }

    /// Kernel, strides, pads and ceil mode of a Conv or pooling node, with `extra` zero
    /// padding (a Pad node's) added to its own.
    fn window(
        &self,
        kernel: &[i64],
        node: &proto::Node,
        x: usize,
        extra: [usize; 4],
    ) -> Result<Window, Unsupported> {
        if kernel.len() != 2 {
            return Err(Unsupported(format!(
                "kernel {kernel:?} (only 2-D windows are supported)"
            )));
        }
        if node.ints("dilations").iter().any(|&d| d != 1) {
            return Err(Unsupported("dilated windows".into()));
        }
        // Bounded so that no later sum or product of window sizes can overflow.
        let small = |v: &[i64], lo: i64| v.iter().all(|&x| (lo..=1 << 20).contains(&x));
        let strides = node.ints("strides");
        let pads = node.ints("pads");
        if !small(kernel, 1) || !small(&strides, 1) || !small(&pads, 0) {
            return Err(Unsupported(format!(
                "kernel {kernel:?}, strides {strides:?}, pads {pads:?}: kernels and strides must be \
                 in 1..=2^20, pads in 0..=2^20"
            )));
        }
        let k = [kernel[0] as usize, kernel[1] as usize];
        let s = match strides.as_slice() {
            [] => [1, 1],
            [a, b] => [*a as usize, *b as usize],
            other => return Err(Unsupported(format!("strides {other:?}"))),
        };
        let auto = node
            .attr("auto_pad")
            .and_then(|a| a.s.clone())
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_else(|| "NOTSET".into());
        let pad = match auto.as_str() {
            "NOTSET" => match pads.as_slice() {
                [] => [0; 4],
                [t, l, b, r] => [*t as usize, *l as usize, *b as usize, *r as usize],
                other => return Err(Unsupported(format!("pads {other:?}"))),
            },
            "VALID" => [0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let x = self.shapes[x];
                let total = |n: usize, k: usize, s: usize| {
                    (n.div_ceil(s).saturating_sub(1) * s + k).saturating_sub(n)
                };
                let (th, tw) = (total(x.h, k[0], s[0]), total(x.w, k[1], s[1]));
                let upper = auto == "SAME_UPPER";
                let split = |t: usize| {
                    if upper {
                        (t / 2, t - t / 2)
                    } else {
                        (t - t / 2, t / 2)
                    }
                };
                let ((t, b), (l, r)) = (split(th), split(tw));
                [t, l, b, r]
            }
            other => return Err(Unsupported(format!("auto_pad {other}"))),
        };
        Ok(Window {
            kernel: k,
            stride: s,
            pad: std::array::from_fn(|i| pad[i] + extra[i]),
            ceil: node.attr("ceil_mode").and_then(|a| a.i).unwrap_or(0) == 1,
        })
    }

    /// Conv, ConvInteger and QLinearConv.
    fn conv(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let (x, mut a_bits, pad) = self.windowed(node, 0)?;
        let (w_at, bias_at) = match node.op_type.as_str() {
            "QLinearConv" => (3, Some(8)),
            "ConvInteger" => (1, None),
            _ => (1, Some(2)),
        };
        let (mut w, mut w_bits) = self.konst(node, w_at)?;
        if w.dims.len() != 4 {
            return Err(Unsupported(format!(
                "weights of shape {:?} (4-D expected)",
                w.dims
            )));
        }
        let out_channels = w.dims[0];
        let mut bias = bias_at
            .map(|i| self.opt_konst(node, i))
            .transpose()?
            .flatten();
        if let Some(b) = bias.as_ref().filter(|b| b.len() != out_channels) {
            return Err(Unsupported(format!(
                "bias of {} values for {out_channels} output channels",
                b.len()
            )));
        }
        if node.op_type != "Conv" {
            // x_zp is input 2 of both; the weights' zero point is input 5 (QLinearConv) or 3.
            w_bits = w_bits.or(Some(8));
            a_bits = a_bits.or(self.int_bits_of(node, 2)).or(Some(8));
            let qlinear = node.op_type == "QLinearConv";
            let w_zp = self.opt_konst(node, if qlinear { 5 } else { 3 })?;
            let w_scale = if qlinear {
                self.opt_konst(node, 4)?
            } else {
                None
            };
            w = dequantize(&w, w_zp.as_ref(), w_scale.as_ref(), 0)?;
            if let (Some(b), true) = (&bias, qlinear) {
                // The int32 bias is in units of x_scale · w_scale (per output channel).
                let xs = match self.opt_konst(node, 1)? {
                    Some(t) => scalar(&t, "x_scale")?,
                    None => 1.0,
                };
                let v = (0..b.len())
                    .map(|o| b.get(o) * xs * per_axis(w_scale.as_ref(), &[b.len()], 0, o, 1.0))
                    .collect();
                bias = Some(Tensor::new(b.dims.clone(), v));
            }
        }
        let kernel = vec![w.dims[2] as i64, w.dims[3] as i64];
        if node.attr("kernel_shape").is_some_and(|a| a.ints != kernel) {
            return Err(Unsupported(format!(
                "kernel_shape {:?} differs from the weights {:?}",
                node.attr("kernel_shape").map(|a| &a.ints),
                w.dims
            )));
        }
        let window = self.window(&kernel, node, x, pad)?;
        let groups = node.attr("group").and_then(|a| a.i).unwrap_or(1);
        let groups = usize::try_from(groups)
            .ok()
            .filter(|&g| g >= 1 && w.dims[1].checked_mul(g) == Some(self.shapes[x].c))
            .ok_or_else(|| {
                Unsupported(format!(
                    "weights {:?} with group {groups} do not match the {} input channels",
                    w.dims, self.shapes[x].c
                ))
            })?;
        let op = Op::Conv2d {
            out_channels,
            window,
            groups,
            bias: bias.is_some(),
        };
        let out_bits = self.out_bits(node);
        let l = self.layer(node, label, op, &[x], out_bits)?;
        if out_bits.is_some() {
            self.record_format(node, l, 6, 7);
        }
        // A convolution's output channels are its weights' axis 0.
        if let Some(f) = self.weight_format(node, w_at, 0) {
            self.weights_q.insert(self.net.layers[l].name.clone(), f);
        }
        self.finish_weighted(l, w, bias, w_bits, a_bits);
        Ok(())
    }

    /// Activation bits of a QLinear op's output: the type of its output zero point (input 7;
    /// QGemm's input 8, when it gives one: without it the output is float).
    fn out_bits(&self, node: &proto::Node) -> Option<u32> {
        if node.op_type == "QGemm" {
            return node
                .inputs
                .get(8)
                .filter(|n| !n.is_empty())
                .map(|_| self.int_bits_of(node, 8).unwrap_or(8));
        }
        node.op_type
            .starts_with("QLinear")
            .then(|| self.int_bits_of(node, 7).unwrap_or(8))
    }

    /// Gemm, MatMul, MatMulInteger, QLinearMatMul and (com.microsoft) QGemm.
    fn dense(&mut self, node: &proto::Node, label: &str) -> NodeResult {
        let (x, mut a_bits) = self.act(node, 0)?;
        let qgemm = node.op_type == "QGemm";
        let gemm = node.op_type == "Gemm" || qgemm;
        let b_at = if node.op_type == "QLinearMatMul" || qgemm {
            3
        } else {
            1
        };
        let (mut b, mut w_bits) = self.konst(node, b_at)?;
        if b.dims.len() != 2 {
            return Err(Unsupported(format!(
                "weights of shape {:?} (2-D expected)",
                b.dims
            )));
        }
        let trans_b = gemm && node.attr("transB").and_then(|a| a.i) == Some(1);
        if gemm && node.attr("transA").and_then(|a| a.i) == Some(1) {
            return Err(Unsupported("Gemm with transA = 1".into()));
        }
        match node.op_type.as_str() {
            "QLinearMatMul" => {
                w_bits = w_bits.or(Some(8));
                a_bits = a_bits.or(self.int_bits_of(node, 2)).or(Some(8));
                let (zp, scale) = (self.opt_konst(node, 5)?, self.opt_konst(node, 4)?);
                b = dequantize(&b, zp.as_ref(), scale.as_ref(), 1)?;
            }
            "MatMulInteger" => {
                w_bits = w_bits.or(Some(8));
                a_bits = a_bits.or(self.int_bits_of(node, 2)).or(Some(8));
                b = dequantize(&b, self.opt_konst(node, 3)?.as_ref(), None, 1)?;
            }
            "QGemm" => {
                w_bits = w_bits.or(Some(8));
                a_bits = a_bits.or(self.int_bits_of(node, 2)).or(Some(8));
                let (zp, scale) = (self.opt_konst(node, 5)?, self.opt_konst(node, 4)?);
                // Per-channel parameters run along the output features.
                b = dequantize(&b, zp.as_ref(), scale.as_ref(), if trans_b { 0 } else { 1 })?;
            }
            _ => {}
        }
        // Our layout is [out, in]: Gemm with transB already is; MatMul's [in, out] is not.
        let (k_in, n_out) = if trans_b {
            (b.dims[1], b.dims[0])
        } else {
            (b.dims[0], b.dims[1])
        };
        let features = self.shapes[x].c;
        let spatial = self.shapes[x].h * self.shapes[x].w != 1;
        if (spatial && gemm) || self.shapes[x].w != 1 {
            return Err(Unsupported(format!(
                "Gemm on a {} activation (flatten it first)",
                self.shapes[x]
            )));
        }
        if k_in != features {
            return Err(Unsupported(format!(
                "weights {:?} do not match the {features} input features",
                b.dims
            )));
        }
        let w = if trans_b { b } else { transpose(&b) };
        let alpha = node.attr("alpha").and_then(|a| a.f).unwrap_or(1.0);
        let beta = node.attr("beta").and_then(|a| a.f).unwrap_or(1.0);
        let w = scale(&w, alpha);
        if n_out > MAX_EXPANDED {
            return Err(Unsupported(format!(
                "{n_out} output features (at most 2^26)"
            )));
        }
        let bias = if qgemm {
            // An int32 bias in units of a_scale · b_scale (per output feature).
            let b_scale = self.opt_konst(node, 4)?;
            let a_scale = match self.opt_konst(node, 1)? {
                Some(t) => scalar(&t, "a_scale")?,
                None => 1.0,
            };
            self.opt_konst(node, 6)?
                .map(|c| {
                    if c.len() != n_out {
                        return Err(Unsupported(format!("bias of shape {:?}", c.dims)));
                    }
                    let v = (0..n_out).map(|o| {
                        c.get(o) * a_scale * per_axis(b_scale.as_ref(), &[n_out], 0, o, 1.0)
                    });
                    Ok(Tensor::new(vec![n_out], v.collect()))
                })
                .transpose()?
        } else if gemm {
            self.opt_konst(node, 2)?
                .map(|c| {
                    if c.len() == n_out || c.len() == 1 {
                        let v = (0..n_out).map(|o| beta * c.get(if c.len() == 1 { 0 } else { o }));
                        Ok(Tensor::new(vec![n_out], v.collect()))
                    } else {
                        Err(Unsupported(format!("bias of shape {:?}", c.dims)))
                    }
                })
                .transpose()?
        } else {
            None
        };
        let op = Op::Dense {
            out_features: n_out,
            bias: bias.is_some(),
        };
        let out_bits = self.out_bits(node);
        let l = self.layer(node, label, op, &[x], out_bits)?;
        if out_bits.is_some() {
            // QLinearMatMul's y_scale and y_zero_point are inputs 6 and 7, QGemm's 7 and 8.
            let at = if node.op_type == "QGemm" { 7 } else { 6 };
            self.record_format(node, l, at, at + 1);
        }
        // The output features are B's axis 1 ([in, out]), or 0 with transB.
        if let Some(f) = self.weight_format(node, b_at, usize::from(!trans_b)) {
            self.weights_q.insert(self.net.layers[l].name.clone(), f);
        }
        self.finish_weighted(l, w, bias, w_bits, a_bits);
        Ok(())
    }

    fn finish_weighted(
        &mut self,
        l: usize,
        w: Tensor,
        bias: Option<Tensor>,
        w_bits: Option<u32>,
        a_bits: Option<u32>,
    ) {
        let name = self.net.layers[l].name.clone();
        if let (Some(w), Some(a)) = (w_bits, a_bits) {
            self.net.layers[l].bits = Some(Bits { w, a });
        }
        self.weights.insert(&name, "weight", w);
        if let Some(b) = bias {
            self.weights.insert(&name, "bias", b);
        }
    }

    /// Bits of the integer type of input `i` (a zero point or an integer tensor), if typed.
    fn int_bits_of(&self, node: &proto::Node, i: usize) -> Option<u32> {
        match self.val(node, i).ok()? {
            Val::Const { w_bits, .. } => *w_bits,
            Val::Act(a) => a.a_bits,
        }
    }

    /// The integer type of zero point input `i`: (bits, signed); ONNX's uint8 when it is
    /// absent or untyped.
    fn zero_type(&self, node: &proto::Node, i: usize) -> (u32, bool) {
        match self.val(node, i).ok() {
            Some(Val::Const {
                w_bits: Some(b), ..
            }) => {
                let signed = node
                    .inputs
                    .get(i)
                    .and_then(|n| self.dtypes.get(n))
                    .is_some_and(|d| matches!(d, 3 | 5 | 6 | 22));
                (*b, signed)
            }
            _ => (8, false),
        }
    }

    /// Whether the constant `name` is of a signed integer type (INT8, INT16, INT32, INT4).
    fn signed(&self, name: Option<&String>) -> bool {
        name.and_then(|n| self.dtypes.get(n))
            .is_some_and(|d| matches!(d, 3 | 5 | 6 | 22))
    }

    /// The weight format of `node`'s weight input `w_at` whose output channels run along
    /// axis `out_axis` of the file's tensor: a QLinear op's (or QGemm's) w_scale and
    /// w_zero_point (inputs 4 and 5), or the DequantizeLinear that made the input. `None`
    /// for float weights, and for scales along another axis (they are not per output
    /// channel).
    fn weight_format(
        &self,
        node: &proto::Node,
        w_at: usize,
        out_axis: usize,
    ) -> Option<WeightFormat> {
        let name = node.inputs.get(w_at)?;
        let c = if node.op_type.starts_with("QLinear") || node.op_type == "QGemm" {
            Coding {
                scale: self.opt_konst(node, 4).ok()??,
                zero: self.opt_konst(node, 5).ok()?,
                axis: out_axis,
                bits: self.int_bits_of(node, w_at).unwrap_or(8),
                signed: self.signed(Some(name)),
            }
        } else {
            self.codings.get(name)?.clone()
        };
        let n = c.scale.len();
        if n != 1 && c.axis != out_axis
            || c.zero
                .as_ref()
                .is_some_and(|z| z.len() != 1 && z.len() != n)
        {
            return None;
        }
        let zero = (0..n)
            .map(|i| {
                c.zero
                    .as_ref()
                    .map_or(0.0, |z| z.get(if z.len() == 1 { 0 } else { i }))
            })
            .map(|z| (z.fract() == 0.0).then_some(z as i32))
            .collect::<Option<Vec<i32>>>()?;
        Some(WeightFormat {
            bits: c.bits,
            signed: c.signed,
            scale: (0..n).map(|i| c.scale.get(i)).collect(),
            zero,
        })
    }

    /// Records the activation format the file gives layer `l`'s output: scale input `s` and
    /// zero point input `z` of `node` (a QuantizeLinear of the output, or a QLinear op's own
    /// output). Only a per-tensor format an [`ActQuant`] holds is kept: one constant scale
    /// and an integral zero point of an unsigned type, or of a signed type at 0. Any other
    /// (per-axis, or a signed type with a nonzero zero point) leaves the layer to
    /// calibration. A layer's first recorded format stays.
    fn record_format(&mut self, node: &proto::Node, l: usize, s: usize, z: usize) {
        let (Ok(Some(scale)), Ok(zp)) = (self.opt_konst(node, s), self.opt_konst(node, z)) else {
            return;
        };
        let (bits, signed) = self.zero_type(node, z);
        let zero = zp.as_ref().map_or(0.0, |t| t.get(0));
        if scale.len() != 1 || zp.is_some_and(|t| t.len() != 1) || zero.fract() != 0.0 {
            return;
        }
        let act = ActQuant {
            bits,
            signed,
            binary: false,
            scale: scale.get(0),
            zero: zero as i32,
        };
        if act.validate().is_ok() {
            let name = self.net.layers[l].name.clone();
            self.acts.entry(name).or_insert(act);
        }
    }

    /// QuantizeLinear / DequantizeLinear: constants are converted, activations pass through
    /// carrying the bit-width of the zero point's type.
    fn qdq(&mut self, node: &proto::Node) -> NodeResult {
        let axis = node
            .attrs
            .iter()
            .find(|a| a.name == "axis")
            .and_then(|a| a.i)
            .unwrap_or(1);
        let bits = self.int_bits_of(node, 2).or(Some(8));
        // ONNX saturates to the zero point's type (uint8 when it is absent).
        let range = match self.zero_type(node, 2) {
            (b, true) => (-(1i64 << (b - 1)) as f32, ((1i64 << (b - 1)) - 1) as f32),
            (b, false) => (0.0, ((1i64 << b) - 1) as f32),
        };
        let scale_t = self.opt_konst(node, 1)?;
        let zp = self.opt_konst(node, 2)?;
        let v = match self.val(node, 0)?.clone() {
            Val::Act(a) => {
                let quantize = node.op_type == "QuantizeLinear";
                // Unscaled attention scores are not their layer's output (which includes
                // the 1/√d): their format is not recorded.
                let unscaled = matches!(
                    a.heads,
                    Some(attention::Heads::Scores { scaled: false, .. })
                );
                if quantize && !unscaled {
                    self.record_format(node, a.layer, 1, 2);
                }
                Val::Act(Act {
                    a_bits: if quantize { bits } else { a.a_bits },
                    ..a
                })
            }
            Val::Const { t, w_bits } => {
                if node.op_type == "DequantizeLinear" {
                    if let Some(scale) = scale_t.clone() {
                        let rank = t.dims.len() as i64;
                        let coding = Coding {
                            scale,
                            zero: zp.clone(),
                            axis: (if axis < 0 { axis + rank } else { axis }).max(0) as usize,
                            bits: w_bits.or(bits).unwrap_or(8),
                            signed: self.signed(node.inputs.first()),
                        };
                        for out in &node.outputs {
                            self.codings.insert(out.clone(), coding.clone());
                        }
                    }
                    Val::Const {
                        t: dequantize(&t, zp.as_ref(), scale_t.as_ref(), axis)?,
                        w_bits: w_bits.or(bits),
                    }
                } else {
                    Val::Const {
                        t: quantize(&t, zp.as_ref(), scale_t.as_ref(), axis, range)?,
                        w_bits: bits,
                    }
                }
            }
        };
        self.alias(node, v);
        Ok(())
    }
}

/// Scale or zero point `t` for element `i` of a tensor of `dims`, per tensor or along `axis`.
fn per_axis(t: Option<&Tensor>, dims: &[usize], axis: usize, i: usize, default: f32) -> f32 {
    match t {
        None => default,
        Some(t) if t.len() == 1 => t.get(0),
        Some(t) => {
            let inner: usize = dims[axis + 1..].iter().product();
            t.get(i / inner % dims[axis])
        }
    }
}

/// Checks the scale and zero point against `dims` and resolves a negative `axis`.
fn resolve_axis(
    params: [Option<&Tensor>; 2],
    dims: &[usize],
    axis: i64,
) -> Result<usize, Unsupported> {
    let rank = dims.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    for t in params.into_iter().flatten() {
        if t.is_empty() {
            return Err(Unsupported("a scale or zero point has no element".into()));
        }
        if t.len() != 1 && !(0..rank).contains(&axis)
            || t.len() != 1 && t.len() != dims[axis as usize]
        {
            return Err(Unsupported(format!(
                "a scale or zero point of {} values does not match axis {axis} of {dims:?}",
                t.len()
            )));
        }
    }
    Ok(axis.clamp(0, rank.max(1) - 1) as usize)
}

/// Applies `f(x, zero point, scale)` element by element; a fill with per-tensor parameters
/// stays a fill.
fn requantize(
    x: &Tensor,
    zp: Option<&Tensor>,
    scale: Option<&Tensor>,
    axis: i64,
    f: impl Fn(f32, f32, f32) -> f32,
) -> Result<Tensor, Unsupported> {
    let axis = resolve_axis([zp, scale], &x.dims, axis)?;
    let per_tensor = zp.is_none_or(|t| t.len() == 1) && scale.is_none_or(|t| t.len() == 1);
    if let (Data::Fill(v), true) = (&x.data, per_tensor) {
        let (z, s) = (
            per_axis(zp, &x.dims, axis, 0, 0.0),
            per_axis(scale, &x.dims, axis, 0, 1.0),
        );
        return Ok(Tensor {
            dims: x.dims.clone(),
            data: Data::Fill(f(*v, z, s)),
        });
    }
    expand(x, "a quantized constant")?;
    let v = (0..x.len())
        .map(|i| {
            f(
                x.get(i),
                per_axis(zp, &x.dims, axis, i, 0.0),
                per_axis(scale, &x.dims, axis, i, 1.0),
            )
        })
        .collect();
    Ok(Tensor::new(x.dims.clone(), v))
}

/// (q − zero point) · scale.
fn dequantize(
    q: &Tensor,
    zp: Option<&Tensor>,
    scale: Option<&Tensor>,
    axis: i64,
) -> Result<Tensor, Unsupported> {
    requantize(q, zp, scale, axis, |q, z, s| (q - z) * s)
}

/// saturate(round(x / scale) + zero point) into `range` (round half to even, as ONNX
/// specifies).
fn quantize(
    x: &Tensor,
    zp: Option<&Tensor>,
    scale: Option<&Tensor>,
    axis: i64,
    range: (f32, f32),
) -> Result<Tensor, Unsupported> {
    requantize(x, zp, scale, axis, |x, z, s| {
        ((x / s).round_ties_even() + z).clamp(range.0, range.1)
    })
}

fn transpose(t: &Tensor) -> Tensor {
    let (r, c) = (t.dims[0], t.dims[1]);
    match &t.data {
        Data::Fill(x) => Tensor {
            dims: vec![c, r],
            data: Data::Fill(*x),
        },
        Data::F32(v) => Tensor::new(
            vec![c, r],
            (0..c * r).map(|i| v[(i % r) * c + i / r]).collect(),
        ),
    }
}

fn scale(t: &Tensor, k: f32) -> Tensor {
    if k == 1.0 {
        return t.clone();
    }
    match &t.data {
        Data::Fill(x) => Tensor {
            dims: t.dims.clone(),
            data: Data::Fill(x * k),
        },
        Data::F32(v) => Tensor::new(t.dims.clone(), v.iter().map(|x| x * k).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::proto::write::{bytes, int};
    use super::*;

    const VGG19: &[u8] = include_bytes!("../../fixtures/onnx/light_vgg19.onnx");
    const ALEXNET: &[u8] = include_bytes!("../../fixtures/onnx/light_bvlc_alexnet.onnx");
    const SQUEEZENET: &[u8] = include_bytes!("../../fixtures/onnx/light_squeezenet.onnx");

    #[test]
    fn light_models_import_with_their_published_totals() {
        // Published (fixtures README / docs/references.md B4.4): VGG-19 ≈ 19.6 G MACs and
        // 143.7 M weights; AlexNet (Caffe, grouped) ≈ 0.655 G MACs and 61.0 M weights;
        // SqueezeNet 1.1 has 1,235,496 parameters.
        let vgg = import(VGG19, "light_vgg19.onnx", false).unwrap();
        let (macs, _, params) = vgg.net.totals().unwrap();
        assert_eq!((macs, params), (19_632_062_464, 143_667_240));
        assert_eq!(
            ((macs as f64 / 1e8).round(), (params as f64 / 1e5).round()),
            (196.0, 1437.0)
        );
        assert_eq!(vgg.opset, 9);
        let alex = import(ALEXNET, "light_bvlc_alexnet.onnx", false).unwrap();
        let (macs, _, params) = alex.net.totals().unwrap();
        assert_eq!(
            ((macs as f64 / 1e6).round(), (params as f64 / 1e5).round()),
            (655.0, 610.0)
        );
        let lrn = alex
            .net
            .layers
            .iter()
            .filter(|l| matches!(l.op, Op::Lrn { size: 5, .. }));
        assert_eq!(lrn.count(), 2);
        let grouped = alex
            .net
            .layers
            .iter()
            .filter(|l| matches!(l.op, Op::Conv2d { groups: 2, .. }))
            .count();
        assert_eq!(grouped, 3);
        // ResNet-50 and DenseNet-121 (the Caffe2 exports: DenseNet's BatchNorms unfolded
        // into Mul and Add, its classifier a 1×1 convolution): 4.09 G and 2.83 G MACs,
        // 25,557,032 and 7,978,856 parameters, the totals torchvision publishes for the same
        // architectures (torchvision 0.29.2's model metadata: 4.089 and 2.834 G; see
        // `torchvision_models_import_with_their_published_totals`).
        // Inception-v2 (BN-Inception, average pools leaving padding out) and ShuffleNet
        // (g = 4: channel shuffles as Reshape/Transpose/Reshape) import with the totals their
        // graphs give.
        for (file, want) in [
            ("light_resnet50.onnx", (4_089_184_256, 25_557_032)),
            ("light_densenet121.onnx", (2_834_161_664, 7_978_856)),
            ("light_inception_v2.onnx", (2_018_851_840, 11_194_984)),
            ("light_shufflenet.onnx", (124_664_528, 1_393_320)),
            // BVLC GoogLeNet and ZFNet-512, with LRN.
            ("light_inception_v1.onnx", (1_431_556_352, 6_998_552)),
            ("light_zfnet512.onnx", (1_481_727_008, 87_250_536)),
        ] {
            let bytes = std::fs::read(format!(
                "{}/fixtures/onnx/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let (macs, _, params) = import(&bytes, file, false).unwrap().net.totals().unwrap();
            assert_eq!((macs, params), want, "{file}");
        }
        let sq = import(SQUEEZENET, "light_squeezenet.onnx", false).unwrap();
        assert_eq!(sq.net.totals().unwrap().2, 1_235_496);
        assert!(sq.net.layers.iter().any(|l| l.op == Op::Concat));
        // Placeholder weights stay unmaterialized fills.
        let (_, w) = vgg
            .weights
            .tensors
            .iter()
            .find(|(k, _)| k.ends_with(".weight"))
            .unwrap();
        assert!(!w.is_dense());
    }

    /// The structure-only graphs of torchvision's classifiers (tools/onnx-fixtures/
    /// torchvision.py) import with the totals torchvision publishes: `num_params` and `_ops`
    /// (G multiply-accumulates of the convolutions and linear layers, to three decimals) of
    /// each model's IMAGENET1K_V1 weights [code: torchvision 0.29.2, torchvision/models/*.py].
    /// Inception-v3's published count includes its auxiliary classifier (3,326,696
    /// parameters), which eval mode does not run and an export does not hold.
    #[test]
    fn torchvision_models_import_with_their_published_totals() {
        for (name, g_macs, params) in [
            ("resnet18", 1.814, 11_689_512),
            ("resnet50", 4.089, 25_557_032),
            ("mobilenet_v2", 0.301, 3_504_872),
            ("mobilenet_v3_large", 0.217, 5_483_032),
            ("mobilenet_v3_small", 0.057, 2_542_856),
            ("efficientnet_b0", 0.386, 5_288_548),
            ("densenet121", 2.834, 7_978_856),
            ("googlenet", 1.498, 6_624_904),
            ("inception_v3", 5.713, 27_161_264 - 3_326_696),
            ("shufflenet_v2_x1_0", 0.145, 2_278_604),
            ("squeezenet1_0", 0.819, 1_248_424),
            ("squeezenet1_1", 0.349, 1_235_496),
            ("vgg16", 15.47, 138_357_544),
            ("alexnet", 0.714, 61_100_840),
            ("regnet_y_400mf", 0.402, 4_344_144),
            ("regnet_x_400mf", 0.414, 5_495_976),
        ] {
            let file = format!("tv_{name}.onnx");
            let bytes = std::fs::read(format!(
                "{}/fixtures/onnx/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let (macs, _, got) = import(&bytes, &file, false).unwrap().net.totals().unwrap();
            assert_eq!(got, params, "{name} parameters");
            // Published to three decimals of G (two for VGG-16's 15.47).
            let step = if g_macs > 10.0 { 1e7 } else { 1e6 };
            assert_eq!(
                (macs as f64 / step).round(),
                (g_macs * 1e9 / step).round(),
                "{name}: {macs} MACs"
            );
        }
    }

    #[test]
    fn unsupported_op_names_the_node_unless_skipped() {
        let nodes = [
            node("Relu", &["x"], &["r"], &[]),
            node("Einsum", &["r"], &["e"], &[]),
            node("Relu", &["e"], &["y"], &[]),
        ];
        let bytes = model(&[1, 4], &[], &nodes);
        let e = import(&bytes, "einsum.onnx", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("einsum.onnx")
                && e.contains("node 'Einsum_e'")
                && e.contains("op type Einsum")
                && e.contains("--skip-unsupported"),
            "{e}"
        );
        let im = import(&bytes, "einsum.onnx", true).unwrap();
        assert_eq!(im.skipped.len(), 1, "{:?}", im.skipped);
        assert_eq!(im.net.layers.len(), 3);
    }

    #[test]
    fn truncated_or_corrupt_files_are_errors_not_panics() {
        // Protobuf has no end marker: a cut at a field boundary near the end (dropping the
        // graph outputs or the opset) is still a valid model. Every other cut is an error.
        let mut errors = 0;
        let cuts = (0..ALEXNET.len()).step_by(7);
        let n = cuts.len();
        for cut in cuts {
            let r = std::panic::catch_unwind(|| import(&ALEXNET[..cut], "cut.onnx", true));
            let r = r.unwrap_or_else(|_| panic!("panic at {cut} bytes"));
            errors += usize::from(r.is_err());
        }
        assert!(errors * 100 >= n * 95, "{errors} errors of {n} cuts");
        let mut flipped = ALEXNET.to_vec();
        for i in (0..flipped.len()).step_by(97) {
            flipped[i] ^= 0x5a;
            let r = std::panic::catch_unwind(|| import(&flipped, "flip.onnx", true));
            assert!(r.is_ok(), "panic with byte {i} flipped");
            flipped[i] ^= 0x5a;
        }
        let e = import(b"not an onnx file", "x.onnx", false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.onnx: not a readable ONNX model"), "{e}");
    }

    /// A tensor proto: name, dims, element type and raw little-endian bytes.
    fn tensor(name: &str, dims: &[i64], dtype: i64, raw: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for &d in dims {
            int(&mut t, 1, d);
        }
        int(&mut t, 2, dtype);
        bytes(&mut t, 8, name.as_bytes());
        bytes(&mut t, 9, raw);
        t
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn node(op: &str, ins: &[&str], outs: &[&str], attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in ins {
            bytes(&mut n, 1, i.as_bytes());
        }
        for o in outs {
            bytes(&mut n, 2, o.as_bytes());
        }
        bytes(&mut n, 3, format!("{op}_{}", outs[0]).as_bytes());
        bytes(&mut n, 4, op.as_bytes());
        for a in attrs {
            bytes(&mut n, 5, a);
        }
        n
    }

    fn ints_attr(name: &str, v: &[i64]) -> Vec<u8> {
        let mut a = Vec::new();
        bytes(&mut a, 1, name.as_bytes());
        for &x in v {
            int(&mut a, 8, x);
        }
        a
    }

    /// A model with input `x` of `dims`, the given initializers and nodes.
    fn model(dims: &[i64], inits: &[Vec<u8>], nodes: &[Vec<u8>]) -> Vec<u8> {
        let mut shape = Vec::new();
        for &d in dims {
            let mut dim = Vec::new();
            int(&mut dim, 1, d);
            bytes(&mut shape, 1, &dim);
        }
        let mut tt = Vec::new();
        int(&mut tt, 1, 1);
        bytes(&mut tt, 2, &shape);
        let mut ty = Vec::new();
        bytes(&mut ty, 1, &tt);
        let mut vi = Vec::new();
        bytes(&mut vi, 1, b"x");
        bytes(&mut vi, 2, &ty);
        let mut g = Vec::new();
        for n in nodes {
            bytes(&mut g, 1, n);
        }
        for t in inits {
            bytes(&mut g, 5, t);
        }
        bytes(&mut g, 11, &vi);
        let mut m = Vec::new();
        bytes(&mut m, 7, &g);
        m
    }

    /// A chain of `n` Relu nodes on a 4-vector.
    pub(crate) fn relu_chain(n: usize) -> Vec<u8> {
        let nodes: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let input = if i == 0 {
                    "x".to_owned()
                } else {
                    format!("r{}", i - 1)
                };
                node("Relu", &[&input], &[&format!("r{i}")], &[])
            })
            .collect();
        model(&[1, 4], &[], &nodes)
    }

    /// Issue 19 item 7: import used to re-check the whole graph after every node (20k nodes
    /// took 28 s); each layer is now checked once, against the stats of the ones before it.
    /// 100k nodes import whole (the time is in `benches/network.rs`).
    #[test]
    fn a_long_chain_imports_whole() {
        let im = import(&relu_chain(100_000), "chain.onnx", false).unwrap();
        assert_eq!(im.net.layers.len(), 100_001);
        assert_eq!(im.net.stats().unwrap().len(), 100_001);
        let names: HashSet<&str> = im.net.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names.len(), 100_001);
        // 20k nodes of one name (the node name is the label): `n`, `n_2`, `n_3`, …, still
        // linear (appending `_` per clash was quadratic).
        let nodes: Vec<Vec<u8>> = (0..20_000)
            .map(|i| {
                let input = if i == 0 {
                    "x".to_owned()
                } else {
                    format!("r{}", i - 1)
                };
                let mut n = Vec::new();
                bytes(&mut n, 1, input.as_bytes());
                bytes(&mut n, 2, format!("r{i}").as_bytes());
                bytes(&mut n, 3, b"n");
                bytes(&mut n, 4, b"Relu");
                n
            })
            .collect();
        let im = import(&model(&[1, 4], &[], &nodes), "same.onnx", false).unwrap();
        assert_eq!(im.net.layers[1].name, "n");
        assert_eq!(im.net.layers[20_000].name, "n_20000");
    }

    #[test]
    fn qdq_around_matmul_dequantizes_weights_and_records_bits() {
        // x (4) → Q/DQ (uint8) → MatMul with DQ(int8 W [4, 2], per-column scales) → Add bias.
        let w_q: Vec<u8> = [1i8, -2, 3, 4, -5, 6, 7, -8]
            .iter()
            .map(|&v| v as u8)
            .collect();
        let inits = [
            tensor("w_q", &[4, 2], 3, &w_q),
            tensor("w_s", &[2], 1, &f32s(&[0.5, 0.25])),
            tensor("w_z", &[2], 3, &[0, 0]),
            tensor("x_s", &[], 1, &f32s(&[0.1])),
            tensor("x_z", &[], 2, &[128]),
            tensor("b", &[2], 1, &f32s(&[1.0, -1.0])),
        ];
        let nodes = [
            node("QuantizeLinear", &["x", "x_s", "x_z"], &["xq"], &[]),
            node("DequantizeLinear", &["xq", "x_s", "x_z"], &["xd"], &[]),
            node("DequantizeLinear", &["w_q", "w_s", "w_z"], &["w"], &[]),
            node("MatMul", &["xd", "w"], &["y0"], &[]),
            node("Add", &["y0", "b"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 4], &inits, &nodes), "qdq.onnx", false).unwrap();
        let l = &im.net.layers[1];
        assert_eq!(
            l.op,
            Op::Dense {
                out_features: 2,
                bias: true
            }
        );
        assert_eq!(l.bits, Some(Bits { w: 8, a: 8 }));
        // [out, in] layout: row o holds column o of W, times that column's scale.
        let w = im.weights.get(&l.name, "weight").unwrap().to_vec();
        assert_eq!(w, [0.5, 1.5, -2.5, 3.5, -0.5, 1.0, 1.5, -2.0]);
        assert_eq!(
            im.weights.get(&l.name, "bias").unwrap().to_vec(),
            [1.0, -1.0]
        );
    }

    #[test]
    fn qlinear_and_integer_ops_import_as_layers_with_bits() {
        // QLinearConv: 1 → 2 channels, 1×1 kernel, w zero point 1, per-channel scales, int32 bias.
        let inits = [
            tensor("xs", &[], 1, &f32s(&[0.5])),
            tensor("xz", &[], 2, &[0]),
            tensor("w", &[2, 1, 1, 1], 3, &[3, 5]),
            tensor("ws", &[2], 1, &f32s(&[0.25, 2.0])),
            tensor("wz", &[], 3, &[1]),
            tensor("ys", &[], 1, &f32s(&[1.0])),
            tensor("yz", &[], 3, &[0]),
            tensor("b", &[2], 6, &[4, 0, 0, 0, 2, 0, 0, 0]),
            tensor("m", &[2, 3], 3, &[1, 2, 3, 4, 5, 6]),
        ];
        let nodes = [
            node(
                "QLinearConv",
                &["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                &["c"],
                &[ints_attr("kernel_shape", &[1, 1])],
            ),
            node("Flatten", &["c"], &["f"], &[]),
            node("MatMulInteger", &["f", "m"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 1, 1, 1], &inits, &nodes), "ql.onnx", false).unwrap();
        let conv = &im.net.layers[1];
        assert_eq!(conv.bits, Some(Bits { w: 8, a: 8 }));
        assert_eq!(
            im.weights.get(&conv.name, "weight").unwrap().to_vec(),
            [0.5, 8.0]
        );
        // bias · x_scale · w_scale[o]: 4·0.5·0.25, 2·0.5·2.
        assert_eq!(
            im.weights.get(&conv.name, "bias").unwrap().to_vec(),
            [0.5, 2.0]
        );
        // The Flatten of a 2×1×1 output keeps its shape: a view, not a layer.
        assert_eq!(im.net.layers.len(), 3);
        let mm = &im.net.layers[2];
        assert_eq!(
            mm.op,
            Op::Dense {
                out_features: 3,
                bias: false
            }
        );
        assert_eq!(mm.bits, Some(Bits { w: 8, a: 8 }));
        assert_eq!(
            im.weights.get(&mm.name, "weight").unwrap().to_vec(),
            [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }

    fn str_attr(name: &str, v: &str) -> Vec<u8> {
        let mut a = Vec::new();
        bytes(&mut a, 1, name.as_bytes());
        bytes(&mut a, 4, v.as_bytes());
        a
    }

    #[test]
    fn hostile_attributes_and_constants_are_errors_not_panics() {
        let w = tensor("w", &[2, 1, 1, 1], 1, &f32s(&[1.0, 2.0]));
        let conv = |attrs: &[Vec<u8>], ins: &[&str]| node("Conv", ins, &["y"], attrs);
        /// (initializers, nodes, a fragment the error must contain)
        type Case<'a> = (Vec<Vec<u8>>, Vec<Vec<u8>>, &'a str);
        let cases: Vec<Case> = vec![
            (
                vec![w.clone()],
                vec![conv(
                    &[
                        ints_attr("strides", &[0, 0]),
                        str_attr("auto_pad", "SAME_UPPER"),
                    ],
                    &["x", "w"],
                )],
                "strides",
            ),
            (
                vec![w.clone()],
                vec![conv(&[ints_attr("pads", &[-1, 0, 0, 0])], &["x", "w"])],
                "pads",
            ),
            (
                vec![w.clone(), tensor("b", &[3], 1, &f32s(&[0.0; 3]))],
                vec![conv(&[], &["x", "w", "b"])],
                "bias of 3 values",
            ),
            (
                vec![w.clone()],
                vec![conv(&[ints_attr("kernel_shape", &[3, 3])], &["x", "w"])],
                "kernel_shape",
            ),
            (
                vec![tensor("lo", &[0], 1, &[])],
                vec![node("Clip", &["x", "lo"], &["y"], &[])],
                "no element",
            ),
        ];
        for (inits, nodes, fragment) in cases {
            let e = import(&model(&[1, 1, 4, 4], &inits, &nodes), "h.onnx", false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(fragment), "{fragment}: {e}");
        }
        // A bias Add whose MatMul output has a second reader is not folded: it is a
        // per-channel affine layer of its own.
        let inits = [
            tensor("m", &[4, 2], 1, &f32s(&[1.0; 8])),
            tensor("b", &[2], 1, &f32s(&[1.0, 2.0])),
        ];
        let nodes = [
            node("MatMul", &["x", "m"], &["y0"], &[]),
            node("Relu", &["y0"], &["r"], &[]),
            node("Add", &["y0", "b"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 4], &inits, &nodes), "two.onnx", false).unwrap();
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(ops, ["input", "dense", "relu", "batchnorm"]);
        assert!(!matches!(im.net.layers[1].op, Op::Dense { bias: true, .. }));
        assert_eq!(
            im.weights.get("Add_y", "beta").unwrap().to_vec(),
            [1.0, 2.0]
        );
    }

    #[test]
    fn mismatched_weights_are_named() {
        let inits = [tensor("w", &[3, 2], 1, &f32s(&[0.0; 6]))];
        let nodes = [node("MatMul", &["x", "w"], &["y"], &[])];
        let e = import(&model(&[1, 4], &inits, &nodes), "bad.onnx", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MatMul_y") && e.contains("4 input features"),
            "{e}"
        );
        let inits = [tensor("w", &[3, 2], 1, &f32s(&[0.0; 5]))];
        let e = import(&model(&[1, 3], &inits, &nodes), "short.onnx", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tensor 'w'") && e.contains("raw_data has 20 bytes"),
            "{e}"
        );
    }

    /// Attention with separate query, key and value projections imports as the network's
    /// attention layers: the fixtures of tools/onnx-fixtures/transformers.py (a BERT layer,
    /// a causal GPT-2 layer, BERT-base's structure-only encoder with its totals); a
    /// hand-built graph whose scale, mask or softmax axis is not the attention's is refused,
    /// saying why, and so are a scale of several values and a mask of more axes.
    #[test]
    fn attention_graphs_import_as_attention_layers() {
        let read = |file: &str| {
            std::fs::read(format!(
                "{}/fixtures/onnx/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        // No view becomes a layer of its own: 3 attention layers, 6 dense, 2 LayerNorms (and
        // the decoder's final one), 2 adds, the GELU, the pool, the classifier and the input;
        // the decoder's GELU, written with Erf, is x/√2 and +1 (two affine layers), the erf
        // table, the product with x and ×0.5.
        let gelu = Op::Unary { f: UnaryFn::Gelu };
        let erf = Op::Unary { f: UnaryFn::Erf };
        for (file, causal, layers, f) in [
            ("tiny_encoder.onnx", false, 17, &gelu),
            ("tiny_decoder.onnx", true, 22, &erf),
        ] {
            let im = import(&read(file), file, false).unwrap();
            let ops: Vec<&Op> = im.net.layers.iter().map(|l| &l.op).collect();
            assert!(
                ops.contains(&&Op::AttnScores { heads: 2 }),
                "{file}: {ops:?}"
            );
            assert!(
                ops.contains(&&Op::AttnSoftmax { heads: 2, causal }),
                "{file}"
            );
            assert!(ops.contains(&&Op::AttnContext { heads: 2 }), "{file}");
            assert!(ops.contains(&f), "{file}");
            assert_eq!(ops.len(), layers, "{file}: {ops:?}");
        }
        // BERT-base's encoder: 12 layers of 7,087,872 parameters (Q, K, V and the output
        // projection 4·(768² + 768), the feed-forward block 2·768·3072 + 3072 + 768, two
        // LayerNorms 2·2·768); MACs 12·(4·128·768² + 2·128²·768 + 2·128·768·3072).
        let im = import(
            &read("struct_bert_base.onnx"),
            "struct_bert_base.onnx",
            false,
        )
        .unwrap();
        let (macs, _, params) = im.net.totals().unwrap();
        assert_eq!(params, 85_054_464);
        assert_eq!(macs, 11_173_625_856);
        let scores = im
            .net
            .layers
            .iter()
            .filter(|l| l.op == Op::AttnScores { heads: 12 });
        assert_eq!(scores.count(), 12);

        // x [1, 4, 8] as its own queries, keys and values in 2 heads of 4.
        let split = tensor("split", &[4], 7, &i64s(&[1, 4, 2, 4]));
        let merge = tensor("merge", &[3], 7, &i64s(&[1, 4, 8]));
        let build =
            |(s_dims, scale): (&[i64], &[f32]), mask: Option<(&[i64], &[f32])>, axis: i64| {
                let mut inits = vec![
                    split.clone(),
                    merge.clone(),
                    tensor("c", s_dims, 1, &f32s(scale)),
                ];
                let mut nodes = vec![
                    node("Reshape", &["x", "split"], &["h"], &[]),
                    node(
                        "Transpose",
                        &["h"],
                        &["q"],
                        &[ints_attr("perm", &[0, 2, 1, 3])],
                    ),
                    node(
                        "Transpose",
                        &["h"],
                        &["k"],
                        &[ints_attr("perm", &[0, 2, 3, 1])],
                    ),
                    node("MatMul", &["q", "k"], &["s"], &[]),
                    node("Div", &["s", "c"], &["sd"], &[]),
                ];
                let scores = if let Some((m_dims, m)) = mask {
                    inits.push(tensor("m", m_dims, 1, &f32s(m)));
                    nodes.push(node("Add", &["sd", "m"], &["sm"], &[]));
                    "sm"
                } else {
                    "sd"
                };
                nodes.extend([
                    node("Softmax", &[scores], &["p"], &[int_attr("axis", axis)]),
                    node("MatMul", &["p", "q"], &["ctx"], &[]),
                    node(
                        "Transpose",
                        &["ctx"],
                        &["ct"],
                        &[ints_attr("perm", &[0, 2, 1, 3])],
                    ),
                    node("Reshape", &["ct", "merge"], &["y"], &[]),
                ]);
                model(&[1, 4, 8], &inits, &nodes)
            };
        let causal: Vec<f32> = (0..16)
            .map(|k| if k % 4 > k / 4 { -1e9 } else { 0.0 })
            .collect();
        let two: (&[i64], &[f32]) = (&[], &[2.0]);
        let im = import(
            &build(two, Some((&[4, 4], &causal)), -1),
            "attn.onnx",
            false,
        )
        .unwrap();
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(
            ops,
            ["input", "attn-scores", "attn-softmax", "attn-context"]
        );
        assert_eq!(
            im.net.layers[2].op,
            Op::AttnSoftmax {
                heads: 2,
                causal: true
            }
        );
        assert_eq!(im.net.layers[1].inputs, [0, 0]);
        let mut anti = causal.clone();
        anti.reverse();
        for (bytes, why) in [
            (build((&[], &[3.0]), None, -1), "scaled by 0.33"),
            (build((&[2], &[2.0, 2.0]), None, -1), "dimensions [2]"),
            (
                build(two, Some((&[4, 4], &anti)), -1),
                "neither zero nor causal",
            ),
            (
                build(two, Some((&[1, 1, 1, 4, 4], &causal)), -1),
                "without changing",
            ),
            (build(two, None, 2), "Softmax over axis 2"),
        ] {
            let e = import(&bytes, "attn.onnx", false).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    /// A transformer block's pieces on a [1, S, F] sequence: MatMul per token,
    /// LayerNormalization over the features (γ and β kept as the layer's parameters, β
    /// optional) and the exact Gelu import and run as the float reference computes them;
    /// another axis and the tanh approximation are refused, naming what is supported.
    #[test]
    fn layer_norm_and_gelu_of_a_token_sequence_import() {
        let (s, f) = (3usize, 4usize);
        let w: Vec<f32> = (0..f * f).map(|i| (i as f32 - 7.0) / 10.0).collect();
        let g = [1.0f32, 0.5, -1.0, 2.0];
        let b = [0.0f32, 0.1, 0.2, -0.3];
        let inits = |beta: bool| {
            let mut v = vec![
                tensor("w", &[f as i64, f as i64], 1, &f32s(&w)),
                tensor("g", &[f as i64], 1, &f32s(&g)),
            ];
            if beta {
                v.push(tensor("b", &[f as i64], 1, &f32s(&b)));
            }
            v
        };
        let ln_eps = {
            let mut a = Vec::new();
            bytes(&mut a, 1, b"epsilon");
            a.extend([0x15]);
            a.extend(1e-3f32.to_le_bytes());
            a
        };
        let nodes =
            |ln: Vec<u8>, gelu: Vec<u8>| vec![node("MatMul", &["x", "w"], &["m"], &[]), ln, gelu];
        let dims = [1, s as i64, f as i64];
        let bytes_ok = model(
            &dims,
            &inits(true),
            &nodes(
                node(
                    "LayerNormalization",
                    &["m", "g", "b"],
                    &["n"],
                    std::slice::from_ref(&ln_eps),
                ),
                node("Gelu", &["n"], &["y"], &[]),
            ),
        );
        let im = import(&bytes_ok, "block.onnx", false).unwrap();
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(ops, ["input", "dense", "layernorm", "gelu"]);
        assert_eq!(im.net.layers[2].op, Op::LayerNorm { eps: 1e-3 });
        assert_eq!(
            im.weights
                .get(&im.net.layers[2].name, "gamma")
                .unwrap()
                .to_vec(),
            g
        );
        assert_eq!(
            im.weights
                .get(&im.net.layers[2].name, "beta")
                .unwrap()
                .to_vec(),
            b
        );
        let x = ndarray::Array3::from_shape_fn((f, s, 1), |(c, t, _)| (c as f32 - t as f32) / 3.0);
        let outs = crate::exec::forward(&im.net, &im.weights, &x).unwrap();
        let y = outs.last().unwrap();
        for t in 0..s {
            let m: Vec<f64> = (0..f)
                .map(|o| (0..f).map(|i| f64::from(w[i * f + o] * x[[i, t, 0]])).sum())
                .collect();
            let mean = m.iter().sum::<f64>() / f as f64;
            let var = m.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / f as f64;
            for o in 0..f {
                let n = f64::from(g[o]) * (m[o] - mean) / (var + 1e-3).sqrt() + f64::from(b[o]);
                let want = crate::ibert::gelu(n);
                assert!((f64::from(y[[o, t, 0]]) - want).abs() < 1e-4, "{o} {t}");
            }
        }
        // No β: zeros.
        let no_beta = model(
            &dims,
            &inits(false),
            &nodes(
                node("LayerNormalization", &["m", "g"], &["n"], &[]),
                node("Gelu", &["n"], &["y"], &[]),
            ),
        );
        let im = import(&no_beta, "block.onnx", false).unwrap();
        assert_eq!(
            im.weights
                .get(&im.net.layers[2].name, "beta")
                .unwrap()
                .to_vec(),
            [0.0; 4]
        );
        for (ln, gelu, want) in [
            (
                node(
                    "LayerNormalization",
                    &["m", "g"],
                    &["n"],
                    &[int_attr("axis", 1)],
                ),
                node("Gelu", &["n"], &["y"], &[]),
                "axis 1",
            ),
            (
                node("LayerNormalization", &["m", "g"], &["n"], &[]),
                node("Gelu", &["n"], &["y"], &[str_attr("approximate", "tanh")]),
                "tanh",
            ),
        ] {
            let e = import(
                &model(&dims, &inits(false), &nodes(ln, gelu)),
                "b.onnx",
                false,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    /// An INT attribute.
    fn int_attr(name: &str, v: i64) -> Vec<u8> {
        let mut a = Vec::new();
        bytes(&mut a, 1, name.as_bytes());
        int(&mut a, 3, v);
        a
    }

    fn i64s(v: &[i64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn names_and_ops(im: &Imported) -> Vec<(String, &'static str)> {
        im.net
            .layers
            .iter()
            .map(|l| (l.name.clone(), l.op.name()))
            .collect()
    }

    /// The shape subgraph of a torch export (Shape → Gather → Unsqueeze → Concat → Reshape)
    /// folds to a constant; the Reshape to [1, -1] is a Flatten layer of its own name, which
    /// the Gemm reads.
    #[test]
    fn shape_subgraphs_fold_and_a_flattening_reshape_is_a_layer() {
        let inits = [
            tensor("w", &[4, 2, 1, 1], 1, &f32s(&[1.0; 8])),
            tensor("zero", &[], 7, &i64s(&[0])),
            tensor("minus1", &[1], 7, &i64s(&[-1])),
            tensor("fc", &[5, 36], 1, &f32s(&[0.5; 180])),
        ];
        let nodes = [
            node("Conv", &["x", "w"], &["c"], &[]),
            node("Shape", &["c"], &["s"], &[]),
            node("Gather", &["s", "zero"], &["b"], &[int_attr("axis", 0)]),
            node("Unsqueeze", &["b"], &["b1"], &[ints_attr("axes", &[0])]),
            node(
                "Concat",
                &["b1", "minus1"],
                &["target"],
                &[int_attr("axis", 0)],
            ),
            node("Reshape", &["c", "target"], &["f"], &[]),
            node("Gemm", &["f", "fc"], &["y"], &[int_attr("transB", 1)]),
        ];
        let im = import(&model(&[1, 2, 3, 3], &inits, &nodes), "flat.onnx", false).unwrap();
        assert_eq!(
            names_and_ops(&im),
            [
                ("input".to_owned(), "input"),
                ("Conv_c".to_owned(), "conv"),
                ("Reshape_f".to_owned(), "flatten"),
                ("Gemm_y".to_owned(), "dense")
            ]
        );
        assert_eq!(im.net.totals().unwrap().0, 4 * 2 * 9 + 36 * 5);
    }

    /// An unfolded BatchNorm (BatchNormalization, then Mul and Add by unsqueezed per-channel
    /// constants, as the Caffe2 exports of the ONNX model zoo have it) merges into one
    /// BatchNorm; Mul and Add right after a Conv fold into its weights and bias; an input
    /// normalization (Sub, Div) is a BatchNorm of its own. The float network computes the
    /// same as the graph's arithmetic.
    #[test]
    fn element_wise_constants_fold_into_the_layer_before() {
        let c = 2;
        let inits = [
            tensor("w", &[2, 2, 1, 1], 1, &f32s(&[1.0, 2.0, -1.0, 0.5])),
            tensor("g", &[2], 1, &f32s(&[1.0, 2.0])),
            tensor("b", &[2], 1, &f32s(&[0.0, 1.0])),
            tensor("m", &[2], 1, &f32s(&[0.5, -0.5])),
            tensor("v", &[2], 1, &f32s(&[1.0, 4.0])),
            tensor("sw", &[2], 1, &f32s(&[3.0, -1.0])),
            tensor("sb", &[2], 1, &f32s(&[0.25, 0.75])),
            tensor("mean", &[1, 2, 1, 1], 1, &f32s(&[0.5, 0.25])),
            tensor("std", &[1, 2, 1, 1], 1, &f32s(&[2.0, 4.0])),
            tensor("k", &[2, 1, 1], 1, &f32s(&[10.0, 100.0])),
            tensor("kb", &[2, 1, 1], 1, &f32s(&[0.25, 0.75])),
        ];
        let mut eps = Vec::new();
        bytes(&mut eps, 1, b"epsilon");
        eps.push(2 << 3 | 5);
        eps.extend(0.0f32.to_le_bytes());
        let nodes = [
            node("Sub", &["x", "mean"], &["x1"], &[]),
            node("Div", &["x1", "std"], &["x2"], &[]),
            node("Conv", &["x2", "w"], &["c"], &[]),
            node("Mul", &["c", "k"], &["ck"], &[]),
            node("Add", &["ck", "kb"], &["cb"], &[]),
            node(
                "BatchNormalization",
                &["cb", "g", "b", "m", "v"],
                &["bn"],
                &[eps],
            ),
            node(
                "Unsqueeze",
                &["sw"],
                &["sw1"],
                &[ints_attr("axes", &[1, 2])],
            ),
            node("Mul", &["bn", "sw1"], &["s"], &[]),
            node(
                "Unsqueeze",
                &["sb"],
                &["sb1"],
                &[ints_attr("axes", &[1, 2])],
            ),
            node("Add", &["s", "sb1"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 2, 1, 1], &inits, &nodes), "bn.onnx", false).unwrap();
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(ops, ["input", "batchnorm", "conv", "batchnorm"]);
        let x = [0.7f32, -1.3];
        let out = crate::exec::forward(
            &im.net,
            &im.weights,
            &ndarray::Array3::from_shape_vec((c, 1, 1), x.to_vec()).unwrap(),
        )
        .unwrap();
        // The graph by hand.
        let x2 = [(x[0] - 0.5) / 2.0, (x[1] - 0.25) / 4.0];
        let conv = [x2[0] + 2.0 * x2[1], -x2[0] + 0.5 * x2[1]];
        let cb = [conv[0] * 10.0 + 0.25, conv[1] * 100.0 + 0.75];
        let bn = [
            (cb[0] - 0.5) / 1.0f32.sqrt() + 0.0,
            2.0 * (cb[1] + 0.5) / 4.0f32.sqrt() + 1.0,
        ];
        let y = [bn[0] * 3.0 + 0.25, 0.75 - bn[1]];
        let got = out.last().unwrap();
        for k in 0..c {
            assert!(
                (got[[k, 0, 0]] - y[k]).abs() < 1e-4,
                "{k}: {} vs {}",
                got[[k, 0, 0]],
                y[k]
            );
        }
    }

    /// Pad goes into the next Conv's window (MaxPool refuses it), ReduceMean over H×W is a
    /// global average pool, a Sum of three adds twice, and an NHWC input transposed at once
    /// is imported in its NCHW form.
    #[test]
    fn pad_reduce_mean_sums_and_an_nhwc_input() {
        let keep = int_attr("keepdims", 0);
        let inits = [
            tensor("w", &[4, 3, 3, 3], 1, &f32s(&[0.1; 108])),
            tensor("pads", &[8], 7, &i64s(&[0, 0, 1, 1, 0, 0, 1, 1])),
            tensor("fc", &[4, 2], 1, &f32s(&[1.0; 8])),
        ];
        let nodes = [
            node(
                "Transpose",
                &["x"],
                &["t"],
                &[ints_attr("perm", &[0, 3, 1, 2])],
            ),
            node("Pad", &["t", "pads"], &["p"], &[]),
            node("Conv", &["p", "w"], &["c"], &[]),
            node("Sum", &["c", "c", "c"], &["s"], &[]),
            node(
                "ReduceMean",
                &["s"],
                &["r"],
                &[ints_attr("axes", &[2, 3]), keep],
            ),
            node("MatMul", &["r", "fc"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 8, 8, 3], &inits, &nodes), "nhwc.onnx", false).unwrap();
        assert_eq!(im.net.input_shape(), Shape::new(3, 8, 8));
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(ops, ["input", "conv", "add", "add", "gap", "dense"]);
        let Op::Conv2d { window, .. } = im.net.layers[1].op else {
            panic!()
        };
        assert_eq!(window.pad, [1, 1, 1, 1]);
        assert_eq!(im.net.stats().unwrap()[1].out, Shape::new(4, 8, 8));
        let nodes = [
            node("Pad", &["x", "pads"], &["p"], &[]),
            node(
                "MaxPool",
                &["p"],
                &["y"],
                &[ints_attr("kernel_shape", &[3, 3])],
            ),
        ];
        let e = import(&model(&[1, 3, 8, 8], &inits, &nodes), "maxpad.onnx", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MaxPool") && e.contains("Pad"), "{e}");
    }

    /// Independent reference: on each float fixture with real weights, cramulator's float
    /// executor on the imported network gives the output of the `onnx` package's reference
    /// evaluator (numpy; written by tools/onnx-fixtures/make.py) on the same seeded input,
    /// within 1e-5 relative (f32 sums in another order).
    #[test]
    fn float_execution_matches_the_onnx_reference_evaluator() {
        let dir = format!("{}/fixtures/onnx", env!("CARGO_MANIFEST_DIR"));
        let read = |f: String| std::fs::read(format!("{dir}/{f}")).unwrap();
        for name in [
            "tiny_cnn_float",
            "tiny_graph_ops",
            "tiny_shuffle",
            "tiny_lrn",
            "tiny_activations",
        ] {
            let im = import(&read(format!("{name}.onnx")), name, false).unwrap();
            let x = crate::npy::inputs(&read(format!("{name}.in.npy")), "in", im.net.input_shape())
                .unwrap()
                .remove(0);
            let out = im.net.stats().unwrap().last().unwrap().out;
            let want = crate::npy::inputs(&read(format!("{name}.out.npy")), "out", out)
                .unwrap()
                .remove(0);
            let got = crate::exec::forward(&im.net, &im.weights, &x)
                .unwrap()
                .pop()
                .unwrap();
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * scale, "{name}: {g} vs {w}");
            }
        }
    }

    /// ONNX Runtime's com.microsoft int8 contrib ops import as the layers of their float
    /// forms, with the bits of their output zero points; QGemm's int32 bias is rescaled by
    /// a_scale · b_scale.
    #[test]
    fn com_microsoft_qlinear_ops_import() {
        let ms = |op: &str, ins: &[&str], outs: &[&str], attrs: &[Vec<u8>]| {
            let mut n = node(op, ins, outs, attrs);
            bytes(&mut n, 7, b"com.microsoft");
            n
        };
        let inits = [
            tensor("s", &[], 1, &f32s(&[0.5])),
            tensor("z", &[], 2, &[0]),
            tensor("w", &[2, 2, 1, 1], 3, &[1, 2, 3, 4]),
            tensor("wq", &[3, 4], 3, &[1; 12]),
            tensor("bs", &[3], 1, &f32s(&[0.25, 0.5, 1.0])),
            tensor("bz", &[3], 3, &[0, 0, 0]),
            tensor("bias", &[3], 6, &[4i32; 3].map(i32::to_le_bytes).concat()),
        ];
        let nodes = [
            node("QuantizeLinear", &["x", "s", "z"], &["q"], &[]),
            node(
                "QLinearConv",
                &["q", "s", "z", "w", "s", "z", "s", "z"],
                &["c"],
                &[],
            ),
            ms(
                "QLinearAdd",
                &["c", "s", "z", "q", "s", "z", "s", "z"],
                &["a"],
                &[],
            ),
            ms(
                "QLinearAveragePool",
                &["a", "s", "z", "s", "z"],
                &["p"],
                &[
                    ints_attr("kernel_shape", &[2, 2]),
                    ints_attr("strides", &[2, 2]),
                ],
            ),
            ms(
                "QLinearConcat",
                &["s", "z", "p", "s", "z", "p", "s", "z"],
                &["cat"],
                &[int_attr("axis", 1)],
            ),
            ms(
                "QLinearGlobalAveragePool",
                &["cat", "s", "z", "s", "z"],
                &["g"],
                &[],
            ),
            node("Flatten", &["g"], &["f"], &[]),
            ms(
                "QGemm",
                &["f", "s", "z", "wq", "bs", "bz", "bias", "s", "z"],
                &["y"],
                &[int_attr("transB", 1)],
            ),
        ];
        let im = import(&model(&[1, 2, 4, 4], &inits, &nodes), "ms.onnx", false).unwrap();
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(
            ops,
            ["input", "conv", "add", "avgpool", "concat", "gap", "dense"]
        );
        let fc = im.net.layers.last().unwrap();
        assert_eq!(fc.bits, Some(Bits { w: 8, a: 8 }));
        // 4 · 0.5 · b_scale[o].
        assert_eq!(
            im.weights.get(&fc.name, "bias").unwrap().to_vec(),
            [0.5, 1.0, 2.0]
        );
        assert_eq!(im.weights.get(&fc.name, "weight").unwrap().get(4), 0.5);
        let other = ms("QLinearWhere", &["x"], &["y"], &[]);
        let e = import(&model(&[1, 2, 4, 4], &inits, &[other]), "ms2.onnx", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("com.microsoft op type QLinearWhere"), "{e}");
    }

    /// Mul of two activations broadcasts as ONNX does: equal dimensions, or a [1, C, 1, 1]
    /// gate over [1, C, H, W] either first (the full one becomes the layer's first input);
    /// a [1, C] vector lines up with W, not C, and is refused. A PRelu slope per channel is
    /// refused even when its values are equal; one slope is a leaky ReLU.
    #[test]
    fn a_product_of_activations_broadcasts_as_onnx_does() {
        for gate_first in [false, true] {
            let (a, b) = if gate_first { ("g", "x") } else { ("x", "g") };
            let nodes = [
                node("GlobalAveragePool", &["x"], &["g"], &[]),
                node("Mul", &[a, b], &["y"], &[]),
                node("Mul", &["y", "y"], &["z"], &[]),
            ];
            let im = import(&model(&[1, 2, 3, 3], &[], &nodes), "se.onnx", false).unwrap();
            let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
            assert_eq!(ops, ["input", "gap", "mul", "mul"]);
            assert_eq!(im.net.layers[2].inputs, [0, 1]);
            assert_eq!(im.net.layers[3].inputs, [2, 2]);
        }
        let nodes = [
            node("GlobalAveragePool", &["x"], &["g"], &[]),
            node("Flatten", &["g"], &["f"], &[]),
            node("Mul", &["f", "x"], &["y"], &[]),
        ];
        let e = import(&model(&[1, 2, 3, 3], &[], &nodes), "vec.onnx", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Mul of activations of dimensions [1, 2] and [1, 2, 3, 3]"),
            "{e}"
        );
        let prelu = |dims: &[i64], v: &[f32]| {
            let inits = [tensor("s", dims, 1, &f32s(v))];
            let nodes = [node("PRelu", &["x", "s"], &["y"], &[])];
            import(&model(&[1, 2, 3, 3], &inits, &nodes), "prelu.onnx", false)
        };
        let e = prelu(&[2, 1, 1], &[0.25, 0.25]).unwrap_err().to_string();
        assert!(
            e.contains("PRelu with a slope per element or channel"),
            "{e}"
        );
        let im = prelu(&[1], &[0.25]).unwrap();
        assert_eq!(
            im.net.layers[1].op,
            Op::Unary {
                f: UnaryFn::LeakyRelu { alpha: 0.25 }
            }
        );
    }

    /// A constant Mul folds into the layer before it only when nothing else reads that
    /// layer, also through a quantized graph's pairs: one QuantizeLinear dequantized for
    /// two consumers (a scaled branch and a residual Add) keeps the Mul a layer of its own,
    /// so the Add reads the unscaled values.
    #[test]
    fn a_constant_folds_only_into_a_layer_nothing_else_reads() {
        let inits = [
            tensor("w", &[2, 2, 1, 1], 1, &f32s(&[1.0, 0.5, -0.5, 1.0])),
            tensor("s", &[], 1, &f32s(&[0.05])),
            tensor("z", &[], 2, &[128]),
            tensor("k", &[2, 1, 1], 1, &f32s(&[2.0, 3.0])),
        ];
        let nodes = [
            node("Conv", &["x", "w"], &["c"], &[]),
            node("QuantizeLinear", &["c", "s", "z"], &["q"], &[]),
            node("DequantizeLinear", &["q", "s", "z"], &["d1"], &[]),
            node("DequantizeLinear", &["q", "s", "z"], &["d2"], &[]),
            node("Mul", &["d1", "k"], &["m"], &[]),
            node("Add", &["m", "d2"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 2, 3, 3], &inits, &nodes), "qdq2.onnx", false).unwrap();
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(ops, ["input", "conv", "batchnorm", "add"]);
        assert_eq!(im.acts[&im.net.layers[1].name].scale, 0.05);
        // With one dequantized reader, the Mul folds into the convolution, whose recorded
        // format (of the unscaled output) is then dropped.
        let nodes = [
            node("Conv", &["x", "w"], &["c"], &[]),
            node("QuantizeLinear", &["c", "s", "z"], &["q"], &[]),
            node("DequantizeLinear", &["q", "s", "z"], &["d1"], &[]),
            node("Mul", &["d1", "k"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 2, 3, 3], &inits, &nodes), "qdq1.onnx", false).unwrap();
        let ops: Vec<&str> = im.net.layers.iter().map(|l| l.op.name()).collect();
        assert_eq!(ops, ["input", "conv"]);
        assert!(im.acts.is_empty(), "{:?}", im.acts);
    }

    /// A quantized file's weight codes are kept: asymmetric uint8 codes per tensor (as
    /// affine codes), and int8 codes per output channel with zero points 0 (as symmetric
    /// ones; MatMul's B is [in, out], so its channels run along axis 1), whatever
    /// requantizing them symmetric per channel would have given. A Gemm's alpha changes
    /// the weights, so they are requantized.
    #[test]
    fn a_quantized_files_weight_codes_are_kept() {
        use crate::compress::{Recorded, compress_with};
        use crate::quant::WeightMode;
        let codes_u8: [u8; 4] = [0, 3, 200, 255];
        let codes_i8: [i8; 6] = [-128, 5, 127, -7, 0, 64];
        let inits = [
            tensor("wq", &[2, 2, 1, 1], 2, &codes_u8),
            tensor("ws", &[], 1, &f32s(&[0.01])),
            tensor("wz", &[], 2, &[3]),
            tensor("mq", &[2, 3], 3, &codes_i8.map(|c| c as u8)),
            tensor("ms", &[3], 1, &f32s(&[0.5, 0.25, 0.125])),
            tensor("mz", &[3], 3, &[0, 0, 0]),
        ];
        let nodes = [
            node("DequantizeLinear", &["wq", "ws", "wz"], &["w"], &[]),
            node("Conv", &["x", "w"], &["c"], &[]),
            node("GlobalAveragePool", &["c"], &["g"], &[]),
            node("Flatten", &["g"], &["f"], &[]),
            node(
                "DequantizeLinear",
                &["mq", "ms", "mz"],
                &["m"],
                &[int_attr("axis", 1)],
            ),
            node("MatMul", &["f", "m"], &["y"], &[]),
        ];
        let im = import(&model(&[1, 2, 3, 3], &inits, &nodes), "codes.onnx", false).unwrap();
        let (conv, fc) = (
            im.net.layers[1].name.clone(),
            im.net.layers.last().unwrap().name.clone(),
        );
        assert_eq!(im.weights_q.len(), 2, "{:?}", im.weights_q);
        let spec = crate::compress::CompressSpec::INT8;
        let keep = Recorded {
            codes: im.weights_q.clone(),
            ..Recorded::default()
        };
        let x = crate::compress::synthetic_inputs(im.net.input_shape(), 1, 1);
        let c = compress_with(&im.net, &im.weights, &spec, &x, &keep).unwrap();
        assert_eq!(c.recorded_codes, [conv.clone(), fc.clone()]);
        let q = &c.model.quant.as_ref().unwrap().weights;
        assert_eq!(q[&conv].scheme.mode, WeightMode::Affine);
        assert_eq!(q[&conv].values, [0, 3, 200, 255]);
        assert_eq!(
            (q[&conv].scale.as_slice(), q[&conv].zero.as_slice()),
            (&[0.01f32][..], &[3][..])
        );
        // [out = 3, in = 2] after the transpose; −128 is outside the narrow symmetric
        // range, so the codes are affine, shifted by 128.
        assert_eq!(q[&fc].scheme.mode, WeightMode::Affine);
        assert_eq!(q[&fc].values, [0, 121, 133, 128, 255, 192]);
        assert_eq!(q[&fc].zero, [128, 128, 128]);
        assert_eq!(q[&fc].scale, [0.5, 0.25, 0.125]);
        // Scaled by a Gemm's alpha, the weights are no longer the codes' values.
        let mut alpha = Vec::new();
        bytes(&mut alpha, 1, b"alpha");
        alpha.push(2 << 3 | 5);
        alpha.extend(0.3f32.to_le_bytes());
        let nodes = [
            node(
                "DequantizeLinear",
                &["mq", "ms", "mz"],
                &["m"],
                &[int_attr("axis", 1)],
            ),
            node("Gemm", &["x", "m"], &["y"], &[alpha]),
        ];
        let im = import(&model(&[1, 2], &inits, &nodes), "alpha.onnx", false).unwrap();
        let keep = Recorded {
            codes: im.weights_q.clone(),
            ..Recorded::default()
        };
        let x = crate::compress::synthetic_inputs(im.net.input_shape(), 1, 1);
        let c = compress_with(&im.net, &im.weights, &spec, &x, &keep).unwrap();
        assert!(c.recorded_codes.is_empty());
    }
}
