//! Content digests: FNV-1a 64 over bytes, the stable (not cryptographic) hash behind run ids
//! and the model content hashes a resolved configuration records.

/// FNV-1a, 64 bits, of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    Fnv::default().chunk(bytes).finish()
}

/// FNV-1a 64 over several byte slices in order (each slice's length is mixed in too, so
/// `["ab", "c"]` and `["a", "bc"]` differ).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Mixes in `bytes`.
    pub fn chunk(mut self, bytes: &[u8]) -> Fnv {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    /// Mixes in `bytes` preceded by their length.
    pub fn part(self, bytes: &[u8]) -> Fnv {
        self.chunk(&(bytes.len() as u64).to_le_bytes()).chunk(bytes)
    }

    /// The digest.
    pub fn finish(self) -> u64 {
        self.0
    }

    /// The digest as 16 hex digits.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors_and_parts() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let two = |a: &[u8], b: &[u8]| Fnv::default().part(a).part(b).finish();
        assert_ne!(two(b"ab", b"c"), two(b"a", b"bc"));
    }
}
