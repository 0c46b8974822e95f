//! MTJ device parameters (independent quantities only) and the quantities derived from them.
//!
//! Model (docs/model.md §1.1; `docs/references.md` L-b):
//! area = π·d²/4, R_P = RA / area, R_AP = R_P·(1 + TMR), I_c = J_c · area (per switching
//! direction). For the spin-Hall variant the output is written by charge current through a
//! heavy-metal channel (US 11,176,979 B2), so its write path is the channel:
//! R_ch = ρ·L/(w·t) and I_c = J_c,SHE · w·t.
//!
//! Presets give only independent quantities; every dependent number is derived here, so a
//! sweep over TMR or diameter moves all of them consistently.

use serde::{Deserialize, Serialize};

use crate::error::ArchError;

/// Which cell the array is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Two-transistor, one-MTJ STT cell: the output MTJ sits in series with the inputs and
    /// is switched by spin-transfer torque (CAL 2018 / TC 2019 CRAM).
    Stt,
    /// Spin-Hall (SOT) cell: inputs are sensed through their MTJs, the output is written by
    /// current through its heavy-metal channel (SHE-CRAM, US 11,176,979 B2).
    She,
}

/// Heavy-metal channel of a spin-Hall cell (only for `variant = "she"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SheChannel {
    /// Channel length along the current, nm.
    pub length_nm: f64,
    /// Channel width, nm.
    pub width_nm: f64,
    /// Channel (heavy-metal film) thickness, nm.
    pub thickness_nm: f64,
    /// Heavy-metal resistivity, µΩ·cm.
    pub resistivity_uohm_cm: f64,
    /// Critical switching current density through the channel, A/cm².
    pub jc_a_per_cm2: f64,
}

/// Independent device parameters of one CRAM technology, as written in a
/// `configs/devices/*.toml` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceParams {
    /// Preset or user name of this technology.
    pub name: String,
    /// Cell variant: `stt` (2T1MTJ) or `she` (spin-Hall, three-terminal).
    pub variant: Variant,
    /// MTJ pillar diameter, nm (circular pillar).
    pub diameter_nm: f64,
    /// Resistance-area product of the tunnel barrier in the parallel state, Ω·µm².
    pub ra_ohm_um2: f64,
    /// Tunnel magnetoresistance ratio (R_AP − R_P)/R_P as a fraction (1.33 = 133 %).
    pub tmr: f64,
    /// Critical current density for switching the MTJ P→AP (logic 0 → 1) by spin-transfer
    /// torque, A/cm². STT: the write current of gates and presets. SHE: the input-disturb limit
    /// (the SHE write uses `she.jc_a_per_cm2`).
    pub jc_p_to_ap_a_per_cm2: f64,
    /// Critical current density for switching the MTJ AP→P (logic 1 → 0), A/cm² (see above).
    pub jc_ap_to_p_a_per_cm2: f64,
    /// Switching time: length of a logic pulse and of a preset write, ns.
    pub t_switch_ns: f64,
    /// Sensing time of a memory-mode read, ns.
    pub t_read_ns: f64,
    /// On-resistance of one access transistor, Ω.
    pub r_access_on_ohm: f64,
    /// Preset/write current as a multiple of the critical current (≥ 1).
    pub write_overdrive: f64,
    /// Highest bias the bit-select-line drivers may apply, V.
    pub v_bias_max_v: f64,
    /// Smallest acceptable relative noise margin (V_max − V_min)/(V_max + V_min) for a gate to
    /// count as buildable, as a fraction.
    pub min_noise_margin: f64,
    /// Relative standard deviation of the critical current (device-to-device and cycle-to-cycle
    /// together), as a fraction: sets each gate's derived error probability.
    pub ic_sigma_rel: f64,
    /// Heavy-metal channel; required when `variant = "she"`, forbidden otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub she: Option<SheChannel>,
}

/// A value known to be valid: only [`DeviceParams::validate`] makes one.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Device {
    /// The validated parameters.
    pub params: DeviceParams,
    /// Quantities derived from them.
    pub derived: Derived,
}

/// Quantities derived from [`DeviceParams`] (docs/model.md §1.1).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Derived {
    /// MTJ area π·d²/4, nm².
    pub area_nm2: f64,
    /// Parallel-state (logic 0) resistance RA/area, Ω.
    pub r_p_ohm: f64,
    /// Antiparallel-state (logic 1) resistance R_P·(1+TMR), Ω.
    pub r_ap_ohm: f64,
    /// Access-transistor on-resistance, Ω (copied for the gate table).
    pub r_access_ohm: f64,
    /// Series resistance of the write path other than the MTJ: the channel for SHE, 0 for STT, Ω.
    pub r_channel_ohm: f64,
    /// Critical current for the P→AP (0 → 1) direction, µA.
    pub i_c_p_to_ap_ua: f64,
    /// Critical current for the AP→P (1 → 0) direction, µA.
    pub i_c_ap_to_p_ua: f64,
    /// Current through an MTJ that switches it P→AP by spin-transfer torque (J_c · area), µA:
    /// the input-disturb limit. Equal to `i_c_p_to_ap_ua` for STT cells.
    pub i_disturb_p_to_ap_ua: f64,
    /// Same for AP→P, µA.
    pub i_disturb_ap_to_p_ua: f64,
}

