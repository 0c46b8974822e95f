//! Chip organisation: subarray geometry, banks, the controller clock and issue width, and the
//! links that move rows (bank bus, global bus, host link). docs/model.md §1.1, §1.3–1.4.
//!
//! Line capacitances and peripheral energies feed the energy table (sim/energy.rs).

use serde::{Deserialize, Serialize};

use crate::error::{ArchError, Checker};

/// A bus that moves rows between subarrays.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusParams {
    /// Bits moved per controller cycle.
    pub width_bits: u32,
    /// Cycles from the start of a transfer until its first bits arrive.
    pub latency_cycles: u32,
    /// Energy per bit moved, pJ; absent, derived from the node and the bus's wire length
    /// ([`Periphery`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_pj_per_bit: Option<f64>,
}

/// An off-chip link: the one between the chip and its host, or between chips.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLinkParams {
    /// Sustained bandwidth, GB/s (10^9 bytes per second).
    pub bandwidth_gb_s: f64,
    /// Cycles from the start of a transfer until its first bits arrive.
    pub latency_cycles: u32,
    /// Energy per bit moved, pJ.
    pub e_pj_per_bit: f64,
}

/// The function unit in the chip's periphery, beside the controller: it computes what the
/// array does not (local response normalization), reading its operands out of the cells over
/// the buses and writing the results back (docs/model.md §2.5.1). Keys left out of an array
/// file (or the whole section) take the defaults ([`FunctionUnitParams::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionUnitParams {
    /// 32-bit floating-point multiply-adds it completes per controller cycle.
    pub ops_per_cycle: u32,
    /// Cycles from its first operand to its first result (the pipeline's depth).
    pub latency_cycles: u32,
    /// Energy per multiply-add, pJ; absent, derived from the node ([`Periphery`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_pj_per_op: Option<f64>,
}

impl Default for FunctionUnitParams {
    /// 16 multiply-adds per cycle and an 8-cycle pipeline: a small vector unit, an assumption
    /// of this project [A] (no CRAM paper describes one).
    fn default() -> Self {
        FunctionUnitParams {
            ops_per_cycle: 16,
            latency_cycles: 8,
            e_pj_per_op: None,
        }
    }
}

/// Line capacitances and peripheral energies of a subarray. Each energy or capacitance left
/// out is derived from the array's `node_nm` ([`Periphery`], docs/model.md §1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeripheralParams {
    /// Capacitance of a bit-select line per cell it passes (the line spans all lanes), fF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_bsl_ff_per_cell: Option<f64>,
    /// Capacitance of a logic word line per cell it passes (the line spans all columns), fF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_wll_ff_per_cell: Option<f64>,
    /// Swing of a logic word line when its lane is selected, V.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v_wordline_v: Option<f64>,
    /// Row/column decode for one command in one subarray, pJ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_decoder_pj: Option<f64>,
    /// Sensing one bit in a memory-mode read (sense amplifier and read current), pJ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_sense_pj_per_bit: Option<f64>,
    /// Controller energy per command issued (its instruction read and broadcast), pJ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_controller_pj_per_command: Option<f64>,
    /// Resistance of a bit-select line per cell pitch it passes, Ω (sets the IR drop, see
    /// `ir.rs`).
    pub r_wire_ohm_per_cell: f64,
    /// Rows on one driven segment of a bit-select line: each segment has its own line drivers,
    /// so the IR drop accrues over at most this many rows (fewer if the subarray is smaller).
    pub lanes_per_line_segment: u32,
    /// Leakage of one column's sense amplifier, nW (docs/model.md §1.1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leakage_nw_per_sense_amp: Option<f64>,
    /// Leakage of the row periphery (decoders, word-line drivers, precharge) per row, nW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leakage_nw_per_row: Option<f64>,
    /// Whether a subarray's periphery is power-gated while the subarray holds no run: it then
    /// leaks only over the cycles it computes (the cells keep their state unpowered).
    #[serde(default)]
    pub power_gating: bool,
}

/// The keys of an array file that may be left out and derived from its `node_nm`.
pub const DERIVED_KEYS: [&str; 11] = [
    "peripherals.c_bsl_ff_per_cell",
    "peripherals.c_wll_ff_per_cell",
    "peripherals.v_wordline_v",
    "peripherals.e_decoder_pj",
    "peripherals.e_sense_pj_per_bit",
    "peripherals.e_controller_pj_per_command",
    "bank_bus.e_pj_per_bit",
    "global_bus.e_pj_per_bit",
    "peripherals.leakage_nw_per_sense_amp",
    "peripherals.leakage_nw_per_row",
    "function_unit.e_pj_per_op",
];

