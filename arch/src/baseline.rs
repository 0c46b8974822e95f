//! Parameters of a conventional (von-Neumann) machine that runs the same network: the
//! datapath (MACs per cycle, energy per multiply and add at its native width, instruction
//! overhead) and its memory hierarchy (energy per bit, bandwidth and capacity per level).
//! docs/model.md §3; the model form is the energy roofline of Choi et al. (IPDPS 2013) as
//! `docs/references.md` A10 writes it. Presets live in `configs/baselines/*.toml`,
//! every number with its source; `sim/baseline.rs` evaluates a network on them.

use serde::{Deserialize, Serialize};

use crate::error::{ArchError, Checker};

/// One level of the memory hierarchy, innermost (register file) first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelParams {
    /// Name shown in reports (`rf`, `l1`, `dram`, …).
    pub name: String,
    /// Energy per bit read or written at this level, pJ.
    pub e_pj_per_bit: f64,
    /// Sustained bandwidth of this level, GB/s (10^9 bytes per second).
    pub bandwidth_gb_s: f64,
    /// Capacity, KiB; absent for the backing store (the outermost level), which holds all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_kib: Option<f64>,
    /// Whether the level is off the compute chip (left out of chip-only energy).
    #[serde(default)]
    pub off_chip: bool,
    /// Whether weights that fit may stay here from one batch of inferences to the next (a
    /// cache, or a buffer software fills once). `false` for a scratchpad that is refilled
    /// for every batch or a store that weights are always read through (an MCU's SRAM, with
    /// weights in flash).
    #[serde(default = "yes")]
    pub weights_resident: bool,
}

fn yes() -> bool {
    true
}

/// How a baseline machine is priced: the kind of model its parameters feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineKind {
    /// The energy roofline of Choi et al. (IPDPS 2013) over a memory hierarchy with
    /// blocking (docs/model.md §3).
    #[default]
    Roofline,
}

impl BaselineKind {
    /// Every kind, for messages and checks.
    pub const ALL: [BaselineKind; 1] = [BaselineKind::Roofline];

    /// The name a preset file uses (`model = "roofline"`).
    pub fn name(self) -> &'static str {
        match self {
            BaselineKind::Roofline => "roofline",
        }
    }

    fn is_default(&self) -> bool {
        *self == BaselineKind::default()
    }
}

/// A baseline machine as written in a `configs/baselines/*.toml` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineParams {
    /// Preset or user name.
    pub name: String,
    /// The model that prices it (default `roofline`; not written when it is the default,
    /// so a resolved configuration and its run id do not change with the key).
    #[serde(default, skip_serializing_if = "BaselineKind::is_default")]
    pub model: BaselineKind,
    /// One line saying what machine this is.
    pub description: String,
    /// Datapath clock, GHz.
    pub clock_ghz: f64,
    /// Peak multiply-accumulates per cycle of the whole machine at `native_bits` operands.
    pub macs_per_cycle: f64,
    /// Fraction of the peak that conv/dense layers achieve, in (0, 1].
    pub utilization: f64,
    /// Narrowest operand the datapath computes natively: narrower weights and activations
    /// are computed at this width (they are still stored at their own width).
    pub native_bits: u32,
    /// Accumulator width, bits.
    pub acc_bits: u32,
    /// Energy of one `native_bits` × `native_bits` multiply, pJ (scaled by the product of
    /// the operand widths for wider operands: a multiplier's energy grows about as bits²).
    pub e_mul_pj: f64,
    /// Energy of one `acc_bits` accumulate, pJ.
    pub e_add_pj: f64,
    /// Fetch, decode and issue energy of one instruction, pJ (0 for fixed-function datapaths).
    pub e_instr_pj: f64,
    /// MACs (or element-wise ops) one instruction performs: the SIMD width.
    pub macs_per_instr: f64,
    /// MACs that share one operand fetch from the innermost level (1 for a scalar MAC;
    /// the tile edge for a systolic array or tensor core).
    pub rf_reuse: f64,
    /// Whether pruned (zero) weights are skipped: the weights are then stored compressed
    /// (nonzeros plus an index each) and only nonzero weights are multiplied, whenever that
    /// format is the smaller one.
    pub skip_zero_weights: bool,
    /// Index bits stored with each nonzero weight when zeros are skipped.
    pub sparse_index_bits: u32,
    /// Power drawn whatever the work (leakage, clock tree, uncore, board), W; paid for the
    /// whole run time.
    pub static_power_w: f64,
    /// Fixed time per layer (kernel launch, layer dispatch), ns.
    #[serde(default)]
    pub layer_overhead_ns: f64,
    /// Die (or board) area, mm², when a source gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub die_area_mm2: Option<f64>,
    /// Memory levels, innermost first; capacities strictly increase and only the last may
    /// be unbounded.
    pub levels: Vec<LevelParams>,
}

