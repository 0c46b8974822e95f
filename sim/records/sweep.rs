//! The records of a sweep: its manifest, plan points, point records and summary.

use crate::records::RunReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An expanded axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// Dotted config key.
    pub key: String,
    /// Its values, in order.
    pub values: Vec<serde_json::Value>,
    /// Zip group, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
}

/// `DIR/manifest.json` of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepManifest {
    /// Record schema version.
    pub schema_version: u32,
    /// The cramulator that planned it.
    pub cramulator_version: String,
    /// Sweep name.
    pub name: String,
    /// The sweep file as given.
    pub sweep_file: String,
    /// FNV-1a of base.toml, the axes and the seed: shard files carry it.
    pub plan_hash: String,
    /// Global seed.
    pub seed: u64,
    /// Points in the plan.
    pub points: u64,
    /// Axes in order (the first varies slowest).
    pub axes: Vec<Axis>,
    /// The files of the plan.
    pub files: Vec<String>,
}

/// One line of `plan.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPoint {
    /// Point id, 0-based.
    pub id: u64,
    /// Its `run.seed`.
    pub seed: u64,
    /// Axis key → value.
    pub set: serde_json::Map<String, serde_json::Value>,
}

/// One line of a shard file and of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointRecord {
    /// Point id.
    pub id: u64,
    /// Its `run.seed`.
    pub seed: u64,
    /// Axis key → value.
    pub set: serde_json::Map<String, serde_json::Value>,
    /// `ok`, or `error` (the configuration was refused or failed; see `error`).
    pub status: String,
    /// Why the point failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The run's report (as `cramulator run` writes it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub report: Option<RunReport>,
}

/// First line of a shard file: which plan and which share it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardHeader {
    /// Hash of the plan the shard belongs to.
    pub plan_hash: String,
    /// Shard index.
    pub shard: u64,
    /// Shard count.
    pub of: u64,
}

/// summary.json.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Sweep name.
    pub name: String,
    /// Hash of the plan.
    pub plan_hash: String,
    /// Points in the plan.
    pub points: u64,
    /// Points that ran.
    pub ok: u64,
    /// Points that failed.
    pub failed: u64,
    /// Ids of the failed points.
    pub failed_ids: Vec<u64>,
    /// The axes.
    pub axes: Vec<Axis>,
    /// The best point of each metric.
    pub best: Vec<Best>,
    /// Each metric's [min, max] over the points that ran.
    pub ranges: BTreeMap<String, [f64; 2]>,
}

/// The point with the lowest value of a metric.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Best {
    /// Metric name.
    pub metric: String,
    /// Point id.
    pub id: u64,
    /// Its value.
    pub value: f64,
    /// The point's axis values.
    pub set: serde_json::Map<String, serde_json::Value>,
}
