//! I-BERT's integer softmax and LayerNorm as gate programs in the array (docs/model.md
//! §2.5.2), bit-exact against the golden executor (`cram_workloads::ibert`).
//!
//! A lane computes one value, and both functions need statistics over a whole row, so each
//! runs in passes, a pass's results read out of their lanes and loaded into the next
//! pass's (charged as every operand load is):
//!
//! * **softmax**, per head and query row of its visible keys: (0) the row maximum, a lane
//!   per row; (1) e_j = exp(q_j − max), a lane per visible score; (2) Σ e, a lane per row;
//!   (3) p_j = min(⌊e_j·2^M / Σe⌋, 2^M − 1), a lane per visible score. Masked scores take
//!   no lane; their probabilities are the constant 0.
//! * **LayerNorm**, per position: (0) S = Σx and Q = Σx² over the features, then
//!   V = (n²Q − nS²)·2^32 + E (n²Q − nS² is Σd² exactly) and σ = ⌊√V⌋, a lane per position
//!   when its codes fit one chunk; else slices of one chunk's features sum their (S_k, Q_k),
//!   a lane each, and a lane per position adds them and takes σ; (1) d = n·x − S,
//!   t = ⌊d·2^32/σ⌋ and the requantization by the channel's γ and β, a lane per element.
//!
//! A softmax row's maximum and sum (passes 0 and 2) load the row in chunks that fit the
//! subarray; a row of fewer terms than its program's last chunk loads the padding (the code
//! minimum for a maximum, 0 for a sum).

mod layer_norm;
mod softmax;

pub use layer_norm::*;
pub use softmax::*;

use super::arith::Coding;
use super::elem::{self, Part, src_index as index};
use super::linear::{Job, Source};
use super::*;
use crate::error::MapError;
use cram_workloads::exec::visible_keys;
use cram_workloads::golden::{Program, Step};
use cram_workloads::ibert::{LayerNorm, Softmax};
use cram_workloads::net::{Op, Shape};
use ndarray::Array3;

/// One program per count of chunks a row of `vis[i]` visible terms takes (rows of `k`
/// chunks run the program of min(k·chunk, n) terms), on every head's lanes.
fn row_parts(
    vis: &[usize],
    (heads, n, chunk): (usize, usize, usize),
    make: impl Fn(usize) -> Result<Job, MapError>,
) -> Result<Vec<Part>, MapError> {
    let mut counts: Vec<usize> = vis.iter().map(|&v| v.max(1).div_ceil(chunk)).collect();
    let rows = counts.clone();
    counts.sort_unstable();
    counts.dedup();
    counts
        .into_iter()
        .map(|k| {
            Ok(Part {
                job: make((k * chunk).min(n))?,
                channels: 0..heads,
                positions: Some((0..rows.len()).filter(|&i| rows[i] == k).collect()),
            })
        })
        .collect()
}

/// A LayerNorm's statistics passes.
enum LnStats {
    /// A lane per position over all its codes (they fit one chunk).
    Whole(Part),
    /// Slices of `len` features, a lane each (`partials`, one program per slice length),
    /// then a `reducer` lane per position over the slices' partial sums.
    Sliced {
        /// Features per slice (the last may have fewer).
        len: usize,
        /// The slices' programs.
        partials: Vec<Part>,
        /// The reducer's program.
        reducer: Part,
    },
}

/// The statistics passes of a LayerNorm over `n` features of `x` (zero point `z`) with ε
/// `eps`: one lane per position when its codes fit one chunk; else the position is cut
/// into slices that each fit one, so that no lane sums a long row alone.
fn ln_statistics(hw: &Hw, (x, z): (Coding, i64), n: usize, eps: i128) -> Result<LnStats, MapError> {
    let set = hw.set;
    // `fitted`'s first chunk: only a row it holds whole can take one lane.
    if hw.cols() / 2 / x.bits as usize >= n {
        let job = ln_stats(set, (x, z), (n, Terms::Codes, n), n, eps)?;
        if job.cols <= hw.cols() {
            return Ok(LnStats::Whole(Part {
                job,
                channels: 0..1,
                positions: None,
            }));
        }
    }
    let (len, full) = fitted(hw, n, x.bits as usize, |c| ln_partial(set, (x, z), c, c))?;
    let m = n.div_ceil(len);
    let mut partials = vec![Part {
        job: full,
        channels: 0..n / len,
        positions: None,
    }];
    if !n.is_multiple_of(len) {
        partials.push(Part {
            job: ln_partial(set, (x, z), n % len, len)?,
            channels: n / len..m,
            positions: None,
        });
    }
    let p = Partial::of(x, z, len)?;
    let (_, reducer) = fitted(hw, m, p.coding().bits as usize, |c| {
        ln_stats(set, (x, z), (n, Terms::Partials(p), m), c, eps)
    })?;
    Ok(LnStats::Sliced {
        len,
        partials,
        reducer: Part {
            job: reducer,
            channels: 0..1,
            positions: None,
        },
    })
}

