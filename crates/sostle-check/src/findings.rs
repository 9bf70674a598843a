//! What a run finds, the types every printer reads: the inputs (`Source`), each resource with
//! where it came from (`Located`), the problems of the run (`RunError`), what was skipped and
//! why, the counts (`Summary`, `Totals`) and the whole `Report`.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use sostle_core::ResourceReport;

pub use sostle_core::report::{COMBINED, NOT_KUBERNETES_KIND};

/// For a rendered input: (first output line of a document, the file it came from), in order.
pub type Origins = Vec<(u32, Arc<str>)>;

/// One input.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// Standard input, read once.
    Stdin(Arc<Vec<u8>>),
    /// The output of a renderer (`helm template`, `kustomize build`), with the file each of
    /// its documents came from.
    Rendered {
        /// The command, as findings name it (`helm template charts/podinfo`).
        name: String,
        /// Its output.
        bytes: Arc<Vec<u8>>,
        /// (first output line of a document, the file it came from), in order.
        origins: Arc<Origins>,
    },
}

impl Source {
    /// How the source is named in reports.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin(_) => "-".to_string(),
            Source::Rendered { name, .. } => name.clone(),
        }
    }

    /// The file a document starting at `line` came from, for rendered sources.
    pub(crate) fn origin(&self, line: u32) -> Option<Arc<str>> {
        let Source::Rendered { origins, .. } = self else {
            return None;
        };
        origins
            .iter()
            .take_while(|(l, _)| *l <= line)
            .last()
            .map(|(_, f)| f.clone())
    }
}

/// A document (or a whole file) that is not a Kubernetes object: skipped and counted, not an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The input.
    pub file: Arc<str>,
    /// Where the document starts (0: the whole file).
    pub line: u32,
    /// The document number, when one document was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// Why.
    pub reason: &'static str,
}

/// Why a document was skipped: it has no `kind`.
pub const NOT_KUBERNETES: &str = "no kind: not a Kubernetes object";
/// Why a file was skipped: it does not parse and holds template expressions.
pub const TEMPLATE: &str =
    "a template ({{ … }}) that does not parse as YAML: render it and check the output";

/// A problem of the run: an input that could not be read or parsed, an object of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// The input.
    pub file: String,
    /// 1-based line (0: the whole file).
    pub line: u32,
    /// 1-based column (0: unknown).
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

/// One resource with where it came from.
#[derive(Debug, Clone)]
pub struct Located {
    /// The input's name.
    pub file: Arc<str>,
    /// Document number within the file.
    pub document: usize,
    /// The evaluation.
    pub report: ResourceReport,
    /// For a rendered input: the file the document came from (a chart template, a kustomize
    /// base).
    pub origin: Option<Arc<str>>,
    /// The source lines findings point at (line number, text), for showing them.
    pub lines: Vec<(u32, Box<str>)>,
}

impl Located {
    /// The text of source line `line`, when a finding points at it.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        self.lines
            .iter()
            .find(|(l, _)| *l == line)
            .map(|(_, t)| &**t)
    }
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The instant the run evaluated at.
    pub now: Timestamp,
    /// Epoch day of the run.
    pub epoch_day: i64,
    /// Resources in input order.
    pub resources: Vec<Located>,
    /// The counts, run errors and skipped inputs, as the run left them.
    pub totals: Totals,
}

/// A Helm chart met in the input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Chart {
    /// Its directory.
    pub path: String,
    /// Whether its rendered output was checked (`--render-charts`).
    pub rendered: bool,
}

impl Chart {
    /// The note a person reads.
    pub fn note(&self) -> String {
        if self.rendered {
            format!(
                "chart {}: rendered with `helm template {}` and checked",
                self.path, self.path
            )
        } else {
            format!(
                "chart {}: render it, e.g. helm template {} | sostle test -",
                self.path, self.path
            )
        }
    }
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Resources evaluated.
    pub resources: usize,
    /// `pass` results.
    pub pass: usize,
    /// `fail` results.
    pub fail: usize,
    /// `warn` results.
    pub warn: usize,
    /// `exempted` results.
    pub exempted: usize,
    /// `skip` results.
    pub skip: usize,
    /// Run errors.
    pub errors: usize,
    /// Files left out by an ignore file or for being hidden that hold Kubernetes objects
    /// (named under `ignored`).
    pub ignored: usize,
}

impl Summary {
    /// Adds the resources and the outcomes of their results.
    pub(crate) fn count(&mut self, resources: &[Located]) {
        use sostle_core::Outcome::*;
        self.resources += resources.len();
        for r in resources.iter().flat_map(|l| &l.report.results) {
            match r.outcome {
                Pass => self.pass += 1,
                Fail => self.fail += 1,
                Warn => self.warn += 1,
                Exempted => self.exempted += 1,
                Skip => self.skip += 1,
            }
        }
    }
}

/// What a run leaves once every file's results were handed on: the counts, and the small
/// lists printed last.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Counts per outcome.
    pub summary: Summary,
    /// Honoured exemptions that warn (`expires in N days`, hash-only approvals).
    pub expiring: usize,
    /// Run errors in input order.
    pub errors: Vec<RunError>,
    /// Skipped documents and files in input order.
    pub skipped: Vec<Skipped>,
    /// Files whose every document was skipped.
    pub skipped_files: usize,
    /// Skipped documents in files that also held Kubernetes objects.
    pub skipped_documents: usize,
}

impl Totals {
    /// Counts one file's resources and what was skipped of it.
    pub(crate) fn add(&mut self, resources: &[Located], skipped: &[Skipped]) {
        self.summary.count(resources);
        for r in resources.iter().flat_map(|l| &l.report.results) {
            if r.exemption
                .as_ref()
                .is_some_and(|j| j.valid && !j.warnings.is_empty())
            {
                self.expiring += 1;
            }
        }
        if !skipped.is_empty() {
            if resources.is_empty() {
                self.skipped_files += 1;
            } else {
                self.skipped_documents += skipped.len();
            }
        }
    }
}
