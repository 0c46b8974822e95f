//! Result records: every type `cramulator run` writes under `results/<run-id>/` (and the
//! calibration points), in one place. They are the serializable boundary of the simulator:
//! `report.json` and `manifest.json` deserialize back into them with unknown fields refused,
//! and their JSON Schema (`cramulator schema`, committed as `docs/schema/*.json`) is generated
//! from these same definitions.

pub use cram_workloads::digest::fnv1a64;
use serde::Serialize;

mod calibrate;
mod energy;
mod gates;
mod kernel;
mod map;
mod models;
mod run;
mod simulate;
mod sweep;
mod validation;

pub use calibrate::*;
pub use energy::*;
pub use gates::*;
pub use kernel::*;
pub use map::*;
pub use models::*;
pub use run::*;
pub use simulate::*;
pub use sweep::*;
pub use validation::*;

/// Version of the record layout; raised whenever a field changes.
pub const SCHEMA_VERSION: u32 = 17;

/// The JSON Schemas of the records, by file name (`docs/schema/<name>`).
pub fn schemas() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, s: schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&s).expect("schemas serialize");
        text.push('\n');
        out.push((name, text));
    };
    add("report.schema.json", schemars::schema_for!(RunReport));
    add("manifest.schema.json", schemars::schema_for!(Manifest));
    add("layer-row.schema.json", schemars::schema_for!(LayerRow));
    add(
        "calibration.schema.json",
        schemars::schema_for!(CalibrationReport),
    );
    add(
        "validation.schema.json",
        schemars::schema_for!(ValidationReport),
    );
    add(
        "sweep-manifest.schema.json",
        schemars::schema_for!(SweepManifest),
    );
    add("plan-point.schema.json", schemars::schema_for!(PlanPoint));
    add(
        "point-record.schema.json",
        schemars::schema_for!(PointRecord),
    );
    add(
        "shard-header.schema.json",
        schemars::schema_for!(ShardHeader),
    );
    add("sweep-summary.schema.json", schemars::schema_for!(Summary));
    add("zoo.schema.json", schemars::schema_for!(Vec<ZooEntry>));
    add("trained.schema.json", schemars::schema_for!(Vec<Trained>));
    add("inspect.schema.json", schemars::schema_for!(InspectReport));
    add("gates.schema.json", schemars::schema_for!(GateTable));
    add("kernel.schema.json", schemars::schema_for!(KernelRunReport));
    add("map.schema.json", schemars::schema_for!(MapReport));
    add(
        "simulate.schema.json",
        schemars::schema_for!(SimulateReport),
    );
    out
}

/// Pretty JSON with a final newline.
pub fn to_json<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("report types serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_their_definitions() {
        // 1 µJ in 1 ms for 1 M MACs, at 436 g/kWh.
        let m = Metrics::new((6e5, 4e5, 0.0), (1e-3, 1000.0), 1_000_000, None, 0.5, 436.0);
        assert_eq!(m.energy_pj, 1e6);
        assert!((m.tops_per_w - 2.0).abs() < 1e-12);
        assert!((m.edp_j_s - 1e-9).abs() < 1e-21);
        let g = 1e-6 / 3.6e6 * 436.0;
        assert!((m.co2e_g_per_inference - g).abs() < 1e-20);
        assert!((m.co2e_kg_per_million - g * 1e3).abs() < 1e-14);
    }

    #[test]
    fn committed_schemas_are_the_generated_ones() {
        for (name, text) in schemas() {
            let path = format!("{}/docs/schema/{name}", env!("CARGO_MANIFEST_DIR"));
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{path}: {e}; run `cramulator schema --write docs/schema`")
            });
            assert_eq!(
                committed, text,
                "{name} is stale: run `cramulator schema --write docs/schema`"
            );
        }
    }
}
