//! Slurm job-array scripts: time limits and shell quoting.

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
