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
}

impl Source {
    /// How the source is named in reports.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin(_) => "-".to_string(),
        }
    }
}

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

/// Expands paths into sources: directories recursively (`.yaml`, `.yml`, `.json`), sorted.
pub fn collect_sources(paths: &[PathBuf], errors: &mut Vec<RunError>) -> Vec<Source> {
    let mut out = Vec::new();
    let mut stdin_read = false;
    for p in paths {
        if p.as_os_str() == "-" {
            if stdin_read {
                continue;
            }
            stdin_read = true;
            let mut buf = Vec::new();
            match std::io::stdin()
                .lock()
                .take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut buf)
            {
                Ok(_) if buf.len() as u64 > MAX_FILE_BYTES => errors.push(RunError {
                    file: "-".into(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "stdin is larger than {} MiB; not read",
                        MAX_FILE_BYTES >> 20
                    ),
                }),
                Ok(_) => out.push(Source::Stdin(Arc::new(buf))),
                Err(e) => errors.push(RunError {
                    file: "-".into(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read stdin: {e}"),
                }),
            }
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut out, errors),
            Ok(_) => out.push(Source::File(p.clone())),
            Err(e) => errors.push(RunError {
                file: p.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<Source>, errors: &mut Vec<RunError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(RunError {
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read directory: {e}"),
            });
            return;
        }
    };
    let mut items: Vec<(PathBuf, bool)> = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        // Directory symlinks are not followed (no loops); file symlinks are.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        items.push((path, is_dir));
    }
    items.sort();
    for (path, is_dir) in items {
        if is_dir {
            walk(&path, out, errors);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(Source::File(path));
        }
    }
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
    labels: Vec<(String, Layer)>,
    asked: HashSet<String>,
}

fn read_source(src: &Source) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match src {
        Source::Stdin(b) => Ok(std::borrow::Cow::Borrowed(b.as_slice())),
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
    drop(bytes);
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
        out.resources.push(Located {
            file: name.clone(),
            document: doc.index,
            report,
        });
    }
    // Errors after the documents they follow (a syntax error ends the file).
    for e in loaded.errors {
        out.errors.push(err(e.line, e.col, e.message));
    }
    out.asked = recorder.asked.into_inner();
    out
}

/// Runs the check over all sources.
pub fn run(
    engine: &Engine,
    s: &TestSettings,
    sources: &[Source],
    mut errors: Vec<RunError>,
) -> Report {
    let empty = HashMap::new();
    let mut outcomes: Vec<FileOutcome> = sources
        .par_iter()
        .map(|src| check_one(engine, s, src, &empty))
        .collect();
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
