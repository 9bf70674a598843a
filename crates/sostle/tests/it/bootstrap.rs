//! `sostle bootstrap`: snapshots of every file, each Kubernetes object checked strictly against
//! the API types (k8s-openapi: decoded, re-encoded, and compared, so an unknown or misspelled
//! field fails), and the webhook's own Deployment passes its own suite.

use std::path::Path;

use crate::{root, sostle};

fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &serde_json::Value) {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, doc,
        "fields lost in a round trip through the API type (unknown or misspelled)"
    );
}

fn docs(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let l = sostle_core::manifest::load(&text);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.documents.iter().map(|d| d.root.to_json()).collect()
}

#[test]
fn bootstrap_tree_is_valid_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bs");
    let r = sostle(&[
        "bootstrap",
        "--out",
        out.to_str().unwrap(),
        "--cluster",
        "eose-fleet",
        "--resource-group",
        "rg-eose",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in [
        "README.md",
        "namespaces.yaml",
        "webhook.yaml",
        "chaos-pool/az.sh",
        "chaos-pool/main.tf",
    ] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        insta::assert_snapshot!(f.replace('/', "_"), text);
    }
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let namespaces = docs(&out.join("namespaces.yaml"));
    assert_eq!(namespaces.len(), 9);
    let mut layers = Vec::new();
    for n in &namespaces {
        strict::<Namespace>(n);
        layers.push(
            n["metadata"]["labels"]["sostle-layer"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        layers,
        ["L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "trial"]
    );
    let mut kinds = Vec::new();
    for d in docs(&out.join("webhook.yaml")) {
        let kind = d["kind"].as_str().unwrap().to_string();
        match kind.as_str() {
            "Namespace" => strict::<Namespace>(&d),
            "ServiceAccount" => strict::<ServiceAccount>(&d),
            "ConfigMap" => strict::<ConfigMap>(&d),
            "Deployment" => strict::<Deployment>(&d),
            "PodDisruptionBudget" => strict::<PodDisruptionBudget>(&d),
            "Service" => strict::<Service>(&d),
            "ValidatingWebhookConfiguration" => {
                strict::<ValidatingWebhookConfiguration>(&d);
                let hooks = d["webhooks"].as_array().unwrap();
                // One entry per layer, then the Namespace entry (layers.writers), failing closed.
                assert_eq!(hooks.len(), 10);
                let (layer_hooks, ns_hook) = hooks.split_at(9);
                let ns_hook = &ns_hook[0];
                assert_eq!(ns_hook["name"], "namespaces.validate.sostle.eose.ca");
                assert_eq!(ns_hook["failurePolicy"], "Fail");
                assert_eq!(
                    ns_hook["clientConfig"]["service"]["path"],
                    "/validate/namespaces"
                );
                assert_eq!(
                    ns_hook["rules"][0]["resources"],
                    serde_json::json!(["namespaces", "namespaces/status", "namespaces/finalize"])
                );
                assert_eq!(
                    ns_hook["rules"][0]["operations"],
                    serde_json::json!(["CREATE", "UPDATE"])
                );
                for h in layer_hooks {
                    let layer = h["namespaceSelector"]["matchLabels"]["sostle-layer"]
                        .as_str()
                        .unwrap();
                    let low = ["L0", "L1", "L2"].contains(&layer);
                    assert_eq!(
                        h["failurePolicy"],
                        if low { "Ignore" } else { "Fail" },
                        "{layer}"
                    );
                    assert_eq!(h["sideEffects"], "None");
                    assert_eq!(h["admissionReviewVersions"], serde_json::json!(["v1"]));
                    assert_eq!(
                        h["clientConfig"]["service"]["path"],
                        format!("/validate/{layer}")
                    );
                }
            }
            "MutatingWebhookConfiguration" => strict::<MutatingWebhookConfiguration>(&d),
            "Issuer" | "Certificate" => assert_eq!(d["apiVersion"], "cert-manager.io/v1"),
            other => panic!("unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    assert_eq!(kinds.len(), 10);
    // The webhook passes its own suite (every DENY policy at L2 and in the trial namespace).
    for layer in ["L2", "trial"] {
        let r = sostle(&[
            "test",
            "--sostle-layer",
            layer,
            "-o",
            "json",
            out.join("webhook.yaml").to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["summary"]["fail"], 0, "{layer}: {}", r.stdout);
        assert_eq!(r.code, 0);
    }
    let _ = root();
}

#[test]
fn print_parts() {
    let az = sostle(&[
        "bootstrap",
        "--print",
        "az",
        "--cluster",
        "c1",
        "--resource-group",
        "g1",
    ]);
    for needle in [
        "--priority Spot",
        "--eviction-policy Delete",
        "--spot-max-price -1",
        "--node-vm-size Standard_B2s_v2",
        "--min-count 0",
        "--max-count 4",
        "--node-taints chaos=true:NoSchedule",
        "--labels role=chaos sostle=trial pool=chaos gamma1=14134725141734693",
        "CLUSTER:-c1",
        "RESOURCE_GROUP:-g1",
    ] {
        assert!(
            az.stdout.contains(needle),
            "{needle} missing from:\n{}",
            az.stdout
        );
    }
    let tf = sostle(&["bootstrap", "--print", "terraform"]);
    for needle in [
        "azurerm_kubernetes_cluster_node_pool",
        "priority              = \"Spot\"",
        "eviction_policy       = \"Delete\"",
        "spot_max_price        = -1",
    ] {
        assert!(tf.stdout.contains(needle), "{needle}");
    }
    let ns = sostle(&["bootstrap", "--print", "namespaces"]);
    assert_eq!(ns.stdout.matches("kind: Namespace").count(), 9);
    // The az script is valid shell.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("az.sh");
    std::fs::write(&f, &az.stdout).unwrap();
    assert!(std::process::Command::new("sh")
        .args(["-n", f.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn bootstrap_writes_the_rego_suite_and_prints_it_as_one_module() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bs");
    assert_eq!(
        sostle(&["bootstrap", "--out", out.to_str().unwrap()]).code,
        0
    );
    for f in [
        "policy/deny_cross_layer.rego",
        "policy/deny_no_mecipol_image.rego",
        "policy/warn_trendal_missing.rego",
        "policy/config.rego",
        "policy/data.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // The printed module loads on its own and judges like the suite.
    let module = sostle(&["bootstrap", "--print", "rego"]).stdout;
    assert_eq!(
        module.matches("\npackage ").count() + usize::from(module.starts_with("package ")),
        1,
        "one package header"
    );
    let f = dir.path().join("sostle.rego");
    std::fs::write(&f, module).unwrap();
    for policy in [f.to_str().unwrap(), out.join("policy").to_str().unwrap()] {
        let r = sostle(&[
            "test",
            "--now",
            "2026-05-11T21:00:00Z",
            "--policy",
            policy,
            "-o",
            "json",
            "examples/mefine-static/deployment.yaml",
        ]);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
        let deny = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["policy"] == "rego:main/deny" && r["resource"]["kind"] == "Deployment")
            .unwrap();
        assert_eq!(deny["outcome"], "fail", "{policy}");
    }
}

#[test]
fn the_configmap_carries_key_files_inline() {
    // examples/sostle.yaml names its keys as files beside it; the pod has no such files, so the
    // ConfigMap's copy must hold the PEM itself and load anywhere, with the same keys.
    let r = sostle(&[
        "bootstrap",
        "--config",
        "examples/sostle.yaml",
        "--print",
        "webhook",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let loaded = sostle_core::manifest::load(&r.stdout);
    let cm = loaded
        .documents
        .iter()
        .map(|d| d.root.to_json())
        .find(|d| d["kind"] == "ConfigMap")
        .unwrap();
    let text = cm["data"]["sostle.yaml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sostle.yaml"), text).unwrap();
    let elsewhere = sostle_core::Config::from_yaml(text).unwrap();
    let here = sostle_core::Config::from_yaml_with(
        &std::fs::read_to_string(root().join("examples/sostle.yaml")).unwrap(),
        &|p| {
            let path = root().join("examples").join(p);
            std::fs::read_to_string(&path)
                .map_err(|error| sostle_core::config::KeyReadError::Unreadable { path, error })
        },
    )
    .unwrap();
    assert_eq!(elsewhere, here);
    assert_eq!(elsewhere.crew_member("Kay").unwrap().keys.len(), 1);
}

#[test]
fn the_webhook_runs_its_image_by_digest_and_carries_signer_files_inline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = root().join("../shared/fixtures/cosign/containers-image");
    for f in ["cosign.pub", "fulcio_v1.crt.pem", "rekor.pub"] {
        std::fs::copy(fixtures.join(f), d.join(f)).unwrap();
    }
    std::fs::write(
        d.join("sostle.yaml"),
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nimages:\n  signers:\n    - name: release\n      key: cosign.pub\n    - name: ci\n      identity: mitr@redhat.com\n      issuer: https://github.com/login/oauth\n      fulcioRoots: [fulcio_v1.crt.pem]\n  rekorKeys: [rekor.pub]\nlocks:\n  keys: [cosign.pub]\n",
    )
    .unwrap();
    let cfg = d.join("sostle.yaml").display().to_string();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let r = sostle(&[
        "bootstrap",
        "--config",
        &cfg,
        "--print",
        "webhook",
        "--image",
        "registry.example:5000/eose/sostle:0.1.0",
        "--image-digest",
        &digest,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs: Vec<serde_json::Value> = sostle_core::manifest::load(&r.stdout)
        .documents
        .iter()
        .map(|d| d.root.to_json())
        .collect();
    let dep = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("registry.example:5000/eose/sostle@{digest}")
    );
    // Registry logins for the signature checks: an optional dockerconfigjson Secret.
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["env"][0],
        serde_json::json!({"name": "DOCKER_CONFIG", "value": "/docker"})
    );
    assert!(pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(
            |v| v["secret"]["secretName"] == "sostle-registry-credentials"
                && v["secret"]["optional"] == true
        ));
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let text = cm["data"]["sostle.yaml"].as_str().unwrap();
    // Loads with no files at hand, and means the same as the original beside its files.
    let elsewhere = sostle_core::Config::from_yaml(text).unwrap();
    let here = sostle_core::Config::from_yaml_with(
        &std::fs::read_to_string(d.join("sostle.yaml")).unwrap(),
        &|p| {
            let path = d.join(p);
            std::fs::read_to_string(&path)
                .map_err(|error| sostle_core::config::KeyReadError::Unreadable { path, error })
        },
    )
    .unwrap();
    assert_eq!(elsewhere.images, here.images);
    assert_eq!(elsewhere.locks, here.locks);
    assert!(
        elsewhere.locks.from_registry(),
        "locks are read from registries by default"
    );
    assert_eq!(elsewhere.images.signers.len(), 2);

    let r = sostle(&[
        "bootstrap",
        "--print",
        "webhook",
        "--image-digest",
        "sha256:xyz",
    ]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr
            .contains("--image-digest: `sha256:xyz` is not sha256:"),
        "{}",
        r.stderr
    );
}
