//! The CMOS technology around the cells, by process node: supply voltage, sense amplifier,
//! decoders, line and wire capacitance, the instruction store's read (docs/model.md §1.1.1),
//! the periphery's leakage (§1.1.2) and its area (§1.1.3).
//!
//! Values are tabulated at 22, 32, 45 and 65 nm, the nodes the public NVSim and CACTI 7
//! models carry, and interpolated linearly in the node between them; a node outside
//! 22–65 nm is refused, since neither model is calibrated there. Every table names its
//! source and tag (docs/model.md §0.1): [C] read in the public code, [D] derived from it.

/// The tabulated nodes, nm.
pub const NODES_NM: [f64; 4] = [22.0, 32.0, 45.0, 65.0];

/// Supply voltage of high-performance logic, V: CACTI 7 `tech_params/{22,32,45,65}nm.dat`,
/// the HP device's Vdd [C] (docs/references.md [CACTI7]).
const VDD_V: [f64; 4] = [0.8, 0.9, 1.0, 1.1];

/// A current-mode sense amplifier, energy per sensing, pJ: NVSim `SenseAmp.cpp`
/// `CalculatePower`, its HSPICE table per node [C] ([NVSim]). The voltage latch NVSim adds
/// (C·Vdd², 0.4–2.3 fJ) is below the table's precision and left out. The table rises as the
/// node shrinks, and NVSim marks its 22 nm entry uncalibrated.
const SENSE_PJ: [f64; 4] = [0.150, 0.1256, 0.1026, 0.090];

/// Address decoding for one access, without the word line it drives, pJ: the predecoder
/// energy per mat NVSim reports for its own `sample_NVM_macro.cfg` (128 KB STT-RAM, 512 × 512
/// subarrays, HP devices) at each node [D] ([NVSim]). The line CRAM then drives is priced
/// as a line (`c_wll_ff_per_cell`, `c_bsl_ff_per_cell`).
const DECODER_PJ: [f64; 4] = [0.114, 0.176, 0.302, 0.549];

/// Capacitance of a local wire (word and bit lines), fF/µm: NVSim `Wire.cpp` local-aggressive
/// parameters through `formula.cpp`'s wire capacitance [D] ([NVSim]).
const LOCAL_WIRE_FF_PER_UM: [f64; 4] = [0.280, 0.288, 0.278, 0.294];

/// Capacitance of a global wire (buses), fF/µm: CACTI 7 aggressive global wire,
/// `tech_params/*nm.dat` through `basic_circuit.cc` [D] ([CACTI7]).
const GLOBAL_WIRE_FF_PER_UM: [f64; 4] = [0.248, 0.269, 0.291, 0.308];

/// Gate capacitance of a cell's access transistor, fF, at 22 nm: NVSim's word-line load per
/// cell, (1.2·C_ideal + 3·C_fringe)·W with W = 8 F (`SubArray.cpp`, `formula.cpp`) [D]
/// ([NVSim]); other nodes scale it with the feature size.
const ACCESS_GATE_FF_AT_22NM: f64 = 0.165;

/// Leakage of one current-mode sense amplifier, nW: NVSim's leakage of the 1024 sense
/// amplifiers of the subarray below ÷ 1024 [D] ([NVSim]). Nearly all of it is the per-node
/// table of `SenseAmp.cpp` `CalculatePower` [C], the same for every device flavour; NVSim
/// marks the 22 nm entry uncalibrated, and its 45 nm entry falls out of the trend.
const SENSE_LEAKAGE_NW: [f64; 4] = [150.007, 125.429, 4.430, 25.767];

/// Leakage of the row periphery per row (row decoder with its word-line drivers,
/// predecoders, precharge), nW: NVSim's leakage of one 1024 × 1024 STT-RAM subarray without
/// column multiplexing, with low-standby-power (LSTP) devices, ÷ 1024 rows [D] ([NVSim]).
/// LSTP, not high-performance devices: a memory's periphery idles most of the time, and
/// NVSim's HP devices leak about ten thousand times more (7.5 mW for that row decoder at
/// 22 nm), which no embedded memory accepts.
const ROW_LEAKAGE_NW: [f64; 4] = [0.7205, 2.4358, 1.7021, 6.3559];

/// Area of one current-mode sense amplifier, F²: NVSim `SenseAmp.cpp` `CalculateArea`, a
/// 50,000 F² current-to-voltage converter (`constant.h` `IV_CONVERTER_AREA`, which NVSim
/// itself marks a technology-dependent placeholder) and a 466 F² latch laid out from CACTI's
/// transistor sizes [C] ([NVSim]); NVSim's runs at 22–65 nm give the same count in F² [D].
pub const SENSE_AMP_AREA_F2: f64 = 50_466.0;

