//! Integration tests of the `cramulator` package, linked as one test binary (faster to build).

mod cli;
mod fuzz;
mod ops;
mod props;
mod sweep;
