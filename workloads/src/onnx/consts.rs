//! Constant folding for the importer: the tensor operations an exported graph applies to
//! constants (shape arithmetic such as Shape → Gather → Unsqueeze → Concat → Reshape, weights
//! reshaped or transposed before use, an unfolded BatchNorm's Unsqueeze), evaluated at import
//! by the semantics of the ONNX operator specification (onnx.ai/onnx/operators; numpy-style
//! broadcasting). A fill (a structure-only model's placeholder) stays a fill wherever every
//! element stays equal.
//!
//! Values are f32, as every constant of the importer: shape values are exact up to 2^24.

use crate::weights::{Data, Tensor};

/// Why a constant cannot be folded.
pub type Folded<T> = Result<T, String>;

/// Largest tensor a fold materializes (2^26 elements).
const MAX_MATERIALIZED: usize = 1 << 26;

/// Resolves a possibly negative axis against `rank` (ONNX: −rank ≤ axis < rank).
pub fn axis(a: i64, rank: usize) -> Folded<usize> {
    let r = rank as i64;
    if (-r..r).contains(&a) {
        Ok(if a < 0 { a + r } else { a } as usize)
    } else {
        Err(format!("axis {a} is outside a tensor of rank {rank}"))
    }
}

/// The values of a 1-D (or scalar) integer constant, e.g. a shape or axes input.
pub fn ints(t: &Tensor) -> Folded<Vec<i64>> {
    if t.dims.len() > 1 {
        return Err(format!("a list of integers has dimensions {:?}", t.dims));
    }
    if t.len() > 1 << 16 {
        return Err(format!("a list of {} integers is too long", t.len()));
    }
    Ok((0..t.len()).map(|i| t.get(i) as i64).collect())
}

/// An integer vector as a constant (a Shape result).
pub fn from_ints(v: &[i64]) -> Tensor {
    Tensor::new(vec![v.len()], v.iter().map(|&x| x as f32).collect())
}

/// Reshape's output dimensions for `dims` and the target (ONNX Reshape: 0 copies the input's
/// dimension unless `allowzero`, one −1 is inferred).
pub fn reshape_dims(dims: &[usize], target: &[i64], allowzero: bool) -> Folded<Vec<usize>> {
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*dims.get(i).ok_or_else(|| {
                    format!("target {target:?}: 0 copies a missing dimension {i}")
                })?)
            }
            t if t >= 0 => out.push(t as usize),
            _ => return Err(format!("target {target:?} has a bad dimension {t}")),
        }
    }
    let known: usize = out
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("the target overflows")?;
    if let Some(i) = infer {
        if known == 0 || !n.is_multiple_of(known) {
            return Err(format!("cannot infer -1 of {target:?} for {n} elements"));
        }
        out[i] = n / known;
    } else if known != n {
        return Err(format!(
            "target {target:?} holds {known} elements, the input {dims:?} holds {n}"
        ));
    }
    Ok(out)
}

/// Unsqueeze's output dimensions: 1s inserted at `axes` of the output.
pub fn unsqueeze_dims(dims: &[usize], axes: &[i64]) -> Folded<Vec<usize>> {
    let rank = dims.len() + axes.len();
    let mut at: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Folded<_>>()?;
    at.sort_unstable();
    if at.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("axes {axes:?} repeat"));
    }
    let mut src = dims.iter();
    Ok((0..rank)
        .map(|i| {
            if at.contains(&i) {
                1
            } else {
                *src.next().expect("rank counted")
            }
        })
        .collect())
}

/// Squeeze's output dimensions: `axes` (each of size 1) removed, or every 1 when empty.
pub fn squeeze_dims(dims: &[usize], axes: &[i64]) -> Folded<Vec<usize>> {
    if axes.is_empty() {
        return Ok(dims.iter().copied().filter(|&d| d != 1).collect());
    }
    let at: Vec<usize> = axes
        .iter()
        .map(|&a| axis(a, dims.len()))
        .collect::<Folded<_>>()?;
    if let Some(&a) = at.iter().find(|&&a| dims[a] != 1) {
        return Err(format!(
            "Squeeze of axis {a} of size {} (must be 1)",
            dims[a]
        ));
    }
    Ok(dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !at.contains(i))
        .map(|(_, &d)| d)
        .collect())
}

