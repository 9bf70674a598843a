//! The run: inputs collected, each byte parsed once, documents evaluated in parallel by the
//! engine's one pass, and the results handed on in input order as files complete, so memory
//! stays flat at any input size. Every file is evaluated once with the Namespace labels of the
//! whole input known (the label pass, [`crate::prescan`]), in chunks of files evaluated in
//! parallel and handed to the caller in order, then dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use rayon::prelude::*;
use sostle_core::{manifest, Engine, EvalContext, Layer, ResourceReport};

use crate::findings::{
    Located, Report, RunError, Skipped, Source, Totals, COMBINED, NOT_KUBERNETES,
    NOT_KUBERNETES_KIND, TEMPLATE,
};
use crate::images::ImageVerifier;
use crate::prescan::namespace_labels;
use crate::read::read_source;

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
    pub user: Option<Arc<sostle_rego::RegoSource>>,
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

impl TestSettings {
    /// Settings for `paths` at `now` with nothing else: no layer flag, token secret, ledger,
    /// user policies or image checks. Callers set what they have.
    pub fn new(paths: Vec<PathBuf>, now: Timestamp) -> TestSettings {
        TestSettings {
            paths,
            layer: None,
            now,
            token_secret: None,
            ledger: None,
            user: None,
            images: None,
            combine: false,
            json_only: false,
            requester: None,
        }
    }
}

pub(crate) struct FileOutcome {
    pub(crate) resources: Vec<Located>,
    pub(crate) errors: Vec<RunError>,
    pub(crate) skipped: Vec<Skipped>,
    /// With `--combine`: every document of the file, for the one combined evaluation.
    pub(crate) combined: Vec<(Arc<str>, serde_json::Value)>,
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
            out.errors.push(err(0, 0, m.to_string()));
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
    let signatures = s
        .images
        .as_deref()
        .map(|v| sostle_core::images::SignatureSource {
            checks: v,
            fail_open: false,
        });
    let mut sources: Vec<&dyn sostle_core::PolicySource> = Vec::with_capacity(2);
    if let Some(v) = &signatures {
        sources.push(v);
    }
    // With `--combine` the user rules judge all documents at once, after the pass.
    if let Some(u) = s.user.as_deref().filter(|_| !s.combine) {
        sources.push(u);
    }
    let ctx = EvalContext {
        requester: s.requester.as_ref(),
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
        sources: &sources,
        ..EvalContext::new(s.now)
    };
    for doc in &loaded.documents {
        if s.combine && s.user.is_some() {
            out.combined.push((name.clone(), doc.root.to_json()));
        }
        // A document without `kind` (a workflow, a values file, a kustomization without kind)
        // is not a Kubernetes object: skipped and counted, unless user policies judge it, as
        // conftest judges any document. One with `kind` is judged, broken or not.
        if !engine.judges(&doc.root, &ctx) {
            out.skipped.push(Skipped {
                file: name.clone(),
                line: doc.root.pos.line,
                document: Some(doc.index),
                reason: NOT_KUBERNETES,
            });
            continue;
        }
        let mut report = engine.evaluate(&doc.root, &ctx);
        if report.resource.kind == NOT_KUBERNETES_KIND && report.resource.name.is_empty() {
            report.resource.name = format!("document {}", doc.index + 1);
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

/// Files evaluated in parallel before their results are handed on (and dropped): enough to keep
/// both cores busy, few enough that a chunk's reports are a few MiB.
const CHUNK: usize = 128;

/// Runs the check over all sources, handing each file's resources to `on_file` in input order
/// as soon as its chunk is done; returns the totals (counts, errors, skipped). `checked` is
/// called once per file evaluated (a progress line counts them).
pub fn run_with(
    engine: &Engine,
    s: &TestSettings,
    sources: &[Source],
    errors: Vec<RunError>,
    checked: &(dyn Fn() + Sync),
    mut on_file: impl FnMut(Vec<Located>) -> std::io::Result<()>,
) -> std::io::Result<Totals> {
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
        scope.spawn(move || {
            for (chunk, kept) in sources.chunks(CHUNK).zip(cache.chunks_mut(CHUNK)) {
                let outcomes: Vec<FileOutcome> = chunk
                    .par_iter()
                    .zip(kept.par_iter_mut())
                    .map(|(src, bytes)| {
                        let o = check_one(engine, s, src, labels, bytes.take());
                        checked();
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
                totals.add(&o.resources, &o.skipped);
                totals.errors.append(&mut o.errors);
                totals.skipped.append(&mut o.skipped);
                combined.append(&mut o.combined);
                on_file(o.resources)?;
            }
        }
        if let (true, Some(u)) = (s.combine, s.user.as_ref()) {
            let o = combined_outcome(engine, u, combined, s);
            totals.add(&o.resources, &o.skipped);
            totals.errors.extend(o.errors);
            on_file(o.resources)?;
        }
        Ok::<(), std::io::Error>(())
    })?;
    totals.summary.errors = totals.errors.len();
    Ok(totals)
}

/// `--combine`: the user rules on every document at once — conftest's combined input, an array
/// of `{"path", "contents"}` sorted by path — reported as one resource of the input `Combined`.
fn combined_outcome(
    engine: &Engine,
    u: &sostle_rego::RegoSource,
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
    let sources: [&dyn sostle_core::PolicySource; 1] = [u];
    let ctx = EvalContext {
        sources: &sources,
        ..EvalContext::new(s.now)
    };
    let report = engine.evaluate_combined(&manifest::from_json(&input), &ctx);
    let errors = report
        .errors
        .iter()
        .map(|e| RunError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message: e.message.clone(),
        })
        .collect::<Vec<_>>();
    let resources = if errors.is_empty() {
        vec![Located {
            file,
            document: 0,
            report,
            origin: None,
            lines: Vec::new(),
        }]
    } else {
        Vec::new()
    };
    FileOutcome {
        resources,
        errors,
        skipped: Vec::new(),
        combined: Vec::new(),
    }
}

/// Runs the check over all sources and keeps every result (for the commands that need the
/// whole report at once; `sostle test` streams with [`run_with`]).
pub fn run(engine: &Engine, s: &TestSettings, sources: &[Source], errors: Vec<RunError>) -> Report {
    let mut resources = Vec::new();
    let totals = run_with(engine, s, sources, errors, &|| {}, |ls| {
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
