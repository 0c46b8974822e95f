//! Property tests: every kernel, in both gate sets, equals the integer reference in every
//! lane, for random widths 1..=32, random lane counts (mostly not multiples of 64) and
//! random subarray sizes.

use cramulator::model::kernels::check::{RunConfig, run_and_check};
use cramulator::model::kernels::{GateSet, KernelKind, KernelSpec};
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
                let r = run_and_check(&k, &RunConfig { lanes, lanes_per_subarray, seed, error_rate: 0.0, error_rates_by_gate: None, track_zeros: false, stop: Default::default() });
                prop_assert_eq!(r.lanes_checked, lanes as u64);
                prop_assert_eq!(r.mismatched_lanes, 0, "{:?}: first bad lane {:?}", spec, r.first_mismatch);
            }
        }
    }

    /// Small constants (where CSD recoding has many short runs) for multiply-by-constant.
    #[test]
    fn mulc_small_constants(bits in 1u32..=32, constant in -300i64..=300, seed in any::<u64>()) {
        for gate_set in GateSet::ALL {
            let spec = KernelSpec { kind: KernelKind::Mulc, bits, bits_b: bits, constant, gate_set };
            let r = run_and_check(&spec.build(), &RunConfig { lanes: 200, lanes_per_subarray: 128, seed, error_rate: 0.0, error_rates_by_gate: None, track_zeros: false, stop: Default::default() });
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
                                error_rates_by_gate: None,
                                track_zeros: false,
                                stop: Default::default(),
                            },
                        );
                        assert_eq!(r.mismatched_lanes, 0, "{spec:?}: {:?}", r.first_mismatch);
                    }
                }
            }
        }
    }
}

mod analytical_equals_functional {
    use cramulator::arch::{GateLibrary, presets};
    use cramulator::model::energy::{
        Actions, EnergyTable, Pricing, PulseModel, account, characterize, energy,
    };
    use cramulator::model::engine::Counter;
    use cramulator::model::engine::isa::Col;
    use cramulator::model::kernels::check::{RunConfig, run_and_check};
    use cramulator::model::kernels::{GateSet, KernelKind, KernelSpec};
    use cramulator::model::timing::{StepCycles, broadcast, broadcast_cycles, schedule};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// The executor runs exactly the lanes per step that the analytical accountant counts;
        /// the analytical cycle formula equals the cycle-level schedule; and the mean energy
        /// from executed lane counts equals the analytical one to 1e-12 — for any kernel,
        /// width, lane count, subarray size and organisation.
        #[test]
        fn counts_cycles_and_mean_energy(
            kind_i in 0usize..17,
            nand in any::<bool>(),
            bits in 1u32..=16,
            lanes in 1usize..=3000,
            per in prop_oneof![Just(64usize), Just(1024), 1usize..=700],
            clock_ghz in 0.1f64..5.0,
            setup_ns in 0.0f64..3.0,
            subarrays in 1u32..=40,
            seed in any::<u64>(),
        ) {
            let kind = KernelKind::ALL[kind_i];
            let gate_set = if nand { GateSet::Nand } else { GateSet::Maj };
            let k = KernelSpec { kind, bits, bits_b: bits, constant: -77, gate_set }.build();
            let dev = presets::device("she-projected").unwrap();
            let lib = GateLibrary::derive(&dev);
            let mut org_p = presets::array("cram-1k").unwrap().params;
            org_p.clock_ghz = clock_ghz;
            org_p.t_driver_setup_ns = setup_ns;
            let org = org_p.validate("prop").unwrap();
            let t = EnergyTable::derive(&lib, &org);
            let cfg = RunConfig { lanes, lanes_per_subarray: per, seed, error_rate: 0.0, error_rates_by_gate: None, track_zeros: true, stop: Default::default() };
            let r = run_and_check(&k, &cfg);
            prop_assert_eq!(r.mismatched_lanes, 0);

            // Analytical: lanes per gate step from the op stream.
            let (full, rem) = ((lanes / per) as u64, (lanes % per) as u64);
            let lines = org.lines();
            let a_full = account(&k.program, per as u64, 1024, lines).gate_steps;
            let a_rem = account(&k.program, rem, 1024, lines).gate_steps;
            let analytical: Vec<_> = a_full.iter().zip(&a_rem).map(|(&(g, l), &(_, m))| (g, l * full + m)).collect();
            // Functional: lanes per gate step as executed.
            let functional: Vec<_> = a_full.iter().zip(&r.zero_histograms).map(|(&(g, _), h)| (g, h.iter().sum::<u64>())).collect();
            prop_assert_eq!(&analytical, &functional);
            let counts = Counter::count(&k.program, per);
            let evals: u64 = functional.iter().map(|s| s.1).sum();
            prop_assert_eq!(evals, counts.gate_steps * lanes as u64);

            // Cycles: the O(1) formula equals the cycle-level schedule.
            let steps = StepCycles::derive(&dev, &org);
            let scheduled = schedule(&dev, &org, &broadcast(&k.program, subarrays)).cycles;
            prop_assert_eq!(broadcast_cycles(&counts.ops(), &steps), scheduled);

            // Mean energy from executed lane counts vs analytical lane counts.
            let inputs: Vec<Col> = k.inputs.iter().flat_map(|o| o.cols.clone()).collect();
            let fractions = characterize(&k.program, &inputs, seed);
            let price = |steps: &[(cramulator::arch::GateKind, u64)]| {
                let mut a = Actions::default();
                a.add_pulses(steps, PulseModel::Expected(&fractions));
                energy(&a, &t, Pricing::ByZeros).logic_pulses_pj
            };
            let (ea, ef) = (price(&analytical), price(&functional));
            prop_assert!((ea - ef).abs() <= 1e-12 * ea.abs().max(1e-300), "{} vs {}", ea, ef);
        }
    }
}
