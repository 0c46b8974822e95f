//! The record of `validate`: every paper claim checked, and what was not attempted.

use serde::{Deserialize, Serialize};

/// How a validation check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// Our number equals the expected one (exact checks, or an exact match).
    Reproduced,
    /// Our number differs but lies inside the stated tolerance.
    WithinTolerance,
    /// Outside the tolerance; `reason` says why.
    Diverges,
}

impl CheckStatus {
    /// The label printed by `validate`.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Reproduced => "reproduced",
            CheckStatus::WithinTolerance => "within tolerance",
            CheckStatus::Diverges => "diverges",
        }
    }
}

/// One check of `cramulator validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationCheck {
    /// Group: physics, kernels, networks, baseline or papers.
    pub group: String,
    /// Stable identifier, e.g. `nand-add-9n-4` or `T4/energy-vs-nmp`.
    pub id: String,
    /// What is checked.
    pub name: String,
    /// The expected (published or derived) value.
    pub expected: String,
    /// What cramulator obtained, with the setting it was measured in.
    pub obtained: String,
    /// The tolerance the status is judged by.
    pub tolerance: String,
    /// Reproduced, within tolerance, or diverges.
    pub status: CheckStatus,
    /// Why it diverges (only then).
    pub reason: Option<String>,
    /// Where the expected value comes from.
    pub source: String,
    /// Whether a divergence fails the run (exit 1).
    pub required: bool,
    /// Assumptions between the source and this check.
    pub assumptions: Vec<String>,
    /// Why the claim itself is ambiguous: sources that read it differently.
    pub ambiguous: Option<String>,
    /// A diverging paper check: for each knob its file names, the value that would
    /// reproduce the claim beside ours, or what the knob's range gives instead.
    pub what_it_would_take: Vec<String>,
}

/// A published claim the suite does not attempt, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotAttempted {
    /// The claim's ID in `docs/references.md` L-c (T1–T14).
    pub id: String,
    /// The claim.
    pub claim: String,
    /// Why it is not reproduced.
    pub reason: String,
}

/// The report of `cramulator validate` (`--json`); `docs/validation.md` is generated from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationReport {
    /// Version of the result records.
    pub schema_version: u32,
    /// cramulator's version.
    pub cramulator_version: String,
    /// Groups run.
    pub groups: Vec<String>,
    /// Whether every required check holds.
    pub passed: bool,
    /// Required checks that diverge.
    pub required_failed: usize,
    /// The checks, group by group.
    pub checks: Vec<ValidationCheck>,
    /// Published claims not attempted (with the papers group).
    pub not_attempted: Vec<NotAttempted>,
}

impl ValidationReport {
    /// How many checks came out with `status`.
    pub fn count(&self, status: CheckStatus) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}
