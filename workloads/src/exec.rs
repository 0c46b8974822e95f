//! Tensor kernels shared by the float forward pass and the integer golden executor
//! (generic over f32 and i64), and the float forward pass itself (used to train, to
//! calibrate activation ranges and to report float accuracy).
//!
//! Every kernel sums in a fixed order (input channel, then kernel row, then kernel column;
//! for Dense the input feature), with no fused multiply-add, so float results are the same on
//! every machine and thread count. Layout: activations are C×H×W `Array3`; Dense weights
//! [out, in]; Conv2d weights [out, in/groups, kh, kw].

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayView4, LinalgScalar, s};
use rayon::prelude::*;

use crate::error::WorkloadError;
use crate::net::{Network, Op, Window};
use crate::simd::{self, Level};
use crate::weights::Weights;

/// Σ_i W[o,i]·x[i] at every position: W is [out, in], x is in×H×W.
pub fn dense<T: LinalgScalar>(x: ArrayView3<T>, w: ArrayView2<T>) -> Array3<T> {
    let (c, h, wd) = x.dim();
    let x2 = x
        .to_shape((c, h * wd))
        .expect("C×(H·W) view of a standard array");
    let mut out = Array2::<T>::zeros((w.nrows(), h * wd));
    for (o, mut row) in out.outer_iter_mut().enumerate() {
        for i in 0..c {
            row.scaled_add(w[[o, i]], &x2.row(i));
        }
    }
    out.into_shape_with_order((w.nrows(), h, wd))
        .expect("same element count")
}

/// Grouped 2-D convolution with zero padding (the caller subtracts zero points first).
/// Output channels are computed in parallel, each element summing its terms in the fixed
/// order of the module doc (`y = y + w·x`, as `scaled_add` does), so the result does not
/// depend on the thread count.
pub fn conv2d<T: LinalgScalar + Send + Sync>(
    x: ArrayView3<T>,
    w: ArrayView4<T>,
    window: &Window,
    groups: usize,
) -> Array3<T> {
    conv2d_padded(x, w, window, groups, T::zero())
}

/// [`conv2d`] with the padding cells holding `pad` instead of zero (a ±1 input, whose code
/// cannot hold 0, is padded with −1).
pub fn conv2d_padded<T: LinalgScalar + Send + Sync>(
    x: ArrayView3<T>,
    w: ArrayView4<T>,
    window: &Window,
    groups: usize,
    pad: T,
) -> Array3<T> {
    let (c, h, wd) = x.dim();
    let (oh, ow) = window
        .output(h, wd)
        .expect("shapes checked by Network::stats");
    let [pt, pl, pb, pr] = window.pad;
    let (hp, wp) = (h + pt + pb, wd + pl + pr);
    let mut xp = Array3::<T>::from_elem((c, hp, wp), pad);
    xp.slice_mut(s![.., pt..pt + h, pl..pl + wd]).assign(&x);
    let xp = xp.as_slice().expect("a new array is contiguous");
    let (cout, cin_g, kh, kw) = w.dim();
    let w = w.as_standard_layout();
    let w = w.as_slice().expect("standard layout");
    let geo = ConvGeometry {
        hp,
        wp,
        oh,
        ow,
        stride: window.stride,
        cin_g,
        kh,
        kw,
        cout_g: cout / groups,
    };
    let out = if geo.cout_g.is_multiple_of(CO_BLOCK) {
        // Four-byte values (f32) take twice the positions per tile: eight vector
        // accumulators of eight lanes each with AVX2, four of sixteen with AVX-512.
        if std::mem::size_of::<T>() <= 4 {
            conv_blocked::<T, { 2 * PX_BLOCK }>(xp, w, &geo, groups)
        } else {
            conv_blocked::<T, PX_BLOCK>(xp, w, &geo, groups)
        }
    } else {
        conv_by_channel(xp, w, &geo, cout)
    };
    Array3::from_shape_vec((cout, oh, ow), out).expect("cout × oh × ow elements")
}

/// Output channels per register block of [`conv_blocked`].
const CO_BLOCK: usize = 4;
/// Output positions per register block of [`conv_blocked`] (twice as many for f32).
const PX_BLOCK: usize = 8;

/// The shapes a convolution kernel needs: the padded input plane (`hp` × `wp`), the output
/// plane, the stride and the per-group channel counts.
struct ConvGeometry {
    hp: usize,
    wp: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    cin_g: usize,
    kh: usize,
    kw: usize,
    cout_g: usize,
}

impl ConvGeometry {
    /// Terms per output element: (input channel, kernel row, kernel column).
    fn terms(&self) -> usize {
        self.cin_g * self.kh * self.kw
    }

    /// How far output position `px`'s window is from the origin's, in the padded input.
    fn position_offset(&self, px: usize) -> usize {
        let (y, xo) = (px / self.ow, px % self.ow);
        self.stride[0] * y * self.wp + self.stride[1] * xo
    }
}