/// The periphery's prices and line capacitances as used: each given in the array file, or
/// derived from its `node_nm` ([`crate::tech::Tech`]) and the area model (docs/model.md
/// §1.1.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Periphery {
    /// Bit-select line per cell, fF.
    pub c_bsl_ff_per_cell: f64,
    /// Logic word line per cell, fF.
    pub c_wll_ff_per_cell: f64,
    /// Word-line swing, V.
    pub v_wordline_v: f64,
    /// One decode, pJ.
    pub e_decoder_pj: f64,
    /// Sensing one bit, pJ.
    pub e_sense_pj_per_bit: f64,
    /// One controller command, pJ.
    pub e_controller_pj_per_command: f64,
    /// One bit over the bank bus, pJ (wire across a bank).
    pub e_bank_bus_pj_per_bit: f64,
    /// One bit over the global bus, pJ (wire across the chip).
    pub e_global_bus_pj_per_bit: f64,
    /// Leakage of a column's sense amplifier, nW.
    pub leakage_nw_per_sense_amp: f64,
    /// Leakage of the row periphery per row, nW.
    pub leakage_nw_per_row: f64,
    /// One multiply-add of the function unit, pJ.
    pub e_function_unit_pj_per_op: f64,
    /// Which of [`DERIVED_KEYS`] were derived rather than given.
    pub derived: Vec<&'static str>,
}

/// Organisation of one CRAM chip, as written in a `configs/arrays/*.toml` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgParams {
    /// Preset or user name.
    pub name: String,
    /// Rows per subarray: the SIMD lanes one logic step runs in.
    pub lanes_per_subarray: u32,
    /// Columns per subarray: bit positions per lane.
    pub cols_per_subarray: u32,
    /// Subarrays sharing one bank bus.
    pub subarrays_per_bank: u32,
    /// Banks per chip (they share the global bus).
    pub banks: u32,
    /// Controller clock, GHz. Every latency is rounded up to whole cycles of it.
    pub clock_ghz: f64,
    /// Commands the controller can issue per cycle (each broadcast counts once).
    pub issue_slots_per_cycle: u32,
    /// Line-driver set-up added to every array step, ns.
    pub t_driver_setup_ns: f64,
    /// Bus between the subarrays of one bank.
    pub bank_bus: BusParams,
    /// Bus between banks.
    pub global_bus: BusParams,
    /// Host link.
    pub host_link: HostLinkParams,
    /// The link between chips, when a run spans several (`cram.chips`): each chip has one
    /// port of it. Only needed then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_link: Option<HostLinkParams>,
    /// Lines and peripherals.
    pub peripherals: PeripheralParams,
    /// The periphery's function unit.
    #[serde(default)]
    pub function_unit: FunctionUnitParams,
    /// Area of one cell (MTJ and its two access transistors), µm².
    #[serde(default = "default_cell_area")]
    pub cell_area_um2: f64,
    /// Fraction of the chip area that is cells. Left out, the area is built from its
    /// components by `node_nm` (docs/model.md §1.1.3); given, it overrides them, and the
    /// area beside the cells is not broken down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_efficiency: Option<f64>,
    /// CMOS process node of the periphery, nm (22–65): the energies and capacitances the
    /// file leaves out are derived from it (docs/model.md §1.1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_nm: Option<f64>,
}

fn default_cell_area() -> f64 {
    0.01
}

/// One chip's area by component, mm² (docs/model.md §1.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Area {
    /// The cells: every subarray's rows × columns × `cell_area_um2`.
    pub cells_mm2: f64,
    /// The line drivers: one per column of every line segment.
    pub line_drivers_mm2: f64,
    /// The sense amplifiers: one per column.
    pub sense_mm2: f64,
    /// The row decoders with their word-line drivers, and the predecoders.
    pub decoders_mm2: f64,
    /// The controller's instruction store.
    pub controller_mm2: f64,
    /// The bank and global buses' wires.
    pub buses_mm2: f64,
    /// Area beside the cells not broken down (only when `array_efficiency` is given).
    pub unattributed_mm2: f64,
}

impl Area {
    /// The components by name, mm².
    pub fn components(&self) -> [(&'static str, f64); 7] {
        [
            ("cells", self.cells_mm2),
            ("line drivers", self.line_drivers_mm2),
            ("sense amplifiers", self.sense_mm2),
            ("decoders", self.decoders_mm2),
            ("controller", self.controller_mm2),
            ("buses", self.buses_mm2),
            ("unattributed", self.unattributed_mm2),
        ]
    }

    /// The chip's area, mm².
    pub fn total_mm2(&self) -> f64 {
        self.components().iter().map(|c| c.1).sum()
    }
}

impl OrgParams {
    /// Cells on the chip.
    fn cells(&self) -> f64 {
        f64::from(self.lanes_per_subarray)
            * f64::from(self.cols_per_subarray)
            * f64::from(self.subarrays_per_bank)
            * f64::from(self.banks)
    }

