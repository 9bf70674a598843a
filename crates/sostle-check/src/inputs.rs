//! Where `sostle test` finds its inputs: paths walked the way ripgrep walks them (the `ignore`
//! crate: `.gitignore`, `.ignore`, `.sostleignore`, hidden entries skipped), Helm charts noted
//! (their `templates/` are not manifests) or rendered with `helm template`, and kustomize
//! overlays rendered with `kustomize build` (or `kubectl kustomize`).
//!
//! Rendering runs the user's own tools on PATH; their output becomes an in-memory source whose
//! documents remember the file they came from (helm's `# Source:` comments, kustomize's origin
//! annotations or the object's identity), so findings still name a file a person can open.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::findings::{Origins, RunError, Source};
use crate::read::MAX_FILE_BYTES;

/// How directories are walked.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Walk hidden files and directories too (`--hidden`).
    pub hidden: bool,
    /// Do not honour `.gitignore`, `.ignore` or `.sostleignore` (`--no-ignore`).
    pub no_ignore: bool,
    /// Globs to leave out (`--exclude`, repeatable).
    pub exclude: Vec<String>,
    /// Paths to leave out by regular expression (`--ignore`, conftest's).
    pub ignore: Option<regex::Regex>,
}

/// What walking the paths found.
#[derive(Debug, Default)]
pub struct Collected {
    /// The inputs, in order.
    pub sources: Vec<Source>,
    /// Directories holding `Chart.yaml` whose `templates/` were left out.
    pub charts: Vec<PathBuf>,
    /// Files an ignore file or hiding left out although they hold Kubernetes objects.
    pub ignored: Vec<Ignored>,
}

/// A file the walk left out — by an ignore file's rule, or for being hidden — that holds
/// Kubernetes objects: never dropped silently, it is counted and named with its rule so a change
/// that adds an ignore rule shows in the gate's output (SPEC §13).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ignored {
    /// The file.
    pub file: String,
    /// What left it out: `.sostleignore:3` (the ignore file and the line of the rule), or
    /// `hidden`.
    pub rule: String,
}

fn run_error(file: String, message: String) -> RunError {
    RunError {
        file,
        line: 0,
        column: 0,
        message,
    }
}

/// Expands `paths` into sources. A file named on the command line is always read; directories
/// are walked (`.yaml`, `.yml`, `.json`), sorted by name, honouring ignore files unless told
/// not to, skipping the `templates/` of Helm charts (noted in `charts`).
pub fn collect(paths: &[PathBuf], opts: &WalkOptions, errors: &mut Vec<RunError>) -> Collected {
    let mut out = Collected::default();
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
                Ok(_) if buf.len() as u64 > MAX_FILE_BYTES => errors.push(run_error(
                    "-".into(),
                    format!(
                        "stdin is larger than {} MiB; not read",
                        MAX_FILE_BYTES >> 20
                    ),
                )),
                Ok(_) => out.sources.push(Source::Stdin(Arc::new(buf))),
                Err(e) => errors.push(run_error("-".into(), format!("cannot read stdin: {e}"))),
            }
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, opts, &mut out, errors),
            Ok(_) if ignored(opts, p) => {}
            Ok(_) => out.sources.push(Source::File(p.clone())),
            Err(e) => errors.push(run_error(
                p.display().to_string(),
                format!("cannot read: {e}"),
            )),
        }
    }
    out
}

fn ignored(opts: &WalkOptions, path: &Path) -> bool {
    opts.ignore
        .as_ref()
        .is_some_and(|r| r.is_match(&path.to_string_lossy()))
}

fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn walk(dir: &Path, opts: &WalkOptions, out: &mut Collected, errors: &mut Vec<RunError>) {
    let first = out.sources.len();
    walk_honouring(dir, opts, out, errors);
    if opts.no_ignore && opts.hidden {
        return;
    }
    let kept: std::collections::HashSet<PathBuf> = out
        .sources
        .get(first..)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| match s {
            Source::File(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    out.ignored.extend(left_out(dir, opts, &kept));
}

/// Files under `dir` that a walk ignoring nothing would read and the real walk did not, that
/// hold Kubernetes objects, each with the rule that left it out. `.git` is never looked into;
/// `--exclude` and `--ignore`, given on the command line, are not ignore files and still apply.
fn left_out(
    dir: &Path,
    opts: &WalkOptions,
    kept: &std::collections::HashSet<PathBuf>,
) -> Vec<Ignored> {
    let mut b = ignore::WalkBuilder::new(dir);
    b.standard_filters(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b));
    if let Some(ov) = exclude_overrides(dir, opts, &mut Vec::new()) {
        b.overrides(ov);
    }
    b.filter_entry(|e| {
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        !(is_dir
            && e.depth() > 0
            && (e.file_name() == ".git"
                || (e.file_name() == "templates"
                    && e.path()
                        .parent()
                        .is_some_and(|c| c.join("Chart.yaml").is_file()))))
    });
    let mut rules = RuleFiles::default();
    let mut out = Vec::new();
    for e in b.build().flatten() {
        let path = e.path();
        if !e.file_type().is_some_and(|t| t.is_file())
            || !is_manifest_name(path)
            || kept.contains(path)
            || ignored(opts, path)
            || !holds_kubernetes_objects(path)
        {
            continue;
        }
        out.push(Ignored {
            file: path.display().to_string(),
            rule: rules.explain(dir, path, opts),
        });
    }
    out
}

/// Whether a file holds a document with both `apiVersion` and `kind` (read as `sostle test`
/// reads it; a cheap byte scan first).
fn holds_kubernetes_objects(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut bytes = Vec::new();
    if f.take(MAX_FILE_BYTES).read_to_end(&mut bytes).is_err()
        || memchr::memmem::find(&bytes, b"apiVersion").is_none()
        || memchr::memmem::find(&bytes, b"kind").is_none()
    {
        return false;
    }
    sostle_core::manifest::load_bytes(&bytes)
        .documents
        .iter()
        .any(|d| d.root.get("apiVersion").is_some() && d.root.get("kind").is_some())
}

/// The ignore files met while explaining, each parsed once.
#[derive(Default)]
struct RuleFiles {
    parsed: std::collections::HashMap<PathBuf, Option<ignore::gitignore::Gitignore>>,
}

impl RuleFiles {
    /// The rule that left `path` out: the nearest ignore file (in the walk's order of
    /// precedence: `.sostleignore`, `.ignore`, `.gitignore`, then git's `info/exclude`) whose
    /// rule matches it, as `FILE:LINE`; else `hidden` when a part of its path begins with `.`.
    fn explain(&mut self, root: &Path, path: &Path, opts: &WalkOptions) -> String {
        if !opts.no_ignore {
            for d in path.ancestors().skip(1) {
                let mut names = vec![
                    d.join(".sostleignore"),
                    d.join(".ignore"),
                    d.join(".gitignore"),
                ];
                names.push(d.join(".git").join("info").join("exclude"));
                for f in names {
                    if let Some(rule) = self.matched(&f, d, path) {
                        return rule;
                    }
                }
            }
        }
        let rel = path.strip_prefix(root).unwrap_or(path);
        if rel
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        {
            return "hidden".into();
        }
        "an ignore rule (git's global excludes)".into()
    }

    fn matched(&mut self, file: &Path, base: &Path, path: &Path) -> Option<String> {
        let gi = self
            .parsed
            .entry(file.to_path_buf())
            .or_insert_with(|| {
                if !file.is_file() {
                    return None;
                }
                let mut b = ignore::gitignore::GitignoreBuilder::new(base);
                // A rule that does not parse was not honoured by the walk either.
                let _ = b.add(file);
                b.build().ok()
            })
            .as_ref()?;
        match gi.matched_path_or_any_parents(path, false) {
            ignore::Match::Ignore(glob) => {
                let shown = file.display().to_string();
                let line = std::fs::read_to_string(file).ok().and_then(|t| {
                    t.lines()
                        .position(|l| l.trim() == glob.original().trim())
                        .map(|i| i + 1)
                });
                Some(match line {
                    Some(l) => format!("{shown}:{l}"),
                    None => format!("{shown} (`{}`)", glob.original()),
                })
            }
            _ => None,
        }
    }
}

fn exclude_overrides(
    dir: &Path,
    opts: &WalkOptions,
    errors: &mut Vec<RunError>,
) -> Option<ignore::overrides::Override> {
    if opts.exclude.is_empty() {
        return None;
    }
    let mut o = ignore::overrides::OverrideBuilder::new(dir);
    for g in &opts.exclude {
        if let Err(e) = o.add(&format!("!{g}")) {
            errors.push(run_error(
                format!("--exclude {g}"),
                format!("not a glob: {e}"),
            ));
        }
    }
    match o.build() {
        Ok(ov) => Some(ov),
        Err(e) => {
            errors.push(run_error("--exclude".into(), e.to_string()));
            None
        }
    }
}

fn walk_honouring(dir: &Path, opts: &WalkOptions, out: &mut Collected, errors: &mut Vec<RunError>) {
    let mut b = ignore::WalkBuilder::new(dir);
    let honour = !opts.no_ignore;
    b.hidden(!opts.hidden)
        .ignore(honour)
        .git_ignore(honour)
        .git_global(honour)
        .git_exclude(honour)
        .parents(honour)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b));
    if honour {
        b.add_custom_ignore_filename(".sostleignore");
    }
    if let Some(ov) = exclude_overrides(dir, opts, errors) {
        b.overrides(ov);
    }
    let charts: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    let found = charts.clone();
    b.filter_entry(move |e| {
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        if is_dir && e.depth() > 0 && e.file_name() == "templates" {
            if let Some(chart) = e.path().parent() {
                if chart.join("Chart.yaml").is_file() {
                    if let Ok(mut c) = found.lock() {
                        c.push(chart.to_path_buf());
                    }
                    return false;
                }
            }
        }
        true
    });
    for entry in b.build() {
        match entry {
            Ok(e) => {
                if e.file_type().is_some_and(|t| t.is_file() || t.is_symlink())
                    && is_manifest_name(e.path())
                    && !e.path().is_dir()
                    && !ignored(opts, e.path())
                {
                    out.sources.push(Source::File(e.into_path()));
                }
            }
            Err(e) => errors.push(run_error(
                dir.display().to_string(),
                format!("cannot walk: {e}"),
            )),
        }
    }
    let found: Vec<PathBuf> = charts
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .unwrap_or_default();
    out.charts.extend(found);
}