/// One output channel at a time, sweeping its whole plane once per term: the general case
/// (any group size).
fn conv_by_channel<T: LinalgScalar + Send + Sync>(
    xp: &[T],
    w: &[T],
    geo: &ConvGeometry,
    cout: usize,
) -> Vec<T> {
    let (hp, wp, ow) = (geo.hp, geo.wp, geo.ow);
    let [sh, sw] = geo.stride;
    let mut out = vec![T::zero(); cout * geo.oh * ow];
    out.par_chunks_mut((geo.oh * ow).max(1))
        .enumerate()
        .for_each(|(o, plane)| {
            let g = o / geo.cout_g;
            for ci in 0..geo.cin_g {
                let ch = &xp[(g * geo.cin_g + ci) * hp * wp..][..hp * wp];
                for r in 0..geo.kh {
                    for q in 0..geo.kw {
                        let wv = w[((o * geo.cin_g + ci) * geo.kh + r) * geo.kw + q];
                        for (y, row) in plane.chunks_mut(ow.max(1)).enumerate() {
                            let src = &ch[(r + sh * y) * wp + q..];
                            if sw == 1 {
                                for (a, &b) in row.iter_mut().zip(&src[..ow]) {
                                    *a = *a + wv * b;
                                }
                            } else {
                                for (xo, a) in row.iter_mut().enumerate() {
                                    *a = *a + wv * src[sw * xo];
                                }
                            }
                        }
                    }
                }
            }
        });
    out
}

/// Register-blocked convolution for group sizes that are a multiple of [`CO_BLOCK`]: each
/// task takes `PX` output positions of one group, gathers their input windows into a
/// position-interleaved panel (im2col, terms × `PX`, small enough to stay in cache), and
/// runs the [`CO_BLOCK`] × `PX` tiles of the group's channels over it (all of them, or a
/// run of them when the layer has too few positions to keep the threads busy), each tile
/// held in registers while it walks the terms once. Every output element still starts at zero and
/// adds its terms one by one in (input channel, kernel row, kernel column) order, so the
/// result is bit-identical to [`conv_by_channel`].
fn conv_blocked<T: LinalgScalar + Send + Sync, const PX: usize>(
    xp: &[T],
    w: &[T],
    geo: &ConvGeometry,
    groups: usize,
) -> Vec<T> {
    let (p, k, cout_g) = (geo.oh * geo.ow, geo.terms(), geo.cout_g);
    let level = simd::level();
    let blocks = p.div_ceil(PX);
    let cout = groups * cout_g;
    // A layer of few positions (the last stages of a small image) also splits each group's
    // channel tiles over tasks, so that every thread has work: a task is a block of
    // positions of a group and a run of `per_task` of its tiles (each task gathers its own
    // panel). Which task computes a tile changes nothing in its sums.
    let tiles = cout_g / CO_BLOCK;
    let wanted = 4 * rayon::current_num_threads();
    let splits = wanted
        .div_ceil((groups * blocks).max(1))
        .clamp(1, tiles.max(1));
    let per_task = tiles.div_ceil(splits).max(1);
    let runs = tiles.div_ceil(per_task);
    let mut out = vec![T::zero(); cout * p];
    // Each task's outputs: the PX-wide piece of every channel plane of its run of tiles.
    let mut pieces: Vec<Vec<&mut [T]>> = (0..groups * blocks * runs)
        .map(|_| Vec::with_capacity(per_task * CO_BLOCK))
        .collect();
    for (o, plane) in out.chunks_mut(p.max(1)).enumerate() {
        let (g, run) = (o / cout_g, o % cout_g / CO_BLOCK / per_task);
        for (b, piece) in plane.chunks_mut(PX).enumerate() {
            pieces[(g * blocks + b) * runs + run].push(piece);
        }
    }
    pieces.par_iter_mut().enumerate().for_each_init(
        || vec![T::zero(); k * PX],
        |panel, (task, dst)| {
            let (g, b, run) = (task / runs / blocks, task / runs % blocks, task % runs);
            fill_panel::<T, PX>(panel, xp, geo, g, b * PX, PX.min(p - b * PX));
            let first = g * cout_g + run * per_task * CO_BLOCK;
            let run_w = &w[first * k..][..dst.len() * k];
            for (wb, dst) in run_w
                .chunks_exact(CO_BLOCK * k)
                .zip(dst.chunks_exact_mut(CO_BLOCK))
            {
                let acc = tile_dispatch::<T, PX>(wb, panel, level);
                for (row, d) in acc.iter().zip(dst) {
                    d.copy_from_slice(&row[..d.len()]);
                }
            }
        },
    );
    out
}

