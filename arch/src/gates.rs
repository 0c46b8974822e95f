//! The CRAM gate library, derived from the threshold-switching model of docs/model.md §1.2.
//!
//! Encoding: P (R_P) = logic 0, AP (R_AP) = logic 1. An n-input gate connects its input cells
//! in parallel and its output cell in series on the row's logic line. With z inputs at 0:
//!
//! ```text
//! R_in(z)  = 1 / ( z/(R_T+R_P) + (n−z)/(R_T+R_AP) )
//! R_tot(z) = R_T + R_out,preset + R_in(z)        (STT; SHE: R_T + R_channel + R_in(z))
//! I(z)     = V / R_tot(z)
//! ```
//!
//! The output switches iff I(z) ≥ I_c (Zabihi et al., IEEE TC 68(8) 2019, gate design from
//! electrical margins; derivation in `docs/references.md` L-A2, tagged [D]). A gate that must
//! switch exactly when z ≥ k works for every bias in `[V_min, V_max)` with
//! `V_min = I_c·R_tot(k)` and `V_max = I_c·R_tot(k−1)`. Preset 0 (P→AP current) gives
//! "out = 1 iff zeros ≥ k"; preset 1 (AP→P current) gives "out = 0 iff zeros ≥ k".
//!
//! The *operating window* is `[V_min, V_hi)` with `V_hi = min(V_max, V_disturb, v_bias_max)`:
//! the bias must also leave every input cell unswitched (input disturb, see
//! `input_disturb`) and stay within what the drivers deliver. The default bias is its
//! midpoint; a gate whose operating window is empty, or whose margin is below the device's
//! `min_noise_margin`, is unavailable and says why.
//!
//! Modelling choices (documented, not hidden): the output resistance is taken in its preset
//! state for the whole pulse (the current actually changes as it switches); the critical
//! current does not depend on the pulse width (real MTJs need more current for shorter
//! pulses); pulse energy is V·I(z)·t for both variants; the preset write is charged as an
//! upper bound (see `Device::e_preset_pj`).

use serde::Serialize;

use crate::device::{Device, Variant};

/// The gates CRAM builds from one threshold rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum GateKind {
    /// ¬a (preset 0, n = 1, k = 1).
    Not,
    /// a, the buffer / copy gate (preset 1, n = 1, k = 1).
    Copy,
    /// a ∧ b (preset 1, k = 1).
    And,
    /// a ∨ b (preset 1, k = 2).
    Or,
    /// ¬(a ∧ b) (preset 0, k = 1).
    Nand,
    /// ¬(a ∨ b) (preset 0, k = 2).
    Nor,
    /// Majority of three (preset 1, k = 2).
    Maj3,
    /// Majority of five (preset 1, k = 3).
    Maj5,
    /// Inverted majority of three (preset 0, k = 2).
    InvMaj3,
    /// Inverted majority of five (preset 0, k = 3).
    InvMaj5,
}

impl GateKind {
    /// Every gate, in table order.
    pub const ALL: [GateKind; 10] = [
        GateKind::Not,
        GateKind::Copy,
        GateKind::And,
        GateKind::Or,
        GateKind::Nand,
        GateKind::Nor,
        GateKind::Maj3,
        GateKind::Maj5,
        GateKind::InvMaj3,
        GateKind::InvMaj5,
    ];

    /// Number of gate kinds.
    pub const COUNT: usize = 10;

    /// Position in [`GateKind::ALL`] (for tables indexed by gate).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Number of input cells.
    pub const fn arity(self) -> usize {
        match self {
            GateKind::Not | GateKind::Copy => 1,
            GateKind::And | GateKind::Or | GateKind::Nand | GateKind::Nor => 2,
            GateKind::Maj3 | GateKind::InvMaj3 => 3,
            GateKind::Maj5 | GateKind::InvMaj5 => 5,
        }
    }

    /// Threshold k: the output cell switches iff at least k inputs hold 0.
    pub const fn threshold(self) -> usize {
        match self {
            GateKind::Not | GateKind::Copy | GateKind::And | GateKind::Nand => 1,
            GateKind::Or | GateKind::Nor | GateKind::Maj3 | GateKind::InvMaj3 => 2,
            GateKind::Maj5 | GateKind::InvMaj5 => 3,
        }
    }

    /// Value the output cell is preset to before the pulse; the pulse can only move it to the
    /// opposite value.
    pub const fn preset(self) -> bool {
        matches!(
            self,
            GateKind::Copy | GateKind::And | GateKind::Or | GateKind::Maj3 | GateKind::Maj5
        )
    }