    /// The chip's area by component (docs/model.md §1.1.3): the cells, then either
    /// `array_efficiency` (the rest unattributed) or the periphery built from the node's
    /// component areas (`tech`); `None` when neither is given. The buses' wires run across a
    /// bank and across the chip, whose sides are taken from the area without them.
    fn area(&self, tech: Option<&crate::tech::Tech>) -> Option<Area> {
        use crate::tech;
        let cells_mm2 = self.cells() * self.cell_area_um2 * 1e-6;
        let zero = Area {
            cells_mm2,
            line_drivers_mm2: 0.0,
            sense_mm2: 0.0,
            decoders_mm2: 0.0,
            controller_mm2: 0.0,
            buses_mm2: 0.0,
            unattributed_mm2: 0.0,
        };
        if let Some(e) = self.array_efficiency {
            return Some(Area {
                unattributed_mm2: cells_mm2 / e - cells_mm2,
                ..zero
            });
        }
        let t = tech?;
        let subarrays = f64::from(self.subarrays_per_bank) * f64::from(self.banks);
        let (rows, cols) = (
            f64::from(self.lanes_per_subarray),
            f64::from(self.cols_per_subarray),
        );
        let segments = f64::from(
            self.lanes_per_subarray
                .div_ceil(self.peripherals.lanes_per_line_segment.max(1)),
        );
        let mm2 = |f2: f64| t.area_um2(f2) * 1e-6;
        let mut a = Area {
            line_drivers_mm2: subarrays * cols * segments * mm2(tech::LINE_DRIVER_AREA_F2),
            sense_mm2: subarrays * cols * mm2(tech::SENSE_AMP_AREA_F2),
            decoders_mm2: subarrays
                * (rows * mm2(tech::ROW_DECODER_AREA_F2) + mm2(tech::PREDECODER_AREA_F2)),
            controller_mm2: tech::INSTRUCTION_STORE_BITS * mm2(tech::SRAM_CELL_AREA_F2),
            ..zero
        };
        let side_mm = a.total_mm2().sqrt();
        let bank_side_mm = side_mm / f64::from(self.banks).sqrt();
        let wires_mm = f64::from(self.banks) * f64::from(self.bank_bus.width_bits) * bank_side_mm
            + f64::from(self.global_bus.width_bits) * side_mm;
        a.buses_mm2 = wires_mm * t.global_wire_pitch_um() * 1e-3;
        Some(a)
    }

    /// The periphery as used: every value the file gives, the others derived from
    /// `node_nm` (refused, naming the first missing key, when the file has no node).
    fn periphery(&self, check: &Checker<'_>) -> Result<(Periphery, Area), ArchError> {
        let tech = match self.node_nm {
            None => None,
            Some(n) => Some(crate::tech::Tech::new(n).ok_or_else(|| {
                check.bad(
                    "node_nm",
                    n,
                    "must be between 22 and 65 nm (the nodes NVSim and CACTI tabulate)",
                )
            })?),
        };
        let per = &self.peripherals;
        let pitch_um = self.cell_area_um2.sqrt();
        let mut derived = Vec::new();
        let mut pick =
            |key: &'static str, given: Option<f64>, f: &dyn Fn(&crate::tech::Tech) -> f64| match (
                given, tech,
            ) {
                (Some(v), _) => Ok(v),
                (None, Some(t)) => {
                    derived.push(key);
                    Ok(f(&t))
                }
                (None, None) => Err(check.bad(
                    key,
                    "(missing)",
                    "a value, or node_nm (22–65) to derive it from",
                )),
            };
        let area = self.area(tech.as_ref()).ok_or_else(|| {
            check.bad(
                "array_efficiency",
                "(missing)",
                "a fraction in (0, 1], or node_nm (22–65) to build the area from",
            )
        })?;
        let chip_mm = area.total_mm2().sqrt();
        let bank_mm = (area.total_mm2() / f64::from(self.banks.max(1))).sqrt();
        let periphery = Periphery {
            c_bsl_ff_per_cell: pick(DERIVED_KEYS[0], per.c_bsl_ff_per_cell, &|t| {
                t.c_bitline_ff_per_cell(pitch_um)
            })?,
            c_wll_ff_per_cell: pick(DERIVED_KEYS[1], per.c_wll_ff_per_cell, &|t| {
                t.c_wordline_ff_per_cell(pitch_um)
            })?,
            v_wordline_v: pick(DERIVED_KEYS[2], per.v_wordline_v, &|t| t.vdd_v())?,
            e_decoder_pj: pick(DERIVED_KEYS[3], per.e_decoder_pj, &|t| t.decoder_pj())?,
            e_sense_pj_per_bit: pick(DERIVED_KEYS[4], per.e_sense_pj_per_bit, &|t| t.sense_pj())?,
            e_controller_pj_per_command: pick(
                DERIVED_KEYS[5],
                per.e_controller_pj_per_command,
                &|t| t.controller_pj(chip_mm),
            )?,
            e_bank_bus_pj_per_bit: pick(DERIVED_KEYS[6], self.bank_bus.e_pj_per_bit, &|t| {
                t.wire_pj_per_bit(bank_mm)
            })?,
            e_global_bus_pj_per_bit: pick(DERIVED_KEYS[7], self.global_bus.e_pj_per_bit, &|t| {
                t.wire_pj_per_bit(chip_mm)
            })?,
            leakage_nw_per_sense_amp: pick(DERIVED_KEYS[8], per.leakage_nw_per_sense_amp, &|t| {
                t.sense_leakage_nw()
            })?,
            leakage_nw_per_row: pick(DERIVED_KEYS[9], per.leakage_nw_per_row, &|t| {
                t.row_leakage_nw()
            })?,
            e_function_unit_pj_per_op: pick(
                DERIVED_KEYS[10],
                self.function_unit.e_pj_per_op,
                &|t| t.fp32_mac_pj(),
            )?,
            derived,
        };
        Ok((periphery, area))
    }