/// The same values under new dimensions.
pub fn with_dims(t: &Tensor, dims: Vec<usize>) -> Tensor {
    debug_assert_eq!(dims.iter().product::<usize>(), t.len());
    Tensor {
        dims,
        data: t.data.clone(),
    }
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn materialize(n: usize, what: &str) -> Folded<()> {
    if n > MAX_MATERIALIZED {
        Err(format!(
            "{what} would materialize {n} elements (at most 2^26)"
        ))
    } else {
        Ok(())
    }
}

/// A tensor whose element at each output index is `t`'s element at `src(index)` (a fill
/// stays a fill).
fn gathered(
    t: &Tensor,
    dims: Vec<usize>,
    what: &str,
    src: impl Fn(&[usize]) -> usize,
) -> Folded<Tensor> {
    let n: usize = dims.iter().product();
    if let Data::Fill(x) = t.data {
        return Ok(Tensor {
            dims,
            data: Data::Fill(x),
        });
    }
    materialize(n, what)?;
    let mut idx = vec![0usize; dims.len()];
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(t.get(src(&idx)));
        for k in (0..dims.len()).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(Tensor::new(dims, v))
}

/// Transpose by `perm` (empty: reversed axes).
pub fn transpose(t: &Tensor, perm: &[i64]) -> Folded<Tensor> {
    let rank = t.dims.len();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..rank).rev().collect()
    } else {
        perm.iter().map(|&p| axis(p, rank)).collect::<Folded<_>>()?
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(format!("perm {perm:?} is not a permutation of {rank} axes"));
    }
    let dims: Vec<usize> = perm.iter().map(|&p| t.dims[p]).collect();
    let s = strides(&t.dims);
    gathered(t, dims, "Transpose", |o| {
        o.iter().zip(&perm).map(|(&i, &p)| i * s[p]).sum()
    })
}

/// Gather along `axis` with integer `indices` (negative ones count from the end).
pub fn gather(t: &Tensor, indices: &Tensor, axis_: i64) -> Folded<Tensor> {
    let a = axis(axis_, t.dims.len())?;
    let n = t.dims[a] as i64;
    let idx: Vec<usize> = (0..indices.len())
        .map(|i| {
            let k = indices.get(i) as i64;
            let k = if k < 0 { k + n } else { k };
            if (0..n).contains(&k) {
                Ok(k as usize)
            } else {
                Err(format!(
                    "index {} is outside axis {a} of size {n}",
                    indices.get(i)
                ))
            }
        })
        .collect::<Folded<_>>()?;
    let mut dims = t.dims[..a].to_vec();
    dims.extend(&indices.dims);
    dims.extend(&t.dims[a + 1..]);
    let s = strides(&t.dims);
    let (q, r) = (a, indices.dims.len());
    let is = strides(&indices.dims);
    gathered(t, dims, "Gather", |o| {
        let k: usize = o[q..q + r].iter().zip(&is).map(|(i, s)| i * s).sum();
        let mut off = idx[k] * s[a];
        for (j, &i) in o[..q].iter().enumerate() {
            off += i * s[j];
        }
        for (j, &i) in o[q + r..].iter().enumerate() {
            off += i * s[a + 1 + j];
        }
        off
    })
}

/// The indices Slice keeps along an axis of size `n` (ONNX Slice: clamped starts and ends,
/// negative values counted from the end, a non-zero step).
pub fn slice_indices(n: usize, start: i64, end: i64, step: i64) -> Folded<Vec<usize>> {
    if step == 0 {
        return Err("a Slice step of 0".into());
    }
    let n = n as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    let (s, e) = (norm(start), norm(end));
    Ok(if step > 0 {
        let (s, e) = (s.clamp(0, n), e.clamp(0, n));
        (s..e).step_by(step as usize).map(|i| i as usize).collect()
    } else {
        let (s, e) = (s.clamp(-1, n - 1), e.clamp(-1, n - 1));
        let mut v = Vec::new();
        let mut i = s;
        while i > e {
            v.push(i as usize);
            i += step;
        }
        v
    })
}

/// Slice with the kept indices of each axis.
pub fn slice(t: &Tensor, keep: &[Vec<usize>]) -> Folded<Tensor> {
    let dims: Vec<usize> = keep.iter().map(Vec::len).collect();
    let s = strides(&t.dims);
    gathered(t, dims, "Slice", |o| {
        o.iter().enumerate().map(|(k, &i)| keep[k][i] * s[k]).sum()
    })
}

