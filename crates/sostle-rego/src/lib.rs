//! The suite as Rego: the files of `policy/` embedded, the config rendered as the data they
//! read, and a regorus engine that evaluates them the way conftest would — compiled once,
//! cloned per thread. The native engine stays the fast path; the Rego is the portable spec,
//! and the parity test holds the two to the same outcomes.

use std::collections::BTreeMap;

pub mod source;
pub use source::RegoSource;

use serde_json::{json, Value as J};
use sostle_core::{Config, Layer};

/// The suite's Rego files: (file name, text) — one file per policy, plus the helpers, the
/// layer gates, the exemption rules and the outcomes.
pub const FILES: [(&str, &str); 16] = [
    ("lib.rego", include_str!("../../../policy/lib.rego")),
    ("suite.rego", include_str!("../../../policy/suite.rego")),
    (
        "deny_no_limits.rego",
        include_str!("../../../policy/deny_no_limits.rego"),
    ),
    (
        "deny_no_readonly.rego",
        include_str!("../../../policy/deny_no_readonly.rego"),
    ),
    (
        "deny_privileged.rego",
        include_str!("../../../policy/deny_privileged.rego"),
    ),
    (
        "deny_latest_tag.rego",
        include_str!("../../../policy/deny_latest_tag.rego"),
    ),
    (
        "deny_no_liveness.rego",
        include_str!("../../../policy/deny_no_liveness.rego"),
    ),
    (
        "warn_no_gamma1_label.rego",
        include_str!("../../../policy/warn_no_gamma1_label.rego"),
    ),
    (
        "warn_no_security_ctx.rego",
        include_str!("../../../policy/warn_no_security_ctx.rego"),
    ),
    (
        "deny_cross_layer.rego",
        include_str!("../../../policy/deny_cross_layer.rego"),
    ),
    (
        "deny_no_mecipol_image.rego",
        include_str!("../../../policy/deny_no_mecipol_image.rego"),
    ),
    (
        "warn_trendal_missing.rego",
        include_str!("../../../policy/warn_trendal_missing.rego"),
    ),
    ("gates.rego", include_str!("../../../policy/gates.rego")),
    (
        "exemptions.rego",
        include_str!("../../../policy/exemptions.rego"),
    ),
    (
        "outcomes.rego",
        include_str!("../../../policy/outcomes.rego"),
    ),
    ("crypto.rego", include_str!("../../../policy/crypto.rego")),
];