/// A layer's passes, run in turn: each an [`elem_layer`] of its own lanes and gather, its
/// streams marked with the pass and its programs numbered after the earlier passes'.
struct Passes<'a> {
    hw: &'a Hw,
    n_img: usize,
    modes: (bool, bool),
    opts: &'a RunOptions,
    layer: usize,
    costs: Vec<StreamCost>,
    programs: usize,
    pass: usize,
}

impl<'a> Passes<'a> {
    fn new(
        hw: &'a Hw,
        n_img: usize,
        modes: (bool, bool),
        opts: &'a RunOptions,
        layer: usize,
    ) -> Passes<'a> {
        Passes {
            hw,
            n_img,
            modes,
            opts,
            layer,
            costs: Vec::new(),
            programs: 0,
            pass: 0,
        }
    }

    /// Runs the next pass: `parts` on the lanes of `lanes`, loading by `gather` (functional
    /// mode); its outputs per image.
    fn run(
        &mut self,
        parts: &[Part],
        lanes: Shape,
        gather: Gather<'_>,
    ) -> Result<Vec<Array3<i64>>, MapError> {
        elem::fits(parts, self.hw)?;
        let (functional, realize) = self.modes;
        let stream = ((self.layer as u64) << 32) | ((self.pass as u64) << 24);
        let (mut costs, y) = elem_layer(
            parts,
            self.hw,
            self.n_img,
            lanes,
            (functional.then_some(gather), realize),
            self.opts,
            stream,
            true,
        );
        for c in &mut costs {
            c.pass = self.pass;
            c.place.program += self.programs;
        }
        self.costs.extend(costs);
        self.programs += parts.len();
        self.pass += 1;
        Ok(y)
    }
}

/// The first pass's programs of softmax or LayerNorm layer `i` (its row statistics), as
/// `cramulator map` shows a layer's first program.
pub fn first_parts(prog: &Program, i: usize, hw: &Hw) -> Result<Vec<Part>, MapError> {
    let layer = &prog.network().layers[i];
    let xq = prog.act(layer.inputs[0]);
    let (x, z) = (Coding::of(&xq), i64::from(xq.zero));
    let xs = prog.shape(layer.inputs[0]);
    match (prog.step(i), &layer.op) {
        (Step::Softmax(_), &Op::AttnSoftmax { heads, causal }) => {
            let keys = xs.c / heads;
            let vis: Vec<usize> = (0..xs.h)
                .map(|q| visible_keys(causal, q, keys, xs.h))
                .collect();
            let (chunk, _) = fitted(hw, keys, x.bits as usize, |c| {
                Ok(row_max(hw.set, x, keys, c))
            })?;
            row_parts(&vis, (heads, keys, chunk), |n| {
                Ok(row_max(hw.set, x, n, chunk))
            })
        }
        (Step::LayerNorm(ln), _) => Ok(match ln_statistics(hw, (x, z), xs.c, ln.eps)? {
            LnStats::Whole(part) => vec![part],
            LnStats::Sliced { partials, .. } => partials,
        }),
        _ => Err(MapError::NotElementWiseLayer),
    }
}

/// Softmax or LayerNorm layer `i` of `prog` in its passes over `n_img` images: its streams
/// and, in functional mode, its output codes read out of the last pass's lanes.
pub(crate) fn layer(
    prog: &Program,
    i: usize,
    outs: &[Vec<Array3<i64>>],
    hw: &Hw,
    n_img: usize,
    modes: (bool, bool),
    opts: &RunOptions,
) -> Result<LayerOut, MapError> {
    let layer = &prog.network().layers[i];
    // The producer's codes (functional mode; a plan has none).
    let input: &[Array3<i64>] = outs.get(layer.inputs[0]).map_or(&[], Vec::as_slice);
    let passes = Passes::new(hw, n_img, modes, opts, i);
    let y = match (prog.step(i), &layer.op) {
        (Step::Softmax(sm), &Op::AttnSoftmax { heads, causal }) => {
            softmax_passes(prog, i, (sm, heads, causal), input, passes)?
        }
        (Step::LayerNorm(ln), _) => layer_norm_passes(prog, i, ln, input, passes)?,
        _ => return Err(MapError::NotElementWiseLayer),
    };
    Ok(y)
}