/// Concatenation along `axis`.
pub fn concat(ts: &[Tensor], axis_: i64) -> Folded<Tensor> {
    let first = ts.first().ok_or("Concat of nothing")?;
    let a = axis(axis_, first.dims.len())?;
    for t in ts {
        let same = t.dims.len() == first.dims.len()
            && t.dims
                .iter()
                .zip(&first.dims)
                .enumerate()
                .all(|(k, (x, y))| k == a || x == y);
        if !same {
            return Err(format!(
                "Concat along axis {a} of dimensions {:?} and {:?}",
                first.dims, t.dims
            ));
        }
    }
    let mut dims = first.dims.clone();
    dims[a] = ts.iter().map(|t| t.dims[a]).sum();
    if let Some(x) = ts
        .iter()
        .try_fold(None, |acc: Option<f32>, t| match (acc, &t.data) {
            (None, Data::Fill(x)) => Some(Some(*x)),
            (Some(y), Data::Fill(x)) if *x == y || (x.is_nan() && y.is_nan()) => Some(Some(y)),
            _ => None,
        })
        .flatten()
    {
        return Ok(Tensor {
            dims,
            data: Data::Fill(x),
        });
    }
    let n: usize = dims.iter().product();
    materialize(n, "Concat")?;
    let outer: usize = dims[..a].iter().product();
    let mut v = Vec::with_capacity(n);
    for o in 0..outer {
        for t in ts {
            let inner: usize = t.dims[a..].iter().product();
            v.extend((o * inner..(o + 1) * inner).map(|i| t.get(i)));
        }
    }
    Ok(Tensor::new(dims, v))
}

/// Split along `axis` into parts of `sizes`.
pub fn split(t: &Tensor, axis_: i64, sizes: &[usize]) -> Folded<Vec<Tensor>> {
    let a = axis(axis_, t.dims.len())?;
    if sizes.iter().sum::<usize>() != t.dims[a] {
        return Err(format!(
            "Split sizes {sizes:?} do not add up to axis {a} of {:?}",
            t.dims
        ));
    }
    let mut start = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let keep: Vec<Vec<usize>> = t
            .dims
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                if k == a {
                    (start..start + n).collect()
                } else {
                    (0..d).collect()
                }
            })
            .collect();
        out.push(slice(t, &keep)?);
        start += n;
    }
    Ok(out)
}

/// The sizes Split gives `n` elements: `split` if given, else `parts` equal parts (the last
/// one smaller when they do not divide, as opset 18 specifies).
pub fn split_sizes(n: usize, split: Option<Vec<i64>>, parts: usize) -> Folded<Vec<usize>> {
    match split {
        Some(s) => s
            .iter()
            .map(|&x| usize::try_from(x).map_err(|_| format!("a split size of {x}")))
            .collect(),
        None if parts == 0 || parts > n.max(1) => {
            Err(format!("Split of {n} elements into {parts} parts"))
        }
        None => {
            let each = n.div_ceil(parts);
            Ok((0..parts)
                .map(|k| each.min(n.saturating_sub(k * each)))
                .collect())
        }
    }
}

/// The broadcast dimensions of `a` and `b` (numpy rules).
pub fn broadcast_dims(a: &[usize], b: &[usize]) -> Folded<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], k: usize| {
        let off = rank - d.len();
        if k < off { 1 } else { d[k - off] }
    };
    (0..rank)
        .map(|k| match (at(a, k), at(b, k)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            (x, y) => Err(format!(
                "dimensions {a:?} and {b:?} do not broadcast ({x} vs {y})"
            )),
        })
        .collect()
}

/// An element-wise binary operation with broadcasting.
pub fn binary(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Folded<Tensor> {
    let dims = broadcast_dims(&a.dims, &b.dims)?;
    let n = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= 1 << 40)
        .ok_or_else(|| format!("dimensions {dims:?} hold more than 2^40 elements"))?;
    if let (Data::Fill(x), Data::Fill(y)) = (&a.data, &b.data) {
        return Ok(Tensor {
            dims,
            data: Data::Fill(f(*x, *y)),
        });
    }
    materialize(n, "an element-wise constant")?;
    let index = |t: &Tensor| {
        let off = dims.len() - t.dims.len();
        let s = strides(&t.dims);
        let td = t.dims.clone();
        move |o: &[usize]| -> usize {
            (0..td.len())
                .map(|k| if td[k] == 1 { 0 } else { o[off + k] * s[k] })
                .sum()
        }
    };
    let (ia, ib) = (index(a), index(b));
    let mut idx = vec![0usize; dims.len()];
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(f(a.get(ia(&idx)), b.get(ib(&idx))));
        for k in (0..dims.len()).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(Tensor::new(dims, v))
}

