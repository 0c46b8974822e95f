//! `cram-arch`: the hardware side of cramulator — MTJ technology parameters, the
//! threshold-gate physics derived from them, chip organisation, and the von-Neumann baseline machines.
//!
//! This crate knows nothing about workloads or the simulator (ARCHITECTURE.md invariant).
//! Parameters are serde structs with `deny_unknown_fields`; `validate()` turns them into
//! values the rest of the program may trust.

pub mod baseline;
pub mod device;
pub mod error;
pub mod gates;
pub mod ir;
pub mod org;
pub mod presets;
pub mod tech;

pub use baseline::{Baseline, BaselineKind, BaselineParams, LevelParams};
pub use device::{Derived, Device, DeviceParams, SheChannel, Variant};
pub use error::ArchError;
pub use gates::{GateKind, GateLibrary, GateSpec};
pub use ir::{IrCheck, IrGateCheck, IrLimit};
pub use org::{BusParams, HostLinkParams, Lines, Org, OrgParams, PeripheralParams, Periphery};
pub use presets::Source;