const NM2_TO_UM2: f64 = 1e-6;
const NM2_TO_CM2: f64 = 1e-14;
const A_TO_UA: f64 = 1e6;

impl DeviceParams {
    /// Checks every field against its physical range and derives the dependent quantities.
    /// `origin` (file path or preset name) is quoted in any error.
    pub fn validate(self, origin: &str) -> Result<Device, ArchError> {
        let bad = |key: &str, value: f64, allowed: &str| ArchError::Invalid {
            origin: origin.to_owned(),
            key: key.to_owned(),
            value: format!("{value}"),
            allowed: allowed.to_owned(),
        };
        let range = |key: &str, v: f64, lo: f64, hi: f64, allowed: &str| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(key, v, &format!("must be {allowed}")))
            }
        };
        range(
            "diameter_nm",
            self.diameter_nm,
            1.0,
            1000.0,
            "between 1 and 1000 nm",
        )?;
        range(
            "ra_ohm_um2",
            self.ra_ohm_um2,
            0.01,
            1000.0,
            "between 0.01 and 1000 Ω·µm²",
        )?;
        range(
            "tmr",
            self.tmr,
            0.01,
            20.0,
            "a fraction between 0.01 and 20 (1 % to 2000 %; 1.33 = 133 %)",
        )?;
        let jc = "between 1e3 and 1e9 A/cm²";
        range(
            "jc_p_to_ap_a_per_cm2",
            self.jc_p_to_ap_a_per_cm2,
            1e3,
            1e9,
            jc,
        )?;
        range(
            "jc_ap_to_p_a_per_cm2",
            self.jc_ap_to_p_a_per_cm2,
            1e3,
            1e9,
            jc,
        )?;
        range(
            "t_switch_ns",
            self.t_switch_ns,
            1e-3,
            1e6,
            "between 0.001 and 1e6 ns",
        )?;
        range(
            "t_read_ns",
            self.t_read_ns,
            1e-3,
            1e6,
            "between 0.001 and 1e6 ns",
        )?;
        range(
            "r_access_on_ohm",
            self.r_access_on_ohm,
            0.0,
            1e8,
            "a resistance ≥ 0 and ≤ 1e8 Ω",
        )?;
        range(
            "write_overdrive",
            self.write_overdrive,
            1.0,
            10.0,
            "between 1 and 10 (a write needs at least the critical current)",
        )?;
        range(
            "v_bias_max_v",
            self.v_bias_max_v,
            1e-3,
            10.0,
            "between 0.001 and 10 V",
        )?;
        range(
            "ic_sigma_rel",
            self.ic_sigma_rel,
            1e-4,
            1.0,
            "a fraction between 0.0001 and 1",
        )?;
        if !(self.min_noise_margin.is_finite() && (0.0..1.0).contains(&self.min_noise_margin)) {
            return Err(bad(
                "min_noise_margin",
                self.min_noise_margin,
                "must be a fraction in [0, 1)",
            ));
        }
        let area_nm2 = std::f64::consts::PI * self.diameter_nm * self.diameter_nm / 4.0;
        let r_p_ohm = self.ra_ohm_um2 / (area_nm2 * NM2_TO_UM2);
        let r_ap_ohm = r_p_ohm * (1.0 + self.tmr);
        let (r_channel_ohm, i_c_p_to_ap_ua, i_c_ap_to_p_ua) = match (self.variant, &self.she) {
            (Variant::Stt, None) => (
                0.0,
                self.jc_p_to_ap_a_per_cm2 * area_nm2 * NM2_TO_CM2 * A_TO_UA,
                self.jc_ap_to_p_a_per_cm2 * area_nm2 * NM2_TO_CM2 * A_TO_UA,
            ),
            (Variant::Stt, Some(_)) => {
                return Err(ArchError::Invalid {
                    origin: origin.to_owned(),
                    key: "she".into(),
                    value: "(table present)".into(),
                    allowed: "a [she] channel table is only allowed with variant = \"she\"".into(),
                });
            }
            (Variant::She, None) => {
                return Err(ArchError::Invalid {
                    origin: origin.to_owned(),
                    key: "she".into(),
                    value: "(missing)".into(),
                    allowed: "variant = \"she\" needs a [she] table (length_nm, width_nm, \
                              thickness_nm, resistivity_uohm_cm, jc_a_per_cm2)"
                        .into(),
                });
            }
            (Variant::She, Some(ch)) => {
                let dim = "between 0.1 and 10000 nm";
                range("she.length_nm", ch.length_nm, 0.1, 1e4, dim)?;
                range("she.width_nm", ch.width_nm, 0.1, 1e4, dim)?;
                range("she.thickness_nm", ch.thickness_nm, 0.1, 1e4, dim)?;
                range(
                    "she.resistivity_uohm_cm",
                    ch.resistivity_uohm_cm,
                    1.0,
                    1e5,
                    "between 1 and 1e5 µΩ·cm",
                )?;
                range(
                    "she.jc_a_per_cm2",
                    ch.jc_a_per_cm2,
                    1e3,
                    1e10,
                    "between 1e3 and 1e10 A/cm²",
                )?;
                // ρ [Ω·m] = ρ [µΩ·cm] · 1e-8; lengths nm → m.
                let rho_ohm_m = ch.resistivity_uohm_cm * 1e-8;
                let r_ch = rho_ohm_m * (ch.length_nm * 1e-9)
                    / (ch.width_nm * 1e-9 * ch.thickness_nm * 1e-9);
                let i_c = ch.jc_a_per_cm2 * ch.width_nm * ch.thickness_nm * NM2_TO_CM2 * A_TO_UA;
                // Spin-orbit switching of the free layer is symmetric in the channel current.
                (r_ch, i_c, i_c)
            }
        };
        let mtj_ua = |jc: f64| jc * area_nm2 * NM2_TO_CM2 * A_TO_UA;
        let derived = Derived {
            area_nm2,
            r_p_ohm,
            r_ap_ohm,
            r_access_ohm: self.r_access_on_ohm,
            r_channel_ohm,
            i_c_p_to_ap_ua,
            i_c_ap_to_p_ua,
            i_disturb_p_to_ap_ua: mtj_ua(self.jc_p_to_ap_a_per_cm2),
            i_disturb_ap_to_p_ua: mtj_ua(self.jc_ap_to_p_a_per_cm2),
        };
        Ok(Device {
            params: self,
            derived,
        })
    }
}

