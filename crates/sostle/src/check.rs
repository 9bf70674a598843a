//! `sostle test`: collect inputs, parse each byte once, evaluate in parallel, and hand the
//! results on in input order as files complete, so memory stays flat at any input size.
//!
//! A resource's layer may depend on a Namespace object anywhere in the input (its
//! `sostle-layer` label). Before the main pass, the files that may declare a Namespace (a byte
//! scan for `kind: Namespace` in any YAML or JSON spelling) are parsed once for those labels; then every file is
//! evaluated once with them known, in chunks of files evaluated in parallel and passed to the
//! printer in order, then dropped.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use rayon::prelude::*;
use sostle_core::eval::namespace_object_layer;
use sostle_core::{manifest, Config, Engine, EvalContext, Layer, ResourceReport};

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
    /// Image signature checks (`--verify-images`).
    pub images: Option<Arc<ImageVerifier>>,
    /// `--combine`: user rules judge all documents at once, as one array of `{path, contents}`
    /// (conftest's combined input), reported as the input `Combined`.
    pub combine: bool,
    /// `--parser json`: inputs must be JSON (YAML-only syntax is an error).
    pub json_only: bool,
    /// `--as`: judge as this requester (the L3 gate then checks who deploys, as the door does).
    pub requester: Option<sostle_core::config::Requester>,
}

/// `--verify-images`: the config's `images` policy checked at the registry, from the worker
/// threads (each call blocks on a small I/O runtime; verdicts are cached per digest).
pub struct ImageVerifier {
    checker: sostle_sign::checker::Checker,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for ImageVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageVerifier")
            .field("checker", &self.checker)
            .finish_non_exhaustive()
    }
}