/// Why rendering a chart or an overlay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The tool could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The tool ran past [`RENDER_TIMEOUT`] and was killed.
    #[error("`{command}` did not finish within {seconds} s")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit.
        seconds: u64,
    },
    /// Waiting for the tool failed.
    #[error("`{command}`: {source}")]
    Wait {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The tool printed more than an input may hold.
    #[error("`{command}` printed more than {mib} MiB")]
    TooLarge {
        /// The command line.
        command: String,
        /// The limit.
        mib: u64,
    },
    /// The tool failed; the first lines it wrote on stderr.
    #[error("`{command}` failed ({status}): {said}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The first three lines of its stderr, joined by ` / `.
        said: String,
    },
    /// Neither kustomize nor kubectl is installed.
    #[error("neither kustomize nor kubectl is on PATH")]
    NoKustomize,
}

/// Longest a rendering tool may run.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `program args` and returns its stdout, or an error that names the command and quotes
/// the first lines of what it said on stderr. Bounded in time and size.
fn run_tool(program: &str, args: &[&str]) -> Result<Vec<u8>, RenderError> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RenderError::Spawn {
            command: shown.clone(),
            source,
        })?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(1 << 20).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + RENDER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RenderError::Timeout {
                    command: shown,
                    seconds: RENDER_TIMEOUT.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => {
                return Err(RenderError::Wait {
                    command: shown,
                    source,
                })
            }
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    // Checked first: past the cap the reader stops, and the tool then fails on a closed pipe.
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(RenderError::TooLarge {
            command: shown,
            mib: MAX_FILE_BYTES >> 20,
        });
    }
    if !status.success() {
        let said: Vec<String> = String::from_utf8_lossy(&err)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .map(str::to_string)
            .collect();
        return Err(RenderError::Failed {
            command: shown,
            status,
            said: said.join(" / "),
        });
    }
    Ok(out)
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(program);
            p.is_file()
                && std::fs::metadata(&p)
                    .map(|m| {
                        use std::os::unix::fs::PermissionsExt;
                        m.permissions().mode() & 0o111 != 0
                    })
                    .unwrap_or(false)
        })
    })
}

