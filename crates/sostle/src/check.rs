//! `sostle test`: collect inputs, parse each byte once, evaluate in parallel, build the report.
//!
//! A resource's layer may depend on a Namespace object anywhere in the input (its
//! `sostle-layer` label). Files are parsed and evaluated in one parallel pass with the layers
//! known from names and config; each file records which namespaces it asked about. Only when
//! the input labels a namespace that some file asked about is that file evaluated again with
//! the labels known — so the usual run parses every byte once and keeps one file's tree in
//! memory per thread, not the whole corpus.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use rayon::prelude::*;
use sostle_core::eval::{namespace_object_layer, NamespaceLabels};
use sostle_core::{yaml, Config, Engine, EvalContext, Layer, ResourceReport};

/// Largest input file read (larger files are reported, not read).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Everything `sostle test` needs, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct TestSettings {
    /// Paths as given (`-` is stdin).
    pub paths: Vec<PathBuf>,
    /// `--sostle-layer`.
    pub layer: Option<Layer>,
    /// Now.
    pub now: Timestamp,
    /// Token secret.
    pub token_secret: Option<Vec<u8>>,
    /// The ledger's witnesses, trials and locks, when a ledger is in use.
    pub ledger: Option<sostle_ledger::Snapshot>,
    /// User Rego policies (`--policy DIR`), compiled once.
    pub user: Option<sostle_rego::UserPolicies>,
}

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
        origins: Arc<crate::inputs::Origins>,
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
    fn origin(&self, line: u32) -> Option<Arc<str>> {
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
    /// Run errors in input order.
    pub errors: Vec<RunError>,
    /// Documents and files that are not Kubernetes objects, in input order.
    pub skipped: Vec<Skipped>,
    /// Helm charts whose templates were not read (and whether they were rendered).
    pub charts: Vec<Chart>,
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
}

impl Report {
    /// Counts the outcomes.
    pub fn summary(&self) -> Summary {
        use sostle_core::Outcome::*;
        let mut s = Summary {
            resources: self.resources.len(),
            errors: self.errors.len(),
            ..Summary::default()
        };
        for r in self.resources.iter().flat_map(|l| &l.report.results) {
            match r.outcome {
                Pass => s.pass += 1,
                Fail => s.fail += 1,
                Warn => s.warn += 1,
                Exempted => s.exempted += 1,
                Skip => s.skip += 1,
            }
        }
        s
    }

    /// (files whose every document was skipped, other skipped documents).
    pub fn not_kubernetes(&self) -> (usize, usize) {
        let with_resources: HashSet<&str> = self.resources.iter().map(|l| &*l.file).collect();
        let mut files = HashSet::new();
        let mut docs = 0;
        for sk in &self.skipped {
            if with_resources.contains(&*sk.file) {
                docs += 1;
            } else {
                files.insert(&*sk.file);
            }
        }
        (files.len(), docs)
    }

    /// Honoured exemptions that warn `expires in N days`.
    pub fn expiring_exemptions(&self) -> usize {
        self.resources
            .iter()
            .flat_map(|l| &l.report.results)
            .filter(|r| {
                r.exemption
                    .as_ref()
                    .is_some_and(|j| j.valid && !j.warnings.is_empty())
            })
            .count()
    }

    /// The exit status of SPEC §13.
    pub fn exit_code(&self, fail_on_warn: bool) -> u8 {
        let s = self.summary();
        if s.errors > 0 {
            3
        } else if s.fail > 0 {
            if fail_on_warn {
                2
            } else {
                1
            }
        } else if fail_on_warn && (s.warn > 0 || self.expiring_exemptions() > 0) {
            1
        } else {
            0
        }
    }
}

/// Expands paths into sources with the default walk (ignore files honoured, hidden entries
/// and chart templates left out).
pub fn collect_sources(paths: &[PathBuf], errors: &mut Vec<RunError>) -> Vec<Source> {
    crate::inputs::collect(paths, &crate::inputs::WalkOptions::default(), errors).sources
}

/// Records the namespaces a file asked about, answering from the labels known so far.
struct Recorder<'a> {
    known: &'a HashMap<String, Layer>,
    asked: RefCell<HashSet<String>>,
}

impl NamespaceLabels for Recorder<'_> {
    fn label_layer(&self, namespace: &str) -> Option<Layer> {
        if let Ok(mut asked) = self.asked.try_borrow_mut() {
            if !asked.contains(namespace) {
                asked.insert(namespace.to_string());
            }
        }
        self.known.get(namespace).copied()
    }
}

struct FileOutcome {
    resources: Vec<Located>,
    errors: Vec<RunError>,
    skipped: Vec<Skipped>,
    labels: Vec<(String, Layer)>,
    asked: HashSet<String>,
}

