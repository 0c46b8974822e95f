//! Typed errors of the `cram-arch` crate: bad presets, unreadable files, invalid parameters.

use std::path::PathBuf;

/// Everything that can go wrong while loading or validating architecture parameters.
///
/// Every variant names the file (or preset), the key and the value, and says what is
/// allowed, so a user can fix the input without reading the source.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// A preset name that is not shipped and is not a readable file either.
    #[error("unknown {kind} preset '{name}': expected one of {allowed}, or a path to a .toml file")]
    UnknownPreset {
        /// What kind of preset (device, array, baseline).
        kind: &'static str,
        /// What the user asked for.
        name: String,
        /// The shipped preset names, comma-separated.
        allowed: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key, a missing key or a wrong type.
    #[error("{origin}: {message}")]
    Parse {
        /// File path or preset name.
        origin: String,
        /// The TOML parser's message (names the key and line).
        message: String,
    },
    /// A key parsed but its value is outside the physical range.
    #[error("{origin}: key `{key}` = {value}: {allowed}")]
    Invalid {
        /// File path or preset name.
        origin: String,
        /// Dotted key path.
        key: String,
        /// The offending value as written.
        value: String,
        /// What is allowed, with units.
        allowed: String,
    },
}

/// Range checks that name the origin (file or preset) and the key in their errors.
pub(crate) struct Checker<'a> {
    /// File path or preset name.
    pub origin: &'a str,
}

impl Checker<'_> {
    /// An `Invalid` error for `key` = `value`, saying what is allowed.
    pub fn bad(&self, key: &str, value: impl ToString, allowed: &str) -> ArchError {
        ArchError::Invalid {
            origin: self.origin.to_owned(),
            key: key.to_owned(),
            value: value.to_string(),
            allowed: allowed.to_owned(),
        }
    }

    /// `v` must be finite and in [lo, hi] (`unit` names the unit in the message).
    pub fn real(&self, key: &str, v: f64, lo: f64, hi: f64, unit: &str) -> Result<(), ArchError> {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(self.bad(key, v, &format!("must be between {lo} and {hi} {unit}")))
        }
    }

    /// `v` must be an integer in lo..=hi.
    pub fn count(&self, key: &str, v: u32, lo: u32, hi: u32) -> Result<(), ArchError> {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(self.bad(key, v, &format!("must be an integer in {lo}..={hi}")))
        }
    }
}
