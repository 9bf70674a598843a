//! Runs every `tests/cases/*.yaml`. A case file holds:
//!
//! ```yaml
//! note: what the case shows
//! layer: L2                          # optional: as --sostle-layer
//! now: "2026-05-11T00:00:00Z"        # optional (default Day 97)
//! config: |                          # optional SostleConfig
//!   ...
//! namespaces: {payments: L3}         # optional: Namespace labels known to the run
//! token_secret: "…"                  # optional; `{{token:CREW:LAYER:RFC3339}}` in the
//!                                    #   input is replaced by a token issued with it
//! input: |                           # one Kubernetes object
//!   ...
//! want:                              # policy → outcome; unlisted policies are not checked
//!   deny_no_limits: fail
//! violations:                        # optional: policy → [[line, col, path-suffix]…]
//!   deny_no_limits: [[12, 9, "resources.limits.cpu"]]
//! exemption:                         # optional: policy → the exemption judgement
//!   deny_no_limits: {valid: false, problems: ["expired"], warnings: []}
//! ```
//!
//! `requester: user:NAME` (with `groups: [...]`) judges as that requester, as the door does.
//! `{{kay:NAME:RFC3339}}` in the input is replaced by NAME's test-key signature (Kay's approval)
//! over the input's workload with that expiry.
//!
//! `{{witness}}` in the input is replaced by the witness hash of its own exemption annotations,
//! then `{{approval}}` by that witness signed with the reviewer's test key (`{{approval:NAME}}`:
//! with NAME's). Every crew member of the case's config gets a test key registered (a key
//! derived from the name: public, so only for tests), except those under `unkeyed`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use sostle_core::{manifest, Config, Engine, EvalContext, Layer};

use crate::testkeys::{register_test_keys, substitute_approval};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    note: String,
    #[serde(default)]
    layer: Option<String>,
    #[serde(default)]
    now: Option<String>,
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    namespaces: BTreeMap<String, String>,
    #[serde(default)]
    token_secret: Option<String>,
    /// Judge as this requester (`user:NAME`, `serviceaccount:NS/NAME`).
    #[serde(default)]
    requester: Option<String>,
    /// The requester's groups.
    #[serde(default)]
    groups: Vec<String>,
    /// Text replacements made after the signatures are computed (a workload changed after
    /// Kay signed it).
    #[serde(default)]
    after_signing: Vec<(String, String)>,
    /// Crew members who get no test key.
    #[serde(default)]
    unkeyed: Vec<String>,
    input: String,
    want: BTreeMap<String, String>,
    #[serde(default)]
    violations: BTreeMap<String, Vec<(u32, u32, String)>>,
    #[serde(default)]
    exemption: BTreeMap<String, WantExemption>,
}

/// What a case expects of the exemption judgement on one policy.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WantExemption {
    /// `null` when no judgement is expected at all.
    valid: Option<bool>,
    /// Substrings, one per expected problem (in order); the count must match.
    #[serde(default)]
    problems: Vec<String>,
    /// Substrings of expected warnings.
    #[serde(default)]
    warnings: Vec<String>,
}

/// Replaces `{{witness}}` by the witness hash of the input's own exemption annotations.
fn substitute_witness(input: &str) -> String {
    if !input.contains("{{witness}}") {
        return input.to_string();
    }
    let l = manifest::load(&input.replace("{{witness}}", "pending"));
    let Some(d) = l.documents.first() else {
        return input.to_string();
    };
    let Some(a) = sostle_core::exemption::Annotations::read(&d.root) else {
        return input.to_string();
    };
    input.replace("{{witness}}", &a.computed_witness())
}

/// Replaces `{{kay:NAME:RFC3339}}` by NAME's test-key approval of the input's workload.
fn substitute_kay(input: &str) -> String {
    let Some(start) = input.find("{{kay:") else {
        return input.to_string();
    };
    let end = start + input[start..].find("}}").unwrap();
    let spec = &input[start + 6..end];
    let (name, expires) = spec.split_once(':').unwrap();
    let l = manifest::load(&input.replace(&input[start..end + 2], "pending"));
    let root = &l.documents[0].root;
    let s = |p: &[&str]| {
        root.get_path(p)
            .and_then(manifest::Node::as_str)
            .unwrap_or("")
            .to_string()
    };
    let kind = s(&["kind"]);
    let digest = sostle_core::kay::template_digest(root, &kind).unwrap();
    let payload = sostle_core::kay::payload(
        &s(&["metadata", "namespace"]),
        &kind,
        &s(&["metadata", "name"]),
        &digest,
        expires,
    );
    let sig = sostle_core::approval::sign(&crate::testkeys::test_key(name), &payload);
    format!("{}{sig}{}", &input[..start], &input[end + 2..])
}