fn read_source(src: &Source) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match src {
        Source::Stdin(b) | Source::Rendered { bytes: b, .. } => {
            Ok(std::borrow::Cow::Borrowed(b.as_slice()))
        }
        Source::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| format!("cannot read: {e}"))?;
            let mut buf = Vec::new();
            f.take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut buf)
                .map_err(|e| format!("cannot read: {e}"))?;
            if buf.len() as u64 > MAX_FILE_BYTES {
                return Err(format!(
                    "larger than {} MiB; not read",
                    MAX_FILE_BYTES >> 20
                ));
            }
            Ok(std::borrow::Cow::Owned(buf))
        }
    }
}

fn check_one(
    engine: &Engine,
    s: &TestSettings,
    src: &Source,
    known: &HashMap<String, Layer>,
) -> FileOutcome {
    let name: Arc<str> = Arc::from(src.name());
    let mut out = FileOutcome {
        resources: Vec::new(),
        errors: Vec::new(),
        skipped: Vec::new(),
        labels: Vec::new(),
        asked: HashSet::new(),
    };
    let err = |line: u32, column: u32, message: String| RunError {
        file: name.to_string(),
        line,
        column,
        message,
    };
    let bytes = match read_source(src) {
        Ok(b) => b,
        Err(m) => {
            out.errors.push(err(0, 0, m));
            return out;
        }
    };
    let loaded = yaml::load_bytes(&bytes);
    // A file of template expressions (`{{ … }}`) that does not parse is not a manifest yet:
    // skipped whole, with the hint to render it. A file that does not parse otherwise is an
    // error, as ever.
    if !loaded.errors.is_empty()
        && matches!(src, Source::File(_))
        && bytes.windows(2).any(|w| w == b"{{")
    {
        out.skipped.push(Skipped {
            file: name,
            line: 0,
            document: None,
            reason: TEMPLATE,
        });
        return out;
    }
    let recorder = Recorder {
        known,
        asked: RefCell::new(HashSet::new()),
    };
    let ctx = EvalContext {
        now: s.now,
        layer_override: s.layer,
        namespaces: &recorder,
        token_secret: s.token_secret.as_deref(),
        locks: s
            .ledger
            .as_ref()
            .map(|l| l as &dyn sostle_core::eval::LockRegistry),
        ledger: s
            .ledger
            .as_ref()
            .map(|l| l as &dyn sostle_core::exemption::ExemptionLedger),
    };
    // One engine clone per file (and so per worker thread at a time).
    let mut user = s.user.clone();
    for doc in &loaded.documents {
        // A document without `kind` (a workflow, a values file, a kustomization without kind)
        // is not a Kubernetes object: skipped and counted. One with `kind` is judged, broken or not.
        if doc.root.as_map().is_none() || doc.root.get("kind").is_none() {
            out.skipped.push(Skipped {
                file: name.clone(),
                line: doc.root.pos.line,
                document: Some(doc.index),
                reason: NOT_KUBERNETES,
            });
            continue;
        }
        let mut report = engine.evaluate(&doc.root, &ctx);
        if let Some(u) = user.as_mut() {
            let native = report.results.len();
            // Out of scope (unlayered, kube-system & co): never denied, user rules included.
            let governed = report.layer.layer().is_some();
            match u.evaluate(&doc.root.to_json()) {
                Ok(outcomes) => {
                    for (rule, outcome) in u.rules.iter().zip(outcomes) {
                        let outcome = if governed {
                            outcome
                        } else {
                            sostle_rego::UserOutcome::Excepted
                        };
                        let (outcome, violations) = match outcome {
                            sostle_rego::UserOutcome::Pass => {
                                (sostle_core::Outcome::Pass, Vec::new())
                            }
                            sostle_rego::UserOutcome::Excepted => {
                                (sostle_core::Outcome::Skip, Vec::new())
                            }
                            sostle_rego::UserOutcome::Findings(f) => (
                                match rule.kind {
                                    sostle_rego::RuleKind::Deny => sostle_core::Outcome::Fail,
                                    sostle_rego::RuleKind::Warn => sostle_core::Outcome::Warn,
                                },
                                f.into_iter()
                                    .map(|x| sostle_core::Violation {
                                        container: None,
                                        pos: x
                                            .path
                                            .as_deref()
                                            .map_or(doc.root.pos, |p| doc.root.locate_dotted(p)),
                                        path: x.path.unwrap_or_default(),
                                        message: x.msg,
                                        fix: format!("see {}", rule.id()).into(),
                                    })
                                    .collect(),
                            ),
                        };
                        report.results.push(sostle_core::PolicyResult {
                            policy: Arc::from(rule.id().as_str()),
                            outcome,
                            violations,
                            exemption: None,
                        });
                    }
                    let (resource, layer) = (report.resource.clone(), report.layer);
                    if let Some(user_results) = report.results.get_mut(native..) {
                        engine.judge_exemptions(
                            report.exemption.as_ref(),
                            &resource,
                            layer,
                            user_results,
                            &ctx,
                        );
                    }
                }
                Err(e) => out.errors.push(err(
                    doc.root.pos.line,
                    doc.root.pos.col,
                    format!("Rego evaluation failed: {e}"),
                )),
            }
        }
        if report.resource.kind == "Namespace" {
            match namespace_object_layer(&doc.root) {
                Some(Ok(l)) => out.labels.push((report.resource.name.clone(), l)),
                Some(Err(m)) => {
                    let p = doc.root.locate(&["metadata", "labels", "sostle-layer"]);
                    out.errors.push(err(p.line, p.col, m));
                }
                None => {}
            }
        }
        for e in &report.errors {
            let field = if e.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", e.path)
            };
            out.errors
                .push(err(e.pos.line, e.pos.col, format!("{field}{}", e.message)));
        }
        let lines = source_lines(&bytes, &report);
        out.resources.push(Located {
            file: name.clone(),
            document: doc.index,
            origin: src.origin(doc.root.pos.line),
            report,
            lines,
        });
    }
    // Errors after the documents they follow (a syntax error ends the file).
    for e in loaded.errors {
        out.errors.push(err(e.line, e.col, e.message));
    }
    out.asked = recorder.asked.into_inner();
    out
}