/// Validated baseline parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The parameters, every field in range.
    pub params: BaselineParams,
}

impl BaselineParams {
    /// Checks every field's range; `origin` (file or preset) is quoted in errors.
    pub fn validate(self, origin: &str) -> Result<Baseline, ArchError> {
        let check = Checker { origin };
        let bad = |key: &str, value: String, allowed: &str| check.bad(key, value, allowed);
        let real =
            |key: &str, v: f64, lo: f64, hi: f64, unit: &str| check.real(key, v, lo, hi, unit);
        let bits = |key: &str, v: u32, lo: u32| check.count(key, v, lo, 64);
        real("clock_ghz", self.clock_ghz, 1e-6, 100.0, "GHz")?;
        real("macs_per_cycle", self.macs_per_cycle, 1e-6, 1e9, "MACs")?;
        if !(self.utilization > 0.0 && self.utilization <= 1.0) {
            return Err(bad(
                "utilization",
                self.utilization.to_string(),
                "must be in (0, 1]",
            ));
        }
        bits("native_bits", self.native_bits, 1)?;
        bits("acc_bits", self.acc_bits, 1)?;
        bits("sparse_index_bits", self.sparse_index_bits, 0)?;
        real("e_mul_pj", self.e_mul_pj, 0.0, 1e6, "pJ")?;
        real("e_add_pj", self.e_add_pj, 0.0, 1e6, "pJ")?;
        real("e_instr_pj", self.e_instr_pj, 0.0, 1e6, "pJ")?;
        real("macs_per_instr", self.macs_per_instr, 1e-6, 1e9, "")?;
        real("rf_reuse", self.rf_reuse, 1.0, 1e9, "")?;
        real("static_power_w", self.static_power_w, 0.0, 1e6, "W")?;
        real("layer_overhead_ns", self.layer_overhead_ns, 0.0, 1e12, "ns")?;
        if let Some(a) = self.die_area_mm2 {
            real("die_area_mm2", a, 1e-6, 1e6, "mm²")?;
        }
        if self.levels.is_empty() {
            return Err(bad(
                "levels",
                "[]".into(),
                "must list at least one memory level ([[levels]] tables, innermost first)",
            ));
        }
        let mut last_cap = 0.0;
        for (i, l) in self.levels.iter().enumerate() {
            let key = |k: &str| format!("levels[{i}].{k}");
            real(&key("e_pj_per_bit"), l.e_pj_per_bit, 0.0, 1e6, "pJ")?;
            real(&key("bandwidth_gb_s"), l.bandwidth_gb_s, 1e-6, 1e9, "GB/s")?;
            match l.capacity_kib {
                Some(c) => {
                    real(&key("capacity_kib"), c, 1e-3, 1e12, "KiB")?;
                    if c <= last_cap {
                        return Err(bad(
                            &key("capacity_kib"),
                            c.to_string(),
                            &format!("must exceed the level below it ({last_cap} KiB)"),
                        ));
                    }
                    last_cap = c;
                }
                None if i + 1 < self.levels.len() => {
                    return Err(bad(
                        &key("capacity_kib"),
                        "(absent)".into(),
                        "only the outermost level may be unbounded",
                    ));
                }
                None if i == 0 => {
                    return Err(bad(
                        &key("capacity_kib"),
                        "(absent)".into(),
                        "the innermost level needs a capacity",
                    ));
                }
                None => {}
            }
        }
        Ok(Baseline { params: self })
    }
}

impl Baseline {
    /// Capacity of level `i` in bytes (infinite for an unbounded backing store).
    pub fn capacity_bytes(&self, i: usize) -> f64 {
        self.params.levels[i]
            .capacity_kib
            .map_or(f64::INFINITY, |k| k * 1024.0)
    }
}