impl ImageVerifier {
    /// A verifier for the config's `images` policy; an error when it names no signers.
    pub fn new(policy: &sostle_core::images::ImagePolicy) -> anyhow::Result<ImageVerifier> {
        if !policy.enabled() {
            anyhow::bail!(
                "--verify-images: the config requires no signatures (images.signers is empty, or images.require names no layer)"
            );
        }
        let checker = sostle_sign::checker::Checker::new(
            policy,
            &sostle_core::mecipol::LockPolicy::default(),
            Arc::new(sostle_sign::checker::Silent),
        )
        .map_err(|e| anyhow::anyhow!("invalid config: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(ImageVerifier { checker, runtime })
    }
}

impl sostle_core::images::ImageSignatures for ImageVerifier {
    fn check(&self, image: &str, layer: Layer) -> Option<sostle_core::images::ImageCheck> {
        self.runtime.block_on(self.checker.check(image, layer))
    }
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

/// The results of user rules (`outcomes`, in `u.rules` order) on a document at `layer`: a
/// rule the config scopes to other layers is `skip`; a finding's `path` is located by `locate`.
fn user_results(
    config: &Config,
    u: &sostle_rego::UserPolicies,
    outcomes: Vec<sostle_rego::UserOutcome>,
    layer: Option<Layer>,
    locate: impl Fn(Option<&str>) -> manifest::Pos,
) -> Vec<sostle_core::PolicyResult> {
    let mut out = Vec::with_capacity(u.rules.len());
    for (rule, outcome) in u.rules.iter().zip(outcomes) {
        let in_scope = config
            .user_rule_layers(&rule.id())
            .is_none_or(|set| layer.is_some_and(|l| set.contains(l)));
        let outcome = if in_scope {
            outcome
        } else {
            sostle_rego::UserOutcome::Excepted
        };
        let (outcome, violations) = match outcome {
            sostle_rego::UserOutcome::Pass => (sostle_core::Outcome::Pass, Vec::new()),
            sostle_rego::UserOutcome::Excepted => (sostle_core::Outcome::Skip, Vec::new()),
            sostle_rego::UserOutcome::Findings(f) => (
                match rule.kind {
                    sostle_rego::RuleKind::Deny => sostle_core::Outcome::Fail,
                    sostle_rego::RuleKind::Warn => sostle_core::Outcome::Warn,
                },
                f.into_iter()
                    .map(|x| sostle_core::Violation {
                        container: None,
                        pos: locate(x.path.as_deref()),
                        path: x.path.unwrap_or_default(),
                        message: x.msg,
                        fix: format!("see {}", rule.id()).into(),
                    })
                    .collect(),
            ),
        };
        out.push(sostle_core::PolicyResult {
            policy: Arc::from(rule.id().as_str()),
            outcome,
            violations,
            exemption: None,
        });
    }
    out
}

/// The kind shown for a document that has none (a values file, a CI workflow) when user
/// policies judge it.
pub const NOT_KUBERNETES_KIND: &str = "(no kind)";

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
    fn count(&mut self, resources: &[Located]) {
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

/// Expands paths into sources with the default walk (ignore files honoured, hidden entries
/// and chart templates left out).
pub fn collect_sources(paths: &[PathBuf], errors: &mut Vec<RunError>) -> Vec<Source> {
    crate::inputs::collect(paths, &crate::inputs::WalkOptions::default(), errors).sources
}

struct FileOutcome {
    resources: Vec<Located>,
    errors: Vec<RunError>,
    skipped: Vec<Skipped>,
    /// With `--combine`: every document of the file, for the one combined evaluation.
    combined: Vec<(Arc<str>, serde_json::Value)>,
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
    cached: Option<Vec<u8>>,
) -> FileOutcome {
    let name: Arc<str> = Arc::from(src.name());
    let mut out = FileOutcome {
        resources: Vec::new(),
        errors: Vec::new(),
        skipped: Vec::new(),
        combined: Vec::new(),
    };
    let err = |line: u32, column: u32, message: String| RunError {
        file: name.to_string(),
        line,
        column,
        message,
    };
    let read = match cached {
        Some(b) => Ok(std::borrow::Cow::Owned(b)),
        None => read_source(src),
    };
    let bytes = match read {
        Ok(b) => b,
        Err(m) => {
            out.errors.push(err(0, 0, m));
            return out;
        }
    };
    if s.json_only {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
            out.errors.push(err(
                u32::try_from(e.line()).unwrap_or(u32::MAX),
                u32::try_from(e.column()).unwrap_or(u32::MAX),
                format!("not JSON (--parser json): {e}"),
            ));
            return out;
        }
    }
    let loaded = manifest::load_bytes(&bytes);
    // A template that does not parse is not a manifest yet: skipped whole, with the hint to
    // render it. It is a template when the first parse error is on a line with a template
    // expression (`{{`), or the line before it; any other parse error is an error, as ever (a
    // ConfigMap holding Prometheus `{{ $labels }}` text does not excuse a syntax error elsewhere).
    let mut line_index = LineIndex::default();
    let template_error = loaded.errors.first().is_some_and(|e| {
        (e.line.saturating_sub(1)..=e.line).any(|n| {
            line_index
                .line(&bytes, n)
                .is_some_and(|l| memchr::memmem::find(l, b"{{").is_some())
        })
    });
    if template_error && matches!(src, Source::File(_)) {
        out.skipped.push(Skipped {
            file: name,
            line: 0,
            document: None,
            reason: TEMPLATE,
        });
        return out;
    }
    let ctx = EvalContext {
        requester: s.requester.as_ref(),
        now: s.now,
        layer_override: s.layer,
        namespaces: known,
        token_secret: s.token_secret.as_deref(),
        locks: s
            .ledger
            .as_ref()
            .map(|l| l as &dyn sostle_core::mecipol::LockRegistry),
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
        // With user policies it is still judged by them, as conftest judges any document.
        if s.combine && user.is_some() {
            out.combined.push((name.clone(), doc.root.to_json()));
        }
        let kindless = doc.root.as_map().is_none() || doc.root.get("kind").is_none();
        if kindless && (user.is_none() || s.combine) {
            out.skipped.push(Skipped {
                file: name.clone(),
                line: doc.root.pos.line,
                document: Some(doc.index),
                reason: NOT_KUBERNETES,
            });
            continue;
        }
        let mut report = if kindless {
            ResourceReport {
                resource: sostle_core::report::ResourceRef {
                    kind: NOT_KUBERNETES_KIND.into(),
                    name: doc
                        .root
                        .get("metadata")
                        .and_then(|m| m.get("name"))
                        .and_then(manifest::Node::as_str)
                        .map_or_else(|| format!("document {}", doc.index + 1), str::to_string),
                    ..Default::default()
                },
                pos: doc.root.pos,
                layer: sostle_core::report::LayerStatus::Unlayered,
                epoch_day: engine.epoch_day(s.now),
                results: Vec::new(),
                errors: Vec::new(),
                exemption: None,
            }
        } else {
            engine.evaluate(&doc.root, &ctx)
        };
        if let (Some(v), Some(layer)) = (&s.images, report.layer.layer()) {
            if let Some(r) =
                sostle_core::images::signature_result(&doc.root, layer, v.as_ref(), false)
            {
                report.results.push(r);
            }
        }
        if let Some(u) = user.as_mut().filter(|_| !s.combine) {
            let native = report.results.len();
            // User rules judge every document, as conftest does, whatever its layer (unlayered,
            // kube-system & co included); a rule the config scopes to layers
            // (suite.userPolicyScope) judges only documents at those layers.
            let layer = report.layer.layer();
            match u.evaluate(&doc.root.to_json()) {
                Ok(outcomes) => {
                    report
                        .results
                        .extend(user_results(engine.config(), u, outcomes, layer, |p| {
                            p.map_or(doc.root.pos, |p| doc.root.locate_dotted(p))
                        }));
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
                Some(Ok(_)) => {}
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
        let lines = source_lines(&bytes, &mut line_index, &report);
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
    out
}

/// Where each line of a file starts, built once per file and only when a finding needs a line.
#[derive(Default)]
struct LineIndex(Option<Vec<usize>>);

impl LineIndex {
    /// The text of 1-based line `n` (without its line ending).
    fn line<'b>(&mut self, bytes: &'b [u8], n: u32) -> Option<&'b [u8]> {
        let starts = self.0.get_or_insert_with(|| {
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1))
                .collect()
        });
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        let start = *starts.get(i)?;
        let end = starts
            .get(i + 1)
            .map_or(bytes.len(), |e| e.saturating_sub(1));
        bytes.get(start..end.max(start))
    }
}

/// The source lines the findings of `report` point at (each once, at most 240 characters).
fn source_lines(
    bytes: &[u8],
    index: &mut LineIndex,
    report: &ResourceReport,
) -> Vec<(u32, Box<str>)> {
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
    wanted.sort_unstable();
    wanted.dedup();
    wanted
        .into_iter()
        .filter_map(|n| {
            let line = index.line(bytes, n)?;
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\r');
            let clipped: String = text.chars().take(240).collect();
            Some((n, clipped.into_boxed_str()))
        })
        .collect()
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

/// Files evaluated in parallel before their results are handed on (and dropped): enough to keep
/// both cores busy, few enough that a chunk's reports are a few MiB.
const CHUNK: usize = 128;

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
    fn add(&mut self, o: &FileOutcome) {
        self.summary.count(&o.resources);
        for r in o.resources.iter().flat_map(|l| &l.report.results) {
            if r.exemption
                .as_ref()
                .is_some_and(|j| j.valid && !j.warnings.is_empty())
            {
                self.expiring += 1;
            }
        }
        if !o.skipped.is_empty() {
            if o.resources.is_empty() {
                self.skipped_files += 1;
            } else {
                self.skipped_documents += o.skipped.len();
            }
        }
    }

    /// The exit status of SPEC §13.
    pub fn exit_code(&self, fail_on_warn: bool) -> u8 {
        crate::exit::of_test(&self.summary, self.expiring, fail_on_warn)
    }
}

/// Whether `bytes` may hold a Namespace object: a `kind` key whose value is `Namespace` — in
/// block or flow style or JSON, quoted or not, with a tag (`!!str`) or an anchor (`&k`) before
/// it, on the same line or the next. A cheap byte scan, so only those files are parsed before
/// the main pass (CRDs say "Namespace" in their prose a lot). Not seen: a kind given by an
/// alias (`kind: *k`) or spelled with escapes; such a Namespace is judged, but its label does not
/// set other files' layers (docs/decisions.md).
fn declares_namespace(bytes: &[u8]) -> bool {
    const NS: &[u8] = b"Namespace";
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    for i in memchr::memmem::find_iter(bytes, NS) {
        let after = bytes.get(i + NS.len()).copied();
        if !matches!(
            after,
            None | Some(b'"' | b'\'' | b' ' | b'\t' | b'\r' | b'\n' | b',' | b'}')
        ) {
            continue;
        }
        // Walk back over quotes, spaces and newlines, then tags and anchors, to the colon.
        let mut j = i;
        let back = |j: &mut usize| {
            while *j > 0
                && bytes
                    .get(*j - 1)
                    .is_some_and(|c| is_space(*c) || *c == b'"' || *c == b'\'')
            {
                *j -= 1;
            }
        };
        back(&mut j);
        // A tag or an anchor: a run of non-space bytes starting with `!` or `&`.
        for _ in 0..2 {
            let mut k = j;
            while k > 0
                && bytes
                    .get(k - 1)
                    .is_some_and(|c| !is_space(*c) && *c != b':')
            {
                k -= 1;
            }
            if k < j && matches!(bytes.get(k), Some(b'!' | b'&')) {
                j = k;
                back(&mut j);
            }
        }
        if j == 0 || bytes.get(j - 1) != Some(&b':') {
            continue;
        }
        j -= 1;
        back(&mut j);
        if bytes.get(..j).is_some_and(|b| b.ends_with(b"kind")) {
            return true;
        }
    }
    false
}

/// An input up to this size is read once: the label pass keeps its bytes for the main pass.
/// A larger one is read twice, so memory stays flat.
const KEEP_BYTES: usize = 16 << 20;

/// The labels, and the bytes of the files for the main pass when the whole input fits in
/// [`KEEP_BYTES`] (else none).
type Prescan = (HashMap<String, Layer>, Vec<Option<Vec<u8>>>);

/// One file's labels, and its bytes when kept.
type FileLabels = (Vec<(String, Layer)>, Option<Vec<u8>>);

fn namespace_labels(sources: &[Source]) -> Prescan {
    let kept = std::sync::atomic::AtomicUsize::new(0);
    let found: Vec<FileLabels> = sources
        .par_iter()
        .map(|src| {
            let Ok(bytes) = read_source(src) else {
                return (Vec::new(), None);
            };
            let labels = namespace_labels_of(&bytes);
            let keep = match bytes {
                std::borrow::Cow::Owned(b)
                    if kept.fetch_add(b.len(), std::sync::atomic::Ordering::Relaxed) + b.len()
                        <= KEEP_BYTES =>
                {
                    Some(b)
                }
                _ => None,
            };
            (labels, keep)
        })
        .collect();
    let fits = kept.load(std::sync::atomic::Ordering::Relaxed) <= KEEP_BYTES;
    let mut labels = HashMap::new();
    let mut cache = Vec::with_capacity(found.len());
    for (found, keep) in found {
        for (ns, l) in found {
            labels.entry(ns).or_insert(l);
        }
        cache.push(keep.filter(|_| fits));
    }
    (labels, cache)
}

/// The `sostle-layer` labels of the Namespace objects of one input.
fn namespace_labels_of(bytes: &[u8]) -> Vec<(String, Layer)> {
    if !declares_namespace(bytes) {
        return Vec::new();
    }
    let loaded = manifest::load_bytes(bytes);
    loaded
        .documents
        .iter()
        .filter(|d| d.root.get("kind").and_then(manifest::Node::as_str) == Some("Namespace"))
        .filter_map(|d| {
            let name = d
                .root
                .get_path(&["metadata", "name"])
                .and_then(manifest::Node::as_str)?;
            match namespace_object_layer(&d.root) {
                Some(Ok(l)) => Some((name.to_string(), l)),
                _ => None,
            }
        })
        .collect()
}

/// Runs the check over all sources, handing each file's resources to `on_file` in input order
/// as soon as its chunk is done; returns the totals (counts, errors, skipped).
pub fn run_with(
    engine: &Engine,
    s: &TestSettings,
    sources: &[Source],
    errors: Vec<RunError>,
    mut on_file: impl FnMut(Vec<Located>) -> std::io::Result<()>,
) -> std::io::Result<Totals> {
    // Started before the label pass: on a large input reading every file is part of the wait.
    let progress = Progress::start(sources.len());
    let (labels, mut cache) = namespace_labels(sources);
    let mut totals = Totals {
        errors,
        ..Totals::default()
    };
    // Chunks are evaluated on the rayon pool by one thread while this one prints the chunk
    // before (a channel of one chunk: evaluation runs at most one chunk ahead of the printer,
    // so memory stays at about two chunks, and both cores stay busy while printing).
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<FileOutcome>>(0);
    std::thread::scope(|scope| {
        let labels = &labels;
        let progress = &progress;
        scope.spawn(move || {
            for (chunk, kept) in sources.chunks(CHUNK).zip(cache.chunks_mut(CHUNK)) {
                let outcomes: Vec<FileOutcome> = chunk
                    .par_iter()
                    .zip(kept.par_iter_mut())
                    .map(|(src, bytes)| {
                        let o = check_one(engine, s, src, labels, bytes.take());
                        progress.tick();
                        o
                    })
                    .collect();
                if tx.send(outcomes).is_err() {
                    // The printer stopped (a write failed): stop evaluating.
                    return;
                }
            }
        });
        let mut combined: Vec<(Arc<str>, serde_json::Value)> = Vec::new();
        for outcomes in rx {
            for mut o in outcomes {
                totals.add(&o);
                totals.errors.append(&mut o.errors);
                totals.skipped.append(&mut o.skipped);
                combined.append(&mut o.combined);
                on_file(o.resources)?;
            }
        }
        if let (true, Some(u)) = (s.combine, s.user.as_ref()) {
            let o = combined_outcome(engine, u, combined, s);
            totals.add(&o);
            totals.errors.extend(o.errors);
            on_file(o.resources)?;
        }
        Ok::<(), std::io::Error>(())
    })?;
    drop(progress);
    totals.summary.errors = totals.errors.len();
    Ok(totals)
}

/// `--combine`: the user rules on every document at once — conftest's combined input, an array
/// of `{"path", "contents"}` sorted by path — reported as one resource of the input `Combined`.
fn combined_outcome(
    engine: &Engine,
    u: &sostle_rego::UserPolicies,
    mut docs: Vec<(Arc<str>, serde_json::Value)>,
    s: &TestSettings,
) -> FileOutcome {
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    let input = serde_json::Value::Array(
        docs.into_iter()
            .map(|(path, contents)| serde_json::json!({"path": &*path, "contents": contents}))
            .collect(),
    );
    let file: Arc<str> = Arc::from(COMBINED);
    let mut out = FileOutcome {
        resources: Vec::new(),
        errors: Vec::new(),
        skipped: Vec::new(),
        combined: Vec::new(),
    };
    let mut u = u.clone();
    match u.evaluate(&input) {
        Ok(outcomes) => {
            let results = user_results(engine.config(), &u, outcomes, None, |_| {
                manifest::Pos::default()
            });
            out.resources.push(Located {
                file: file.clone(),
                document: 0,
                report: ResourceReport {
                    resource: sostle_core::report::ResourceRef {
                        kind: COMBINED_KIND.into(),
                        name: COMBINED.into(),
                        ..Default::default()
                    },
                    pos: manifest::Pos::default(),
                    layer: sostle_core::report::LayerStatus::Unlayered,
                    epoch_day: engine.epoch_day(s.now),
                    results,
                    errors: Vec::new(),
                    exemption: None,
                },
                origin: None,
                lines: Vec::new(),
            });
        }
        Err(e) => out.errors.push(RunError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message: format!("Rego evaluation failed: {e}"),
        }),
    }
    out
}

/// The input name of `--combine`'s one evaluation, as conftest names it.
pub const COMBINED: &str = "Combined";
/// Its kind in sostle's reports.
pub const COMBINED_KIND: &str = "(combined)";

/// Runs the check over all sources and keeps every result (for the commands that need the
/// whole report at once; `sostle test` streams with [`run_with`]).
pub fn run(engine: &Engine, s: &TestSettings, sources: &[Source], errors: Vec<RunError>) -> Report {
    let mut resources = Vec::new();
    let totals = run_with(engine, s, sources, errors, |ls| {
        resources.extend(ls);
        Ok(())
    })
    .unwrap_or_default();
    Report {
        now: s.now,
        epoch_day: engine.epoch_day(s.now),
        resources,
        totals,
    }
}

/// Loads the config file, or the built-in default.
pub fn load_config(path: Option<&Path>) -> Result<Config, String> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read config: {e}", path.display()))?;
    let read = sostle_webhook::key_file_reader(path);
    let read = |name: &str| read(name).map_err(|e| e.to_string());
    Config::from_yaml_with(&text, &read).map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::declares_namespace;
    use proptest::prelude::*;

    /// A document that may be a Namespace, in one of the spellings YAML and JSON allow, among
    /// other keys.
    fn document() -> impl Strategy<Value = (String, bool)> {
        let kind = prop_oneof![
            Just(("kind: Namespace", true)),
            Just(("kind: \"Namespace\"", true)),
            Just(("kind: 'Namespace'", true)),
            Just(("kind: !!str Namespace", true)),
            Just(("kind: &k Namespace", true)),
            Just(("kind:\n  Namespace", true)),
            Just(("kind:   Namespace   ", true)),
            Just(("kind: Deployment", false)),
            Just(("kind: NamespaceList", false)),
            Just((
                "kind: ConfigMap\ndata:\n  note: the Namespace we use",
                false
            )),
        ];
        // Each other key at most once (a repeated key is an error, not a document).
        let filler = proptest::sample::subsequence(
            vec![
                "apiVersion: v1",
                "metadata:\n  name: a\n  labels: {sostle-layer: L3}",
                "# Namespace: a comment",
                "spec: {}",
            ],
            0..=4,
        );
        (kind, filler, any::<bool>()).prop_map(|((k, is_ns), fill, first)| {
            let mut lines: Vec<&str> = fill;
            if first {
                lines.insert(0, k);
            } else {
                lines.push(k);
            }
            (lines.join("\n") + "\n", is_ns)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e73), .. ProptestConfig::default() })]