fn substitute_tokens(input: &str, secret: &str) -> String {
    let mut out = input.to_string();
    while let Some(start) = out.find("{{token:") {
        let Some(end) = out[start..].find("}}") else {
            break;
        };
        let spec = &out[start + 8..start + end];
        let parts: Vec<&str> = spec.splitn(3, ':').collect();
        let [crew, layer, expires] = parts[..] else {
            panic!("bad token placeholder {spec}")
        };
        let exp = sostle_core::epoch::parse_rfc3339(expires)
            .unwrap()
            .as_second();
        let tok =
            sostle_core::token::issue(secret.as_bytes(), crew, Layer::parse(layer).unwrap(), exp);
        out.replace_range(start..start + end + 2, &tok);
    }
    out
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let loaded = manifest::load(&text);
    if let Some(e) = loaded.errors.first() {
        return Err(format!("case file: {}:{}: {}", e.line, e.col, e.message));
    }
    let json = loaded.documents.first().ok_or("empty case")?.root.to_json();
    let case: Case = serde_json::from_value(json).map_err(|e| format!("case file: {e}"))?;
    let mut config = match &case.config {
        Some(c) => Config::from_yaml(c).map_err(|e| format!("config: {e}"))?,
        None => Config::default(),
    };
    register_test_keys(&mut config, &case.unkeyed);
    let input = match &case.token_secret {
        Some(s) => substitute_tokens(&case.input, s),
        None => case.input.clone(),
    };
    let input = substitute_witness(&input);
    let input = substitute_approval(&input, &config);
    let mut input = substitute_kay(&input);
    for (from, to) in &case.after_signing {
        assert!(
            input.contains(from.as_str()),
            "after_signing: {from:?} is not in the input"
        );
        input = input.replace(from.as_str(), to);
    }
    let requester = case
        .requester
        .as_deref()
        .map(|r| sostle_core::config::Requester::from_subject(r, case.groups.clone()).unwrap());
    let engine = Engine::new(Arc::new(config));
    let doc = manifest::load(&input);
    if let Some(e) = doc.errors.first() {
        return Err(format!("input: {}:{}: {}", e.line, e.col, e.message));
    }
    let root = &doc.documents.first().ok_or("input has no document")?.root;
    let labels: HashMap<String, Layer> = case
        .namespaces
        .iter()
        .map(|(k, v)| (k.clone(), Layer::parse(v).unwrap()))
        .collect();
    let now =
        sostle_core::epoch::parse_rfc3339(case.now.as_deref().unwrap_or("2026-05-11T12:00:00Z"))
            .map_err(|e| e.to_string())?;
    let ctx = EvalContext {
        requester: requester.as_ref(),
        layer_override: case.layer.as_deref().map(|l| Layer::parse(l).unwrap()),
        namespaces: &labels,
        token_secret: case.token_secret.as_deref().map(str::as_bytes),
        ..EvalContext::new(now)
    };
    let report = engine.evaluate(root, &ctx);
    let mut problems = Vec::new();
    for (policy, want) in &case.want {
        let Some(r) = report.results.iter().find(|r| &*r.policy == policy) else {
            problems.push(format!("no result for {policy}"));
            continue;
        };
        if r.outcome.as_str() != want {
            problems.push(format!(
                "{policy}: want {want}, got {} {:?}",
                r.outcome.as_str(),
                r.violations.iter().map(|v| &v.message).collect::<Vec<_>>()
            ));
        }
    }
    for (policy, want) in &case.violations {
        let Some(r) = report.results.iter().find(|r| &*r.policy == policy) else {
            problems.push(format!("no result for {policy}"));
            continue;
        };
        let got: Vec<(u32, u32, String)> = r
            .violations
            .iter()
            .map(|v| (v.pos.line, v.pos.col, v.path.clone()))
            .collect();
        let ok = got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && g.2.ends_with(&w.2));
        if !ok {
            problems.push(format!("{policy}: violations want {want:?}, got {got:?}"));
        }
    }
    for (policy, want) in &case.exemption {
        let Some(r) = report.results.iter().find(|r| &*r.policy == policy) else {
            problems.push(format!("no result for {policy}"));
            continue;
        };
        match (&r.exemption, want.valid) {
            (None, None) => {}
            (None, Some(_)) => problems.push(format!(
                "{policy}: expected an exemption judgement, got none"
            )),
            (Some(j), None) => problems.push(format!(
                "{policy}: expected no judgement, got {:?}",
                j.problems
            )),
            (Some(j), Some(valid)) => {
                if j.valid != valid {
                    problems.push(format!(
                        "{policy}: exemption valid={} problems={:?}",
                        j.valid, j.problems
                    ));
                }
                let ok = j.problems.len() == want.problems.len()
                    && j.problems
                        .iter()
                        .zip(&want.problems)
                        .all(|(g, w)| g.contains(w.as_str()));
                if !ok {
                    problems.push(format!(
                        "{policy}: problems want {:?}, got {:?}",
                        want.problems, j.problems
                    ));
                }
                for w in &want.warnings {
                    if !j.warnings.iter().any(|g| g.contains(w.as_str())) {
                        problems.push(format!(
                            "{policy}: warning {w:?} missing from {:?}",
                            j.warnings
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} — {}", case.note, problems.join("; ")))
    }
}

#[test]
fn policy_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "expected the case library, found {} files",
        files.len()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            run_case(f)
                .err()
                .map(|e| format!("{}: {e}", f.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