/// Fills `panel` (terms × `PX`, term-major) with the input windows of group `g`'s output
/// positions `first..first + n` in the padded input `xp`; lanes past `n` hold zero.
fn fill_panel<T: LinalgScalar, const PX: usize>(
    panel: &mut [T],
    xp: &[T],
    geo: &ConvGeometry,
    g: usize,
    first: usize,
    n: usize,
) {
    // The positions in runs along one output row: (first lane, lanes, offset of the first
    // window), so that a term's lanes are a few contiguous (or strided) reads.
    let mut runs = [(0usize, 0usize, 0usize); PX];
    let (mut nr, mut j) = (0, 0);
    while j < n {
        let px = first + j;
        let len = (geo.ow - px % geo.ow).min(n - j);
        runs[nr] = (j, len, geo.position_offset(px));
        (nr, j) = (nr + 1, j + len);
    }
    let runs = &runs[..nr];
    let sw = geo.stride[1];
    let mut terms = panel.chunks_exact_mut(PX);
    for ci in 0..geo.cin_g {
        for r in 0..geo.kh {
            let row = &xp[((g * geo.cin_g + ci) * geo.hp + r) * geo.wp..];
            for q in 0..geo.kw {
                let lanes = terms.next().expect("the panel holds every term");
                let base = &row[q..];
                match runs {
                    [(0, len, off)] if *len == PX && sw == 1 => {
                        lanes.copy_from_slice(&base[*off..*off + PX]);
                    }
                    _ => {
                        for &(j0, len, off) in runs {
                            let dst = &mut lanes[j0..j0 + len];
                            for (d, s) in dst.iter_mut().zip(base[off..].iter().step_by(sw)) {
                                *d = *s;
                            }
                        }
                        lanes[n..].fill(T::zero());
                    }
                }
            }
        }
    }
}