impl Device {
    /// Critical current, µA, for writing the given logic value (true = AP = 1 ⇒ P→AP).
    pub fn i_c_to_ua(&self, value: bool) -> f64 {
        if value {
            self.derived.i_c_p_to_ap_ua
        } else {
            self.derived.i_c_ap_to_p_ua
        }
    }

    /// Energy of one preset write of a single cell to `value`, pJ.
    ///
    /// The write driver forces I_w = overdrive · I_c through the write path for t_switch. For
    /// STT the path is R_T + R_MTJ and the estimate takes the cell in its higher-resistance
    /// state (R_AP), an upper bound; for SHE it is R_T + R_channel. E = I_w² · R · t.
    pub fn e_preset_pj(&self, value: bool) -> f64 {
        let d = &self.derived;
        let i_w_a = self.params.write_overdrive * self.i_c_to_ua(value) / A_TO_UA;
        let r_ohm = match self.params.variant {
            Variant::Stt => d.r_access_ohm + d.r_ap_ohm,
            Variant::She => d.r_access_ohm + d.r_channel_ohm,
        };
        // J → pJ (1e12), ns → s (1e-9).
        i_w_a * i_w_a * r_ohm * self.params.t_switch_ns * 1e3
    }
}

#[cfg(test)]
mod tests {
    use crate::presets;

    #[test]
    fn today_matches_literature_table_b() {
        // docs/references.md L-b: R_P = 3.15 kΩ, R_AP = 7.34 kΩ ([R] + [D]).
        let d = presets::device("stt-today").unwrap();
        assert!(
            (d.derived.r_p_ohm - 3144.0).abs() < 2.0,
            "{}",
            d.derived.r_p_ohm
        );
        assert!(
            (d.derived.r_ap_ohm - 7325.0).abs() < 3.0,
            "{}",
            d.derived.r_ap_ohm
        );
        // I_c = J_c · area ≈ 80 µA at 5e6 A/cm² ([D]).
        assert!((d.derived.i_c_p_to_ap_ua - 79.5).abs() < 0.1);
    }

    #[test]
    fn projected_matches_literature_table_b() {
        let d = presets::device("stt-projected").unwrap();
        assert!((d.derived.r_p_ohm - 12732.0).abs() < 2.0);
        assert!((d.derived.r_ap_ohm - 76394.0).abs() < 5.0);
    }

    #[test]
    fn negative_resistance_is_refused_with_key_and_value() {
        let mut p = presets::device("stt-today").unwrap().params;
        p.r_access_on_ohm = -5.0;
        let e = p.validate("my.toml").unwrap_err().to_string();
        assert!(
            e.contains("my.toml") && e.contains("r_access_on_ohm") && e.contains("-5"),
            "{e}"
        );
    }

    #[test]
    fn she_needs_channel() {
        let mut p = presets::device("she-projected").unwrap().params;
        p.she = None;
        assert!(p.validate("x").unwrap_err().to_string().contains("[she]"));
    }
}
