//! The vector instructions the float and integer loops of this crate are compiled for at
//! run time (the calibration convolution's tiles, the quantizer's rounding loop).
//!
//! Every level computes the same operations in the same order (no fused multiply-adds, no
//! reassociation), so results are bit-identical whichever runs; only the speed differs.

use std::sync::OnceLock;

/// A vector level, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// The build's baseline (SSE2 on x86-64).
    Portable,
    /// AVX2.
    Avx2,
    /// AVX-512 (foundation).
    Avx512,
}

/// The widest level the CPU has, unless the environment asks for the portable build
/// (`CRAMULATOR_SIMD=portable`, as the gate executor reads it).
pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let portable =
                std::env::var("CRAMULATOR_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("portable"));
            if portable {
                Level::Portable
            } else if std::arch::is_x86_feature_detected!("avx512f") {
                Level::Avx512
            } else if std::arch::is_x86_feature_detected!("avx2") {
                Level::Avx2
            } else {
                Level::Portable
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Level::Portable
    })
}