/// [`tile`], compiled for the widest vector `level` that suits it: AVX-512 for four-byte
/// values (its 64-bit multiply needs more than the foundation), else AVX2.
#[inline(always)]
fn tile_dispatch<T: LinalgScalar, const PX: usize>(
    w: &[T],
    panel: &[T],
    level: Level,
) -> [[T; PX]; CO_BLOCK] {
    #[cfg(target_arch = "x86_64")]
    {
        if level >= Level::Avx512 && std::mem::size_of::<T>() <= 4 {
            // SAFETY: `level` comes from `simd::level`, which gives AVX-512 only when the
            // CPU has it.
            #[allow(unsafe_code)]
            return unsafe { tile_avx512::<T, PX>(w, panel) };
        }
        if level >= Level::Avx2 {
            // SAFETY: as above, for AVX2.
            #[allow(unsafe_code)]
            return unsafe { tile_avx2::<T, PX>(w, panel) };
        }
    }
    let _ = level;
    tile::<T, PX>(w, panel)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
fn tile_avx2<T: LinalgScalar, const PX: usize>(w: &[T], panel: &[T]) -> [[T; PX]; CO_BLOCK] {
    tile::<T, PX>(w, panel)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
fn tile_avx512<T: LinalgScalar, const PX: usize>(w: &[T], panel: &[T]) -> [[T; PX]; CO_BLOCK] {
    tile::<T, PX>(w, panel)
}

/// Σ_t w[c][t]·panel[t][j] for one tile (`w`: [`CO_BLOCK`] rows of the weights, channel
/// by channel), added term by term from zero.
#[inline(always)]
fn tile<T: LinalgScalar, const PX: usize>(w: &[T], panel: &[T]) -> [[T; PX]; CO_BLOCK] {
    const { assert!(CO_BLOCK == 4) };
    let k = w.len() / CO_BLOCK;
    let (w0, rest) = w.split_at(k);
    let (w1, rest) = rest.split_at(k);
    let (w2, w3) = rest.split_at(k);
    let mut acc = [[T::zero(); PX]; CO_BLOCK];
    for ((((&a, &b), &c), &d), xv) in w0
        .iter()
        .zip(w1)
        .zip(w2)
        .zip(w3)
        .zip(panel.chunks_exact(PX))
    {
        for (acc_c, wc) in acc.iter_mut().zip([a, b, c, d]) {
            for (aj, &xj) in acc_c.iter_mut().zip(xv) {
                *aj = *aj + wc * xj;
            }
        }
    }
    acc
}

/// The input positions (row, column) a pooling window covers, padding excluded.
fn window_cells(
    window: &Window,
    h: usize,
    w: usize,
    oy: usize,
    ox: usize,
) -> impl Iterator<Item = (usize, usize)> {
    let y0 = (oy * window.stride[0]) as isize - window.pad[0] as isize;
    let x0 = (ox * window.stride[1]) as isize - window.pad[1] as isize;
    let [kh, kw] = window.kernel;
    (0..kh as isize).flat_map(move |r| {
        (0..kw as isize).filter_map(move |q| {
            let (y, x) = (y0 + r, x0 + q);
            (y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w)
                .then_some((y as usize, x as usize))
        })
    })
}

/// Max pooling; padding never wins. A window wholly in the padding gives `empty`.
pub fn max_pool<T: Copy + PartialOrd>(x: ArrayView3<T>, window: &Window, empty: T) -> Array3<T> {
    let (c, h, w) = x.dim();
    let (oh, ow) = window
        .output(h, w)
        .expect("shapes checked by Network::stats");
    Array3::from_shape_fn((c, oh, ow), |(ch, oy, ox)| {
        window_cells(window, h, w, oy, ox)
            .map(|(y, q)| x[[ch, y, q]])
            .reduce(|a, b| if b > a { b } else { a })
            .unwrap_or(empty)
    })
}

/// Sum over each pooling window (padding counts as zero); average pooling divides it by the
/// kernel area.
pub fn sum_pool<T: LinalgScalar>(x: ArrayView3<T>, window: &Window) -> Array3<T> {
    let (c, h, w) = x.dim();
    let (oh, ow) = window
        .output(h, w)
        .expect("shapes checked by Network::stats");
    Array3::from_shape_fn((c, oh, ow), |(ch, oy, ox)| {
        window_cells(window, h, w, oy, ox).fold(T::zero(), |a, (y, q)| a + x[[ch, y, q]])
    })
}

/// For each output position of `window` over an `h`×`w` input (row-major), how many of its
/// cells lie inside the input (the divisor of an average that leaves padding out).
pub fn window_counts(window: &Window, h: usize, w: usize) -> Vec<usize> {
    let (oh, ow) = window
        .output(h, w)
        .expect("shapes checked by Network::stats");
    (0..oh * ow)
        .map(|p| window_cells(window, h, w, p / ow, p % ow).count())
        .collect()
}

/// Σ over H×W per channel (a C×1×1 result).
pub fn sum_spatial<T: LinalgScalar>(x: ArrayView3<T>) -> Array3<T> {
    let c = x.dim().0;
    Array3::from_shape_fn((c, 1, 1), |(ch, _, _)| {
        x.index_axis(ndarray::Axis(0), ch)
            .iter()
            .fold(T::zero(), |a, &v| a + v)
    })
}

/// Option-A shortcut: every `stride`-th row and column, channels padded with `fill`.
pub fn downsample<T: Copy>(x: ArrayView3<T>, stride: usize, out_c: usize, fill: T) -> Array3<T> {
    let (c, h, w) = x.dim();
    Array3::from_shape_fn(
        (out_c, h.div_ceil(stride), w.div_ceil(stride)),
        |(ch, y, q)| {
            if ch < c {
                x[[ch, y * stride, q * stride]]
            } else {
                fill
            }
        },
    )
}

/// The output of an op that only moves channels ([`Op::source_channel`]: Shuffle,
/// Channels).
pub fn move_channels<T: Copy>(op: &Op, x: ArrayView3<T>) -> Array3<T> {
    let (c, h, w) = x.dim();
    let out_c = if let Op::Channels { len, .. } = *op {
        len
    } else {
        c
    };
    Array3::from_shape_fn((out_c, h, w), |(j, y, q)| {
        x[[op.source_channel(j, c).expect("a channel move"), y, q]]
    })
}

/// Local response normalization across channels ([`Op::Lrn`]), in f64:
/// y_c = x_c / (bias + alpha/size · Σ_{i ∈ window(c)} x_i²)^beta.
pub fn lrn(x: ArrayView3<f64>, size: usize, (alpha, beta, bias): (f32, f32, f32)) -> Array3<f64> {
    let (c, _, _) = x.dim();
    let (lo, hi) = ((size - 1) / 2, (size - 1).div_ceil(2));
    let (alpha, beta, bias) = (f64::from(alpha), f64::from(beta), f64::from(bias));
    Array3::from_shape_fn(x.dim(), |(ch, y, q)| {
        let sum: f64 = (ch.saturating_sub(lo)..(ch + hi + 1).min(c))
            .map(|i| x[[i, y, q]] * x[[i, y, q]])
            .sum();
        x[[ch, y, q]] / (bias + alpha / size as f64 * sum).powf(beta)
    })
}

/// Concatenation along channels.
pub fn concat<T: Copy>(xs: &[ArrayView3<T>]) -> Array3<T> {
    ndarray::concatenate(ndarray::Axis(0), xs).expect("H×W checked by Network::stats")
}

/// Attention scores' dot products: out[h·Sk + j, i] = Σ_d Q[h·dₕ+d, i]·K[h·dₕ+d, j] (the
/// layer scales them by 1/√dₕ: in `forward`, and in the golden requantization).
pub fn attn_scores<T: LinalgScalar>(q: ArrayView3<T>, k: ArrayView3<T>, heads: usize) -> Array3<T> {
    let (f, sq, _) = q.dim();
    let sk = k.dim().1;
    let dh = f / heads;
    Array3::from_shape_fn((heads * sk, sq, 1), |(hj, i, _)| {
        let (h, j) = (hj / sk, hj % sk);
        (0..dh).fold(T::zero(), |a, d| {
            a + q[[h * dh + d, i, 0]] * k[[h * dh + d, j, 0]]
        })
    })
}

/// What a position table ([`Op::Positional`] `op`, layer `layer`) adds to a c×`seq` input:
/// rows[d][i] = P[offset + i][d] + T[0][d], from the layer's `weight` and `types`.
///
/// # Panics
/// If `op` is not a position table.
pub fn position_rows(
    weights: &Weights,
    layer: &str,
    op: &Op,
    c: usize,
    seq: usize,
) -> Result<Array3<f32>, WorkloadError> {
    let Op::Positional {
        positions,
        offset,
        token_types,
    } = *op
    else {
        panic!("layer '{layer}' is not a position table");
    };
    let p = param(weights, layer, "weight", positions * c)?;
    let t = if token_types > 0 {
        Some(param(weights, layer, "types", token_types * c)?)
    } else {
        None
    };
    Ok(Array3::from_shape_fn((c, seq, 1), |(d, i, _)| {
        p[(offset + i) * c + d] + t.map_or(0.0, |t| t[d])
    }))
}

/// The `past` cached entries of cache layer `layer` ([`Op::KvCache`]) of `c` features,
/// [past, c] row-major (none when nothing is cached).
pub fn cached_entries<'a>(
    weights: &'a Weights,
    layer: &str,
    past: usize,
    c: usize,
) -> Result<&'a [f32], WorkloadError> {
    if past == 0 {
        return Ok(&[]);
    }
    param(weights, layer, "cache", past * c)
}