    /// Checks every field's range; `origin` (file or preset) is quoted in errors.
    pub fn validate(self, origin: &str) -> Result<Org, ArchError> {
        let check = Checker { origin };
        let count = |key: &str, v: u32, lo: u32, hi: u32| check.count(key, v, lo, hi);
        let real =
            |key: &str, v: f64, lo: f64, hi: f64, unit: &str| check.real(key, v, lo, hi, unit);
        count("lanes_per_subarray", self.lanes_per_subarray, 1, 1 << 20)?;
        count("cols_per_subarray", self.cols_per_subarray, 1, 1 << 16)?;
        count("subarrays_per_bank", self.subarrays_per_bank, 1, 1 << 16)?;
        count("banks", self.banks, 1, 1 << 12)?;
        real("clock_ghz", self.clock_ghz, 1e-3, 100.0, "GHz")?;
        count("issue_slots_per_cycle", self.issue_slots_per_cycle, 1, 64)?;
        real("t_driver_setup_ns", self.t_driver_setup_ns, 0.0, 1e6, "ns")?;
        real("cell_area_um2", self.cell_area_um2, 1e-6, 1e3, "µm²")?;
        if let Some(e) = self.array_efficiency {
            real("array_efficiency", e, 1e-3, 1.0, "")?;
        }
        for (name, bus) in [("bank_bus", self.bank_bus), ("global_bus", self.global_bus)] {
            count(&format!("{name}.width_bits"), bus.width_bits, 1, 1 << 20)?;
            count(
                &format!("{name}.latency_cycles"),
                bus.latency_cycles,
                0,
                1 << 20,
            )?;
        }
        real(
            "host_link.bandwidth_gb_s",
            self.host_link.bandwidth_gb_s,
            1e-3,
            1e5,
            "GB/s",
        )?;
        real(
            "host_link.e_pj_per_bit",
            self.host_link.e_pj_per_bit,
            0.0,
            1e4,
            "pJ",
        )?;
        let per = &self.peripherals;
        let (periphery, area) = self.periphery(&check)?;
        for (key, v, hi, unit) in [
            (DERIVED_KEYS[0], periphery.c_bsl_ff_per_cell, 1e3, "fF"),
            (DERIVED_KEYS[1], periphery.c_wll_ff_per_cell, 1e3, "fF"),
            (DERIVED_KEYS[2], periphery.v_wordline_v, 10.0, "V"),
            (DERIVED_KEYS[3], periphery.e_decoder_pj, 1e6, "pJ"),
            (DERIVED_KEYS[4], periphery.e_sense_pj_per_bit, 1e4, "pJ"),
            (
                DERIVED_KEYS[5],
                periphery.e_controller_pj_per_command,
                1e6,
                "pJ",
            ),
            (DERIVED_KEYS[6], periphery.e_bank_bus_pj_per_bit, 1e4, "pJ"),
            (
                DERIVED_KEYS[7],
                periphery.e_global_bus_pj_per_bit,
                1e4,
                "pJ",
            ),
            (
                DERIVED_KEYS[8],
                periphery.leakage_nw_per_sense_amp,
                1e6,
                "nW",
            ),
            (DERIVED_KEYS[9], periphery.leakage_nw_per_row, 1e6, "nW"),
            (
                DERIVED_KEYS[10],
                periphery.e_function_unit_pj_per_op,
                1e6,
                "pJ",
            ),
        ] {
            real(key, v, 0.0, hi, unit)?;
        }
        real(
            "peripherals.r_wire_ohm_per_cell",
            per.r_wire_ohm_per_cell,
            0.0,
            1e4,
            "Ω",
        )?;
        count(
            "peripherals.lanes_per_line_segment",
            per.lanes_per_line_segment,
            1,
            1 << 20,
        )?;
        count(
            "function_unit.ops_per_cycle",
            self.function_unit.ops_per_cycle,
            1,
            1 << 20,
        )?;
        count(
            "function_unit.latency_cycles",
            self.function_unit.latency_cycles,
            0,
            1 << 20,
        )?;
        count(
            "host_link.latency_cycles",
            self.host_link.latency_cycles,
            0,
            1 << 20,
        )?;
        if let Some(link) = &self.chip_link {
            real(
                "chip_link.bandwidth_gb_s",
                link.bandwidth_gb_s,
                1e-3,
                1e5,
                "GB/s",
            )?;
            real("chip_link.e_pj_per_bit", link.e_pj_per_bit, 0.0, 1e4, "pJ")?;
            count("chip_link.latency_cycles", link.latency_cycles, 0, 1 << 20)?;
        }
        Ok(Org {
            params: self,
            periphery,
            area,
        })
    }
}

