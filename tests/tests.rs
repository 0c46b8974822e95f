//! Integration tests of the `cramulator` package, linked as one test binary (faster to build).

mod cli;
mod common;
mod fuzz;
mod layering;
mod layers_api;
mod ops;
mod own_models;
mod props;
mod robust;
mod schemas;
mod sweep;
