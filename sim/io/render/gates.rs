//! The gate table of a device, as text.

use cram_arch::{GateLibrary, Org, ir};
use std::fmt::Write as _;

/// The gate table as text: the derived device quantities first, so every window can be
/// checked by hand (V = I_c · R_tot); the IR-drop row limit uses `org`'s line resistance.
pub fn gate_table(lib: &GateLibrary, org: &Org) -> String {
    let mut s = String::new();
    device_lines(&mut s, lib);
    let per = &org.params.peripherals;
    let _ = writeln!(
        s,
        "  rows = most rows one driven line may hold before the far row drops below V_min (IR drop, r_wire_ohm_per_cell = {} Ω of array {}; it has {} per line segment)",
        per.r_wire_ohm_per_cell, org.params.name, per.lanes_per_line_segment
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<8} {:>1} {:>1} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9} {:>9}  E_pulse for z = 0..n input zeros",
        "gate",
        "n",
        "k",
        "preset",
        "V_min",
        "V_max",
        "V_dist",
        "bias",
        "margin",
        "p_err",
        "rows",
        "E_preset",
        "latency"
    );
    let _ = writeln!(
        s,
        "{:<8} {:>1} {:>1} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9} {:>9}  pJ",
        "", "", "", "", "V", "V", "V", "V", "", "", "", "pJ", "ns"
    );
    for g in &lib.gates {
        let energies: Vec<String> = g.e_pulse_pj.iter().map(|&e| crate::units::pj(e)).collect();
        let rows = ir::max_rows(g, per.r_wire_ohm_per_cell)
            .max_rows
            .map_or_else(|| "∞".to_owned(), |r| r.to_string());
        let _ = writeln!(
            s,
            "{:<8} {:>1} {:>1} {:>6} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>6.2}% {:>9.2e} {:>7} {:>9} {:>9.1}  {}",
            g.kind.mnemonic(),
            g.inputs,
            g.k,
            u8::from(g.preset),
            g.v_min_v,
            g.v_max_v,
            g.v_disturb_v,
            g.bias_v,
            g.noise_margin * 100.0,
            g.error_prob,
            rows,
            crate::units::pj(g.e_preset_pj),
            g.latency_ns,
            energies.join(" ")
        );
    }
    let unavailable: Vec<&str> = lib
        .gates
        .iter()
        .filter_map(|g| g.unavailable.as_deref())
        .collect();
    let _ = writeln!(s);
    if unavailable.is_empty() {
        let _ = writeln!(s, "all gates buildable");
    } else {
        for u in unavailable {
            let _ = writeln!(s, "UNAVAILABLE: {u}");
        }
    }
    s
}

/// The device's derived quantities and how the table's columns follow from them.
fn device_lines(s: &mut String, lib: &GateLibrary) {
    let (p, d) = (&lib.device.params, &lib.device.derived);
    let _ = writeln!(s, "device {} ({:?})", p.name, p.variant);
    let _ = writeln!(
        s,
        "  MTJ: diameter {} nm (area {:.1} nm²), RA {} Ω·µm², TMR {:.0} %, t_switch {} ns",
        p.diameter_nm,
        d.area_nm2,
        p.ra_ohm_um2,
        p.tmr * 100.0,
        p.t_switch_ns
    );
    let _ = writeln!(
        s,
        "  R_P = {:.1} Ω   R_AP = {:.1} Ω   R_T (access on) = {:.1} Ω{}",
        d.r_p_ohm,
        d.r_ap_ohm,
        d.r_access_ohm,
        if d.r_channel_ohm > 0.0 {
            format!("   R_channel = {:.1} Ω", d.r_channel_ohm)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "  I_c P→AP (0→1) = {:.3} µA   I_c AP→P (1→0) = {:.3} µA   bias limit {} V   min noise margin {:.2} %",
        d.i_c_p_to_ap_ua,
        d.i_c_ap_to_p_ua,
        p.v_bias_max_v,
        p.min_noise_margin * 100.0
    );
    let r_out = match p.variant {
        cram_arch::Variant::Stt => "R_out(preset: R_P or R_AP)",
        cram_arch::Variant::She => "R_channel",
    };
    let _ = writeln!(
        s,
        "  R_tot(z) = R_T + {r_out} + 1/(z/(R_T+R_P) + (n−z)/(R_T+R_AP)); V_min = I_c·R_tot(k), V_max = I_c·R_tot(k−1)"
    );
    if p.variant == cram_arch::Variant::She {
        let _ = writeln!(
            s,
            "  input MTJ (STT) critical currents, the input-disturb limits: P→AP {:.3} µA, AP→P {:.3} µA",
            d.i_disturb_p_to_ap_ua, d.i_disturb_ap_to_p_ua
        );
    }
    let _ = writeln!(
        s,
        "  V_dist = lowest bias that switches an input cell; bias = midpoint of [V_min, min(V_max, V_dist, bias limit)); margin on that window"
    );
    let _ = writeln!(
        s,
        "  p_err = wrong-output probability of the most vulnerable input pattern for an I_c spread of σ = {:.1} % (ic_sigma_rel)",
        p.ic_sigma_rel * 100.0
    );
}