/// An element-wise unary operation.
pub fn unary(t: &Tensor, f: impl Fn(f32) -> f32) -> Tensor {
    match &t.data {
        Data::Fill(x) => Tensor {
            dims: t.dims.clone(),
            data: Data::Fill(f(*x)),
        },
        Data::F32(v) => Tensor::new(t.dims.clone(), v.iter().map(|&x| f(x)).collect()),
    }
}

/// The binary function of an element-wise ONNX op on constants.
pub fn binary_fn(op: &str) -> Option<fn(f32, f32) -> f32> {
    Some(match op {
        "Add" | "Sum" => |a, b| a + b,
        "Sub" => |a, b| a - b,
        "Mul" => |a, b| a * b,
        "Div" => |a, b| a / b,
        "Pow" => f32::powf,
        "Min" => f32::min,
        "Max" => f32::max,
        "Mod" => |a, b| a % b,
        "Equal" => |a, b| f32::from(u8::from(a == b)),
        "Less" => |a, b| f32::from(u8::from(a < b)),
        "Greater" => |a, b| f32::from(u8::from(a > b)),
        "LessOrEqual" => |a, b| f32::from(u8::from(a <= b)),
        "GreaterOrEqual" => |a, b| f32::from(u8::from(a >= b)),
        "And" => |a, b| f32::from(u8::from(a != 0.0 && b != 0.0)),
        "Or" => |a, b| f32::from(u8::from(a != 0.0 || b != 0.0)),
        _ => return None,
    })
}

/// The unary function of an element-wise ONNX op on constants.
pub fn unary_fn(op: &str) -> Option<fn(f32) -> f32> {
    Some(match op {
        "Neg" => |x| -x,
        "Abs" => f32::abs,
        "Sqrt" => f32::sqrt,
        "Reciprocal" => |x| 1.0 / x,
        "Exp" => f32::exp,
        "Log" => f32::ln,
        "Floor" => f32::floor,
        "Ceil" => f32::ceil,
        "Round" => f32::round_ties_even,
        "Not" => |x| f32::from(u8::from(x == 0.0)),
        "Relu" => |x| x.max(0.0),
        "Sigmoid" => |x| 1.0 / (1.0 + (-x).exp()),
        "Tanh" => f32::tanh,
        _ => return None,
    })
}

/// Where(condition, x, y) with broadcasting.
pub fn select(c: &Tensor, x: &Tensor, y: &Tensor) -> Folded<Tensor> {
    // c ? x : y as two broadcast passes: (c, x) → c·x picks, then the rest from y.
    let cx = binary(c, x, |c, x| if c != 0.0 { x } else { f32::NAN })?;
    let cy = binary(c, y, |c, y| if c != 0.0 { f32::NAN } else { y })?;
    binary(&cx, &cy, |a, b| if a.is_nan() { b } else { a })
}

/// Range(start, limit, delta).
pub fn range(start: f32, limit: f32, delta: f32) -> Folded<Tensor> {
    if delta == 0.0 {
        return Err("a Range delta of 0".into());
    }
    let n = ((limit - start) / delta).ceil().max(0.0) as usize;
    materialize(n, "Range")?;
    Ok(Tensor::new(
        vec![n],
        (0..n).map(|i| start + i as f32 * delta).collect(),
    ))
}

