//! Shipped presets (`configs/devices/*.toml`, `configs/arrays/*.toml`,
//! `configs/baselines/*.toml`, embedded at build time) and loading a device, an organisation
//! or a baseline machine from a preset name or a TOML file.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::baseline::{Baseline, BaselineParams};
use crate::device::{Device, DeviceParams};
use crate::error::ArchError;
use crate::org::{Org, OrgParams};

/// Names of the shipped device presets.
pub const NAMES: [&str; 3] = ["stt-today", "stt-projected", "she-projected"];

const SOURCES: [&str; 3] = [
    include_str!("../../configs/devices/stt-today.toml"),
    include_str!("../../configs/devices/stt-projected.toml"),
    include_str!("../../configs/devices/she-projected.toml"),
];

/// Names of the shipped organisation (array) presets.
pub const ARRAY_NAMES: [&str; 1] = ["cram-1k"];

const ARRAY_SOURCES: [&str; 1] = [include_str!("../../configs/arrays/cram-1k.toml")];

/// Names of the shipped baseline machines.
pub const BASELINE_NAMES: [&str; 6] = [
    "cpu-ddr4",
    "gpu-hbm2",
    "edge-npu-lpddr4",
    "mcu-cortex-m4",
    "nmp",
    "edge-gpu-orin",
];

const BASELINE_SOURCES: [&str; 6] = [
    include_str!("../../configs/baselines/cpu-ddr4.toml"),
    include_str!("../../configs/baselines/gpu-hbm2.toml"),
    include_str!("../../configs/baselines/edge-npu-lpddr4.toml"),
    include_str!("../../configs/baselines/mcu-cortex-m4.toml"),
    include_str!("../../configs/baselines/nmp.toml"),
    include_str!("../../configs/baselines/edge-gpu-orin.toml"),
];

/// Where a device, an array or a baseline machine comes from: a shipped preset name or a
/// TOML file path, or its parameters themselves as a table (as `resolved.toml` records them,
/// so that a run repeats whatever the files hold later).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A preset name or a file path.
    Named(String),
    /// Every key of a device, array or baseline file, inline.
    Inline(toml::Table),
}

impl Source {
    /// A preset name or a file path.
    pub fn named(s: impl Into<String>) -> Source {
        Source::Named(s.into())
    }

    /// How reports and messages name it: the preset or path, or the inline table's `name`.
    pub fn label(&self) -> String {
        match self {
            Source::Named(s) => s.clone(),
            Source::Inline(t) => t
                .get("name")
                .and_then(toml::Value::as_str)
                .unwrap_or("inline")
                .to_owned(),
        }
    }

    /// The text and the origin to quote in errors.
    fn load(
        &self,
        kind: &'static str,
        preset: fn(&str) -> Option<&'static str>,
        names: &[&str],
    ) -> Result<(String, String), ArchError> {
        match self {
            Source::Named(s) => load(s, kind, preset, names),
            Source::Inline(t) => Ok((t.to_string(), format!("inline {kind} '{}'", self.label()))),
        }
    }
}

impl From<&str> for Source {
    fn from(s: &str) -> Source {
        Source::named(s)
    }
}

impl serde::Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Source::Named(n) => s.serialize_str(n),
            Source::Inline(t) => serde::Serialize::serialize(t, s),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Source, D::Error> {
        match <toml::Value as serde::Deserialize>::deserialize(d)? {
            toml::Value::String(s) => Ok(Source::Named(s)),
            toml::Value::Table(t) => Ok(Source::Inline(t)),
            v => Err(serde::de::Error::custom(format!(
                "expected a preset name, a TOML file path or a table of parameters, found {} \
                 {v}",
                v.type_str()
            ))),
        }
    }
}

/// The TOML text of a shipped baseline preset.
pub fn baseline_source(name: &str) -> Option<&'static str> {
    BASELINE_NAMES
        .iter()
        .position(|&n| n == name)
        .map(|i| BASELINE_SOURCES[i])
}

/// The TOML text of a shipped device preset.
pub fn preset_source(name: &str) -> Option<&'static str> {
    NAMES.iter().position(|&n| n == name).map(|i| SOURCES[i])
}

/// The TOML text of a shipped array preset.
pub fn array_source(name: &str) -> Option<&'static str> {
    ARRAY_NAMES
        .iter()
        .position(|&n| n == name)
        .map(|i| ARRAY_SOURCES[i])
}

