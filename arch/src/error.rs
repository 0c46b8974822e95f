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
