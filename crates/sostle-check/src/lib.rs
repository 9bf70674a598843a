//! `sostle test`'s run, as ripgrep's searcher is a library of its own: where the inputs are
//! (walked with the `ignore` crate, charts and overlays rendered), each file read and parsed
//! once, every document judged by the engine's one pass in parallel, and the findings handed
//! on in input order. It decides nothing itself — the engine does — and prints nothing: the
//! printers of `sostle-printer` read its [`findings`].

pub mod cases;
pub mod findings;
pub mod images;
pub mod inputs;
mod prescan;
mod read;
pub mod run;

pub use findings::{Chart, Located, Report, RunError, Skipped, Source, Summary, Totals};
pub use images::ImageVerifier;
pub use inputs::collect_sources;
pub use read::{ReadError, MAX_FILE_BYTES};
pub use run::{run, run_with, TestSettings};