fn parse<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, ArchError> {
    toml::from_str(text).map_err(|e| ArchError::Parse {
        origin: origin.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

/// Parses and validates device parameters from TOML text; `origin` names the source in errors.
pub fn parse_device(text: &str, origin: &str) -> Result<Device, ArchError> {
    parse::<DeviceParams>(text, origin)?.validate(origin)
}

/// Parses and validates an organisation from TOML text.
pub fn parse_array(text: &str, origin: &str) -> Result<Org, ArchError> {
    parse::<OrgParams>(text, origin)?.validate(origin)
}

/// Parses and validates a baseline machine from TOML text.
pub fn parse_baseline(text: &str, origin: &str) -> Result<Baseline, ArchError> {
    parse::<BaselineParams>(text, origin)?.validate(origin)
}

/// Loads a device: a shipped preset name, or else a path to a TOML file.
pub fn device(name_or_path: &str) -> Result<Device, ArchError> {
    device_with(name_or_path, &toml::Table::new())
}

/// Loads a device and overrides some of its keys (`overrides` holds keys of the device
/// file, e.g. `tmr = 4.0`); errors name the preset and the overridden keys.
pub fn device_with(name_or_path: &str, overrides: &toml::Table) -> Result<Device, ArchError> {
    device_from(&Source::named(name_or_path), overrides)
}

/// Loads an organisation and overrides some of its keys (nested tables merge key by key).
pub fn array_with(name_or_path: &str, overrides: &toml::Table) -> Result<Org, ArchError> {
    array_from(&Source::named(name_or_path), overrides)
}

/// [`device_with`] from any [`Source`].
pub fn device_from(src: &Source, overrides: &toml::Table) -> Result<Device, ArchError> {
    let loaded = src.load("device", preset_source, &NAMES)?;
    let (text, origin) = overridden(loaded, overrides, "cram.device_params")?;
    parse_device(&text, &origin)
}

/// [`array_with`] from any [`Source`].
pub fn array_from(src: &Source, overrides: &toml::Table) -> Result<Org, ArchError> {
    let loaded = src.load("array", array_source, &ARRAY_NAMES)?;
    let (text, origin) = overridden(loaded, overrides, "cram.array_params")?;
    parse_array(&text, &origin)
}

/// [`baseline`] from any [`Source`].
pub fn baseline_from(src: &Source) -> Result<Baseline, ArchError> {
    let (text, origin) = src.load("baseline", baseline_source, &BASELINE_NAMES)?;
    parse_baseline(&text, &origin)
}

/// A device source written out as an inline table of the keys it holds (a preset's or a
/// file's, as read now), named as the source names it (the preset or the path); an inline
/// source stays as it is. Overrides are not applied: a config keeps them apart, so that
/// they still apply when another source replaces this one (a sweep axis).
pub fn inline_device(src: &Source) -> Result<Source, ArchError> {
    inline_source(src, "device", preset_source, &NAMES)
}

/// [`inline_device`] for an array.
pub fn inline_array(src: &Source) -> Result<Source, ArchError> {
    inline_source(src, "array", array_source, &ARRAY_NAMES)
}

fn inline_source(
    src: &Source,
    kind: &'static str,
    preset: fn(&str) -> Option<&'static str>,
    names: &[&str],
) -> Result<Source, ArchError> {
    let Source::Named(name) = src else {
        return Ok(src.clone());
    };
    let (text, origin) = load(name, kind, preset, names)?;
    let mut table: toml::Table = parse(&text, &origin)?;
    table.insert("name".into(), toml::Value::String(name.clone()));
    Ok(Source::Inline(table))
}

/// The parameters as an inline [`Source`] (every key written out).
pub fn inline<T: serde::Serialize>(params: &T) -> Source {
    Source::Inline(toml::Table::try_from(params).expect("parameters serialize to a table"))
}

/// A loaded (text, origin) with `overrides` merged in, and an origin that says so.
fn overridden(
    (text, origin): (String, String),
    overrides: &toml::Table,
    what: &str,
) -> Result<(String, String), ArchError> {
    if overrides.is_empty() {
        return Ok((text, origin));
    }
    let mut doc: toml::Table = parse(&text, &origin)?;
    merge(&mut doc, overrides);
    let mut listed = Vec::new();
    list(overrides, "", &mut listed);
    Ok((
        doc.to_string(),
        format!("{origin} with {what} {}", listed.join(", ")),
    ))
}

/// `key.path = value` for every leaf of `t`.
fn list(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        match v {
            toml::Value::Table(sub) => list(sub, &format!("{prefix}{k}."), out),
            v => out.push(format!("{prefix}{k} = {v}")),
        }
    }
}

/// Merges `over` into `base`, table by table.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            // `tmr = 4` over `tmr = 5.0`: the integer is meant as a real number.
            (Some(toml::Value::Float(_)), &toml::Value::Integer(i)) => {
                base.insert(k.clone(), toml::Value::Float(i as f64));
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Loads an organisation: a shipped array preset name, or else a path to a TOML file.
pub fn array(name_or_path: &str) -> Result<Org, ArchError> {
    array_with(name_or_path, &toml::Table::new())
}

/// Loads a baseline machine: a shipped preset name, or else a path to a TOML file.
pub fn baseline(name_or_path: &str) -> Result<Baseline, ArchError> {
    baseline_from(&Source::named(name_or_path))
}

/// The text of a preset or a file, and the origin to quote in errors.
fn load(
    name_or_path: &str,
    kind: &'static str,
    preset: fn(&str) -> Option<&'static str>,
    names: &[&str],
) -> Result<(String, String), ArchError> {
    if let Some(src) = preset(name_or_path) {
        return Ok((src.to_owned(), format!("preset {name_or_path}")));
    }
    let path = Path::new(name_or_path);
    let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
        || name_or_path.contains('/')
        || path.extension().is_some();
    if !looks_like_path && !path.exists() {
        return Err(ArchError::UnknownPreset {
            kind,
            name: name_or_path.to_owned(),
            allowed: names.join(", "),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ArchError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok((text, name_or_path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_loads_and_round_trips() {
        for name in NAMES {
            let d = device(name).unwrap();
            assert_eq!(d.params.name, name);
            let again = toml::to_string(&d.params).unwrap();
            assert_eq!(parse_device(&again, "rt").unwrap(), d);
        }
    }

    #[test]
    fn every_array_preset_loads_and_round_trips() {
        for name in ARRAY_NAMES {
            let org = array(name).unwrap();
            let again = toml::to_string(&org.params).unwrap();
            assert_eq!(parse_array(&again, "rt").unwrap(), org);
        }
        assert!(array("nope").unwrap_err().to_string().contains("cram-1k"));
    }

    /// Issue 22: no number in an array preset is untagged. Every `key = number` line says
    /// on the same line whether it is verified, code, derived or an assumption, and the
    /// periphery keys derived from the node are left to it.
    #[test]
    fn every_array_number_is_tagged() {
        for name in ARRAY_NAMES {
            let src = array_source(name).unwrap();
            for line in src.lines() {
                let code = line.split('#').next().unwrap_or("");
                let Some((key, value)) = code.split_once('=') else {
                    continue;
                };
                if value.trim().parse::<f64>().is_err() {
                    continue;
                }
                let tagged = ["[V]", "[C]", "[D]", "[A]"]
                    .iter()
                    .any(|t| line.contains(&format!("# {t}")));
                assert!(tagged, "{name}: '{}' has no tag: {line}", key.trim());
            }
            let org = array(name).unwrap();
            assert_eq!(
                org.periphery.derived.len(),
                crate::org::DERIVED_KEYS.len(),
                "{name}"
            );
        }
    }

    #[test]
    fn every_baseline_preset_loads_and_round_trips() {
        for name in BASELINE_NAMES {
            let b = baseline(name).unwrap();
            assert_eq!(b.params.name, name);
            let again = toml::to_string(&b.params).unwrap();
            assert_eq!(parse_baseline(&again, "rt").unwrap(), b);
        }
        let e = baseline("tpu").unwrap_err().to_string();
        assert!(
            e.contains("baseline preset 'tpu'") && e.contains("cpu-ddr4"),
            "{e}"
        );
    }

    /// Every number of a shipped baseline carries its source or reason in a comment on its
    /// line (the preset files' header explains the tags).
    #[test]
    fn every_baseline_number_has_a_comment() {
        for name in BASELINE_NAMES {
            let text = baseline_source(name).unwrap();
            for (i, line) in text.lines().enumerate() {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let numeric = value.trim_start().starts_with(|c: char| c.is_ascii_digit());
                assert!(
                    !numeric || line.contains('#'),
                    "{name}.toml line {}: {} has no source comment",
                    i + 1,
                    key.trim()
                );
            }
        }
    }

    #[test]
    fn a_bad_baseline_value_names_the_key() {
        let text = baseline_source("cpu-ddr4")
            .unwrap()
            .replace("utilization = ", "utilization = 1.5 #");
        let e = parse_baseline(&text, "x.toml").unwrap_err().to_string();
        assert!(
            e.contains("x.toml") && e.contains("utilization") && e.contains("(0, 1]"),
            "{e}"
        );
    }

    /// A preset written out inline loads as the very same machine.
    #[test]
    fn inline_sources_load_like_their_presets() {
        let d = device("she-projected").unwrap();
        assert_eq!(
            device_from(&inline(&d.params), &toml::Table::new()).unwrap(),
            d
        );
        let o = array("cram-1k").unwrap();
        assert_eq!(
            array_from(&inline(&o.params), &toml::Table::new()).unwrap(),
            o
        );
        let b = baseline("nmp").unwrap();
        assert_eq!(baseline_from(&inline(&b.params)).unwrap(), b);
        assert_eq!(inline(&b.params).label(), "nmp");
        let mut t = toml::Table::new();
        t.insert("tmr".into(), toml::Value::Float(3.0));
        let over = device_from(&inline(&d.params), &t).unwrap();
        assert_eq!(over.params.tmr, 3.0);
    }

    #[test]
    fn unknown_preset_lists_the_shipped_ones() {
        let e = device("stt-tomorrow").unwrap_err().to_string();
        assert!(
            e.contains("stt-tomorrow") && e.contains("stt-today, stt-projected"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let text = format!("{}\nbogus_key = 3\n", preset_source("stt-today").unwrap());
        let e = parse_device(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("bogus_key"), "{e}");
    }
}
