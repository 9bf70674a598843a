//! Parity: the exported Rego, evaluated by regorus, reaches the same policy → outcome as the
//! native engine on every document of ../shared/corpus at every layer, and on the policy and
//! exemption cases of sostle-core.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sostle_core::{manifest, Config, Engine, EvalContext, Layer, Outcome};
use sostle_rego::Suite;

use sostle_test_support::keys as testkeys;

fn files(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|e| ext.iter().any(|x| e == *x)) {
            out.push(p);
        }
    }
}

type Set = BTreeSet<(String, &'static str)>;

fn native_set(engine: &Engine, root: &manifest::Node, layer: Layer, now: jiff::Timestamp) -> Set {
    let ctx = EvalContext {
        layer_override: Some(layer),
        ..EvalContext::new(now)
    };
    engine
        .evaluate(root, &ctx)
        .results
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Fail => Some((r.policy.to_string(), "fail")),
            Outcome::Warn => Some((r.policy.to_string(), "warn")),
            Outcome::Exempted => Some((r.policy.to_string(), "exempted")),
            _ => None,
        })
        .collect()
}

fn rego_set(
    suite: &mut Suite,
    object: &serde_json::Value,
    layer: Layer,
    now: jiff::Timestamp,
) -> Set {
    let o = suite
        .evaluate(
            object,
            Some(layer),
            i128::from(now.as_second()) * 1_000_000_000,
        )
        .unwrap();
    let mut s = Set::new();
    for (p, ..) in o.deny {
        s.insert((p, "fail"));
    }
    for (p, ..) in o.warn {
        s.insert((p, "warn"));
    }
    for (p, ..) in o.exempted {
        s.insert((p, "exempted"));
    }
    s
}

#[test]
fn corpus_parity_at_every_layer() {
    let config = Config::default();
    let engine = Engine::new(Arc::new(config.clone()));
    let mut suite = Suite::new(&config).unwrap();
    let mut paths = Vec::new();
    files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
        &["yaml", "yml"],
        &mut paths,
    );
    // Day 297: warn_no_gamma1_label has escalated to DENY.
    let now = jiff::Timestamp::from_second(1_795_737_600).unwrap();
    let mut compared = 0;
    let mut with_findings = 0;
    let mut mismatches = Vec::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        for d in manifest::load(&text).documents {
            let object = d.root.to_json();
            for layer in Layer::ALL {
                let n = native_set(&engine, &d.root, layer, now);
                let r = rego_set(&mut suite, &object, layer, now);
                compared += 1;
                with_findings += usize::from(!n.is_empty());
                if n != r && mismatches.len() < 10 {
                    mismatches.push(format!(
                        "{} #{} at {layer}: native {n:?} rego {r:?}",
                        p.display(),
                        d.index
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} evaluations; mismatches:\n{}",
        compared,
        mismatches.join("\n")
    );
    assert!(compared > 2500 * 9);
    assert!(
        with_findings > 5_000,
        "only {with_findings} evaluations had findings: the comparison would be vacuous"
    );
}

/// The policy and exemption cases of sostle-core (tests/cases), through both engines. Cases
/// that need what a Rego bundle cannot see are left to the native tests: HMAC token checks
/// (`token_secret`) and Namespace labels from elsewhere in the input (`namespaces`).
#[test]
fn case_parity() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sostle-core/tests/cases");
    let mut paths = Vec::new();
    files(&dir, &["yaml"], &mut paths);
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for p in &paths {
        let case = manifest::load(&std::fs::read_to_string(p).unwrap())
            .documents
            .remove(0)
            .root
            .to_json();
        if case.get("token_secret").is_some() || case.get("namespaces").is_some() {
            continue;
        }
        let mut config = match case.get("config").and_then(|c| c.as_str()) {
            Some(text) => Config::from_yaml(text).unwrap(),
            None => Config::default(),
        };
        let unkeyed: Vec<String> = case
            .get("unkeyed")
            .and_then(|u| u.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        testkeys::register_test_keys(&mut config, &unkeyed);
        let engine = Engine::new(Arc::new(config.clone()));
        let mut suite = Suite::new(&config).unwrap();
        let mut input = case["input"].as_str().unwrap().to_string();
        if input.contains("{{witness}}") {
            let l = manifest::load(&input.replace("{{witness}}", "x"));
            let a = sostle_core::exemption::Annotations::read(&l.documents[0].root).unwrap();
            input = input.replace("{{witness}}", &a.computed_witness());
        }
        let input = testkeys::substitute_approval(&input, &config);
        let doc = manifest::load(&input).documents.remove(0);
        let now = sostle_core::epoch::parse_rfc3339(
            case.get("now")
                .and_then(|n| n.as_str())
                .unwrap_or("2026-05-11T12:00:00Z"),
        )
        .unwrap();
        let layers: Vec<Layer> = match case.get("layer").and_then(|l| l.as_str()) {
            Some(l) => vec![Layer::parse(l).unwrap()],
            None => Layer::ALL.to_vec(),
        };
        for layer in layers {
            // Without a flag the native engine resolves the layer itself; compare at that layer.
            let n = native_set(&engine, &doc.root, layer, now);
            let r = rego_set(&mut suite, &doc.root.to_json(), layer, now);
            compared += 1;
            if n != r {
                mismatches.push(format!(
                    "{} at {layer}: native {n:?} rego {r:?}",
                    p.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(compared > 300, "compared {compared}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
