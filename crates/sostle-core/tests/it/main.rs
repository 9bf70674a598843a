//! Integration tests of the engine: policy cases as data files (one YAML per case) picked up
//! by a glob runner, and properties of the loader.

mod cases;
mod loader;
