//! Input and output around the experiments: the one atomic writer, rendering records as
//! text or Markdown, plot drawing, Slurm scripts and the sweep shard lock.
//!
//! This layer writes files; the experiments below it return records and never write a file
//! but through the sinks this layer hands them.

pub mod atomic;
pub mod lock;
pub mod plot;
pub mod render;
pub mod report;
pub mod shard;
pub mod slurm;