/// Expand(input, shape): broadcast to `shape`.
pub fn expand(t: &Tensor, shape: &[i64]) -> Folded<Tensor> {
    let target: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("Expand to a dimension {d}")))
        .collect::<Folded<_>>()?;
    let ones = Tensor {
        dims: target,
        data: Data::Fill(0.0),
    };
    binary(t, &ones, |a, _| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dims: &[usize], v: &[f32]) -> Tensor {
        Tensor::new(dims.to_vec(), v.to_vec())
    }

    #[test]
    fn shape_arithmetic_folds_as_onnx_specifies() {
        assert_eq!(
            reshape_dims(&[1, 8, 7, 7], &[1, -1], false),
            Ok(vec![1, 392])
        );
        assert_eq!(
            reshape_dims(&[1, 8, 7, 7], &[0, 2, 4, 7, 7], false),
            Ok(vec![1, 2, 4, 7, 7])
        );
        assert!(reshape_dims(&[1, 8], &[3, -1], false).is_err());
        assert!(reshape_dims(&[1, 8], &[-1, -1], false).is_err());
        assert_eq!(unsqueeze_dims(&[64], &[1, 2]), Ok(vec![64, 1, 1]));
        assert_eq!(unsqueeze_dims(&[3], &[0, -1]), Ok(vec![1, 3, 1]));
        assert_eq!(squeeze_dims(&[1, 64, 1, 1], &[2, 3]), Ok(vec![1, 64]));
        assert_eq!(squeeze_dims(&[1, 64, 1, 1], &[]), Ok(vec![64]));
        assert!(squeeze_dims(&[1, 64], &[1]).is_err());
        assert_eq!(slice_indices(10, 2, i64::MAX, 3), Ok(vec![2, 5, 8]));
        assert_eq!(slice_indices(5, -1, i64::MIN, -2), Ok(vec![4, 2, 0]));
        assert_eq!(slice_indices(4, -2, -1, 1), Ok(vec![2]));
        assert_eq!(split_sizes(7, None, 3), Ok(vec![3, 3, 1]));
        assert_eq!(
            broadcast_dims(&[64, 1, 1], &[1, 64, 7, 7]),
            Ok(vec![1, 64, 7, 7])
        );
        assert!(broadcast_dims(&[3], &[4]).is_err());
    }

    #[test]
    fn tensor_folds_match_hand_results() {
        // [[0,1,2],[3,4,5]]
        let a = t(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let tr = transpose(&a, &[]).unwrap();
        assert_eq!(
            (tr.dims.clone(), tr.to_vec()),
            (vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
        );
        let g = gather(&a, &t(&[2], &[2.0, -3.0]), 1).unwrap();
        assert_eq!(
            (g.dims.clone(), g.to_vec()),
            (vec![2, 2], vec![2.0, 0.0, 5.0, 3.0])
        );
        let g = gather(&from_ints(&[1, 64, 7, 7]), &t(&[], &[0.0]), 0).unwrap();
        assert_eq!((g.dims.clone(), g.to_vec()), (vec![], vec![1.0]));
        assert!(gather(&a, &t(&[1], &[3.0]), 1).is_err());
        let c = concat(&[a.clone(), t(&[2, 1], &[9.0, 8.0])], 1).unwrap();
        assert_eq!(c.to_vec(), [0.0, 1.0, 2.0, 9.0, 3.0, 4.0, 5.0, 8.0]);
        let s = split(&c, -1, &[2, 2]).unwrap();
        assert_eq!(s[1].to_vec(), [2.0, 9.0, 5.0, 8.0]);
        let b = binary(&a, &t(&[3], &[10.0, 20.0, 30.0]), |x, y| x * y).unwrap();
        assert_eq!(b.to_vec(), [0.0, 20.0, 60.0, 30.0, 80.0, 150.0]);
        let w = select(&t(&[2, 1], &[1.0, 0.0]), &a, &t(&[], &[-1.0])).unwrap();
        assert_eq!(w.to_vec(), [0.0, 1.0, 2.0, -1.0, -1.0, -1.0]);
        assert_eq!(range(0.0, 5.0, 2.0).unwrap().to_vec(), [0.0, 2.0, 4.0]);
        assert_eq!(
            expand(&t(&[2, 1], &[1.0, 2.0]), &[2, 2]).unwrap().to_vec(),
            [1.0, 1.0, 2.0, 2.0]
        );
        // A fill stays a fill through shape operations and arithmetic with fills.
        let f = Tensor {
            dims: vec![512, 256, 3, 3],
            data: Data::Fill(0.5),
        };
        assert!(!transpose(&f, &[1, 0, 2, 3]).unwrap().is_dense());
        let k = Tensor {
            dims: vec![],
            data: Data::Fill(2.0),
        };
        assert_eq!(binary(&f, &k, |x, y| x * y).unwrap().data, Data::Fill(1.0));
        assert!(concat(&[f.clone(), f.clone()], 0).unwrap().data == Data::Fill(0.5));
    }
}