/// The token ids of a 1×seq input of a `vocab`-token lookup (layer `layer`): each value an
/// integer in 0..vocab.
pub fn token_ids(
    x: ArrayView3<f32>,
    vocab: usize,
    layer: &str,
) -> Result<Vec<usize>, WorkloadError> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && v >= 0.0 && (v as usize) < vocab {
                Ok(v as usize)
            } else {
                Err(WorkloadError::Shape(format!(
                    "layer '{layer}': token {i} has id {v}, not an integer in 0..{vocab}"
                )))
            }
        })
        .collect()
}

/// Layer normalization over channels at each position: γ_c·(x_c − μ)/√(σ² + ε) + β_c, the
/// mean and variance in f64.
pub fn layer_norm(x: ArrayView3<f32>, gamma: &[f32], beta: &[f32], eps: f32) -> Array3<f32> {
    let (c, h, w) = x.dim();
    let mut y = Array3::zeros((c, h, w));
    for i in 0..h {
        for j in 0..w {
            let col = x.slice(ndarray::s![.., i, j]);
            let mean = col.iter().map(|&v| f64::from(v)).sum::<f64>() / c as f64;
            let var = col
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / c as f64;
            let k = 1.0 / (var + f64::from(eps)).sqrt();
            for ch in 0..c {
                y[[ch, i, j]] = (f64::from(gamma[ch]) * (f64::from(col[ch]) - mean) * k
                    + f64::from(beta[ch])) as f32;
            }
        }
    }
    y
}

/// The keys query position `i` of `queries` sees among `keys` ([`Op::AttnSoftmax`]): all,
/// or with a causal mask the first i + 1 + (keys − queries).
pub fn visible_keys(causal: bool, i: usize, keys: usize, queries: usize) -> usize {
    if causal {
        (keys + i + 1).saturating_sub(queries).min(keys)
    } else {
        keys
    }
}

/// The probabilities an [`Op::AttnSoftmax`] computes on a (heads·keys)×queries score
/// tensor: every key for every query, or with a causal mask the visible ones only.
pub fn visible_scores(heads: usize, causal: bool, keys: usize, queries: usize) -> u64 {
    let per_head: u64 = (0..queries)
        .map(|i| visible_keys(causal, i, keys, queries) as u64)
        .sum();
    heads as u64 * per_head
}

/// Softmax over each head's keys at every query position ([`Op::AttnSoftmax`]), in f64;
/// masked keys get 0.
pub fn attn_softmax(x: ArrayView3<f32>, heads: usize, causal: bool) -> Array3<f32> {
    let (c, q, w) = x.dim();
    let keys = c / heads;
    let mut y = Array3::zeros((c, q, w));
    for h in 0..heads {
        for i in 0..q {
            let n = visible_keys(causal, i, keys, q);
            let row = |j: usize| f64::from(x[[h * keys + j, i, 0]]);
            let m = (0..n).map(row).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..n).map(|j| (row(j) - m).exp()).sum();
            for j in 0..n {
                y[[h * keys + j, i, 0]] = ((row(j) - m).exp() / sum) as f32;
            }
        }
    }
    y
}

/// Attention context: out[h·dₕ+d, i] = Σ_j S[h·Sv + j, i]·V[h·dₕ+d, j].
pub fn attn_context<T: LinalgScalar>(
    sc: ArrayView3<T>,
    v: ArrayView3<T>,
    heads: usize,
) -> Array3<T> {
    let (f, sv, _) = v.dim();
    let sq = sc.dim().1;
    let dh = f / heads;
    Array3::from_shape_fn((f, sq, 1), |(hd, i, _)| {
        let h = hd / dh;
        (0..sv).fold(T::zero(), |a, j| a + sc[[h * sv + j, i, 0]] * v[[hd, j, 0]])
    })
}

/// The dense float parameter `role` of `layer`, with its expected element count checked.
pub(crate) fn param<'a>(
    weights: &'a Weights,
    layer: &str,
    role: &str,
    len: usize,
) -> Result<&'a [f32], WorkloadError> {
    let t = weights
        .get(layer, role)
        .ok_or_else(|| WorkloadError::Network(format!("layer '{layer}' has no '{role}' tensor")))?;
    match &t.data {
        crate::weights::Data::F32(v) if v.len() == len => Ok(v),
        crate::weights::Data::F32(v) => Err(WorkloadError::Network(format!(
            "layer '{layer}': '{role}' has {} elements, the layer needs {len}",
            v.len()
        ))),
        crate::weights::Data::Fill(_) => Err(WorkloadError::Network(format!(
            "layer '{layer}': '{role}' is a placeholder fill (structure-only model); it cannot \
             be executed"
        ))),
    }
}