/// Validated organisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Org {
    /// The validated parameters.
    pub params: OrgParams,
    /// The periphery's prices and capacitances as used.
    pub periphery: Periphery,
    /// One chip's area by component.
    pub area: Area,
}

impl Org {
    /// Whole controller cycles covering `t_ns` (at least 1 for a positive time).
    pub fn cycles(&self, t_ns: f64) -> u64 {
        // A tiny tolerance keeps exact products such as 2.0 ns × 1 GHz at 2 cycles.
        (t_ns * self.params.clock_ghz - 1e-9).ceil().max(0.0) as u64
    }

    /// One chip's area, mm².
    pub fn chip_area_mm2(&self) -> f64 {
        self.area.total_mm2()
    }

    /// Subarrays on the chip.
    pub fn subarrays(&self) -> u64 {
        u64::from(self.params.subarrays_per_bank) * u64::from(self.params.banks)
    }

    /// Lanes on the chip: subarrays × lanes per subarray.
    pub fn lanes(&self) -> u64 {
        self.subarrays() * u64::from(self.params.lanes_per_subarray)
    }

    /// Leakage of one chip's periphery, W (docs/model.md §1.1.2): per subarray a sense
    /// amplifier per column and the row periphery per row. The cells hold their state
    /// without power and leak nothing; the controller and bus drivers are not counted.
    pub fn leakage_w(&self) -> f64 {
        let p = &self.params;
        let per_subarray_nw = f64::from(p.cols_per_subarray)
            * self.periphery.leakage_nw_per_sense_amp
            + f64::from(p.lanes_per_subarray) * self.periphery.leakage_nw_per_row;
        per_subarray_nw * self.subarrays() as f64 * 1e-9
    }

    /// Leakage energy of a run on `chips` chips that lasts `cycles` and keeps subarrays busy
    /// for `subarray_cycles` (summed over them), pJ: with `power_gating`, each subarray's
    /// share of the periphery leaks only while it holds a run; without, every chip leaks for
    /// the whole run (docs/model.md §1.1.2).
    pub fn leakage_pj(&self, chips: u64, cycles: u64, subarray_cycles: u64) -> f64 {
        let cycle_s = 1e-9 / self.params.clock_ghz;
        let w = self.leakage_w();
        let s = if self.params.peripherals.power_gating {
            w / self.subarrays() as f64 * subarray_cycles as f64 * cycle_s
        } else {
            w * chips as f64 * cycles as f64 * cycle_s
        };
        s * 1e12
    }

    /// Bank of a subarray.
    pub fn bank_of(&self, subarray: u32) -> u32 {
        subarray / self.params.subarrays_per_bank
    }

    /// Rows on one driven segment of a bit-select line: `lanes_per_line_segment`, or the
    /// whole subarray when it is shorter. The IR-drop check (`ir.rs`), the line energy
    /// ([`Lines::cells`]) and the line settling time ([`Org::line_settle_ns`]) all use it.
    pub fn rows_per_line(&self) -> u64 {
        self.lines().segment
    }

    /// The bit-select line geometry of a subarray.
    pub fn lines(&self) -> Lines {
        Lines::new(
            u64::from(self.params.lanes_per_subarray),
            u64::from(self.params.peripherals.lanes_per_line_segment),
        )
    }