    /// Short upper-case mnemonic, as printed in tables and traces.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            GateKind::Not => "NOT",
            GateKind::Copy => "COPY",
            GateKind::And => "AND",
            GateKind::Or => "OR",
            GateKind::Nand => "NAND",
            GateKind::Nor => "NOR",
            GateKind::Maj3 => "MAJ3",
            GateKind::Maj5 => "MAJ5",
            GateKind::InvMaj3 => "INVMAJ3",
            GateKind::InvMaj5 => "INVMAJ5",
        }
    }

    /// The Boolean function, written independently of the threshold rule (the tests check the
    /// two agree). `inputs.len()` must equal [`GateKind::arity`].
    pub fn truth(self, inputs: &[bool]) -> bool {
        debug_assert_eq!(inputs.len(), self.arity());
        let ones = inputs.iter().filter(|&&b| b).count();
        match self {
            GateKind::Not => !inputs[0],
            GateKind::Copy => inputs[0],
            GateKind::And => inputs[0] && inputs[1],
            GateKind::Or => inputs[0] || inputs[1],
            GateKind::Nand => !(inputs[0] && inputs[1]),
            GateKind::Nor => !(inputs[0] || inputs[1]),
            GateKind::Maj3 => ones >= 2,
            GateKind::Maj5 => ones >= 3,
            GateKind::InvMaj3 => ones < 2,
            GateKind::InvMaj5 => ones < 3,
        }
    }
}

impl std::fmt::Display for GateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mnemonic())
    }
}

impl std::str::FromStr for GateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GateKind::ALL
            .into_iter()
            .find(|g| g.mnemonic().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown gate '{s}'"))
    }
}

/// One row of the gate table: the physics of one gate on one device.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GateSpec {
    /// Which gate.
    pub kind: GateKind,
    /// Number of inputs n.
    pub inputs: usize,
    /// Threshold k (switch iff zeros ≥ k).
    pub k: usize,
    /// Preset value of the output cell.
    pub preset: bool,
    /// Critical current of the switching direction used, µA.
    pub i_c_ua: f64,
    /// Series resistance R_tot(z) for z = 0..=n input zeros, Ω.
    pub r_tot_ohm: Vec<f64>,
    /// Lower window edge V_min = I_c·R_tot(k), V (the gate switches at and above it).
    pub v_min_v: f64,
    /// Upper window edge V_max = I_c·R_tot(k−1), V (exclusive), before the other limits.
    pub v_max_v: f64,
    /// Lowest bias at which an input cell would itself be switched (input disturb), V.
    pub v_disturb_v: f64,
    /// Bias used: midpoint of the operating window [V_min, V_hi), V.
    pub bias_v: f64,
    /// Relative noise margin (V_hi − V_min)/(V_hi + V_min) of the operating window, where
    /// V_hi = min(V_max, V_disturb, v_bias_max).
    pub noise_margin: f64,
    /// Energy of the logic pulse at the chosen bias for z = 0..=n input zeros, pJ
    /// (V·I(z)·t_pulse).
    pub e_pulse_pj: Vec<f64>,
    /// Energy of the preset write of the output cell, pJ.
    pub e_preset_pj: f64,
    /// Preset write plus logic pulse, ns.
    pub latency_ns: f64,
    /// Probability that the gate's output is wrong for its most vulnerable input pattern,
    /// from a Gaussian spread of the critical current (relative σ = `ic_sigma_rel`) at the
    /// chosen bias: max(Q(d_switch/σ), Q(d_hold/σ)) with d_switch = V/V_min − 1 (the k-zero
    /// pattern fails to switch) and d_hold = 1 − V/V_max (the (k−1)-zero pattern switches).
    pub error_prob: f64,
    /// `None` if the gate can be built; otherwise why not, with the numbers.
    pub unavailable: Option<String>,
}

impl GateSpec {
    /// True if the gate can be built on this device.
    pub fn available(&self) -> bool {
        self.unavailable.is_none()
    }

    /// Whether the output cell switches with `zeros` inputs at 0 under bias `v_v`:
    /// I(z) = V / R_tot(z) ≥ I_c.
    pub fn switches(&self, zeros: usize, v_v: f64) -> bool {
        v_v / self.r_tot_ohm[zeros] * 1e6 >= self.i_c_ua
    }

