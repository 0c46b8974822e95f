//! Experiments: one function per experiment, typed inputs in, a record out.
//!
//! Each experiment takes a [`config::Config`] (or its own typed input) and returns a record
//! of [`crate::records`]; it prints nothing and writes no file of its own (a sweep shard
//! hands each finished point to the caller). The model below does the work.

pub mod calibrate;
pub mod config;
pub mod gates;
mod generation;
pub mod kernel;
pub mod map;
pub mod models;
pub mod options;
pub mod run;
pub mod simulate;
pub mod sweep;
pub mod validate;
