//! Bit-matrix helpers: moving between bit-serial columns and per-lane integers.

/// Transposes a 64×64 bit matrix in place: afterwards bit `c` of word `r` is what bit `r` of
/// word `c` was. With word `i` = column i's 64-lane word, word `l` becomes lane l's value.
/// (Recursive block swap, Warren, *Hacker's Delight*, 2nd ed., §7-3, in LSB-first order.)
pub fn transpose64(m: &mut [u64; 64]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