    /// Settling time of one driven line segment, ns: the Elmore delay of a distributed RC
    /// line, τ = r·c·S²/2 for S cells of resistance r and capacitance c each (textbook
    /// result for a uniform RC line driven from one end; recalled, e.g. Rabaey et al.,
    /// *Digital Integrated Circuits*, ch. 4). Ω·fF = 10⁻⁶ ns. At the shipped 1 Ω and 0.193 fF
    /// per cell and 8-row segments it is 6.2 fs; it matters for long segments of resistive
    /// lines, which the IR-drop check usually refuses first.
    pub fn line_settle_ns(&self) -> f64 {
        let s = self.rows_per_line() as f64;
        0.5 * self.params.peripherals.r_wire_ohm_per_cell
            * self.periphery.c_bsl_ff_per_cell
            * s
            * s
            * 1e-6
    }

    /// Line-driver set-up of every array step, ns: `t_driver_setup_ns`, stretched to the
    /// line's settling time when that is longer ([`Org::line_settle_ns`]).
    pub fn step_setup_ns(&self) -> f64 {
        self.params.t_driver_setup_ns.max(self.line_settle_ns())
    }

    /// Cycles a bus needs to move `bits`: latency plus ⌈bits / width⌉.
    pub fn bus_cycles(bus: &BusParams, bits: u64) -> u64 {
        u64::from(bus.latency_cycles) + bits.div_ceil(u64::from(bus.width_bits))
    }

    /// Cycles the host link needs to move `bits`.
    pub fn host_cycles(&self, bits: u64) -> u64 {
        self.link_cycles(&self.params.host_link, bits)
    }

    /// Cycles an off-chip link needs to move `bits`: its latency, then the bits at its
    /// bandwidth.
    pub fn link_cycles(&self, link: &HostLinkParams, bits: u64) -> u64 {
        // bits / (GB/s · 8 bits/B) gives ns.
        u64::from(link.latency_cycles) + self.cycles(bits as f64 / (link.bandwidth_gb_s * 8.0))
    }
}

/// The bit-select lines of a subarray: its rows, and the rows on one driven segment (each
/// segment has its own drivers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    /// Rows (lanes) of the subarray.
    pub rows: u64,
    /// Rows on one driven segment: min(lanes per line segment, rows), at least 1.
    pub segment: u64,
}

impl Lines {
    /// Lines of `rows` rows cut into segments of `segment_rows`.
    pub fn new(rows: u64, segment_rows: u64) -> Lines {
        Lines {
            rows,
            segment: segment_rows.min(rows).max(1),
        }
    }

    /// Cells of one bit-select line charged when lanes `lo..hi` are selected: only the
    /// segments holding a selected lane are driven, each over its full length (the last
    /// segment may be shorter than the others).
    pub fn cells(&self, lo: u64, hi: u64) -> u64 {
        let hi = hi.min(self.rows);
        if hi <= lo {
            return 0;
        }
        let s = self.segment;
        let first = lo / s * s;
        let end = ((hi - 1) / s + 1) * s;
        end.min(self.rows) - first
    }

    /// Σ over rows 0..n of the cells charged by writing that one row ([`Lines::cells`] of
    /// `l..l+1`): each row drives its own segment.
    pub fn row_cells_sum(&self, n: u64) -> u64 {
        let n = n.min(self.rows);
        let full_end = self.rows / self.segment * self.segment;
        let in_full = n.min(full_end);
        in_full * self.segment + (n - in_full) * (self.rows - full_end)
    }
}

#[cfg(test)]
mod tests {
    use super::DERIVED_KEYS;
    use crate::presets;

    /// Only the segments holding a selected lane are charged, each over its full length.
    #[test]
    fn line_cells_follow_the_segments() {
        let l = super::Lines::new(1024, 8);
        assert_eq!(l.cells(0, 1024), 1024);
        assert_eq!(l.cells(0, 10), 16);
        assert_eq!(l.cells(7, 9), 16);
        assert_eq!(l.cells(8, 16), 8);
        assert_eq!(l.cells(5, 5), 0);
        assert_eq!(l.cells(1000, 5000), 24);
        let short_tail = super::Lines::new(20, 8);
        assert_eq!(short_tail.cells(17, 18), 4);
        for n in [0, 1, 7, 8, 17, 19, 20] {
            let each: u64 = (0..n).map(|r| short_tail.cells(r, r + 1)).sum();
            assert_eq!(short_tail.row_cells_sum(n), each, "{n}");
        }
        let whole = super::Lines::new(1024, 100_000);
        assert_eq!(whole.segment, 1024);
        assert_eq!(whole.cells(3, 4), 1024);
    }