        /// The scan never misses a Namespace the parser sees (it may say yes to more).
        #[test]
        fn the_scan_sees_every_namespace_the_parser_sees(docs in proptest::collection::vec(document(), 1..4)) {
            let text: String = docs.iter().map(|(d, _)| format!("---\n{d}")).collect();
            let parsed = sostle_core::manifest::load(&text);
            let has_ns = parsed.documents.iter().any(|d| {
                d.root.get("kind").and_then(sostle_core::manifest::Node::as_str) == Some("Namespace")
            });
            prop_assert_eq!(has_ns, docs.iter().any(|(_, ns)| *ns), "generator and parser disagree: {}", text);
            if has_ns {
                prop_assert!(declares_namespace(text.as_bytes()), "missed: {}", text);
            }
        }

        /// Arbitrary bytes never panic the scan.
        #[test]
        fn the_scan_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = declares_namespace(&bytes);
        }
    }

    #[test]
    fn namespace_declarations_are_found_in_any_spelling() {
        for yes in [
            "kind: Namespace\n",
            "apiVersion: v1\nkind: \"Namespace\"\nmetadata: {name: a}",
            "- kind: 'Namespace'\n",
            "{apiVersion: v1, kind: Namespace, metadata: {name: a}}",
            "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\"}",
            "{\n  \"kind\": \"Namespace\"\n}",
            "kind: Namespace",
            "kind: !!str Namespace\n",
            "kind: &k Namespace\n",
            "kind: !!str &k 'Namespace'\n",
            "kind:\n  Namespace\nmetadata: {name: a}\n",
        ] {
            assert!(declares_namespace(yes.as_bytes()), "{yes}");
        }
        for no in [
            "description: the Namespace of the target\n",
            "kind: NamespaceList\n",
            "kind: Deployment\n  namespaceSelector: {}\n",
            "subjects: [{kind: ServiceAccount, namespace: a}]",
            "",
        ] {
            assert!(!declares_namespace(no.as_bytes()), "{no}");
        }
    }
}