/// The source lines the findings of `report` point at (each once, at most 240 characters).
fn source_lines(bytes: &[u8], report: &ResourceReport) -> Vec<(u32, Box<str>)> {
    let mut wanted: Vec<u32> = report
        .results
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                sostle_core::Outcome::Fail | sostle_core::Outcome::Warn
            )
        })
        .flat_map(|r| r.violations.iter().map(|v| v.pos.line))
        .filter(|l| *l > 0)
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = Vec::with_capacity(wanted.len());
    let mut want = wanted.iter().peekable();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let Some(&&w) = want.peek() else { break };
        if n == w {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\r');
            let clipped: String = text.chars().take(240).collect();
            out.push((n, clipped.into_boxed_str()));
            want.next();
        }
    }
    out
}

/// A progress line on stderr (`checked N/M files`) for runs longer than a second, only when
/// stderr is a terminal; cleared when the run ends.
struct Progress {
    done: Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(total: usize) -> Progress {
        use std::io::IsTerminal;
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        if total == 0 || !std::io::stderr().is_terminal() {
            return Progress {
                done,
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let seen = done.clone();
        let thread = std::thread::spawn(move || {
            use std::io::Write;
            use std::sync::mpsc::RecvTimeoutError;
            if !matches!(
                rx.recv_timeout(std::time::Duration::from_secs(1)),
                Err(RecvTimeoutError::Timeout)
            ) {
                return;
            }
            loop {
                let n = seen.load(std::sync::atomic::Ordering::Relaxed);
                let _ = write!(std::io::stderr(), "\rchecked {n}/{total} files");
                if !matches!(
                    rx.recv_timeout(std::time::Duration::from_millis(100)),
                    Err(RecvTimeoutError::Timeout)
                ) {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K");
                    return;
                }
            }
        });
        Progress {
            done,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn tick(&self) {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the check over all sources.
pub fn run(
    engine: &Engine,
    s: &TestSettings,
    sources: &[Source],
    mut errors: Vec<RunError>,
) -> Report {
    let empty = HashMap::new();
    let progress = Progress::start(sources.len());
    let mut outcomes: Vec<FileOutcome> = sources
        .par_iter()
        .map(|src| {
            let o = check_one(engine, s, src, &empty);
            progress.tick();
            o
        })
        .collect();
    drop(progress);
    // Namespace labels found anywhere in the input.
    let mut labels: HashMap<String, Layer> = HashMap::new();
    for o in &outcomes {
        for (ns, l) in &o.labels {
            labels.entry(ns.clone()).or_insert(*l);
        }
    }
    if !labels.is_empty() {
        let redo: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| o.asked.iter().any(|ns| labels.contains_key(ns)))
            .map(|(i, _)| i)
            .collect();
        let again: Vec<(usize, FileOutcome)> = redo
            .par_iter()
            .filter_map(|&i| {
                sources
                    .get(i)
                    .map(|src| (i, check_one(engine, s, src, &labels)))
            })
            .collect();
        for (i, o) in again {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = o;
            }
        }
    }
    let mut report = Report {
        now: s.now,
        epoch_day: engine.epoch_day(s.now),
        ..Report::default()
    };
    for o in outcomes {
        report.resources.extend(o.resources);
        errors.extend(o.errors);
        report.skipped.extend(o.skipped);
    }
    report.errors = errors;
    report
}

/// Loads the config file, or the built-in default.
pub fn load_config(path: Option<&Path>) -> Result<Config, String> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read config: {e}", path.display()))?;
    Config::from_yaml_with(&text, &sostle_webhook::key_file_reader(path)).map_err(|e| {
        if e.line > 0 {
            format!(
                "{}:{}:{}: invalid config: {e}",
                path.display(),
                e.line,
                e.col
            )
        } else {
            format!("{}: invalid config: {e}", path.display())
        }
    })
}