    /// The output the threshold model produces for these inputs at bias `v_v`, assuming the
    /// output cell was preset.
    pub fn evaluate(&self, inputs: &[bool], v_v: f64) -> bool {
        let zeros = inputs.iter().filter(|&&b| !b).count();
        if self.switches(zeros, v_v) {
            !self.preset
        } else {
            self.preset
        }
    }
}

/// The gate table of one device.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GateLibrary {
    /// The device the table was derived for.
    pub device: Device,
    /// One entry per [`GateKind::ALL`], same order.
    pub gates: Vec<GateSpec>,
}

impl GateLibrary {
    /// Derives the gate table of `device` from the threshold model.
    pub fn derive(device: &Device) -> GateLibrary {
        let gates = GateKind::ALL
            .into_iter()
            .map(|kind| gate_spec(device, kind))
            .collect();
        GateLibrary {
            device: device.clone(),
            gates,
        }
    }

    /// The entry for one gate.
    pub fn get(&self, kind: GateKind) -> &GateSpec {
        self.gates
            .iter()
            .find(|g| g.kind == kind)
            .expect("GateLibrary holds every GateKind")
    }
}

fn gate_spec(device: &Device, kind: GateKind) -> GateSpec {
    let d = &device.derived;
    let p = &device.params;
    let n = kind.arity();
    let k = kind.threshold();
    let preset = kind.preset();
    // Preset 0 gates drive P→AP current (the output moves 0 → 1) and vice versa.
    let i_c_ua = device.i_c_to_ua(!preset);
    let r_out = match p.variant {
        Variant::Stt if preset => d.r_ap_ohm,
        Variant::Stt => d.r_p_ohm,
        Variant::She => d.r_channel_ohm,
    };
    let (r_zero, r_one) = (d.r_access_ohm + d.r_p_ohm, d.r_access_ohm + d.r_ap_ohm);
    let r_in = |z: usize| 1.0 / (z as f64 / r_zero + (n - z) as f64 / r_one);
    let r_tot_ohm: Vec<f64> = (0..=n).map(|z| d.r_access_ohm + r_out + r_in(z)).collect();
    let v_min_v = i_c_ua * 1e-6 * r_tot_ohm[k];
    let v_max_v = i_c_ua * 1e-6 * r_tot_ohm[k - 1];
    let (v_disturb_v, disturb_case) = input_disturb(device, preset, n, &r_tot_ohm, &r_in);
    let v_hi_v = v_max_v.min(p.v_bias_max_v).min(v_disturb_v);
    let mut unavailable = None;
    // Comparisons are false for NaN, so a NaN anywhere counts as "not buildable".
    let window_ok = v_min_v < v_hi_v;
    let below_driver_limit = v_min_v < p.v_bias_max_v;
    let (bias_v, noise_margin) = if !window_ok {
        unavailable = Some(if !below_driver_limit {
            format!(
                "{kind} needs a bias of at least V_min = {v_min_v:.4} V (I_c = {i_c_ua:.3} µA × \
                 R_tot(z={k}) = {:.1} Ω) but the drivers give at most v_bias_max_v = {} V",
                r_tot_ohm[k], p.v_bias_max_v
            )
        } else {
            format!(
                "{kind} disturbs its inputs: already at V_min = {v_min_v:.4} V an input in {disturb_case} \
                 carries at least its critical current (inputs are disturbed from {v_disturb_v:.4} V); \
                 a higher critical current for that direction would make room"
            )
        });
        (v_min_v, 0.0)
    } else {
        (
            (v_min_v + v_hi_v) / 2.0,
            (v_hi_v - v_min_v) / (v_hi_v + v_min_v),
        )
    };
    let margin_ok = noise_margin >= p.min_noise_margin;
    if unavailable.is_none() && !margin_ok {
        unavailable = Some(format!(
            "{kind} noise margin {:.2} % (operating window [{v_min_v:.4}, {v_hi_v:.4}) V) is below the \
             device's min_noise_margin {:.2} %",
            noise_margin * 100.0,
            p.min_noise_margin * 100.0
        ));
    }
    let sigma = p.ic_sigma_rel;
    let error_prob = q_function((bias_v / v_min_v - 1.0) / sigma)
        .max(q_function((1.0 - bias_v / v_max_v) / sigma));
    // E = V²/R · t; V in volts, R in Ω, t in ns → J·1e-9 → pJ ×1e12: factor 1e3.
    let e_pulse_pj = r_tot_ohm
        .iter()
        .map(|r| bias_v * bias_v / r * p.t_switch_ns * 1e3)
        .collect();
    GateSpec {
        kind,
        inputs: n,
        k,
        preset,
        i_c_ua,
        r_tot_ohm,
        v_min_v,
        v_max_v,
        v_disturb_v,
        bias_v,
        noise_margin,
        e_pulse_pj,
        e_preset_pj: device.e_preset_pj(preset),
        latency_ns: 2.0 * p.t_switch_ns,
        error_prob,
        unavailable,
    }
}

