//! Shipped technology presets (`configs/devices/*.toml`, embedded at build time) and loading
//! a device from a preset name or a TOML file.

use std::path::Path;

use crate::device::{Device, DeviceParams};
use crate::error::ArchError;

/// Names of the shipped device presets.
pub const NAMES: [&str; 3] = ["stt-today", "stt-projected", "she-projected"];

const SOURCES: [&str; 3] = [
    include_str!("../../configs/devices/stt-today.toml"),
    include_str!("../../configs/devices/stt-projected.toml"),
    include_str!("../../configs/devices/she-projected.toml"),
];

/// The TOML text of a shipped preset.
pub fn preset_source(name: &str) -> Option<&'static str> {
    NAMES.iter().position(|&n| n == name).map(|i| SOURCES[i])
}

/// Parses and validates device parameters from TOML text; `origin` names the source in errors.
pub fn parse_device(text: &str, origin: &str) -> Result<Device, ArchError> {
    let params: DeviceParams = toml::from_str(text).map_err(|e| ArchError::Parse {
        origin: origin.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    params.validate(origin)
}

/// Loads a device: a shipped preset name, or else a path to a TOML file.
pub fn device(name_or_path: &str) -> Result<Device, ArchError> {
    if let Some(src) = preset_source(name_or_path) {
        return parse_device(src, &format!("preset {name_or_path}"));
    }
    let path = Path::new(name_or_path);
    let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
        || name_or_path.contains('/')
        || path.extension().is_some();
    if !looks_like_path && !path.exists() {
        return Err(ArchError::UnknownPreset {
            name: name_or_path.to_owned(),
            allowed: NAMES.join(", "),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ArchError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_device(&text, name_or_path)
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