/// The weight tensor of a Dense or Conv2d layer as an `Array4` [out, in/groups, kh, kw]
/// (Dense: [out, in, 1, 1]), checked against the layer's input channels: a view of the
/// stored values, not a copy.
pub(crate) fn weight4<'a>(
    weights: &'a Weights,
    layer: &str,
    op: &Op,
    in_c: usize,
) -> Result<ArrayView4<'a, f32>, WorkloadError> {
    let dims = weight_dims(op, in_c).expect("a weighted op");
    let n = dims.0 * dims.1 * dims.2 * dims.3;
    let v = param(weights, layer, "weight", n)?;
    Ok(ArrayView4::from_shape(dims, v).expect("length checked"))
}

/// [out, in/groups, kh, kw] of a weighted op reading `in_c` channels (None: no weights).
pub fn weight_dims(op: &Op, in_c: usize) -> Option<(usize, usize, usize, usize)> {
    match *op {
        Op::Dense { out_features, .. } => Some((out_features, in_c, 1, 1)),
        Op::Conv2d {
            out_channels,
            window,
            groups,
            ..
        } => Some((
            out_channels,
            in_c / groups,
            window.kernel[0],
            window.kernel[1],
        )),
        Op::Input { .. }
        | Op::MaxPool { .. }
        | Op::AvgPool { .. }
        | Op::GlobalAvgPool
        | Op::Relu
        | Op::Relu6
        | Op::Add
        | Op::Concat
        | Op::Flatten
        | Op::BatchNorm { .. }
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
        | Op::KvCache { .. } => None,
    }
}

/// Applies the weight of a Dense (as [out, in, 1, 1]) or Conv2d layer.
pub fn apply_weight<T: LinalgScalar + Send + Sync>(
    op: &Op,
    x: ArrayView3<T>,
    w: ArrayView4<T>,
) -> Array3<T> {
    apply_weight_padded(op, x, w, T::zero())
}

/// [`apply_weight`] with a convolution's padding cells holding `pad`.
pub fn apply_weight_padded<T: LinalgScalar + Send + Sync>(
    op: &Op,
    x: ArrayView3<T>,
    w: ArrayView4<T>,
    pad: T,
) -> Array3<T> {
    match *op {
        Op::Dense { .. } => {
            let (o, i, _, _) = w.dim();
            let w2 = w.to_shape((o, i)).expect("[out, in, 1, 1]");
            dense(x, w2.view())
        }
        Op::Conv2d { window, groups, .. } => conv2d_padded(x, w, &window, groups, pad),
        Op::Input { .. }
        | Op::MaxPool { .. }
        | Op::AvgPool { .. }
        | Op::GlobalAvgPool
        | Op::Relu
        | Op::Relu6
        | Op::Add
        | Op::Concat
        | Op::Flatten
        | Op::BatchNorm { .. }
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
        | Op::KvCache { .. } => unreachable!("only Dense and Conv2d carry weights"),
    }
}

/// The float forward pass: every layer's output for one input. Softmax is the identity
/// (monotone, so the arg-max is unchanged; the integer reference does the same).
pub fn forward(
    net: &Network,
    weights: &Weights,
    input: &Array3<f32>,
) -> Result<Vec<Array3<f32>>, WorkloadError> {
    let outs = forward_visit(net, weights, input, true, &mut |_, _| {})?;
    Ok(outs
        .into_iter()
        .map(|o| o.expect("every output kept"))
        .collect())
}

/// [`forward`], showing `seen` each layer's output (with the layer's index) as it is made
/// and keeping an output only while a later layer still reads it, so that a pass holds a
/// few layers' outputs rather than all of them.
pub fn forward_each(
    net: &Network,
    weights: &Weights,
    input: &Array3<f32>,
    mut seen: impl FnMut(usize, &Array3<f32>),
) -> Result<(), WorkloadError> {
    forward_visit(net, weights, input, false, &mut seen).map(drop)
}

