//! Property tests: every kernel, in both gate sets, equals the integer reference in every
//! lane, for random widths 1..=32, random lane counts (mostly not multiples of 64) and
//! random subarray sizes.

use cramulator::kernels::check::{RunConfig, run_and_check};
use cramulator::kernels::{GateSet, KernelKind, KernelSpec};
use proptest::prelude::*;

fn subarray_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(64usize), Just(1024), 1usize..=300]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_kernel_equals_the_integer_reference(
        bits in 1u32..=32,
        bits_b in 1u32..=32,
        lanes in 1usize..=700,
        lanes_per_subarray in subarray_size(),
        seed in any::<u64>(),
        constant in -(1i64 << 31) + 1..(1i64 << 31),
    ) {
        for &kind in KernelKind::ALL {
            for gate_set in GateSet::ALL {
                let spec = KernelSpec { kind, bits, bits_b, constant, gate_set };
                prop_assert!(spec.validate().is_ok());
                let k = spec.build();
                let r = run_and_check(&k, &RunConfig { lanes, lanes_per_subarray, seed, error_rate: 0.0 });
                prop_assert_eq!(r.lanes, lanes as u64);
                prop_assert_eq!(r.mismatched_lanes, 0, "{:?}: first bad lane {:?}", spec, r.first_mismatch);
            }
        }
    }

    /// Small constants (where CSD recoding has many short runs) for multiply-by-constant.
    #[test]
    fn mulc_small_constants(bits in 1u32..=32, constant in -300i64..=300, seed in any::<u64>()) {
        for gate_set in GateSet::ALL {
            let spec = KernelSpec { kind: KernelKind::Mulc, bits, bits_b: bits, constant, gate_set };
            let r = run_and_check(&spec.build(), &RunConfig { lanes: 200, lanes_per_subarray: 128, seed, error_rate: 0.0 });
            prop_assert_eq!(r.mismatched_lanes, 0, "{:?}: {:?}", spec, r.first_mismatch);
        }
    }
}

/// Widths 1 and 2 are where sign-bit special cases live: check them exhaustively.
#[test]
fn tiny_widths_exhaustively() {
    for &kind in KernelKind::ALL {
        for gate_set in GateSet::ALL {
            for bits in 1..=2 {
                for bits_b in 1..=3 {
                    for constant in -4..=4 {
                        let spec = KernelSpec {
                            kind,
                            bits,
                            bits_b,
                            constant,
                            gate_set,
                        };
                        // 4096 random lanes cover every input combination of ≤ 9 bits.
                        let r = run_and_check(
                            &spec.build(),
                            &RunConfig {
                                lanes: 4096,
                                lanes_per_subarray: 4096,
                                seed: 3,
                                error_rate: 0.0,
                            },
                        );
                        assert_eq!(r.mismatched_lanes, 0, "{spec:?}: {:?}", r.first_mismatch);
                    }
                }
            }
        }
    }
}