/// Area of a row's decoder stage with its word-line driver, F² per row: NVSim's row decoder
/// of a 1024 × 1024 STT-RAM subarray ÷ 1024 rows, the same in F² at 22–65 nm [D] ([NVSim]).
pub const ROW_DECODER_AREA_F2: f64 = 3_608.0;

/// Area of a subarray's row predecoders, F²: NVSim's two predecoder blocks of that subarray,
/// the same in F² at 22–65 nm [D] ([NVSim]).
pub const PREDECODER_AREA_F2: f64 = 284_417.0;

/// Area of one line driver (one column of one line segment), F²: NVSim's bit-line precharger
/// per column [D] ([NVSim]). That a segment's driver is the size of a precharger is an
/// assumption of this project: a driver sized for the segment's gate currents may be larger.
pub const LINE_DRIVER_AREA_F2: f64 = 792.0;

/// Area of a 6-transistor SRAM cell, F²: NVSim's `SRAM.cell` [C] ([NVSim]): the controller's
/// instruction store.
pub const SRAM_CELL_AREA_F2: f64 = 146.0;

/// Bits of the controller's instruction store (8 KB, the SRAM whose read
/// [`Tech::controller_pj`] prices); an assumption of this project.
pub const INSTRUCTION_STORE_BITS: f64 = 8.0 * 1024.0 * 8.0;

/// Pitch of a global (bus) wire, in F: NVSim `Wire.cpp`, global-aggressive wires [C]
/// ([NVSim]).
pub const GLOBAL_WIRE_PITCH_F: f64 = 8.0;

/// Energy of a 64-bit read of an 8 KB SRAM at 45 nm and 0.9 V, pJ [V] (Horowitz ISSCC
/// 2014, docs/references.md `A1.1`): the controller's instruction store.
const SRAM_8KB_READ_PJ_AT_45NM: f64 = 10.0;

/// Energy of a 32-bit floating-point multiply (3.7 pJ) and add (0.9 pJ) at 45 nm and 0.9 V
/// [V] (Horowitz ISSCC 2014, docs/references.md `A1.1`): one multiply-add of the periphery's
/// function unit.
const FP32_MAC_PJ_AT_45NM: f64 = 3.7 + 0.9;

/// Bits of one controller command: a gate and up to six column addresses of 10 bits (an
/// assumption of this project).
pub const COMMAND_BITS: f64 = 64.0;

/// Probability that a wire carrying random data rises in a cycle (it draws C·V² from the
/// supply only then): 1/4 [D].
pub const WIRE_ACTIVITY: f64 = 0.25;

/// Linear interpolation of a node table; `None` outside 22–65 nm.
fn at(table: &[f64; 4], node_nm: f64) -> Option<f64> {
    if !(NODES_NM[0]..=NODES_NM[3]).contains(&node_nm) {
        return None;
    }
    if let Some(j) = NODES_NM.iter().position(|&n| n == node_nm) {
        return Some(table[j]);
    }
    let i = NODES_NM
        .windows(2)
        .position(|w| node_nm <= w[1])
        .unwrap_or(2);
    let (x0, x1) = (NODES_NM[i], NODES_NM[i + 1]);
    let t = (node_nm - x0) / (x1 - x0);
    Some(table[i] + t * (table[i + 1] - table[i]))
}

/// A process node inside the tabulated range, with its derived periphery values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tech {
    /// Feature size, nm (22–65).
    pub node_nm: f64,
}

impl Tech {
    /// The node, or `None` outside 22–65 nm.
    pub fn new(node_nm: f64) -> Option<Tech> {
        at(&VDD_V, node_nm).map(|_| Tech { node_nm })
    }

    fn get(&self, table: &[f64; 4]) -> f64 {
        at(table, self.node_nm).expect("checked in Tech::new")
    }

    /// Supply voltage, V.
    pub fn vdd_v(&self) -> f64 {
        self.get(&VDD_V)
    }

    /// Sensing one bit, pJ.
    pub fn sense_pj(&self) -> f64 {
        self.get(&SENSE_PJ)
    }

    /// One decode, pJ.
    pub fn decoder_pj(&self) -> f64 {
        self.get(&DECODER_PJ)
    }

    /// A word line's capacitance per cell of pitch `pitch_um`: its wire and the access
    /// transistor's gate, fF [D].
    pub fn c_wordline_ff_per_cell(&self, pitch_um: f64) -> f64 {
        self.get(&LOCAL_WIRE_FF_PER_UM) * pitch_um + self.access_gate_ff()
    }

    /// A bit-select line's capacitance per cell of pitch `pitch_um`: its wire and the access
    /// transistor's drain junction, taken equal to the gate (an assumption), fF.
    pub fn c_bitline_ff_per_cell(&self, pitch_um: f64) -> f64 {
        self.c_wordline_ff_per_cell(pitch_um)
    }