    /// The Elmore delay of a segment, r·c·S²/2, stretches the driver set-up once it is
    /// longer: negligible on the shipped array, 101 ns for 1024 cells of 1 kΩ and 0.193 fF.
    #[test]
    fn long_resistive_segments_settle_slowly() {
        let mut org = presets::array("cram-1k").unwrap();
        assert!(org.line_settle_ns() < 1e-5);
        assert_eq!(org.step_setup_ns(), org.params.t_driver_setup_ns);
        org.params.peripherals.r_wire_ohm_per_cell = 1000.0;
        org.params.peripherals.lanes_per_line_segment = 1 << 20;
        assert_eq!(org.rows_per_line(), 1024);
        let c = org.periphery.c_bsl_ff_per_cell;
        assert!((org.line_settle_ns() - 0.5 * 1000.0 * c * 1024.0 * 1024.0 * 1e-6).abs() < 1e-9);
        assert_eq!(org.step_setup_ns(), org.line_settle_ns());
    }

    #[test]
    fn cycles_round_up() {
        let org = presets::array("cram-1k").unwrap();
        let f = org.params.clock_ghz;
        assert_eq!(org.cycles(0.0), 0);
        assert_eq!(org.cycles(1.0 / f), 1);
        assert_eq!(org.cycles(1.0 / f + 1e-3), 2);
        assert_eq!(org.cycles(2.0 / f), 2);
    }

    /// The function unit: the shipped preset's keys; a partial section, or none, takes the
    /// defaults; its energy is derived from the node (Horowitz's FP32 multiply-add, 4.6 pJ
    /// at 45 nm and 0.9 V, scaled by node × V²: 1.78 pJ at 22 nm and 0.8 V) unless given;
    /// a zero rate is refused by name.
    #[test]
    fn the_function_unit_takes_defaults_derives_and_checks() {
        let org = presets::array("cram-1k").unwrap();
        let fu = org.params.function_unit;
        assert_eq!(
            (fu.ops_per_cycle, fu.latency_cycles, fu.e_pj_per_op),
            (16, 8, None)
        );
        let e = org.periphery.e_function_unit_pj_per_op;
        assert!((e - 4.6 * 22.0 / 45.0 * 0.64 / 0.81).abs() < 1e-12, "{e}");
        assert!(org.periphery.derived.contains(&"function_unit.e_pj_per_op"));
        let src = presets::array_source("cram-1k").unwrap();
        let cut = &src[..src.find("[function_unit]").unwrap()];
        let none: super::OrgParams = toml::from_str(cut).unwrap();
        assert_eq!(none.function_unit, super::FunctionUnitParams::default());
        let partial: super::OrgParams =
            toml::from_str(&format!("{cut}[function_unit]\ne_pj_per_op = 3.0\n")).unwrap();
        assert_eq!(partial.function_unit.ops_per_cycle, 16);
        let org = partial.validate("p.toml").unwrap();
        assert_eq!(org.periphery.e_function_unit_pj_per_op, 3.0);
        let mut p = presets::array("cram-1k").unwrap().params;
        p.function_unit.ops_per_cycle = 0;
        let e = p.validate("a.toml").unwrap_err().to_string();
        assert!(e.contains("function_unit.ops_per_cycle"), "{e}");
    }

    #[test]
    fn bad_geometry_is_named() {
        let mut p = presets::array("cram-1k").unwrap().params;
        p.lanes_per_subarray = 0;
        let e = p.validate("a.toml").unwrap_err().to_string();
        assert!(
            e.contains("a.toml") && e.contains("lanes_per_subarray") && e.contains("1..="),
            "{e}"
        );
    }

    /// Leakage: per column and per row of every subarray, for the whole run on every chip,
    /// or, power-gated, for the subarrays' busy cycles only.
    #[test]
    fn leakage_follows_area_time_and_gating() {
        let mut org = presets::array("cram-1k").unwrap();
        let w = org.leakage_w();
        // 128 subarrays of 1024 sense amplifiers and 1024 rows.
        let per = &org.periphery;
        let by_hand = 128.0 * 1024.0 * (per.leakage_nw_per_sense_amp + per.leakage_nw_per_row);
        assert!((w - by_hand * 1e-9).abs() < 1e-15);
        // 1000 cycles at 1 GHz on 2 chips: 2 × w × 1 µs.
        assert!((org.leakage_pj(2, 1000, 0) - 2.0 * w * 1e-6 * 1e12).abs() < 1e-6);
        org.params.peripherals.power_gating = true;
        // One subarray busy for 1000 cycles: its share of one chip.
        let one = w / org.subarrays() as f64 * 1e-6 * 1e12;
        assert!((org.leakage_pj(2, 1000, 1000) - one).abs() < 1e-9);
        assert_eq!(org.leakage_pj(2, 1000, 0), 0.0);
    }