/// `helm template CHART` with the chart's default values; the origins come from helm's
/// `# Source: <chart-name>/templates/…` comments, mapped onto the chart's directory.
pub fn render_chart(chart: &Path) -> Result<(Vec<u8>, Origins), RenderError> {
    let dir = chart.display().to_string();
    let out = run_tool("helm", &["template", &dir])?;
    let text = String::from_utf8_lossy(&out);
    let mut origins = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(src) = line.strip_prefix("# Source: ") {
            // `podinfo/templates/deployment.yaml` → `charts/podinfo/templates/deployment.yaml`.
            let rel = src.split_once('/').map_or(src, |(_, rest)| rest);
            let file = chart.join(rel).display().to_string();
            origins.push((u32::try_from(i + 1).unwrap_or(u32::MAX), Arc::from(file)));
        }
    }
    Ok((out, origins))
}

/// `kustomize build DIR` (or `kubectl kustomize DIR`); the origins come from kustomize's
/// `config.kubernetes.io/origin` annotations where the kustomization asks for them, else from
/// the object's identity (kind and name) among the YAML files the overlay's resources reach.
pub fn render_kustomize(dir: &Path) -> Result<(Vec<u8>, Origins), RenderError> {
    let d = dir.display().to_string();
    let out = if on_path("kustomize") {
        run_tool("kustomize", &["build", &d])?
    } else if on_path("kubectl") {
        run_tool("kubectl", &["kustomize", &d])?
    } else {
        return Err(RenderError::NoKustomize);
    };
    let loaded = sostle_core::manifest::load_bytes(&out);
    let candidates = identities(dir);
    let mut origins = Vec::new();
    for doc in &loaded.documents {
        let root = &doc.root;
        let text = |path: &[&str]| {
            root.get_path(path)
                .and_then(sostle_core::manifest::Node::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let origin = text(&["metadata", "annotations", "config.kubernetes.io/origin"]);
        let from_annotation = origin
            .lines()
            .find_map(|l| l.trim().strip_prefix("path:"))
            .map(|p| normalize(&dir.join(p.trim())).display().to_string());
        let kind = text(&["kind"]);
        let name = text(&["metadata", "name"]);
        // The original whose name the rendered one contains (prefixes and suffixes are common
        // transformations), the longest first.
        let from_identity = candidates
            .iter()
            .filter(|(k, n, _)| *k == kind && !n.is_empty() && name.contains(n.as_str()))
            .max_by_key(|(_, n, _)| n.len())
            .map(|(_, _, f)| f.clone());
        if let Some(file) = from_annotation.or(from_identity) {
            origins.push((root.pos.line, Arc::from(file)));
        } else {
            origins.push((root.pos.line, Arc::from(format!("{d} (rendered)"))));
        }
    }
    Ok((out, origins))
}

/// `a/b/../c` → `a/c`, lexically (no file system), so names read as a person would write them.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// (kind, name, file) of every object in the YAML files an overlay reaches through its
/// `resources:` (directories and files, recursively), read once.
fn identities(dir: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(canon) = d.canonicalize() else {
            continue;
        };
        if !seen.insert(canon) {
            continue;
        }
        let Some(k) = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .map(|n| d.join(n))
            .find(|p| p.is_file())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&k) else {
            continue;
        };
        let loaded = sostle_core::manifest::load(&text);
        let Some(doc) = loaded.documents.first() else {
            continue;
        };
        for key in ["resources", "bases"] {
            for item in doc
                .root
                .get(key)
                .and_then(sostle_core::manifest::Node::as_seq)
                .unwrap_or_default()
            {
                let Some(rel) = item.as_str() else { continue };
                let p = normalize(&d.join(rel));
                if p.is_dir() {
                    stack.push(p);
                } else if p.is_file() {
                    let Ok(t) = std::fs::read_to_string(&p) else {
                        continue;
                    };
                    for od in sostle_core::manifest::load(&t).documents {
                        let s = |path: &[&str]| {
                            od.root
                                .get_path(path)
                                .and_then(sostle_core::manifest::Node::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        out.push((
                            s(&["kind"]),
                            s(&["metadata", "name"]),
                            p.display().to_string(),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// What to render besides walking: Helm charts met (`--render-charts`) and kustomize overlays
/// (`--kustomize DIR`).
#[derive(Debug, Clone, Default)]
pub struct Render {
    /// Render every chart met with `helm template`.
    pub charts: bool,
    /// Overlays to render with `kustomize build`.
    pub kustomize: Vec<PathBuf>,
}

/// Everything a run reads: the walked and rendered sources, the charts met, the files left
/// out, and the problems met on the way.
#[derive(Debug, Default)]
pub struct Gathered {
    /// The inputs, in order (rendered ones last).
    pub sources: Vec<Source>,
    /// The charts met, and whether each was rendered.
    pub charts: Vec<crate::findings::Chart>,
    /// Files left out that hold Kubernetes objects.
    pub ignored: Vec<Ignored>,
    /// Inputs that could not be read or rendered.
    pub errors: Vec<RunError>,
}

/// Walks `paths` and renders what `render` asks for.
pub fn gather(paths: &[PathBuf], walk: &WalkOptions, render: &Render) -> Gathered {
    let mut errors = Vec::new();
    let collected = collect(paths, walk, &mut errors);
    let mut sources = collected.sources;
    let mut charts = Vec::new();
    for chart in &collected.charts {
        let path = chart.display().to_string();
        let mut rendered = false;
        if render.charts {
            if !on_path("helm") {
                let m = "--render-charts: helm is not on PATH".to_string();
                errors.push(run_error(path.clone(), m));
            } else {
                match render_chart(chart) {
                    Ok((bytes, origins)) => {
                        sources.push(Source::Rendered {
                            name: format!("helm template {path}"),
                            bytes: Arc::new(bytes),
                            origins: Arc::new(origins),
                        });
                        rendered = true;
                    }
                    Err(e) => errors.push(run_error(path.clone(), e.to_string())),
                }
            }
        }
        charts.push(crate::findings::Chart { path, rendered });
    }
    for dir in &render.kustomize {
        let shown = dir.display().to_string();
        match render_kustomize(dir) {
            Ok((bytes, origins)) => sources.push(Source::Rendered {
                name: format!("kustomize build {shown}"),
                bytes: Arc::new(bytes),
                origins: Arc::new(origins),
            }),
            Err(e) => errors.push(run_error(shown, format!("--kustomize: {e}"))),
        }
    }
    Gathered {
        sources,
        charts,
        ignored: collected.ignored,
        errors,
    }
}

/// Expands paths into sources with the default walk (ignore files honoured, hidden entries
/// and chart templates left out).
pub fn collect_sources(paths: &[PathBuf], errors: &mut Vec<RunError>) -> Vec<Source> {
    collect(paths, &WalkOptions::default(), errors).sources
}