/// The forward pass behind [`forward`] (`keep_all`) and [`forward_each`]: every layer's
/// output where kept, `None` where dropped after its last reader.
fn forward_visit(
    net: &Network,
    weights: &Weights,
    input: &Array3<f32>,
    keep_all: bool,
    seen: &mut dyn FnMut(usize, &Array3<f32>),
) -> Result<Vec<Option<Array3<f32>>>, WorkloadError> {
    let stats = net.stats()?;
    let want = net.input_shape();
    if input.dim() != (want.c, want.h, want.w) {
        return Err(WorkloadError::Shape(format!(
            "network '{}' takes {want}, got {:?}",
            net.name,
            input.dim()
        )));
    }
    // The last layer to read each output (its own index when none does).
    let mut last_reader: Vec<usize> = (0..net.layers.len()).collect();
    for (i, layer) in net.layers.iter().enumerate() {
        for &j in &layer.inputs {
            last_reader[j] = i;
        }
    }
    let mut outs: Vec<Option<Array3<f32>>> = Vec::with_capacity(net.layers.len());
    for (i, layer) in net.layers.iter().enumerate() {
        let x = |k: usize| {
            outs[layer.inputs[k]]
                .as_ref()
                .expect("an output is kept until its last reader")
                .view()
        };
        let y = match &layer.op {
            Op::Input { .. } => input.clone(),
            op @ (Op::Dense { bias, .. } | Op::Conv2d { bias, .. }) => {
                let w = weight4(weights, &layer.name, op, x(0).dim().0)?;
                let mut y = apply_weight(op, x(0), w);
                if *bias {
                    let b = param(weights, &layer.name, "bias", y.dim().0)?;
                    for (mut plane, &bo) in y.outer_iter_mut().zip(b) {
                        plane.mapv_inplace(|v| v + bo);
                    }
                }
                y
            }
            Op::MaxPool { window } => max_pool(x(0), window, 0.0),
            Op::AvgPool { window, count_pad } => {
                let area = (window.kernel[0] * window.kernel[1]) as f32;
                let mut y = sum_pool(x(0), window);
                if *count_pad {
                    y.mapv_inplace(|v| v / area);
                } else {
                    let (_, h, w) = x(0).dim();
                    let counts = window_counts(window, h, w);
                    for mut plane in y.outer_iter_mut() {
                        for (v, &n) in plane.iter_mut().zip(&counts) {
                            *v /= n.max(1) as f32;
                        }
                    }
                }
                y
            }
            Op::GlobalAvgPool => {
                let (_, h, w) = x(0).dim();
                sum_spatial(x(0)).mapv(|v| v / (h * w) as f32)
            }
            Op::Relu => x(0).mapv(|v| v.max(0.0)),
            Op::Relu6 => x(0).mapv(|v| v.clamp(0.0, 6.0)),
            Op::Sign => x(0).mapv(|v| if v > 0.0 { 1.0 } else { -1.0 }),
            Op::Softmax => x(0).to_owned(),
            Op::Add => &x(0) + &x(1),
            Op::Concat => {
                let views: Vec<_> = (0..layer.inputs.len()).map(x).collect();
                concat(&views)
            }
            Op::Flatten => {
                let v: Vec<f32> = x(0).iter().copied().collect();
                let n = v.len();
                Array3::from_shape_vec((n, 1, 1), v).expect("n elements")
            }
            Op::BatchNorm { eps, .. } => {
                let c = x(0).dim().0;
                let p = |role| param(weights, &layer.name, role, c);
                let (g, b, m, var) = (p("gamma")?, p("beta")?, p("mean")?, p("var")?);
                let mut y = x(0).to_owned();
                for (ch, mut plane) in y.outer_iter_mut().enumerate() {
                    let k = g[ch] / (var[ch] + eps).sqrt();
                    plane.mapv_inplace(|v| (v - m[ch]) * k + b[ch]);
                }
                y
            }
            Op::Downsample {
                stride,
                out_channels,
            } => downsample(x(0), *stride, *out_channels, 0.0),
            Op::AttnScores { heads } => {
                let dh = x(0).dim().0 / heads;
                attn_scores(x(0), x(1), *heads).mapv(|v| v / (dh as f32).sqrt())
            }
            Op::AttnContext { heads } => attn_context(x(0), x(1), *heads),
            op @ (Op::Shuffle { .. } | Op::Channels { .. }) => move_channels(op, x(0)),
            Op::Lrn {
                size,
                alpha,
                beta,
                bias,
            } => lrn(x(0).mapv(f64::from).view(), *size, (*alpha, *beta, *bias)).mapv(|v| v as f32),
            Op::Unary { f } => x(0).mapv(|v| f.eval(f64::from(v)) as f32),
            Op::Mul => product(x(0), x(1), |a, b| a * b),
            Op::LayerNorm { eps } => {
                let c = x(0).dim().0;
                let p = |role| param(weights, &layer.name, role, c);
                layer_norm(x(0), p("gamma")?, p("beta")?, *eps)
            }
            Op::AttnSoftmax { heads, causal } => attn_softmax(x(0), *heads, *causal),
            Op::KvCache { past } => {
                let (c, s, _) = x(0).dim();
                let cache = cached_entries(weights, &layer.name, *past, c)?;
                Array3::from_shape_fn((c, past + s, 1), |(d, j, _)| {
                    if j < *past {
                        cache[j * c + d]
                    } else {
                        x(0)[[d, j - past, 0]]
                    }
                })
            }
            Op::Embedding { vocab, dim } => {
                let e = param(weights, &layer.name, "weight", vocab * dim)?;
                let ids = token_ids(x(0), *vocab, &layer.name)?;
                Array3::from_shape_fn((*dim, ids.len(), 1), |(d, i, _)| e[ids[i] * dim + d])
            }
            op @ Op::Positional { .. } => {
                let (c, s, _) = x(0).dim();
                &x(0) + &position_rows(weights, &layer.name, op, c, s)?
            }
        };
        let out = stats[i].out;
        debug_assert_eq!(y.dim(), (out.c, out.h, out.w), "layer {}", layer.name);
        seen(i, &y);
        outs.push(Some(y));
        if !keep_all {
            for &j in layer.inputs.iter().chain([&i]) {
                if last_reader[j] == i {
                    outs[j] = None;
                }
            }
        }
    }
    Ok(outs)
}

