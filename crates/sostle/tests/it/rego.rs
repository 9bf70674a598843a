//! User Rego policies (conftest conventions), `sostle verify`, and `sostle policy export`.

use crate::{root, sostle};

#[test]
fn user_policies_join_the_report_with_positions() {
    let r = sostle(&[
        "test",
        "--now",
        "2026-05-11T21:00:00Z",
        "--policy",
        "examples/rego",
        "-o",
        "json",
        "examples/layers",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    let ledger_api: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["resource"]["name"] == "ledger-api")
        .collect();
    assert_eq!(ledger_api.len(), 13, "11 suite results and 2 user rules");
    let root_rule = ledger_api
        .iter()
        .find(|r| r["policy"] == "rego:main/deny_run_as_root")
        .unwrap();
    assert_eq!(root_rule["outcome"], "pass", "ledger-api sets runAsNonRoot");
    let label_rule = ledger_api
        .iter()
        .find(|r| r["policy"] == "rego:main/warn_app_label")
        .unwrap();
    assert_eq!(label_rule["outcome"], "warn");
    // The result's `path` is located: metadata.labels of ledger-api is on line 7.
    assert_eq!(label_rule["violations"][0]["line"], 7);
    assert_eq!(label_rule["violations"][0]["path"], "metadata.labels");
    // A Pod is not in the rule's kinds: pass. Every output format carries user rules.
    let h = sostle(&[
        "test",
        "--now",
        "2026-05-11T21:00:00Z",
        "--policy",
        "examples/rego",
        "examples/layers",
    ]);
    assert!(
        h.stdout
            .contains("WARN rego:main/warn_app_label Deployment/payments/ledger-api"),
        "{}",
        h.stdout
    );
    let sarif = sostle(&[
        "test",
        "--now",
        "2026-05-11T21:00:00Z",
        "--policy",
        "examples/rego",
        "-o",
        "sarif",
        "examples/layers",
    ]);
    assert!(sarif
        .stdout
        .contains("\"ruleId\": \"rego:main/warn_app_label\""));
}

#[test]
fn namespaces_exceptions_data_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.rego"), "package team.alpha\nimport rego.v1\nviolation contains msg if { input.kind == \"Service\"; msg := sprintf(\"no services in %s\", [data.env.name]) }\n").unwrap();
    std::fs::write(d.join("b.rego"), "package main\nimport rego.v1\ndeny_big contains \"too big\" if input.spec.replicas > 3\nexception contains [\"big\"] if input.metadata.name == \"legacy\"\n").unwrap();
    std::fs::write(d.join("data.yaml"), "env:\n  name: prod\n").unwrap();
    std::fs::write(
        d.join("m.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big}\nspec: {replicas: 5}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: legacy}\nspec: {replicas: 5}\n",
    )
    .unwrap();
    let policy = d.to_str().unwrap();
    let m = d.join("m.yaml");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "test",
            "-o",
            "json",
            "--sostle-layer",
            "L2",
            "--policy",
            policy,
            "--data",
            d.join("data.yaml").to_str().unwrap().to_string().leak(),
        ];
        args.extend_from_slice(extra);
        args.push(m.to_str().unwrap());
        let r = sostle(&args);
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };
    let outcome = |v: &serde_json::Value, name: &str, policy: &str| -> String {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"]["name"] == name && r["policy"] == policy)
            .map(|r| r["outcome"].as_str().unwrap().to_string())
            .unwrap_or_else(|| "absent".into())
    };
    // Default namespace: main only.
    let v = run(&[]);
    assert_eq!(outcome(&v, "big", "rego:main/deny_big"), "fail");
    assert_eq!(
        outcome(&v, "legacy", "rego:main/deny_big"),
        "skip",
        "excepted by an exception rule"
    );
    assert_eq!(outcome(&v, "s", "rego:team.alpha/violation"), "absent");
    // Globs and --all-namespaces; data files reach the policy.
    let v = run(&["--namespace", "team.*"]);
    assert_eq!(outcome(&v, "s", "rego:team.alpha/violation"), "fail");
    assert_eq!(outcome(&v, "big", "rego:main/deny_big"), "absent");
    let v = run(&["--all-namespaces"]);
    let msg = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "rego:team.alpha/violation" && r["outcome"] == "fail")
        .unwrap()["violations"][0]["message"]
        .clone();
    assert_eq!(msg, "no services in prod");
    // A Rego syntax error: exit 3 with file:line:col from regorus.
    std::fs::write(
        d.join("c.rego"),
        "package main\nimport rego.v1\ndeny contains msg if {\n  msg :=\n}\n",
    )
    .unwrap();
    let r = sostle(&["test", "--policy", policy, m.to_str().unwrap()]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("c.rego:5:1") || r.stderr.contains("c.rego:4"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_runaway_policy_hits_the_time_cap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow.rego"),
        "package main\nimport rego.v1\ndeny contains \"never\" if {\n  some i in numbers.range(1, 4000)\n  some j in numbers.range(1, 4000)\n  i * j == -1\n}\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let r = sostle(&[
        "test",
        "--policy",
        dir.path().to_str().unwrap(),
        "--rego-timeout-ms",
        "50",
        "examples/layers/namespaces.yaml",
    ]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.contains("Rego evaluation failed"), "{}", r.stdout);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the cap stopped it"
    );
}

