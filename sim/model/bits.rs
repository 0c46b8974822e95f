//! Bit-matrix helpers: moving between bit-serial columns and per-lane integers.

use crate::model::engine::Subarray;
use crate::model::engine::exec::Simd;
use crate::model::engine::isa::Col;

/// Transposes a 64×64 bit matrix in place: afterwards bit `c` of word `r` is what bit `r` of
/// word `c` was. With word `i` = column i's 64-lane word, word `l` becomes lane l's value.
/// (Recursive block swap, Warren, *Hacker's Delight*, 2nd ed., §7-3, in LSB-first order.)
pub fn transpose64(m: &mut [u64; 64]) {
    #[cfg(target_arch = "x86_64")]
    if Simd::best() == Simd::Avx2 {
        // SAFETY: `Simd::best` returns `Avx2` only after `Simd::is_supported` confirmed
        // the CPU has AVX2.
        #[allow(unsafe_code)]
        return unsafe { transpose64_avx2(m) };
    }
    transpose64_portable(m);
}

#[inline(never)]
fn transpose64_portable(m: &mut [u64; 64]) {
    transpose64_body(m);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
fn transpose64_avx2(m: &mut [u64; 64]) {
    transpose64_body(m);
}

#[inline(always)]
fn transpose64_body(m: &mut [u64; 64]) {
    // Stage j swaps the high j bits of word k with the low j bits of word k + j, for every
    // k whose bit j is clear: contiguous halves of each 2j-word block, so the loop vectorizes.
    let mut j = 32;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        for block in m.chunks_exact_mut(2 * j) {
            let (lo, hi) = block.split_at_mut(j);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                let t = ((*a >> j) ^ *b) & mask;
                *a ^= t << j;
                *b ^= t;
            }
        }
        j >>= 1;
        mask ^= mask << j;
    }
}

/// Writes one value per lane (its low `cols.len()` bits, bit i into `cols[i]`) into a
/// subarray, 64 lanes at a time through [`transpose64`]. Lanes beyond `values` are left as
/// they are.
pub fn store_lanes(sa: &mut Subarray, cols: &[Col], values: &[u64]) {
    debug_assert!(cols.len() <= 64 && values.len() <= sa.lanes());
    for (g, chunk) in values.chunks(64).enumerate() {
        let mut m = [0u64; 64];
        m[..chunk.len()].copy_from_slice(chunk);
        transpose64(&mut m);
        let keep = if chunk.len() == 64 {
            0
        } else {
            !((1u64 << chunk.len()) - 1)
        };
        for (i, &c) in cols.iter().enumerate() {
            let w = &mut sa.column_mut(c)[g];
            *w = (*w & keep) | m[i];
        }
    }
}

/// Reads one value per lane for `lanes` lanes: bit i from `cols[i]` (at most 64 columns).
pub fn load_lanes(sa: &Subarray, cols: &[Col], lanes: usize) -> Vec<u64> {
    debug_assert!(cols.len() <= 64 && lanes <= sa.lanes());
    let mut out = Vec::with_capacity(lanes);
    let (cells, words) = (sa.cells(), sa.words());
    for g in 0..lanes.div_ceil(64) {
        let mut m = [0u64; 64];
        for (i, &c) in cols.iter().enumerate() {
            m[i] = cells[usize::from(c) * words + g];
        }
        transpose64(&mut m);
        out.extend_from_slice(&m[..(lanes - 64 * g).min(64)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lanes_round_trip_through_columns() {
        let mut sa = Subarray::new(150, 12);
        let vals: Vec<u64> = (0..150u64).map(|l| (l * 2654435761) & 0x3ff).collect();
        let cols: Vec<Col> = (1..11).collect();
        store_lanes(&mut sa, &cols, &vals);
        assert_eq!(load_lanes(&sa, &cols, 150), vals);
        for (l, v) in vals.iter().enumerate() {
            assert_eq!(sa.get(l, 3), v >> 2 & 1 == 1);
        }
    }

    proptest! {
        #[test]
        fn transpose_matches_naive(words in proptest::array::uniform32(any::<u64>()), more in proptest::array::uniform32(any::<u64>())) {
            let mut m = [0u64; 64];
            m[..32].copy_from_slice(&words);
            m[32..].copy_from_slice(&more);
            let orig = m;
            transpose64(&mut m);
            for (r, row) in m.iter().enumerate() {
                for (c, col) in orig.iter().enumerate() {
                    prop_assert_eq!(row >> c & 1, col >> r & 1);
                }
            }
        }
    }
}