/// f(a, b) element by element ([`Op::Mul`]): `b` has `a`'s shape, or is C×1×1 and gives
/// one factor per channel at every position.
pub fn product<T: Copy, U>(a: ArrayView3<T>, b: ArrayView3<T>, f: impl Fn(T, T) -> U) -> Array3<U> {
    let (c, h, w) = a.dim();
    let per_channel = b.dim() != a.dim();
    debug_assert!(!per_channel || b.dim() == (c, 1, 1));
    Array3::from_shape_fn((c, h, w), |(ch, y, x)| {
        let bv = if per_channel {
            b[[ch, 0, 0]]
        } else {
            b[[ch, y, x]]
        };
        f(a[[ch, y, x]], bv)
    })
}

/// Index of the largest element in iteration order (the first one on ties).
pub fn argmax<T: Copy + PartialOrd>(x: &Array3<T>) -> usize {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in x.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Shape;
    use crate::weights::Tensor;
    use ndarray::Array4;
    use proptest::prelude::*;

    /// The convolution written the plain way, one `plane += w·shifted input` pass per
    /// (ci, r, q) term: the order the module doc fixes.
    fn conv_by_planes(
        x: &Array3<f32>,
        w: &Array4<f32>,
        win: &Window,
        groups: usize,
    ) -> Array3<f32> {
        let (c, h, wd) = x.dim();
        let (oh, ow) = win.output(h, wd).unwrap();
        let [pt, pl, pb, pr] = win.pad;
        let mut xp = Array3::<f32>::zeros((c, h + pt + pb, wd + pl + pr));
        xp.slice_mut(s![.., pt..pt + h, pl..pl + wd]).assign(x);
        let (cout, cin_g, kh, kw) = w.dim();
        let mut out = Array3::<f32>::zeros((cout, oh, ow));
        for o in 0..cout {
            let g = o / (cout / groups);
            for ci in 0..cin_g {
                for r in 0..kh {
                    for q in 0..kw {
                        let wv = w[[o, ci, r, q]];
                        for y in 0..oh {
                            for xo in 0..ow {
                                let v = xp[[
                                    g * cin_g + ci,
                                    r + win.stride[0] * y,
                                    q + win.stride[1] * xo,
                                ]];
                                out[[o, y, xo]] += wv * v;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The float convolution adds every output's terms in the order the module doc
        /// fixes (input channel, kernel row, kernel column), bit for bit, whatever the
        /// row width, stride and padding: the calibration ranges depend on it.
        #[test]
        fn float_conv_keeps_the_documented_order(
            groups in 1usize..=2, cin_g in 1usize..=3, cout_g in 1usize..=9,
            kh in 1usize..=3, kw in 1usize..=3, sh in 1usize..=2, sw in 1usize..=3,
            pad in proptest::array::uniform4(0usize..=2), h in 3usize..=6, wd in 3usize..=40,
            seed in any::<u64>(),
        ) {
            let win = Window { kernel: [kh, kw], stride: [sh, sw], pad, ceil: false };
            prop_assume!(win.output(h, wd).is_ok());
            let mut s = seed;
            let mut next = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.7
            };
            let x = Array3::from_shape_simple_fn((groups * cin_g, h, wd), &mut next);
            let w = Array4::from_shape_simple_fn((groups * cout_g, cin_g, kh, kw), &mut next);
            let got = conv2d(x.view(), w.view(), &win, groups);
            let want = conv_by_planes(&x, &w, &win, groups);
            let bits = |a: &Array3<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }

    #[test]
    fn small_network_by_hand() {
        // 1×3×3 input, 2×2 conv (all ones, bias 1), ReLU, 2×2 max pool stride 1.
        let mut n = Network::new("t", Shape::new(1, 3, 3));
        n.then("c", crate::zoo::conv(1, 2, 1, 0, 1, true));
        n.then("r", Op::Relu);
        n.then(
            "p",
            Op::MaxPool {
                window: Window::square(2, 1, 0),
            },
        );
        let mut w = Weights::default();
        w.insert("c", "weight", Tensor::new(vec![1, 1, 2, 2], vec![1.0; 4]));
        w.insert("c", "bias", Tensor::new(vec![1], vec![-10.0]));
        let x = Array3::from_shape_vec((1, 3, 3), (1..=9).map(|v| v as f32).collect()).unwrap();
        let outs = forward(&n, &w, &x).unwrap();
        // Window sums 12, 16, 24, 28 minus 10.
        assert_eq!(
            outs[1].iter().copied().collect::<Vec<_>>(),
            [2.0, 6.0, 14.0, 18.0]
        );
        assert_eq!(outs[3].iter().copied().collect::<Vec<_>>(), [18.0]);
        assert_eq!(argmax(&outs[1]), 3);
        w.insert("c", "weight", Tensor::new(vec![1, 1, 2], vec![1.0; 2]));
        let e = forward(&n, &w, &x).unwrap_err().to_string();
        assert!(e.contains("'c'") && e.contains("2 elements"), "{e}");
    }
}