#[test]
fn verify_runs_the_shipped_cases_and_catches_an_open_trial() {
    let r = sostle(&["verify", "policy/tests"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("18 cases: 18 closed, 0 open"),
        "{}",
        r.stdout
    );
    let j = sostle(&["verify", "-o", "junit", "policy/tests"]);
    assert!(j
        .stdout
        .contains("<testsuite name=\"sostle verify\" tests=\"18\" failures=\"0\">"));
    // A case whose yin also violates stays open: exit 1.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("policy/tests/deny_privileged.yaml")).unwrap();
    let (head, _) = text.split_once("yin: |").unwrap();
    let yang = head.split_once("yang: |").unwrap().1;
    std::fs::write(dir.path().join("open.yaml"), format!("{head}yin: |{yang}")).unwrap();
    let r = sostle(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("OPEN") && r.stdout.contains("yin must pass (got fail)"),
        "{}",
        r.stdout
    );
    // User rules are verified too.
    std::fs::write(
        dir.path().join("open.yaml"),
        "policy: rego:main/deny_run_as_root\nyang: |\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: a}\n  spec: {template: {spec: {}}}\nyin: |\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: a}\n  spec: {template: {spec: {securityContext: {runAsNonRoot: true}}}}\n",
    )
    .unwrap();
    let r = sostle(&[
        "verify",
        "--policy",
        "examples/rego",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn export_writes_the_embedded_suite() {
    let dir = tempfile::tempdir().unwrap();
    let r = sostle(&["policy", "export", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0);
    for f in [
        "lib.rego",
        "suite.rego",
        "gates.rego",
        "exemptions.rego",
        "outcomes.rego",
        "config.rego",
        "data.json",
        "deny_cross_layer.rego",
        "deny_no_mecipol_image.rego",
        "warn_trendal_missing.rego",
        "deny_no_limits.rego",
        "deny_no_readonly.rego",
        "deny_privileged.rego",
        "deny_latest_tag.rego",
        "deny_no_liveness.rego",
        "warn_no_gamma1_label.rego",
        "warn_no_security_ctx.rego",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let exported = std::fs::read_to_string(dir.path().join("deny_cross_layer.rego")).unwrap();
    assert_eq!(
        exported,
        std::fs::read_to_string(root().join("policy/deny_cross_layer.rego")).unwrap()
    );
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("data.json")).unwrap())
            .unwrap();
    assert_eq!(
        data["sostle"]["config"]["policies"]["warn_no_gamma1_label"]["escalation"]["day"],
        100
    );
    // The exported bundle, loaded as user policies, evaluates: its deny rule fires on mefine-static.
    let r = sostle(&[
        "test",
        "--now",
        "2026-05-11T21:00:00Z",
        "--policy",
        dir.path().to_str().unwrap(),
        "-o",
        "json",
        "examples/mefine-static/deployment.yaml",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let deny = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "rego:main/deny" && r["resource"]["kind"] == "Deployment")
        .unwrap();
    assert_eq!(deny["outcome"], "fail");
    assert!(deny["violations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["message"]
            .as_str()
            .unwrap()
            .starts_with("deny_no_limits:")));
}

#[test]
fn user_rules_judge_every_document_and_can_be_exempted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("p.rego"), "package main\nimport rego.v1\ndeny_big contains \"too many replicas\" if input.spec.replicas > 3\n").unwrap();
    let values = [
        "--resource",
        "sostle-l3-crew/big",
        "--policies",
        "rego:main/deny_big",
        "--reason",
        "TRB-CHAOS-001 — load test",
        "--expires",
        "2026-05-20T00:00:00Z",
        "--owner",
        "RICK",
        "--reviewed",
        "BOSUN",
    ];
    let mut args = vec!["exempt", "hash"];
    args.extend(values);
    let witness = sostle(&args).stdout.trim().to_string();
    // BOSUN's approval, made with the demo key the examples' config registers: `exempt approve`
    // on the annotated manifest prints it.
    let approval_of = |text: &str| -> String {
        let f = d.join("to-approve.yaml");
        std::fs::write(&f, text).unwrap();
        let r = sostle(&[
            "exempt",
            "approve",
            "--config",
            crate::exempt::CONFIG,
            "--key",
            "examples/keys/BOSUN.demo.key",
            f.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.snapshot());
        r.stdout
            .lines()
            .find(|l| l.starts_with("sostle.eose.ca/exempt-approval:"))
            .unwrap()
            .to_string()
    };
    let unsigned = |ns: &str, approval_line: &str| {
        let ann = if !approval_line.is_empty() {
            format!(
                "  annotations:\n    sostle.eose.ca/exempt-from: rego:main/deny_big\n    sostle.eose.ca/exempt-applies-to: sostle-l3-crew/big\n    sostle.eose.ca/exempt-reason: \"TRB-CHAOS-001 — load test\"\n    sostle.eose.ca/exempt-expires: \"2026-05-20T00:00:00Z\"\n    sostle.eose.ca/exempt-owner: RICK\n    sostle.eose.ca/exempt-reviewed: BOSUN\n    sostle.eose.ca/exempt-witness: \"{witness}\"\n    {approval_line}\n"
            )
        } else {
            String::new()
        };
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: big\n  namespace: {ns}\n{ann}spec:\n  replicas: 5\n")
    };
    // The annotated manifest, then the same with BOSUN's approval under the witness.
    let approval = approval_of(&unsigned("sostle-l3-crew", "# no approval yet"));
    let manifest = |ns: &str, annotated: bool| unsigned(ns, if annotated { &approval } else { "" });
    let outcome = |text: String| -> serde_json::Value {
        let f = d.join("m.yaml");
        std::fs::write(&f, text).unwrap();
        let r = sostle(&[
            "test",
            "--config",
            crate::exempt::CONFIG,
            "--now",
            "2026-05-11T12:00:00Z",
            "--policy",
            d.join("p.rego").to_str().unwrap(),
            "-o",
            "json",
            f.to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["policy"] == "rego:main/deny_big")
            .unwrap()
            .clone()
    };
    assert_eq!(
        outcome(manifest("sostle-l3-crew", false))["outcome"],
        "fail"
    );
    // User rules judge every document, as conftest does (#17): never-governed and unlayered
    // namespaces included; only sostle's own suite keeps its layer scoping.
    assert_eq!(
        outcome(manifest("kube-system", false))["outcome"],
        "fail",
        "never governed by the suite, judged by the user's rule"
    );
    assert_eq!(
        outcome(manifest("default", false))["outcome"],
        "fail",
        "unlayered, judged by the user's rule"
    );
    let exempted = outcome(manifest("sostle-l3-crew", true));
    assert_eq!(exempted["outcome"], "exempted", "{exempted}");
    // At L4 user policies are not exemptable (SPEC §6's last row).
    let l4 = outcome(
        manifest("sostle-l3-crew", true)
            .replace("namespace: sostle-l3-crew", "namespace: sostle-l4-token"),
    );
    assert_eq!(l4["outcome"], "fail");
}