/// The config as the Rego reads it (`data.sostle.config`, and `default_config` in config.rego).
pub fn config_json(config: &Config) -> J {
    let layers_of =
        |s: sostle_core::layer::LayerSet| s.iter().map(|l| l.as_str()).collect::<Vec<_>>();
    let mut policies = serde_json::Map::new();
    for p in &config.policies {
        let exempt: Vec<J> = p
            .exempt
            .iter()
            .map(|r| {
                let condition = match &r.condition {
                    None => J::Null,
                    Some(sostle_core::suite::ExemptCondition::TrialOpen) => json!("trial_open"),
                    Some(sostle_core::suite::ExemptCondition::ReviewedBy(role)) => {
                        json!({"reviewed_by": role})
                    }
                };
                json!({"layers": layers_of(r.layers), "condition": condition})
            })
            .collect();
        policies.insert(
            p.id.clone(),
            json!({
                "layers": layers_of(p.layers),
                "verdict": match p.verdict { sostle_core::suite::Verdict::Deny => "deny", sostle_core::suite::Verdict::Warn => "warn" },
                "escalation": p.escalation.map(|e| json!({"day": e.from_day, "verdict": match e.verdict {
                    sostle_core::suite::Verdict::Deny => "deny", sostle_core::suite::Verdict::Warn => "warn" }})),
                "enabled": p.enabled,
                "floor": p.floor,
                "scope": match p.scope { sostle_core::suite::Scope::Workloads => "workloads", sostle_core::suite::Scope::WorkloadsAndRoleBindings => "workloads_and_rolebindings" },
                "exempt": exempt,
            }),
        );
    }
    let layers: BTreeMap<&str, J> = config
        .layers
        .iter()
        .map(|l| {
            (
                l.layer.as_str(),
                json!({"namespace": l.namespace, "approvers": l.approvers, "gate": gate_name(l.gate)}),
            )
        })
        .collect();
    json!({
        "origin_ns": i128::from(config.origin.as_second()) * 1_000_000_000,
        "default_layer": config.default_layer.map(Layer::as_str),
        "namespaces": config.namespaces.iter().map(|(k, v)| (k.clone(), json!(v.as_str()))).collect::<serde_json::Map<_, _>>(),
        "layers": layers,
        "crew": config.crew.iter().map(|c| json!({"name": c.name, "identity": c.identity, "roles": c.roles,
            "keys": c.keys.iter().map(|k| k.pem()).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "require_approval": config.require_approval,
        "policies": policies,
        "gates_open": config.all_gates_open(),
        "max_days": config.exemption_max_days,
    })
}

/// The name the Rego uses for a layer's gate (the layer table's `Gate`).
fn gate_name(g: sostle_core::suite::Gate) -> &'static str {
    use sostle_core::suite::Gate;
    match g {
        Gate::Open => "open",
        Gate::ReadOnly => "readonly",
        Gate::Sso => "sso",
        Gate::Crew => "crew",
        Gate::Token => "token",
        Gate::KayApproved => "kay",
        Gate::Closed => "closed",
        Gate::Mega => "mega",
    }
}

/// `config.rego`: the built-in (or given) config as `default_config`, used when no data is given.
pub fn config_rego(config: &Config) -> String {
    let pretty = serde_json::to_string_pretty(&config_json(config)).unwrap_or_default();
    format!(
        "# sostle suite — the config the policies read when data.sostle.config is not given.\n# Generated by `sostle policy export`; edit the SostleConfig and export again.\npackage main\n\nimport rego.v1\n\ndefault_config := {pretty}\n"
    )
}

/// The whole suite as one Rego module (every file is `package main`, so their bodies join
/// under one header): what `sostle bootstrap --print rego` prints, loadable by conftest as a
/// single file.
pub fn single_module(config: &Config) -> String {
    let mut out = String::from("# sostle suite, one module: conftest test --all-namespaces -p sostle.rego manifest.yaml\npackage main\n\nimport rego.v1\n");
    let config_text = config_rego(config);
    let files = FILES
        .iter()
        .map(|(n, t)| (*n, *t))
        .chain(std::iter::once(("config.rego", config_text.as_str())));
    for (name, text) in files {
        out.push_str(&format!("\n# ---- {name}\n"));
        for line in text.lines() {
            if line.starts_with("package ") || line.trim() == "import rego.v1" {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `data.json` for conftest (`-d`): the same config under `sostle.config`.
pub fn data_json(config: &Config) -> J {
    json!({"sostle": {"config": config_json(config)}})
}

/// The outcome sets of one evaluation, by policy id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// `deny` results: (policy, msg, path).
    pub deny: Vec<(String, String, String)>,
    /// `warn` results.
    pub warn: Vec<(String, String, String)>,
    /// `exempted` results.
    pub exempted: Vec<(String, String, String)>,
}

/// The suite compiled in a regorus engine, ready to evaluate documents. Evaluation compiles the
/// `report` entry point once per (layer, clock) and reuses it: 5× faster than evaluating the
/// engine per document (measured by `examples/rego_speed`).
#[derive(Clone)]
pub struct Suite {
    engine: regorus::Engine,
    compiled: std::collections::HashMap<(Option<Layer>, i128), std::sync::Arc<CompiledSuite>>,
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Suite")
    }
}

fn crypto_sha256(args: Vec<regorus::Value>) -> anyhow::Result<regorus::Value> {
    let Some(first) = args.first() else {
        anyhow::bail!("crypto.sha256 takes one argument")
    };
    let s = first.as_string()?;
    Ok(regorus::Value::from(sostle_core::digest::sha256_hex(
        s.as_bytes(),
    )))
}

/// conftest's builtins for policies and their tests: `parse_config(parser, text)`,
/// `parse_config_file(path)` and `parse_combined_config_files(paths)`, paths relative to the
/// calling file's directory. regorus gives an extension no caller location, so each module's
/// calls are rewritten on load to pass its directory first (`…_at(dir, …)`).
const CONFTEST_FILE_BUILTINS: [&str; 2] = ["parse_config_file", "parse_combined_config_files"];

/// `text` with every call of conftest's file builtins given `dir` as a first argument.
fn bind_builtin_dirs(text: &str, dir: &str) -> String {
    let mut out = text.to_string();
    let lit = serde_json::to_string(dir).unwrap_or_else(|_| "\"\"".into());
    for name in CONFTEST_FILE_BUILTINS {
        let call = format!("{name}(");
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&call) {
            let (before, after) = rest.split_at(i);
            let standalone = !before
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            result.push_str(before);
            if standalone {
                result.push_str(&format!("{name}_at({lit}, "));
            } else {
                result.push_str(&call);
            }
            rest = after.get(call.len()..).unwrap_or("");
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// The documents of a YAML or JSON text: one value, or an array when there are several (as
/// conftest's YAML parser returns them).
fn parse_documents(text: &str, what: &str) -> anyhow::Result<J> {
    let loaded = sostle_core::manifest::load(text);
    if let Some(e) = loaded.errors.first() {
        anyhow::bail!("{what}:{}:{}: {}", e.line, e.col, e.message);
    }
    let mut docs: Vec<J> = loaded.documents.iter().map(|d| d.root.to_json()).collect();
    Ok(if docs.len() == 1 {
        docs.pop().unwrap_or(J::Null)
    } else {
        J::Array(docs)
    })
}

fn to_value(j: &J) -> anyhow::Result<regorus::Value> {
    regorus::Value::from_json_str(&j.to_string())
}

fn parse_config(args: Vec<regorus::Value>) -> anyhow::Result<regorus::Value> {
    let [parser, text] = args.as_slice() else {
        anyhow::bail!("parse_config takes a parser name and a text")
    };
    let parser = parser.as_string()?;
    if !matches!(parser.as_ref(), "yaml" | "json") {
        anyhow::bail!("parse_config: parser `{parser}`: sostle reads yaml and json");
    }
    to_value(&parse_documents(text.as_string()?, "parse_config")?)
}

fn parse_config_file_at(args: Vec<regorus::Value>) -> anyhow::Result<regorus::Value> {
    let [dir, path] = args.as_slice() else {
        anyhow::bail!("parse_config_file takes a path")
    };
    let file = std::path::Path::new(dir.as_string()?.as_ref()).join(path.as_string()?.as_ref());
    let text = std::fs::read_to_string(&file)
        .map_err(|e| anyhow::anyhow!("parse_config_file: {}: {e}", file.display()))?;
    to_value(&parse_documents(&text, &file.display().to_string())?)
}

fn parse_combined_config_files_at(args: Vec<regorus::Value>) -> anyhow::Result<regorus::Value> {
    let [dir, paths] = args.as_slice() else {
        anyhow::bail!("parse_combined_config_files takes a list of paths")
    };
    let dir = std::path::Path::new(dir.as_string()?.as_ref()).to_path_buf();
    let mut entries: Vec<(String, J)> = Vec::new();
    for p in paths.as_array()?.iter() {
        let file = dir.join(p.as_string()?.as_ref());
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file)
            .map_err(|e| anyhow::anyhow!("parse_combined_config_files: {shown}: {e}"))?;
        match parse_documents(&text, &shown)? {
            J::Array(docs) => entries.extend(docs.into_iter().map(|d| (shown.clone(), d))),
            doc => entries.push((shown, doc)),
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    to_value(&J::Array(
        entries
            .into_iter()
            .map(|(path, contents)| json!({"path": path, "contents": contents}))
            .collect(),
    ))
}

/// `sostle.verify_approval(keys, witness, approval)`: whether `approval` (base64 DER) is a
/// signature over `witness` by one of `keys` (PKIX PEM) — the native engine's check.
fn verify_approval(args: Vec<regorus::Value>) -> anyhow::Result<regorus::Value> {
    let [keys, witness, approval] = args.as_slice() else {
        anyhow::bail!("sostle.verify_approval takes three arguments")
    };
    let witness = witness.as_string()?;
    let Ok(sig) = sostle_core::approval::decode(approval.as_string()?) else {
        return Ok(regorus::Value::from(false));
    };
    let mut ok = false;
    for k in keys.as_array()?.iter() {
        let key = sostle_core::approval::CrewKey::from_pem(k.as_string()?)?;
        ok |= key.verifies(witness, &sig);
    }
    Ok(regorus::Value::from(ok))
}

/// `sostle.kay_approved(object, keys, max_days, now_ns)`: whether the object carries Kay's
/// approval by one of `keys` (PKIX PEM) — the native engine's check (`sostle_core::kay`).
fn kay_approved(args: Vec<regorus::Value>) -> anyhow::Result<regorus::Value> {
    let [object, keys, max_days, now_ns] = args.as_slice() else {
        anyhow::bail!("sostle.kay_approved takes four arguments")
    };
    let json: J = serde_json::from_str(&object.to_json_str()?)?;
    let root = sostle_core::manifest::from_json(&json);
    let mut parsed = Vec::new();
    for k in keys.as_array()?.iter() {
        parsed.push(sostle_core::approval::CrewKey::from_pem(k.as_string()?)?);
    }
    let refs: Vec<&sostle_core::approval::CrewKey> = parsed.iter().collect();
    let text = |path: &[&str]| {
        root.get_path(path)
            .and_then(sostle_core::manifest::Node::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (kind, namespace, name) = (
        text(&["kind"]),
        text(&["metadata", "namespace"]),
        text(&["metadata", "name"]),
    );
    let who = sostle_core::kay::Subject {
        namespace: &namespace,
        kind: &kind,
        name: &name,
    };
    let nanos = i128::from(now_ns.as_i64()?);
    let now = jiff::Timestamp::from_nanosecond(nanos)?;
    let days = u32::try_from(max_days.as_u64()?)?;
    let ok = sostle_core::kay::check_with(&refs, days, &root, &who, now).is_ok();
    Ok(regorus::Value::from(ok))
}

/// What replaces `crypto.rego` in sostle's own engine: approvals verified by the extensions.
const CRYPTO_REGORUS: &str = "package main\n\nimport rego.v1\n\napproval_verified(keys, witness, approval) := sostle.verify_approval(keys, witness, approval)\n\nkay_approval_verified(object, keys, max_days, now) := sostle.kay_approved(object, keys, max_days, now)\n";

impl Suite {
    /// Compiles the embedded suite with `config` as its data.
    pub fn new(config: &Config) -> anyhow::Result<Suite> {
        let mut engine = regorus::Engine::new();
        // OPA semantics: a builtin error (a bad timestamp, a failed conversion) makes the
        // expression undefined rather than aborting the evaluation.
        engine.set_strict_builtin_errors(false);
        for (name, text) in FILES {
            if name == "crypto.rego" {
                engine.add_policy(format!("policy/{name}"), CRYPTO_REGORUS.to_string())?;
                continue;
            }
            engine.add_policy(format!("policy/{name}"), text.to_string())?;
        }
        engine.add_policy("policy/config.rego".into(), config_rego(config))?;
        // OPA has crypto.sha256 built in; regorus does not, so sostle provides it.
        engine.add_extension("crypto.sha256".into(), 1, Box::new(crypto_sha256))?;
        engine.add_extension(
            "sostle.verify_approval".into(),
            3,
            Box::new(verify_approval),
        )?;
        engine.add_extension("sostle.kay_approved".into(), 4, Box::new(kay_approved))?;
        Ok(Suite {
            engine,
            compiled: Default::default(),
        })
    }

    /// Compiles the suite for one layer and clock (the data fixed), to evaluate many objects.
    pub fn compile(&self, layer: Option<Layer>, now_ns: i128) -> anyhow::Result<CompiledSuite> {
        let mut engine = self.engine.clone();
        engine.clear_data();
        let mut sostle = serde_json::Map::new();
        sostle.insert("now_ns".into(), json!(now_ns));
        if let Some(l) = layer {
            sostle.insert("layer".into(), json!(l.as_str()));
        }
        engine.add_data(regorus::Value::from_json_str(
            &json!({ "sostle": sostle }).to_string(),
        )?)?;
        let policy = engine.compile_with_entrypoint(&"data.main.report".into())?;
        Ok(CompiledSuite { policy })
    }

    /// Evaluates one object with the engine itself (no compiled entry point): the slow path,
    /// kept to measure against.
    pub fn evaluate_uncompiled(
        &self,
        object: &J,
        layer: Option<Layer>,
        now_ns: i128,
    ) -> anyhow::Result<Outcomes> {
        let mut engine = self.engine.clone();
        let mut sostle = serde_json::Map::new();
        sostle.insert("now_ns".into(), json!(now_ns));
        if let Some(l) = layer {
            sostle.insert("layer".into(), json!(l.as_str()));
        }
        engine.clear_data();
        engine.add_data(regorus::Value::from_json_str(
            &json!({ "sostle": sostle }).to_string(),
        )?)?;
        engine.set_input(regorus::Value::from_json_str(&object.to_string())?);
        let v = engine.eval_rule("data.main.report".to_string())?;
        outcomes_of(&serde_json::from_str(&v.to_json_str()?)?)
    }

    /// Evaluates one object. `layer` plays `data.sostle.layer`; `now_ns` plays the clock.
    pub fn evaluate(
        &mut self,
        object: &J,
        layer: Option<Layer>,
        now_ns: i128,
    ) -> anyhow::Result<Outcomes> {
        let compiled = match self.compiled.get(&(layer, now_ns)) {
            Some(c) => c.clone(),
            None => {
                let c = std::sync::Arc::new(self.compile(layer, now_ns)?);
                self.compiled.insert((layer, now_ns), c.clone());
                c
            }
        };
        compiled.evaluate(object)
    }
}

/// The suite compiled for one layer and clock.
pub struct CompiledSuite {
    policy: regorus::CompiledPolicy,
}

impl std::fmt::Debug for CompiledSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledSuite")
    }
}

impl CompiledSuite {
    /// Evaluates one object.
    pub fn evaluate(&self, object: &J) -> anyhow::Result<Outcomes> {
        let v = self
            .policy
            .eval_with_input(regorus::Value::from_json_str(&object.to_string())?)?;
        outcomes_of(&serde_json::from_str(&v.to_json_str()?)?)
    }
}

fn outcomes_of(report: &J) -> anyhow::Result<Outcomes> {
    let mut out = Outcomes::default();
    for (rule, slot) in [
        ("deny", &mut out.deny),
        ("warn", &mut out.warn),
        ("exempted", &mut out.exempted),
    ] {
        for r in report.get(rule).and_then(J::as_array).into_iter().flatten() {
            let s = |k: &str| r.get(k).and_then(J::as_str).unwrap_or_default().to_string();
            slot.push((s("policy"), s("msg"), s("path")));
        }
    }
    Ok(out)
}

/// Whether `name` matches a glob with `*` and `?`.
/// What kind of conftest rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `deny` / `violation` (and `_suffix` forms): failures.
    Deny,
    /// `warn` (and `warn_suffix`): warnings.
    Warn,
}

/// One user rule found in the policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRule {
    /// Package (`main`, `kubernetes.admission`…).
    pub namespace: String,
    /// Rule name (`deny`, `deny_privileged`, `warn_labels`…).
    pub rule: String,
    /// Deny or warn.
    pub kind: RuleKind,
}

impl UserRule {
    /// The policy id in sostle's report: `rego:<namespace>/<rule>`.
    pub fn id(&self) -> String {
        format!("rego:{}/{}", self.namespace, self.rule)
    }

    /// The conftest exception name (`deny_foo` → `foo`; `deny` → empty).
    fn exception_name(&self) -> &str {
        self.rule.split_once('_').map_or("", |(_, s)| s)
    }
}

/// User policies that did not load, compile or evaluate: regorus's own message, with the file,
/// line and column (or the rule, `rego:<namespace>/<rule>`) it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegoError(pub String);

impl From<String> for RegoError {
    fn from(message: String) -> RegoError {
        RegoError(message)
    }
}

/// One finding of a user rule: its message and, when the result object carries one, the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFinding {
    /// The message (a string result, or the object's `msg`).
    pub msg: String,
    /// The object's `path`, if any.
    pub path: Option<String>,
}

/// The result of every user rule on one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOutcome {
    /// The rule produced nothing.
    Pass,
    /// The rule produced findings.
    Findings(Vec<UserFinding>),
    /// An `exception` rule suppressed it.
    Excepted,
}

/// User policies loaded for `sostle test --policy DIR`, conftest conventions, compiled once.
#[derive(Clone)]
pub struct UserPolicies {
    engine: regorus::Engine,
    /// The rules evaluated, in a stable order.
    pub rules: Vec<UserRule>,
    namespaces: Vec<String>,
    /// Per selected namespace: how many deny/violation/warn rule definitions (bodies) it has —
    /// conftest counts tests by definitions, not by names.
    definitions: BTreeMap<String, usize>,
    /// Namespaces that define `exception`.
    with_exceptions: Vec<String>,
}

impl std::fmt::Debug for UserPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPolicies")
            .field("rules", &self.rules)
            .finish()
    }
}

fn rule_head(line: &str) -> Option<(String, RuleKind)> {
    let name: String = line
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let kind = if name == "deny"
        || name == "violation"
        || name.starts_with("deny_")
        || name.starts_with("violation_")
    {
        RuleKind::Deny
    } else if name == "warn" || name.starts_with("warn_") {
        RuleKind::Warn
    } else {
        return None;
    };
    let rest = line.get(name.len()..)?.trim_start();
    let head = rest.starts_with("contains")
        || rest.starts_with('[')
        || rest.starts_with(":=")
        || rest.starts_with('=')
        || rest.starts_with("if")
        || rest.starts_with('{');
    head.then_some((name, kind))
}

impl UserPolicies {
    /// Loads every `.rego` file under `dirs` (recursively) and the data files (JSON or YAML),
    /// selecting rules of the namespaces matching `namespace_globs` (or all of them).
    /// Errors carry regorus's own message with file:line:col.
    pub fn load(
        dirs: &[std::path::PathBuf],
        data_files: &[std::path::PathBuf],
        namespace_globs: &[String],
        all_namespaces: bool,
        timeout: std::time::Duration,
        strict: bool,
    ) -> Result<UserPolicies, RegoError> {
        let (engine, modules) = build_engine(dirs, data_files, timeout, strict, false)?;
        let mut found: Vec<UserRule> = Vec::new();
        let mut definitions: BTreeMap<String, usize> = BTreeMap::new();
        let mut with_exceptions: Vec<String> = Vec::new();
        for m in &modules {
            let ns = &m.namespace;
            for line in m.text.lines() {
                if line.starts_with("exception") && !with_exceptions.contains(ns) {
                    with_exceptions.push(ns.clone());
                }
                if let Some((rule, kind)) = rule_head(line) {
                    *definitions.entry(ns.clone()).or_default() += 1;
                    let r = UserRule {
                        namespace: ns.clone(),
                        rule,
                        kind,
                    };
                    if !found.contains(&r) {
                        found.push(r);
                    }
                }
            }
        }
        let selected: Vec<String> = {
            let mut all: Vec<String> = found.iter().map(|r| r.namespace.clone()).collect();
            all.sort();
            all.dedup();
            if all_namespaces {
                all
            } else {
                let globs: Vec<String> = if namespace_globs.is_empty() {
                    vec!["main".into()]
                } else {
                    namespace_globs.to_vec()
                };
                all.into_iter()
                    .filter(|ns| globs.iter().any(|g| sostle_core::suite::glob_match(g, ns)))
                    .collect()
            }
        };
        let mut rules: Vec<UserRule> = found
            .into_iter()
            .filter(|r| selected.contains(&r.namespace))
            .collect();
        rules.sort_by(|a, b| (&a.namespace, &a.rule).cmp(&(&b.namespace, &b.rule)));
        definitions.retain(|ns, _| selected.contains(ns));
        with_exceptions.retain(|ns| selected.contains(ns));
        Ok(UserPolicies {
            engine,
            rules,
            namespaces: selected,
            definitions,
            with_exceptions,
        })
    }

    /// The namespaces evaluated, sorted.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// How many deny/violation/warn rule definitions `namespace` has (conftest's test count).
    pub fn definitions(&self, namespace: &str) -> usize {
        self.definitions.get(namespace).copied().unwrap_or(0)
    }

    /// Evaluates every rule on one object.
    pub fn evaluate(&mut self, object: &J) -> Result<Vec<UserOutcome>, RegoError> {
        let input =
            regorus::Value::from_json_str(&object.to_string()).map_err(|e| e.to_string())?;
        self.engine.set_input(input);
        let mut exceptions: std::collections::HashMap<String, Vec<String>> = Default::default();
        for ns in &self.with_exceptions {
            let v = self
                .engine
                .eval_rule(format!("data.{ns}.exception"))
                .map_err(|e| format!("rego:{ns}/exception: {e:#}"))?;
            let j: J = if v == regorus::Value::Undefined {
                J::Null
            } else {
                let text = v
                    .to_json_str()
                    .map_err(|e| format!("rego:{ns}/exception: {e:#}"))?;
                serde_json::from_str(&text).map_err(|e| format!("rego:{ns}/exception: {e}"))?
            };
            let names: Vec<String> = j
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| match e {
                    J::Array(items) => items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect::<Vec<_>>(),
                    J::String(s) => vec![s.clone()],
                    _ => Vec::new(),
                })
                .collect();
            exceptions.insert(ns.clone(), names);
        }
        let mut out = Vec::with_capacity(self.rules.len());
        for r in &self.rules {
            let v = self
                .engine
                .eval_rule(format!("data.{}.{}", r.namespace, r.rule))
                .map_err(|e| format!("{}: {e:#}", r.id()))?;
            let j: J = if v == regorus::Value::Undefined {
                J::Null
            } else {
                let text = v.to_json_str().map_err(|e| format!("{}: {e:#}", r.id()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", r.id()))?
            };
            let items: Vec<J> = match j {
                J::Array(a) => a,
                J::Null => Vec::new(),
                J::Bool(false) => Vec::new(),
                J::Object(o) if o.is_empty() => Vec::new(),
                other => vec![other],
            };
            let findings: Vec<UserFinding> = items
                .into_iter()
                .map(|i| match i {
                    J::String(s) => UserFinding { msg: s, path: None },
                    J::Object(o) => UserFinding {
                        msg: o
                            .get("msg")
                            .and_then(J::as_str)
                            .map_or_else(|| J::Object(o.clone()).to_string(), str::to_string),
                        path: o.get("path").and_then(J::as_str).map(str::to_string),
                    },
                    J::Bool(true) => UserFinding {
                        msg: format!("{} is true", r.id()),
                        path: None,
                    },
                    other => UserFinding {
                        msg: other.to_string(),
                        path: None,
                    },
                })
                .collect();
            let excepted = !r.exception_name().is_empty()
                && exceptions
                    .get(&r.namespace)
                    .is_some_and(|e| e.iter().any(|n| n == r.exception_name()));
            out.push(if findings.is_empty() {
                UserOutcome::Pass
            } else if excepted {
                UserOutcome::Excepted
            } else {
                UserOutcome::Findings(findings)
            });
        }
        Ok(out)
    }
}

/// One loaded policy file.
struct Module {
    file: String,
    namespace: String,
    text: String,
}

/// A regorus engine with the `.rego` files under `dirs` (files named are read as they are;
/// `*_test.rego` only when `with_tests`) and the data files (JSON or YAML, directories walked)
/// merged into `data`, conftest's way. Errors carry regorus's message with file:line:col.
fn build_engine(
    dirs: &[std::path::PathBuf],
    data_files: &[std::path::PathBuf],
    timeout: std::time::Duration,
    strict: bool,
    with_tests: bool,
) -> Result<(regorus::Engine, Vec<Module>), RegoError> {
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(strict);
    engine
        .add_extension("crypto.sha256".into(), 1, Box::new(crypto_sha256))
        .map_err(|e| e.to_string())?;
    for (name, nargs, f) in [
        (
            "parse_config",
            2,
            parse_config as fn(Vec<regorus::Value>) -> anyhow::Result<regorus::Value>,
        ),
        ("parse_config_file_at", 2, parse_config_file_at),
        (
            "parse_combined_config_files_at",
            2,
            parse_combined_config_files_at,
        ),
    ] {
        engine
            .add_extension(name.into(), nargs, Box::new(f))
            .map_err(|e| e.to_string())?;
    }
    if let Some(interval) = std::num::NonZeroU32::new(64) {
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: timeout,
            check_interval: interval,
        });
    }
    let mut files = Vec::new();
    for d in dirs {
        collect_rego(d, with_tests, &mut files).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    if files.is_empty() {
        return Err(RegoError(format!(
            "no .rego files in {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut modules = Vec::with_capacity(files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let bound = if CONFTEST_FILE_BUILTINS.iter().any(|b| text.contains(b)) {
            let dir = f
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            bind_builtin_dirs(&text, &dir)
        } else {
            text.clone()
        };
        let package = engine
            .add_policy(f.display().to_string(), bound)
            .map_err(|e| format!("{e:#}"))?;
        modules.push(Module {
            file: f.display().to_string(),
            namespace: package
                .strip_prefix("data.")
                .unwrap_or(&package)
                .to_string(),
            text,
        });
    }
    let mut data_paths = Vec::new();
    for d in data_files {
        collect_data(d, &[], &mut data_paths).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    for (f, prefix) in &data_paths {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let loaded = sostle_core::manifest::load(&text);
        if let Some(e) = loaded.errors.first() {
            return Err(RegoError(format!(
                "{}:{}:{}: {}",
                f.display(),
                e.line,
                e.col,
                e.message
            )));
        }
        for d in loaded.documents {
            let mut doc = d.root.to_json();
            for key in prefix.iter().rev() {
                doc = json!({ key.as_str(): doc });
            }
            let v = regorus::Value::from_json_str(&doc.to_string()).map_err(|e| e.to_string())?;
            engine
                .add_data(v)
                .map_err(|e| format!("{}: {e}", f.display()))?;
        }
    }
    Ok((engine, modules))
}

/// One Rego unit test (`test_*` rule) and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoTest {
    /// The file that defines it.
    pub file: String,
    /// Its package (`main`).
    pub namespace: String,
    /// The rule (`test_root_is_denied`).
    pub name: String,
    /// Whether it passed.
    pub outcome: TestOutcome,
}

impl RegoTest {
    /// `data.<namespace>.<name>`, as opa and conftest name a test.
    pub fn query(&self) -> String {
        format!("data.{}.{}", self.namespace, self.name)
    }
}

/// A test's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// The rule is true.
    Pass,
    /// The rule is false or undefined.
    Fail,
    /// The evaluation failed (a builtin error in strict mode, the time cap).
    Error(String),
}

/// Runs every `test_*` rule of the `.rego` files under `dirs` (`*_test.rego` included) with
/// the data files loaded, as `opa test` and `conftest verify` do: a test passes when its rule
/// evaluates to true. In file order, then definition order.
pub fn run_tests(
    dirs: &[std::path::PathBuf],
    data_files: &[std::path::PathBuf],
    timeout: std::time::Duration,
    strict: bool,
) -> Result<Vec<RegoTest>, RegoError> {
    let (mut engine, modules) = build_engine(dirs, data_files, timeout, strict, true)?;
    let mut out: Vec<RegoTest> = Vec::new();
    for m in &modules {
        for line in m.text.lines() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.starts_with("test_") {
                continue;
            }
            let rest = line.get(name.len()..).unwrap_or("").trim_start();
            let is_head = rest.starts_with("if")
                || rest.starts_with('{')
                || rest.starts_with(":=")
                || rest.starts_with('=');
            if !is_head
                || out
                    .iter()
                    .any(|t| t.namespace == m.namespace && t.name == name)
            {
                continue;
            }
            let outcome = match engine.eval_rule(format!("data.{}.{name}", m.namespace)) {
                Ok(regorus::Value::Bool(true)) => TestOutcome::Pass,
                Ok(_) => TestOutcome::Fail,
                Err(e) => TestOutcome::Error(format!("{e:#}")),
            };
            out.push(RegoTest {
                file: m.file.clone(),
                namespace: m.namespace.clone(),
                name,
                outcome,
            });
        }
    }
    Ok(out)
}

/// Data files under `path` with the path they load at, as OPA's loader (and so conftest) loads
/// `--data`: a file named is loaded at the root; a directory is walked for .json, .yaml and
/// .yml, each file loaded under its directory's path relative to the one given
/// (`-d data` puts `data/teams/x.yaml` at `data.teams`).
fn collect_data(
    path: &std::path::Path,
    prefix: &[String],
    out: &mut Vec<(std::path::PathBuf, Vec<String>)>,
) -> std::io::Result<()> {
    if !path.is_dir() {
        out.push((path.to_path_buf(), prefix.to_vec()));
        return Ok(());
    }
    for p in files_under(path)? {
        if p.extension()
            .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
        {
            let mut at = prefix.to_vec();
            let dir = p.parent().and_then(|d| d.strip_prefix(path).ok());
            at.extend(dir.into_iter().flat_map(|d| {
                d.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
            }));
            out.push((p, at));
        }
    }
    Ok(())
}

fn collect_rego(
    dir: &std::path::Path,
    with_tests: bool,
    out: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    for p in files_under(dir)? {
        if p.extension().is_some_and(|e| e == "rego")
            && (with_tests || !p.to_string_lossy().ends_with("_test.rego"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Every file under `dir` (or `dir` itself, when it is a file), in path order: sostle's one
/// walker of directories read as they are given (policies, data, `sostle verify`'s cases) — the
/// `ignore` crate's, its filters off, links followed.
pub fn files_under(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let walk = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .follow_links(true)
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    let mut out = Vec::new();
    for entry in walk {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.path().is_file() {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}

/// The `.rego` files under `dir` (tests included), in path order: what a policy bundle carries.
pub fn policy_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = files_under(dir)?;
    out.retain(|p| p.extension().is_some_and(|e| e == "rego"));
    Ok(out)
}

/// The data files (JSON or YAML) under `dir`, in path order.
pub fn data_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = files_under(dir)?;
    out.retain(|p| {
        p.extension()
            .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
    });
    Ok(out)
}

#[cfg(test)]
mod conftest_builtins {
    #![allow(clippy::unwrap_used)]
    use super::bind_builtin_dirs;

    #[test]
    fn calls_are_bound_to_their_files_directory_and_nothing_else_is() {
        let text = "x := parse_config_file(\"a.yaml\")\ny := parse_combined_config_files([\"b.yaml\"])\nz := my_parse_config_file(1)\nw := data.parse_config_file(2)";
        assert_eq!(
            bind_builtin_dirs(text, "pol/sub"),
            "x := parse_config_file_at(\"pol/sub\", \"a.yaml\")\ny := parse_combined_config_files_at(\"pol/sub\", [\"b.yaml\"])\nz := my_parse_config_file(1)\nw := data.parse_config_file(2)"
        );
        // A directory with a quote stays one Rego string.
        assert!(bind_builtin_dirs("parse_config_file(\"a\")", "we\"ird")
            .starts_with("parse_config_file_at(\"we\\\"ird\", "));
    }
}
