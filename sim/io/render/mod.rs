//! Records rendered for a person: text tables and Markdown, one module per command.

pub mod gates;
pub mod kernel;
pub mod map;
pub mod run;
pub mod simulate;
pub mod validate;