    /// The access transistor's gate, fF (scaled with the feature size from 22 nm).
    fn access_gate_ff(&self) -> f64 {
        ACCESS_GATE_FF_AT_22NM * self.node_nm / 22.0
    }

    /// An area of `f2` squared feature sizes, µm².
    pub fn area_um2(&self, f2: f64) -> f64 {
        let f_um = self.node_nm * 1e-3;
        f2 * f_um * f_um
    }

    /// Pitch of a global wire, µm.
    pub fn global_wire_pitch_um(&self) -> f64 {
        GLOBAL_WIRE_PITCH_F * self.node_nm * 1e-3
    }

    /// Leakage of one sense amplifier, nW.
    pub fn sense_leakage_nw(&self) -> f64 {
        self.get(&SENSE_LEAKAGE_NW)
    }

    /// Leakage of the row periphery per row, nW (LSTP devices).
    pub fn row_leakage_nw(&self) -> f64 {
        self.get(&ROW_LEAKAGE_NW)
    }

    /// Moving one bit of random data `mm` millimetres over a global wire, pJ:
    /// activity × C·Vdd² [D]. Repeaters are not counted (a lower bound).
    pub fn wire_pj_per_bit(&self, mm: f64) -> f64 {
        let v = self.vdd_v();
        WIRE_ACTIVITY * self.get(&GLOBAL_WIRE_FF_PER_UM) * 1e3 * mm * v * v * 1e-3
    }

    /// One controller command, pJ [D]: its word read from an 8 KB instruction SRAM (the 45 nm
    /// read scaled by C ∝ node and V²) and its [`COMMAND_BITS`] broadcast once across the chip
    /// (`chip_side_mm` of global wire; the tree to every subarray is longer, so this is a
    /// lower bound).
    pub fn controller_pj(&self, chip_side_mm: f64) -> f64 {
        scaled_from_45nm(self, SRAM_8KB_READ_PJ_AT_45NM)
            + COMMAND_BITS * self.wire_pj_per_bit(chip_side_mm)
    }

    /// One 32-bit floating-point multiply-add of the periphery's function unit, pJ [D]:
    /// Horowitz's 45 nm energies scaled as the controller's SRAM read is (∝ node × V²).
    pub fn fp32_mac_pj(&self) -> f64 {
        scaled_from_45nm(self, FP32_MAC_PJ_AT_45NM)
    }
}

/// `pj_at_45nm` (a 45 nm, 0.9 V energy) at this node and supply: dynamic energy ∝ C·V²,
/// with the switched capacitance ∝ the feature size [D].
fn scaled_from_45nm(t: &Tech, pj_at_45nm: f64) -> f64 {
    let v = t.vdd_v();
    pj_at_45nm * t.node_nm / 45.0 * (v * v) / (0.9 * 0.9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_met_at_their_nodes_and_interpolated_between() {
        for (i, &n) in NODES_NM.iter().enumerate() {
            let t = Tech::new(n).unwrap();
            assert_eq!(t.vdd_v(), VDD_V[i]);
            assert_eq!(t.sense_pj(), SENSE_PJ[i]);
            assert_eq!(t.decoder_pj(), DECODER_PJ[i]);
            assert_eq!(t.sense_leakage_nw(), SENSE_LEAKAGE_NW[i]);
            assert_eq!(t.row_leakage_nw(), ROW_LEAKAGE_NW[i]);
        }
        let mid = Tech::new(27.0).unwrap();
        assert!((mid.vdd_v() - 0.85).abs() < 1e-12);
        assert!(Tech::new(21.9).is_none() && Tech::new(65.1).is_none());
        assert!(Tech::new(f64::NAN).is_none());
    }

    /// Derived numbers by hand: 22 nm, a 0.1 µm pitch, a 1.64 mm wire.
    #[test]
    fn derived_values_at_22_nm() {
        let t = Tech::new(22.0).unwrap();
        // 0.280 fF/µm × 0.1 µm + 0.165 fF.
        assert!((t.c_wordline_ff_per_cell(0.1) - 0.193).abs() < 1e-12);
        // ¼ × 0.248 fF/µm × 1000 µm × 0.64 V² = 39.68 fJ per bit per mm.
        assert!((t.wire_pj_per_bit(1.0) - 0.03968).abs() < 1e-12);
        // 10 pJ × 22/45 × 0.64/0.81 + 64 × 0.03968 × 1.64.
        let want = 10.0 * 22.0 / 45.0 * 0.64 / 0.81 + 64.0 * 0.03968 * 1.64;
        assert!((t.controller_pj(1.64) - want).abs() < 1e-9);
        // A sense amplifier: 50,466 × 0.022² µm² = 24.43 µm²; a bus wire every 0.176 µm.
        assert!((t.area_um2(SENSE_AMP_AREA_F2) - 24.425_544).abs() < 1e-9);
        assert!((t.global_wire_pitch_um() - 0.176).abs() < 1e-12);
    }
}