/// The four passes of softmax layer `i` (its constants, heads and mask) on the producer's
/// codes `input`.
fn softmax_passes(
    prog: &Program,
    i: usize,
    (sm, heads, causal): (&Softmax, usize, bool),
    input: &[Array3<i64>],
    mut passes: Passes<'_>,
) -> Result<LayerOut, MapError> {
    let (hw, layer) = (passes.hw, &prog.network().layers[i]);
    let set = hw.set;
    let xs = prog.shape(layer.inputs[0]);
    let (keys, q) = (xs.c / heads, xs.h);
    let x = Coding::of(&prog.act(layer.inputs[0]));
    let vis: Vec<usize> = (0..q).map(|r| visible_keys(causal, r, keys, q)).collect();
    // Lanes of the element passes: each visible (query, key) pair of a head.
    let pairs: Vec<(usize, usize)> = (0..q)
        .flat_map(|r| (0..vis[r]).map(move |j| (r, j)))
        .collect();
    let first: Vec<usize> = vis
        .iter()
        .scan(0, |acc, &v| {
            let o = *acc;
            *acc += v;
            Some(o)
        })
        .collect();
    let (rows, elems) = (Shape::new(heads, q, 1), Shape::new(heads, pairs.len(), 1));

    // (0) Row maxima; past a row's visible keys, the code minimum (it never wins).
    let min = x.range().0 as i64;
    let g = |src: Source, img: usize, h: usize, r: usize| {
        let j = index(src);
        if j < vis[r] {
            input[img][[h * keys + j, r, 0]]
        } else {
            min
        }
    };
    let maxes = passes.run(&first_parts(prog, i, hw)?, rows, &g)?;

    // (1) Exponentials.
    let exp = Part {
        job: exp(set, x, &sm.exp)?,
        channels: 0..heads,
        positions: None,
    };
    let e = exp.job.out;
    let g = |src: Source, img: usize, h: usize, p: usize| {
        let (r, j) = pairs[p];
        match src {
            Source::W(_) => maxes[img][[h, r, 0]],
            _ => input[img][[h * keys + j, r, 0]],
        }
    };
    let es = passes.run(std::slice::from_ref(&exp), elems, &g)?;

    // (2) Row sums; past a row's visible keys, 0.
    let (chunk, _) = fitted(hw, keys, e.bits as usize, |c| row_sum(set, e, keys, c))?;
    let sum_parts = row_parts(&vis, (heads, keys, chunk), |n| row_sum(set, e, n, chunk))?;
    let s = sum_parts.last().expect("a row").job.out;
    let g = |src: Source, img: usize, h: usize, r: usize| {
        let j = index(src);
        if j < vis[r] {
            es[img][[h, first[r] + j, 0]]
        } else {
            0
        }
    };
    let sums = passes.run(&sum_parts, rows, &g)?;

    // (3) Probabilities.
    let div = Part {
        job: quotient(set, e, s, sm.bits, &prog.act(i))?,
        channels: 0..heads,
        positions: None,
    };
    let g = |src: Source, img: usize, h: usize, p: usize| match src {
        Source::W(_) => sums[img][[h, pairs[p].0, 0]],
        _ => es[img][[h, p, 0]],
    };
    let ps = passes.run(std::slice::from_ref(&div), elems, &g)?;

    // Masked probabilities are the constant 0.
    let y = ps
        .iter()
        .map(|p| {
            let mut y = Array3::zeros((xs.c, q, 1));
            for h in 0..heads {
                for (k, &(r, j)) in pairs.iter().enumerate() {
                    y[[h * keys + j, r, 0]] = p[[h, k, 0]];
                }
            }
            y
        })
        .collect();
    Ok((passes.costs, y))
}

/// The passes of LayerNorm layer `i` (its constants) on the producer's codes `input`.
fn layer_norm_passes(
    prog: &Program,
    i: usize,
    ln: &LayerNorm,
    input: &[Array3<i64>],
    mut passes: Passes<'_>,
) -> Result<LayerOut, MapError> {
    let (hw, layer) = (passes.hw, &prog.network().layers[i]);
    let xq = prog.act(layer.inputs[0]);
    let (x, z) = (Coding::of(&xq), i64::from(xq.zero));
    let xs = prog.shape(layer.inputs[0]);
    let w = xs.w;
    // (0) Each position's statistics: in one lane, or from its slices' partial sums.
    let rows = Shape::new(1, xs.h, w);
    let st = match ln_statistics(hw, (x, z), xs.c, ln.eps)? {
        LnStats::Whole(part) => {
            let g = |src: Source, img: usize, _: usize, p: usize| {
                input[img][[index(src), p / w, p % w]]
            };
            passes.run(std::slice::from_ref(&part), rows, &g)?
        }
        LnStats::Sliced {
            len,
            partials,
            reducer,
        } => {
            let g = |src: Source, img: usize, k: usize, p: usize| {
                input[img][[k * len + index(src), p / w, p % w]]
            };
            let slices = Shape::new(xs.c.div_ceil(len), xs.h, w);
            let sums = passes.run(&partials, slices, &g)?;
            let g =
                |src: Source, img: usize, _: usize, p: usize| sums[img][[index(src), p / w, p % w]];
            passes.run(std::slice::from_ref(&reducer), rows, &g)?
        }
    };

    // (1) The outputs.
    let part = Part {
        job: ln_out(hw.set, (x, z), xs.c, ln, &prog.act(i))?,
        channels: 0..xs.c,
        positions: None,
    };
    let g = |src: Source, img: usize, c: usize, p: usize| match src {
        Source::W(_) => st[img][[0, p / w, p % w]],
        Source::M => ln.mult[c],
        Source::K => ln.bias[c],
        _ => input[img][[c, p / w, p % w]],
    };
    let y = passes.run(std::slice::from_ref(&part), prog.shape(i), &g)?;
    Ok((passes.costs, y))
}
