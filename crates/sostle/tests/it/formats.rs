//! Every output format on the bundled examples, as snapshots of exit code, stdout and stderr.

use crate::sostle;

const NOW: &str = "2026-05-11T21:00:00Z";

/// The example manifests (the evidence files beside them are not manifests).
pub const MANIFESTS: [&str; 4] = [
    "examples/mefine-static/deployment.yaml",
    "examples/mefine-static/fixed",
    "examples/layers",
    "examples/exemptions",
];

fn format(f: &str) -> String {
    let mut args = vec![
        "test",
        "--config",
        crate::exempt::CONFIG,
        "--now",
        NOW,
        "-o",
        f,
    ];
    args.extend(MANIFESTS);
    sostle(&args).snapshot()
}

#[test]
fn human() {
    insta::assert_snapshot!(format("human"));
}

#[test]
fn json() {
    insta::assert_snapshot!(format("json"));
}

#[test]
fn junit() {
    insta::assert_snapshot!(format("junit"));
}

#[test]
fn sarif() {
    insta::assert_snapshot!(format("sarif"));
}

#[test]
fn tap() {
    insta::assert_snapshot!(format("tap"));
}

#[test]
fn github() {
    insta::assert_snapshot!(format("github"));
}

#[test]
fn policyreport() {
    insta::assert_snapshot!(format("policyreport"));
}

#[test]
fn json_has_one_result_per_resource_and_policy() {
    let mut args = vec!["test", "--now", NOW, "-o", "json"];
    args.extend(MANIFESTS);
    let r = sostle(&args);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let resources = v["summary"]["resources"].as_u64().unwrap();
    assert_eq!(
        v["results"].as_array().unwrap().len() as u64,
        resources * 11
    );
    assert_eq!(v["report"], "sostle/v1");
    assert_eq!(v["epoch_day"], 97);
}

#[test]
fn exit_codes_follow_conftest() {
    // Failures: 1, or 2 with --fail-on-warn.
    assert_eq!(
        sostle(&[
            "test",
            "--now",
            NOW,
            "examples/mefine-static/deployment.yaml"
        ])
        .code,
        1
    );
    assert_eq!(
        sostle(&[
            "test",
            "--now",
            NOW,
            "--fail-on-warn",
            "examples/mefine-static/deployment.yaml"
        ])
        .code,
        2
    );
    // Warnings only: 0, or 1 with --fail-on-warn (L2 without SSO warns at the gate).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warn.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: sostle-l3-crew}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: sostle-l1-readonly, annotations: {sostle.eose.ca/operations: write}}\nspec:\n  containers:\n  - name: a\n    image: a:1\n    resources: {limits: {cpu: 1, memory: 1Gi}}\n",
    )
    .unwrap();
    let p = dir.path().join("warn.yaml");
    let p = p.to_str().unwrap();
    assert_eq!(sostle(&["test", "--now", NOW, p]).code, 0);
    assert_eq!(sostle(&["test", "--now", NOW, "--fail-on-warn", p]).code, 1);
    // Nothing wrong: 0.
    assert_eq!(
        sostle(&["test", "--now", NOW, "examples/layers/namespaces.yaml"]).code,
        0
    );
}

#[test]
fn layer_flag_overrides_namespace() {
    let r = sostle(&[
        "test",
        "--now",
        NOW,
        "-o",
        "json",
        "--sostle-layer",
        "L0",
        "examples/mefine-static/deployment.yaml",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    for res in v["results"].as_array().unwrap() {
        assert_eq!(res["layer"], "L0");
    }
    // At L0 only deny_no_limits and deny_privileged apply: the two limits fail, nothing else.
    assert_eq!(v["summary"]["fail"], 1);
}

#[test]
fn namespace_label_in_the_input_sets_the_layer() {
    // examples/layers/namespaces.yaml labels `payments` L3; without it, payments is unlayered.
    let with = sostle(&["test", "--now", NOW, "-o", "json", "examples/layers/"]);
    let without = sostle(&[
        "test",
        "--now",
        NOW,
        "-o",
        "json",
        "examples/layers/workloads.yaml",
    ]);
    let layer_of = |out: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"]["name"] == "ledger-api")
            .unwrap()["layer"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(layer_of(&with.stdout), "L3");
    assert_eq!(layer_of(&without.stdout), "unlayered");
}

#[test]
fn stdin_is_read_with_dash() {
    let yaml = std::fs::read(crate::root().join("examples/mefine-static/deployment.yaml")).unwrap();
    let r = crate::sostle_in(&crate::root(), &["test", "--now", NOW, "-"], Some(&yaml));
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("-:25:11: FAIL deny_no_limits"),
        "{}",
        r.stdout
    );
}

#[test]
fn sostle_now_env_sets_the_epoch_day() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sostle"));
    let out = cmd
        .args([
            "test",
            "-o",
            "json",
            "examples/mefine-static/deployment.yaml",
        ])
        .current_dir(crate::root())
        .env("SOSTLE_NOW", "2026-05-14T00:00:00Z")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["epoch_day"], 100);
}

#[test]
fn help_is_useful() {
    let r = sostle(&["test", "--help"]);
    assert_eq!(r.code, 0);
    for needle in [
        "--sostle-layer",
        "--fail-on-warn",
        "policyreport",
        "Exit status",
    ] {
        assert!(r.stdout.contains(needle), "help lacks {needle}");
    }
}

#[test]
fn namespace_label_in_a_later_file_sets_the_layer_across_chunks() {
    // Results stream in chunks of files; a Namespace labelled in the last file still sets the
    // layer of a workload in the first (the labels are read before the main pass).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let workloads =
        std::fs::read_to_string(crate::root().join("examples/layers/workloads.yaml")).unwrap();
    std::fs::write(d.join("a-workloads.yaml"), workloads).unwrap();
    for i in 0..300 {
        std::fs::write(
            d.join(format!("m-{i:03}.yaml")),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n  namespace: other\n"
            ),
        )
        .unwrap();
    }
    let namespaces =
        std::fs::read_to_string(crate::root().join("examples/layers/namespaces.yaml")).unwrap();
    std::fs::write(d.join("z-namespaces.yaml"), namespaces).unwrap();
    let r = crate::sostle_in(d, &["test", "--now", NOW, "-o", "json", "."], None);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let ledger = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"]["name"] == "ledger-api")
        .unwrap();
    assert_eq!(ledger["layer"], "L3");
    // Input order is kept across chunks: first file first, last file last.
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.first().unwrap()["file"], "./a-workloads.yaml");
    assert_eq!(results.last().unwrap()["file"], "./z-namespaces.yaml");
    let files: Vec<&str> = results
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
}
