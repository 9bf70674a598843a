//! `sostle verify`'s cases: policy unit tests as data — the crew-spiral 121 of SPEC §7. Each
//! case names a policy, a *yang* manifest that must violate it and a *yin* manifest that must
//! pass it (optionally a layer, `now` and a config). Both are witnessed (SHA-256 of their
//! canonical JSON), judged by the engine's one pass and epoch-stamped; the case closes only
//! when yang fails (or warns) and yin passes.

use std::path::{Path, PathBuf};

use sostle_core::{manifest, Engine, EvalContext, Layer, PolicySource};

/// One case file.
#[derive(Debug, Clone)]
pub struct Case {
    /// The file, as named.
    pub file: String,
    /// What it shows.
    pub note: String,
    /// The policy it tests (a native id, or `rego:<namespace>/<rule>`).
    pub policy: String,
    /// The layer to judge at (`None`: the manifests' own).
    pub layer: Option<Layer>,
    /// The instant to judge at.
    pub now: jiff::Timestamp,
    /// The manifest that must fail.
    pub yang: String,
    /// The manifest that must pass.
    pub yin: String,
    /// `config:` — a SostleConfig for this case (relative to the case file), e.g. one that
    /// registers the keys a signed yin needs.
    pub config: Option<PathBuf>,
}

/// A judged case.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The case.
    pub case: Case,
    /// `sha256:` of yang's canonical JSON.
    pub yang_hash: String,
    /// `sha256:` of yin's canonical JSON.
    pub yin_hash: String,
    /// The policy's outcome on yang.
    pub yang_outcome: String,
    /// The policy's outcome on yin.
    pub yin_outcome: String,
    /// The epoch day judged at.
    pub day: i64,
    /// Closed: yang failed (or warned) and yin passed.
    pub ok: bool,
    /// Why the case could not be judged.
    pub error: Option<String>,
}

/// A case that could not be read or judged, said in a sentence that names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CaseError(pub String);

/// The case files under `dirs` (YAML files, walked in path order; a file named is taken as is).
pub fn case_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, CaseError> {
    let mut out = Vec::new();
    for dir in dirs {
        if dir.is_file() {
            out.push(dir.clone());
            continue;
        }
        let found = sostle_rego::files_under(dir)
            .map_err(|e| CaseError(format!("{}: {e}", dir.display())))?;
        out.extend(
            found
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml")),
        );
    }
    Ok(out)
}

macro_rules! case_error {
    ($($t:tt)*) => { CaseError(format!($($t)*)) };
}

/// Reads a case file; `default_now` unless it says `now`.
pub fn read_case(path: &Path, default_now: jiff::Timestamp) -> Result<Case, CaseError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CaseError(format!("{}: {e}", path.display())))?;
    let l = manifest::load(&text);
    if let Some(e) = l.errors.first() {
        return Err(case_error!(
            "{}:{}:{}: {}",
            path.display(),
            e.line,
            e.col,
            e.message
        ));
    }
    let root = &l
        .documents
        .first()
        .ok_or_else(|| case_error!("{}: empty case", path.display()))?
        .root;
    let field = |k: &str| {
        root.get(k)
            .and_then(manifest::Node::as_str)
            .map(str::to_string)
    };
    let need = |k: &str| {
        field(k).ok_or_else(|| {
            case_error!(
                "{}:{}: the case needs `{k}`",
                path.display(),
                root.locate(&[k]).line
            )
        })
    };
    Ok(Case {
        file: path.display().to_string(),
        note: field("note").unwrap_or_default(),
        policy: need("policy")?,
        layer: match field("layer") {
            Some(l) => Some(
                Layer::parse(&l)
                    .ok_or_else(|| case_error!("{}: `{l}` is not a layer", path.display()))?,
            ),
            None => None,
        },
        now: match field("now") {
            Some(n) => sostle_core::epoch::parse_rfc3339(&n)
                .map_err(|m| case_error!("{}: now: {m}", path.display()))?,
            None => default_now,
        },
        yang: need("yang")?,
        yin: need("yin")?,
        config: field("config").map(|c| path.parent().unwrap_or(Path::new(".")).join(c)),
    })
}

fn canonical_hash(text: &str) -> Result<(manifest::Node, String), CaseError> {
    let l = manifest::load(text);
    if let Some(e) = l.errors.first() {
        return Err(case_error!("{}:{}: {}", e.line, e.col, e.message));
    }
    let d = l
        .documents
        .into_iter()
        .next()
        .ok_or_else(|| case_error!("no document"))?;
    let canonical = sostle_core::digest::canonical_json(&d.root.to_json());
    let hash = sostle_core::digest::sha256_hex(canonical.as_bytes());
    Ok((d.root, format!("sha256:{hash}")))
}

/// The outcome of `policy` on one manifest, by the engine's one pass (native policies and the
/// user's Rego alike).
fn outcome_of(
    engine: &Engine,
    root: &manifest::Node,
    case: &Case,
    sources: &[&dyn PolicySource],
) -> Result<String, CaseError> {
    let ctx = EvalContext {
        layer_override: case.layer,
        sources,
        ..EvalContext::new(case.now)
    };
    let report = engine.evaluate(root, &ctx);
    let policy = &case.policy;
    if let Some(r) = report.results.iter().find(|r| *r.policy == **policy) {
        return Ok(r.outcome.as_str().to_string());
    }
    if let Some(e) = report.errors.first() {
        return Err(case_error!("{}", e.message));
    }
    Err(case_error!(
        "no policy `{policy}` (native ids, or rego:<namespace>/<rule> with --policy)"
    ))
}

/// Judges one case: both manifests witnessed and evaluated; closed when yang fails (or warns)
/// and yin passes.
/// Judges one case with the engine's one pass (native policies and the user's Rego alike).
pub fn judge(engine: &Engine, case: Case, sources: &[&dyn PolicySource]) -> Verdict {
    let mut v = Verdict {
        yang_hash: String::new(),
        yin_hash: String::new(),
        yang_outcome: String::new(),
        yin_outcome: String::new(),
        day: engine.epoch_day(case.now),
        ok: false,
        error: None,
        case,
    };
    let result = (|| -> Result<(), CaseError> {
        let (yang, yh) = canonical_hash(&v.case.yang).map_err(|e| case_error!("yang: {e}"))?;
        let (yin, ih) = canonical_hash(&v.case.yin).map_err(|e| case_error!("yin: {e}"))?;
        v.yang_hash = yh;
        v.yin_hash = ih;
        v.yang_outcome = outcome_of(engine, &yang, &v.case, sources)?;
        v.yin_outcome = outcome_of(engine, &yin, &v.case, sources)?;
        Ok(())
    })();
    if let Err(e) = result {
        v.error = Some(e.to_string());
    }
    v.ok = v.error.is_none()
        && matches!(v.yang_outcome.as_str(), "fail" | "warn")
        && v.yin_outcome == "pass";
    v
}
