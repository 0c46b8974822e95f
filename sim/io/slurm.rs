//! Slurm job-array scripts: time limits, shell quoting and the scripts of a sweep.

use crate::records::SweepManifest;
use std::fmt::Write as _;
use std::path::Path;

/// Checks a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.
pub(crate) fn slurm_time(t: &str) -> Result<(), &'static str> {
    let form = "expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS";
    let num = |p: &str| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let ok = days.is_none_or(num) && parts.iter().all(|p| num(p)) && parts.len() <= 3;
    if ok { Ok(()) } else { Err(form) }
}

/// A word for the shell, quoted when it needs to be.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The settings of a sweep's Slurm job array, checked by the caller.
pub(crate) struct ArrayJob<'a> {
    /// Array tasks (shards).
    pub(crate) shards: u32,
    /// CPUs per task.
    pub(crate) cpus: u32,
    /// Wall-time limit per task (Slurm's format).
    pub(crate) time: &'a str,
    /// Most tasks running at once.
    pub(crate) max_running: Option<u32>,
    /// Slurm partition.
    pub(crate) partition: Option<&'a str>,
    /// Slurm account.
    pub(crate) account: Option<&'a str>,
    /// Memory per task, in Slurm's form.
    pub(crate) mem: Option<&'a str>,
    /// The cramulator binary the jobs run (absolute).
    pub(crate) bin: &'a Path,
    /// The plan folder (absolute, without spaces or quotes).
    pub(crate) plan_dir: &'a Path,
}

/// The scripts of a sweep's Slurm job: the array, the merge job and the submit script that
/// runs the merge job after the array.
pub(crate) struct Scripts {
    /// `slurm/array.sbatch`.
    pub(crate) array: String,
    /// `slurm/merge.sbatch`.
    pub(crate) merge: String,
    /// `slurm/submit.sh`.
    pub(crate) submit: String,
}

/// The Slurm scripts of the plan `m` run as `job`; they name every path absolutely (jobs run
/// from wherever Slurm starts them) and log into `slurm/logs/` of the plan folder.
pub(crate) fn scripts(m: &SweepManifest, job: &ArrayJob) -> Scripts {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let dir = q(job.plan_dir);
    let logs = job.plan_dir.join("slurm").join("logs");
    let mut part = String::new();
    for (key, v) in [
        ("partition", job.partition),
        ("account", job.account),
        ("mem", job.mem),
    ] {
        if let Some(v) = v {
            let _ = writeln!(part, "#SBATCH --{key}={v}");
        }
    }
    let array = format!(
        "#!/bin/bash\n# cramulator sweep {name}: {points} points in {n} shards (plan {hash}).\n\
         # Submit with slurm/submit.sh (this array, then the merge job after it).\n\
         #SBATCH --job-name=cramulator-{name}\n\
         #SBATCH --array=0-{last}{max}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --time={time}\n\
         #SBATCH --output={logs}/%A_%a.out\n{part}\
         set -euo pipefail\n\
         exec {bin} sweep run {dir} \\\n  --shard \"${{SLURM_ARRAY_TASK_ID}}/${{SLURM_ARRAY_TASK_COUNT}}\" \\\n  --threads \"${{SLURM_CPUS_PER_TASK}}\"\n",
        name = m.name,
        points = m.points,
        n = job.shards,
        hash = m.plan_hash,
        last = job.shards - 1,
        max = job.max_running.map(|x| format!("%{x}")).unwrap_or_default(),
        cpus = job.cpus,
        time = job.time,
        logs = logs.display(),
        bin = q(job.bin),
    );
    let merge = format!(
        "#!/bin/bash\n# Merges the shards of cramulator sweep {name} once the array is done.\n\
         #SBATCH --job-name=cramulator-{name}-merge\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --time=00:10:00\n\
         #SBATCH --output={logs}/merge_%j.out\n{part}\
         set -euo pipefail\n\
         exec {bin} sweep merge {dir}\n",
        name = m.name,
        logs = logs.display(),
        bin = q(job.bin),
    );
    let slurm = job.plan_dir.join("slurm");
    let submit = format!(
        "#!/bin/bash\n# Submits the array, then the merge job to run after every task succeeded.\n\
         set -euo pipefail\n\
         JID=$(sbatch --parsable {array})\n\
         MID=$(sbatch --parsable --dependency=afterok:\"${{JID%%;*}}\" {merge})\n\
         echo \"array job $JID, merge job $MID\"\n",
        array = q(&slurm.join("array.sbatch")),
        merge = q(&slurm.join("merge.sbatch")),
    );
    Scripts {
        array,
        merge,
        submit,
    }
}