    /// The area by hand at 22 nm: each component from its count and NVSim's size in F²; the
    /// buses over the sides of the rest; `array_efficiency` given overrides the components.
    #[test]
    fn area_is_built_from_components_or_given_efficiency() {
        use crate::tech;
        let org = presets::array("cram-1k").unwrap();
        let a = org.area;
        let f2 = 0.022 * 0.022 * 1e-6; // mm² per F²
        let sub = 128.0;
        assert!((a.cells_mm2 - sub * 1024.0 * 1024.0 * 0.01e-6).abs() < 1e-12);
        // 1024 columns × 128 segments of 8 rows.
        let drivers = sub * 1024.0 * 128.0 * tech::LINE_DRIVER_AREA_F2 * f2;
        assert!((a.line_drivers_mm2 - drivers).abs() < 1e-9);
        assert!((a.sense_mm2 - sub * 1024.0 * tech::SENSE_AMP_AREA_F2 * f2).abs() < 1e-9);
        let dec = sub * (1024.0 * tech::ROW_DECODER_AREA_F2 + tech::PREDECODER_AREA_F2) * f2;
        assert!((a.decoders_mm2 - dec).abs() < 1e-9);
        assert!((a.controller_mm2 - 65536.0 * 146.0 * f2).abs() < 1e-12);
        let rest = a.total_mm2() - a.buses_mm2;
        let side = rest.sqrt();
        let wires_mm = 8.0 * 256.0 * side / 8f64.sqrt() + 512.0 * side;
        assert!((a.buses_mm2 - wires_mm * 0.176e-3).abs() < 1e-9);
        assert_eq!(a.unattributed_mm2, 0.0);
        assert!((org.chip_area_mm2() - a.total_mm2()).abs() < 1e-12);
        // Fewer rows per segment, more drivers; a given efficiency replaces the components.
        let mut p = org.params.clone();
        p.peripherals.lanes_per_line_segment = 4;
        assert!(p.clone().validate("a.toml").unwrap().area.line_drivers_mm2 > drivers * 1.99);
        p.array_efficiency = Some(0.25);
        let given = p.validate("a.toml").unwrap().area;
        assert!((given.total_mm2() - 4.0 * a.cells_mm2).abs() < 1e-9);
        assert_eq!(given.sense_mm2, 0.0);
        assert!((given.unattributed_mm2 - 3.0 * a.cells_mm2).abs() < 1e-9);
    }

    /// The periphery: derived from the node when left out, the file's value when given, and
    /// a node outside the tables or a value missing without a node is refused by key.
    #[test]
    fn periphery_is_derived_overridden_or_refused() {
        let base = presets::array("cram-1k").unwrap().params;
        let at = |node: f64| {
            let mut p = base.clone();
            p.node_nm = Some(node);
            p.validate("a.toml").map(|o| o.periphery)
        };
        let (n22, n45) = (at(22.0).unwrap(), at(45.0).unwrap());
        assert_eq!(n22.derived.len(), DERIVED_KEYS.len());
        assert!((n45.e_sense_pj_per_bit - 0.1026).abs() < 1e-12);
        assert!((n45.v_wordline_v - 1.0).abs() < 1e-12);
        // Older nodes: lower sensing energy, dearer decoders, wires and commands.
        assert!(n45.e_decoder_pj > n22.e_decoder_pj);
        assert!(n45.e_global_bus_pj_per_bit > n22.e_global_bus_pj_per_bit);
        assert!(n45.e_controller_pj_per_command > n22.e_controller_pj_per_command);
        for bad in [10.0, 90.0, f64::NAN] {
            let e = at(bad).unwrap_err().to_string();
            assert!(
                e.contains("a.toml") && e.contains("node_nm") && e.contains("22"),
                "{e}"
            );
        }
        let mut given = base.clone();
        given.peripherals.e_sense_pj_per_bit = Some(0.2);
        given.global_bus.e_pj_per_bit = Some(1.5);
        let per = given.validate("a.toml").unwrap().periphery;
        assert_eq!(
            (per.e_sense_pj_per_bit, per.e_global_bus_pj_per_bit),
            (0.2, 1.5)
        );
        assert_eq!(per.derived.len(), DERIVED_KEYS.len() - 2);
        let mut bare = base;
        bare.node_nm = None;
        let e = bare.clone().validate("a.toml").unwrap_err().to_string();
        assert!(
            e.contains("array_efficiency") && e.contains("node_nm"),
            "{e}"
        );
        bare.array_efficiency = Some(0.5);
        let e = bare.clone().validate("a.toml").unwrap_err().to_string();
        assert!(
            e.contains("peripherals.c_bsl_ff_per_cell") && e.contains("node_nm"),
            "{e}"
        );
        bare.peripherals.e_sense_pj_per_bit = Some(-1.0);
        bare.node_nm = Some(22.0);
        let e = bare.validate("a.toml").unwrap_err().to_string();
        assert!(
            e.contains("peripherals.e_sense_pj_per_bit") && e.contains("-1"),
            "{e}"
        );
    }
}
