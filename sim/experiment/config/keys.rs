//! Config keys: checking a dotted key (with the nearest valid ones), setting one in a
//! config document, `--set` values, and labels of sources with their overrides.

use std::path::Path;

use cram_arch::Source;

use super::Config;

/// A `--set` value: TOML when it parses as one (numbers, booleans, quoted strings, arrays),
/// else a bare string; for a list-valued key, a comma-separated list of strings.
/// Refuses a key that is not one of [`Config::keys`], naming the three nearest.
pub fn check_key(key: &str) -> Result<(), String> {
    let keys = Config::keys();
    if keys.iter().any(|k| k == key) {
        Ok(())
    } else {
        Err(format!(
            "unknown key '{key}'; nearest valid keys: {}",
            nearest(key, keys, 3).join(", ")
        ))
    }
}

/// Parses a config document; on error, the parser's own message (it quotes a line of the
/// re-serialized document, which would only confuse).
pub(crate) fn parse_doc(doc: &toml::Table) -> Result<Config, String> {
    toml::from_str::<Config>(&doc.to_string()).map_err(|e| {
        let e = e.to_string();
        e.lines()
            .rfind(|l| {
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with(['|', '^']) && !l.contains(" --> ")
            })
            .unwrap_or(&e)
            .trim()
            .to_owned()
    })
}

/// Before `key` is set: setting `workload.model` makes the digest of the previous model
/// (`workload.model_hash`, recorded by `resolved.toml` or a sweep's frozen base) stale.
pub(crate) fn forget_model_hash(doc: &mut toml::Table, key: &str) {
    if key == "workload.model"
        && let Some(w) = doc.get_mut("workload").and_then(toml::Value::as_table_mut)
    {
        w.remove("model_hash");
    }
}

/// Sets dotted `key` in a config document, creating tables on the way.
pub(crate) fn insert(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let mut at = doc;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        at = at
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("'{part}' is not a table"))?;
    }
    at.insert(parts[parts.len() - 1].to_owned(), value);
    Ok(())
}

pub(crate) fn set_value(key: &str, raw: &str) -> toml::Value {
    if let Ok(t) = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        && let Some(v) = t.get("v")
    {
        return v.clone();
    }
    if key == "compare.baselines" {
        return toml::Value::Array(
            raw.split(',')
                .map(|s| toml::Value::String(s.trim().to_owned()))
                .collect(),
        );
    }
    toml::Value::String(raw.to_owned())
}

/// The `n` keys nearest to `key` by edit distance (ties in key order).
pub(crate) fn nearest(key: &str, keys: &[String], n: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = keys.iter().map(|k| (levenshtein(key, k), k)).collect();
    scored.sort_by_key(|&(d, _)| d);
    scored.into_iter().take(n).map(|(_, k)| k.clone()).collect()
}

/// Edit distance between two strings (insertions, deletions, substitutions).
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A source's label with the keys `overrides` sets in brackets.
pub(crate) fn labelled(src: &Source, overrides: &toml::Table) -> String {
    let mut listed = Vec::new();
    leaves(overrides, "", &mut listed);
    if listed.is_empty() {
        src.label()
    } else {
        format!("{} [{}]", src.label(), listed.join(", "))
    }
}

/// `prefix` + `key.path = value` for every leaf of `t`, in key order.
pub(crate) fn leaves(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        match v {
            toml::Value::Table(sub) => leaves(sub, &format!("{prefix}{k}."), out),
            v => out.push(format!("{prefix}{k} = {v}")),
        }
    }
}

pub(crate) fn flatten_keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_keys(v, &key, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// `value` joined to `dir` when it names a file there (preset and model names stay).
pub(crate) fn relative_to(dir: &Path, value: &str) -> String {
    let p = Path::new(value);
    if p.is_relative() && dir.join(p).is_file() {
        dir.join(p).to_string_lossy().into_owned()
    } else {
        value.to_owned()
    }
}