/// Upper tail of the standard normal distribution, Q(x) = ½·erfc(x/√2).
pub fn q_function(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// Complementary error function by the Chebyshev fit of Press et al., *Numerical Recipes*
/// (2nd ed., §6.2, `erfcc`): fractional error below 1.2·10⁻⁷ for every x, so tiny
/// probabilities keep their relative accuracy.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let c = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let poly = c.iter().rev().fold(0.0, |acc, &k| acc * t + k);
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The lowest bias at which some input MTJ of the gate would itself be switched, and which
/// input state that is.
///
/// An input in state s, with z of the n inputs at 0, carries the branch current
/// `V · R_in(z) / R_tot(z) / (R_T + R_s)`, linear in V. It is disturbed when that current
/// reaches the input's own critical current in the direction the current pushes it. STT: the
/// input cells sit on the other side of the logic line from the output, so their current runs
/// through the stack in the opposite sense to the output's: preset-0 gates (output P→AP) push
/// AP inputs toward P, preset-1 gates push P inputs toward AP. SHE: the input's polarity is not
/// modelled, so both states are checked against the MTJ's own STT critical currents
/// (conservative).
fn input_disturb(
    device: &Device,
    preset: bool,
    n: usize,
    r_tot: &[f64],
    r_in: &dyn Fn(usize) -> f64,
) -> (f64, &'static str) {
    let d = &device.derived;
    // (state is P, critical current pushing it away, series resistance of its branch)
    let p_state = (true, d.i_disturb_p_to_ap_ua, d.r_access_ohm + d.r_p_ohm);
    let ap_state = (false, d.i_disturb_ap_to_p_ua, d.r_access_ohm + d.r_ap_ohm);
    let at_risk: &[(bool, f64, f64)] = match (device.params.variant, preset) {
        (Variant::Stt, false) => &[ap_state],
        (Variant::Stt, true) => &[p_state],
        (Variant::She, _) => &[p_state, ap_state],
    };
    let mut worst = (f64::INFINITY, "no state");
    for (z, &r_tot_z) in r_tot.iter().enumerate() {
        for &(is_p, i_dist_ua, r_branch) in at_risk {
            let present = if is_p { z >= 1 } else { z < n };
            if present {
                let v = i_dist_ua * 1e-6 * r_branch * r_tot_z / r_in(z);
                if v < worst.0 {
                    worst = (v, if is_p { "state P (0)" } else { "state AP (1)" });
                }
            }
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets;

    fn all_inputs(n: usize) -> impl Iterator<Item = Vec<bool>> {
        (0..1u32 << n).map(move |m| (0..n).map(|i| m >> i & 1 == 1).collect())
    }

    #[test]
    fn threshold_model_reproduces_truth_tables_inside_windows_and_fails_outside() {
        for name in presets::NAMES {
            let lib = GateLibrary::derive(&presets::device(name).unwrap());
            for g in &lib.gates {
                // At the chosen bias and anywhere strictly inside [V_min, V_max): exact.
                for v in [g.v_min_v * (1.0 + 1e-9), g.bias_v, g.v_max_v * (1.0 - 1e-9)] {
                    for ins in all_inputs(g.inputs) {
                        assert_eq!(
                            g.evaluate(&ins, v),
                            g.kind.truth(&ins),
                            "{name} {} at {v} V, inputs {ins:?}",
                            g.kind
                        );
                    }
                }
                // Just below V_min, or just above V_max, some input row comes out wrong.
                for v in [g.v_min_v * (1.0 - 1e-9), g.v_max_v * (1.0 + 1e-9)] {
                    let wrong =
                        all_inputs(g.inputs).any(|ins| g.evaluate(&ins, v) != g.kind.truth(&ins));
                    assert!(
                        wrong,
                        "{name} {} still correct at {v} V outside its window",
                        g.kind
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// Over random devices (both variants): inside every window the threshold model is the
        /// truth table; just below V_min or just above V_max it is not.
        #[test]
        fn threshold_model_over_random_devices(
            she: bool,
            diameter_nm in 5.0f64..80.0,
            ra_ohm_um2 in 0.5f64..20.0,
            tmr in 0.2f64..6.0,
            r_access_on_ohm in 0.0f64..20_000.0,
            jc in 1e5f64..5e7,
            ratio in 0.3f64..1.0,
        ) {
            let mut p = presets::device(if she { "she-projected" } else { "stt-today" }).unwrap().params;
            p.diameter_nm = diameter_nm;
            p.ra_ohm_um2 = ra_ohm_um2;
            p.tmr = tmr;
            p.r_access_on_ohm = r_access_on_ohm;
            p.jc_p_to_ap_a_per_cm2 = jc;
            p.jc_ap_to_p_a_per_cm2 = jc * ratio;
            p.v_bias_max_v = 10.0;
            let lib = GateLibrary::derive(&p.validate("prop").unwrap());
            for g in &lib.gates {
                proptest::prop_assert!(g.v_min_v < g.v_max_v);
                let inside = [g.v_min_v * (1.0 + 1e-9), g.v_max_v * (1.0 - 1e-9)];
                let bias = g.available().then_some(g.bias_v);
                for v in inside.into_iter().chain(bias) {
                    for ins in all_inputs(g.inputs) {
                        proptest::prop_assert_eq!(g.evaluate(&ins, v), g.kind.truth(&ins));
                    }
                }
                for v in [g.v_min_v * (1.0 - 1e-9), g.v_max_v * (1.0 + 1e-9)] {
                    proptest::prop_assert!(all_inputs(g.inputs).any(|ins| g.evaluate(&ins, v) != g.kind.truth(&ins)));
                }
            }
        }
    }

    #[test]
    fn truth_tables_by_hand() {
        use GateKind::*;
        let t = |g: GateKind, ins: &[u8]| g.truth(&ins.iter().map(|&b| b == 1).collect::<Vec<_>>());
        assert!(t(Not, &[0]) && !t(Not, &[1]));
        assert!(!t(Copy, &[0]) && t(Copy, &[1]));
        assert_eq!(
            [
                t(And, &[0, 0]),
                t(And, &[0, 1]),
                t(And, &[1, 0]),
                t(And, &[1, 1])
            ],
            [false, false, false, true]
        );
        assert_eq!(
            [
                t(Or, &[0, 0]),
                t(Or, &[0, 1]),
                t(Or, &[1, 0]),
                t(Or, &[1, 1])
            ],
            [false, true, true, true]
        );
        assert_eq!([t(Nand, &[0, 0]), t(Nand, &[1, 1])], [true, false]);
        assert_eq!([t(Nor, &[0, 0]), t(Nor, &[0, 1])], [true, false]);
        assert!(t(Maj3, &[1, 1, 0]) && !t(Maj3, &[1, 0, 0]));
        assert!(t(Maj5, &[1, 1, 1, 0, 0]) && !t(Maj5, &[1, 1, 0, 0, 0]));
        assert!(!t(InvMaj3, &[1, 1, 0]) && t(InvMaj5, &[1, 1, 0, 0, 0]));
    }

    #[test]
    fn window_shrinks_as_access_resistance_grows() {
        let base = presets::device("stt-today").unwrap().params;
        let margin = |r_t: f64| {
            let mut p = base.clone();
            p.r_access_on_ohm = r_t;
            let lib = GateLibrary::derive(&p.validate("t").unwrap());
            lib.get(GateKind::Nand).noise_margin
        };
        assert!(margin(0.0) > margin(2000.0) && margin(2000.0) > margin(10000.0));
    }

    #[test]
    fn unbuildable_gate_is_reported_with_numbers() {
        let mut p = presets::device("stt-today").unwrap().params;
        p.min_noise_margin = 0.05;
        let lib = GateLibrary::derive(&p.clone().validate("t").unwrap());
        let maj5 = lib.get(GateKind::Maj5);
        let why = maj5.unavailable.as_deref().unwrap();
        assert!(
            why.contains("MAJ5") && why.contains("%") && why.contains(" V"),
            "{why}"
        );
        assert!(lib.get(GateKind::Not).available());
        p.v_bias_max_v = 0.1;
        let lib = GateLibrary::derive(&p.validate("t").unwrap());
        assert!(
            lib.get(GateKind::Not)
                .unavailable
                .as_deref()
                .unwrap()
                .contains("at most")
        );
    }

    /// Branch currents recomputed from the circuit: at the chosen bias no input cell carries
    /// its critical current in the direction the gate pushes it.
    #[test]
    fn chosen_bias_never_disturbs_an_input() {
        for name in presets::NAMES {
            let dev = presets::device(name).unwrap();
            let d = &dev.derived;
            let lib = GateLibrary::derive(&dev);
            for g in lib.gates.iter().filter(|g| g.available()) {
                for ins in all_inputs(g.inputs) {
                    let z = ins.iter().filter(|&&b| !b).count();
                    let i_total_ua = g.bias_v / g.r_tot_ohm[z] * 1e6;
                    // Voltage across the parallel input stage = I · R_in(z).
                    let g_sum: f64 = ins
                        .iter()
                        .map(|&one| {
                            1.0 / (d.r_access_ohm + if one { d.r_ap_ohm } else { d.r_p_ohm })
                        })
                        .sum();
                    let v_in = i_total_ua / g_sum;
                    for &one in &ins {
                        let branch_ua =
                            v_in / (d.r_access_ohm + if one { d.r_ap_ohm } else { d.r_p_ohm });
                        let limit = if one {
                            d.i_disturb_ap_to_p_ua
                        } else {
                            d.i_disturb_p_to_ap_ua
                        };
                        let pushed = match dev.params.variant {
                            Variant::Stt => one != g.preset,
                            Variant::She => true,
                        };
                        assert!(
                            !pushed || branch_ua < limit,
                            "{name} {} inputs {ins:?}: {branch_ua} µA ≥ {limit} µA",
                            g.kind
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn copy_disturbs_its_input_unless_p_to_ap_needs_more_current() {
        // Symmetric J_c: a one-input COPY passes the same current through input and output,
        // so the P input would switch as soon as the output does.
        for name in ["stt-today", "stt-projected"] {
            let lib = GateLibrary::derive(&presets::device(name).unwrap());
            let why = lib.get(GateKind::Copy).unavailable.clone().unwrap();
            assert!(why.contains("disturbs its inputs"), "{name}: {why}");
            assert!(lib.get(GateKind::Not).available());
        }
        // Typical STT asymmetry (P→AP needs about twice the current) makes room.
        let mut p = presets::device("stt-today").unwrap().params;
        p.jc_p_to_ap_a_per_cm2 = 2.0 * p.jc_ap_to_p_a_per_cm2;
        let lib = GateLibrary::derive(&p.validate("t").unwrap());
        let copy = lib.get(GateKind::Copy);
        assert!(
            copy.available() && copy.bias_v < copy.v_disturb_v,
            "{:?}",
            copy.unavailable
        );
        // SHE writes through the channel: its NOT and COPY keep a window below the disturb bias.
        let she = GateLibrary::derive(&presets::device("she-projected").unwrap());
        for g in &she.gates {
            assert!(g.available(), "{:?}", g.unavailable);
            assert!(g.v_disturb_v < g.v_max_v || g.kind != GateKind::Copy);
        }
    }

    #[test]
    fn q_function_matches_tables() {
        // Standard normal upper tails (tabulated values).
        for (x, q) in [
            (0.0, 0.5),
            (1.0, 0.158_655_25),
            (3.0, 1.349_898e-3),
            (6.0, 9.865_877e-10),
            (-1.0, 0.841_344_75),
        ] {
            assert!(
                (q_function(x) - q).abs() <= 2e-7 * q,
                "Q({x}) = {} vs {q}",
                q_function(x)
            );
        }
    }

    #[test]
    fn derived_error_probability_follows_the_margin() {
        let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
        let (nand, maj5) = (lib.get(GateKind::Nand), lib.get(GateKind::Maj5));
        // NAND's 35 % window is ~7 σ of a 5 % spread wide on each side; MAJ5's 0.8 % is not.
        assert!(nand.error_prob < 1e-6, "{}", nand.error_prob);
        assert!(maj5.error_prob > 0.3, "{}", maj5.error_prob);
        let mut p = presets::device("stt-projected").unwrap().params;
        p.ic_sigma_rel = 0.01;
        let tight = GateLibrary::derive(&p.validate("t").unwrap());
        assert!(tight.get(GateKind::Maj5).error_prob < maj5.error_prob);
    }

    #[test]
    fn pulse_energy_grows_with_input_zeros() {
        let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
        for g in &lib.gates {
            assert!(g.e_pulse_pj.windows(2).all(|w| w[1] > w[0]), "{}", g.kind);
        }
    }
}
