//! The lock lives with the image (issue #15): the seed's trial end to end against a real
//! registry on loopback — charge → burst → spiral → verdict → lock (the profile attached as a
//! MECIPOL attestation) → promote (digest-pinned) — and the webhook's decision from the
//! registry alone, with no profiles directory. The real cosign verifies what `sostle lock`
//! attached, and sostle reads what `cosign attest` made.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::signatures::{cosign, setup, PASSWORD};
use crate::{root, sostle_with, Run};

fn run(dir: &Path, ledger: &Path, now: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let ledger = ledger.display().to_string();
    let docker = dir.join("docker").display().to_string();
    let r = sostle_with(
        dir,
        args,
        &[
            ("SOSTLE_LEDGER", &ledger),
            ("SOSTLE_NOW", now),
            ("COSIGN_PASSWORD", PASSWORD),
            ("DOCKER_CONFIG", &docker),
        ],
        stdin,
    );
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

/// The webhook's decision at `layer` on `object`, through the library the server runs:
/// registry checks first, then the evaluation.
fn decide(
    config: &Path,
    layer: sostle_core::Layer,
    object: &serde_json::Value,
) -> sostle_webhook::Decision {
    decide_update(config, layer, object, None)
}

/// As [`decide`]; with `old`, an UPDATE from that object.
fn decide_update(
    config: &Path,
    layer: sostle_core::Layer,
    object: &serde_json::Value,
    old: Option<&serde_json::Value>,
) -> sostle_webhook::Decision {
    let settings = sostle_webhook::Settings {
        config_path: Some(config.to_path_buf()),
        ..sostle_webhook::Settings::default()
    };
    let loaded = sostle_webhook::load(&settings).expect("config loads");
    assert!(
        loaded.locks.is_none(),
        "no profiles directory: locks come from the registry"
    );
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": object["metadata"]["namespace"],
            "operation": if old.is_some() { "UPDATE" } else { "CREATE" },
            "userInfo": {"username": "ci"}, "object": object, "oldObject": old}
    });
    let req = sostle_webhook::parse_review(body.to_string().as_bytes()).expect("review");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let images = rt.block_on(sostle_webhook::check_images(
        &loaded,
        layer,
        &req,
        false,
        Duration::from_secs(3),
    ));
    let now = "2026-05-12T11:05:00Z".parse().unwrap();
    sostle_webhook::validate(&loaded, layer, &req, now, None, images.as_ref())
}

#[test]
fn the_seeds_trial_locks_in_the_registry_and_the_door_reads_it_from_there() {
    let (reg, dir) = setup();
    let d = dir.path();
    let ledger = d.join("ledger.db");
    let digest = reg.push_image("mefine-static", "day97-v144");
    let image = format!("{}/mefine-static:day97-v144", reg.host);
    let here = root().join("examples/mefine-static");
    let swap = |f: &str| {
        std::fs::read_to_string(here.join(f)).unwrap().replace(
            "eosefleetacrdev.azurecr.io/mefine-static:day97-v144",
            &image,
        )
    };
    std::fs::write(d.join("deployment.yaml"), swap("fixed/deployment.yaml")).unwrap();
    let live = swap("evidence/live-pod.yaml");
    let ev = |f: &str| here.join("evidence").join(f).display().to_string();

    run(
        d,
        &ledger,
        "2026-05-11T10:00:00Z",
        &["trial", "charge", "deployment.yaml", "--target", "L2"],
        None,
    );
    run(
        d,
        &ledger,
        "2026-05-11T10:05:00Z",
        &["trial", "burst", "TRB-CHAOS-001"],
        None,
    );
    run(
        d,
        &ledger,
        "2026-05-12T10:30:00Z",
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "--falco",
            &ev("falco.jsonl"),
            "--trivy",
            &ev("trivy.json"),
            "--events",
            &ev("events.json"),
            "--live",
            "-",
        ],
        Some(live.as_bytes()),
    );
    let v = run(
        d,
        &ledger,
        "2026-05-12T11:00:00Z",
        &["trial", "verdict", "TRB-CHAOS-001"],
        None,
    );
    assert!(v.stdout.contains("MECIPOL-LOCKED"), "{}", v.stdout);
    run(
        d,
        &ledger,
        "2026-05-12T11:00:00Z",
        &["key", "generate", "--out", "keys"],
        None,
    );
    // The real Rekor (rekor-server, Trillian, MariaDB on loopback).
    let rekor_stack = crate::registry_harness::RekorStack::start();
    let rekor_key = rekor_stack.key.display().to_string();
    let r = run(
        d,
        &ledger,
        "2026-05-12T11:00:00Z",
        &[
            "lock",
            "TRB-CHAOS-001",
            "--key",
            "keys/cosign.key",
            "--out",
            "profiles",
            "--attach",
            "--insecure-registry",
            &reg.host,
            "--rekor-url",
            &rekor_stack.url,
            "--rekor-key",
            &rekor_key,
        ],
        None,
    );
    let profile: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        profile["image_digest"],
        digest.as_str(),
        "the lock binds the digest that ran"
    );
    // The profile names its Rekor entry, which logs the profile as it was before the URL was
    // sealed in (rekor_entry null), signed by the lock key: the log's own copy says so.
    let entry_url = profile["rekor_entry"].as_str().unwrap();
    assert!(
        entry_url.starts_with(&format!("{}/api/v1/log/entries/", rekor_stack.url)),
        "{entry_url}"
    );
    let mut pre = profile.clone();
    pre["rekor_entry"] = serde_json::Value::Null;
    use base64::Engine as _;
    use sha2::Digest as _;
    let want = format!(
        "{:x}",
        sha2::Sha256::digest(sostle_core::digest::canonical_json(&pre).as_bytes())
    );
    let out = Command::new("curl")
        .args(["-sf", entry_url])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {entry_url}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, e) = got.as_object().unwrap().iter().next().unwrap();
    let body: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(e["body"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["kind"], "hashedrekord");
    assert_eq!(body["spec"]["data"]["hash"]["value"], want.as_str());
    assert!(
        r.stderr.contains(&format!(
            "attached profile-001 to {}/mefine-static@{digest}",
            reg.host
        )),
        "{}",
        r.stderr
    );

    // cosign reads sostle's attestation: the DSSE signature, the in-toto subject, the type.
    let (ok, out) = cosign(
        d,
        &[
            "verify-attestation",
            "--key",
            "keys/cosign.pub",
            "--type",
            "https://sostle.eose.ca/mecipol/v1",
            "--insecure-ignore-tlog=true",
            "--allow-insecure-registry",
            &image,
        ],
    );
    assert!(ok, "cosign verify-attestation: {out}");
    assert!(out.contains("The cosign claims were validated"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("the envelope");
    let env: serde_json::Value = serde_json::from_str(line).unwrap();
    let st: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    assert_eq!(st["predicate"]["profile_id"], "profile-001");

    // securesystemslib (the reference DSSE implementation) decodes the envelope skopeo copies
    // out and computes its PAE; Python's cryptography verifies the signature over it.
    let att = format!(
        "docker://{}/mefine-static:{}.att",
        reg.host,
        digest.replace(':', "-")
    );
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false", &att, "dir:att"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("att/manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["annotations"]["predicateType"],
        "https://sostle.eose.ca/mecipol/v1"
    );
    let blob = d.join("att").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let out = Command::new("python3")
        .arg(root().join("crates/sostle/tests/it/helpers/dsse_check.py"))
        .arg(&blob)
        .arg(d.join("keys/cosign.pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dsse_check.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "https://in-toto.io/Statement/v0.1 https://sostle.eose.ca/mecipol/v1 {}",
            digest.trim_start_matches("sha256:")
        )
    );

    // Promote pins the digest (keeping the tag for readers).
    let p = run(
        d,
        &ledger,
        "2026-05-12T11:05:00Z",
        &[
            "promote",
            "deployment.yaml",
            "--to",
            "L2",
            "--profile",
            "profile-001",
        ],
        None,
    );
    let promoted = sostle_core::manifest::load(&p.stdout)
        .documents
        .iter()
        .map(|x| x.root.to_json())
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let pinned = format!("{image}@{digest}");
    assert_eq!(
        promoted["spec"]["template"]["spec"]["containers"][0]["image"],
        pinned.as_str()
    );
    assert_eq!(
        promoted["metadata"]["annotations"]["mecipol-image"],
        pinned.as_str()
    );
    // The ledger's lock check accepts the pinned form: the promoted manifest passes its layer.
    let t = sostle_with(
        d,
        &["test", "-", "--now", "2026-05-12T11:05:00Z"],
        &[("SOSTLE_LEDGER", &ledger.display().to_string())],
        Some(p.stdout.as_bytes()),
    );
    assert_eq!(t.code, 0, "{}{}", t.stdout, t.stderr);

    // The door, with locks read from the registry (deny_no_mecipol_image judged from L2 on, so
    // the seed's L2 target shows it), and no profiles directory.
    std::fs::write(
        d.join("sostle.yaml"),
        format!(
            "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nlocks:\n  keys: [keys/cosign.pub]\nimages:\n  registries:\n    insecure: [\"{}\"]\nsuite:\n  policies:\n    deny_no_mecipol_image:\n      layers: [L2-L7]\n",
            reg.host
        ),
    )
    .unwrap();
    let cfg = d.join("sostle.yaml");
    let l2 = sostle_core::Layer::L2;
    let ok = decide(&cfg, l2, &promoted);
    assert!(ok.allowed, "{}", ok.message);

    // The same workload with an image that holds no lock: denied, saying so.
    let other = format!("{}/mefine-static:day98-v145", reg.host);
    let other_digest = reg.push_image("mefine-static", "day98-v145");
    let with_image = |img: &str| {
        let mut o = promoted.clone();
        o["spec"]["template"]["spec"]["containers"][0]["image"] = serde_json::json!(img);
        o["metadata"]["annotations"]["mecipol-image"] = serde_json::json!(img);
        // The lock it claims: the one the attestations below carry.
        o["metadata"]["annotations"]["mecipol-profile"] = serde_json::json!("profile-009");
        o
    };
    let no = decide(&cfg, l2, &with_image(&other));
    assert!(!no.allowed);
    assert!(no.message.contains(&format!("deny_no_mecipol_image: image {other} holds no verified MECIPOL attestation in its registry")), "{}", no.message);

    // An attestation by another key (cosign attest with a stranger's key): refused, with why.
    let pred = |layers: &str, digest: &str| {
        // A whole profile (SPEC §7), as another ledger's `sostle lock` would write it.
        format!("{{\"profile_id\":\"profile-009\",\"image\":\"{other}\",\"image_digest\":\"{digest}\",\"gamma1_epoch\":98,\"policies_passed\":[\"deny_no_limits\"],\"policies_exempted\":[],\"exemptions\":[],\"falco_clean_hours\":25,\"trivy_critical_cves\":0,\"rekor_entry\":null,\"sostle_layers_authorized\":{layers},\"locked_at\":\"2026-05-12T11:00:00Z\",\"trial\":\"TRB-CHAOS-009\",\"target\":\"L2\"}}")
    };
    std::fs::write(
        d.join("pred.json"),
        pred("[\"L0\",\"L1\",\"L2\"]", &other_digest),
    )
    .unwrap();
    run(
        d,
        &ledger,
        "2026-05-12T11:00:00Z",
        &["key", "generate", "--out", "stranger"],
        None,
    );
    let attest = |key: &str| {
        cosign(
            d,
            &[
                "attest",
                "--key",
                key,
                "--predicate",
                "pred.json",
                "--type",
                "https://sostle.eose.ca/mecipol/v1",
                "--tlog-upload=false",
                "--allow-insecure-registry",
                "-y",
                &other,
            ],
        )
    };
    let (ok_, out) = attest("stranger/cosign.key");
    assert!(ok_, "{out}");
    let forged = decide(&cfg, l2, &with_image(&other));
    assert!(!forged.allowed);
    assert!(
        forged
            .message
            .contains("attestation 1: the envelope is not signed by the lock key"),
        "{}",
        forged.message
    );

    // One cosign made with the lock key, for this digest: sostle reads it and admits.
    let (ok_, out) = attest("keys/cosign.key");
    assert!(ok_, "{out}");
    // (A denial is cached for at most 30 s; a fresh config load starts with an empty cache.)
    let admitted = decide(&cfg, l2, &with_image(&other));
    assert!(admitted.allowed, "{}", admitted.message);

    // Back from that newer lock (profile-009, v145) to the older one (profile-001, v144): a
    // downgrade, refused across replicas because both locks live in the registry.
    let back = decide_update(&cfg, l2, &promoted, Some(&with_image(&other)));
    assert!(!back.allowed);
    assert!(
        back.message.contains("downgrade: image ")
            && back
                .message
                .contains("is older than the workload's current lock profile-009"),
        "{}",
        back.message
    );

    // A profile for another digest, or one authorizing L6, is refused even with the lock key.
    let third = format!("{}/mefine-static:day99-v146", reg.host);
    reg.push_image("mefine-static", "day99-v146");
    std::fs::write(d.join("pred.json"), pred("[\"L2\"]", &digest)).unwrap();
    let (ok_, out) = cosign(
        d,
        &[
            "attest",
            "--key",
            "keys/cosign.key",
            "--predicate",
            "pred.json",
            "--type",
            "https://sostle.eose.ca/mecipol/v1",
            "--tlog-upload=false",
            "--allow-insecure-registry",
            "-y",
            &third,
        ],
    );
    assert!(ok_, "{out}");
    let wrong = decide(&cfg, l2, &with_image(&third));
    assert!(!wrong.allowed);
    assert!(
        wrong
            .message
            .contains(&format!("the profile locks {digest}, not sha256:")),
        "{}",
        wrong.message
    );
}

#[test]
fn the_registry_cycle_example_runs_end_to_end() {
    // examples/mefine-static/registry-cycle.sh, as a user runs it: a real registry, the real
    // webhook over TLS, curl at the door.
    let out = Command::new("bash")
        .arg(root().join("examples/mefine-static/registry-cycle.sh"))
        .arg(env!("CARGO_BIN_EXE_sostle"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("SOSTLE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "TRB-CHAOS-001: MECIPOL-LOCKED",
        "attached profile-001 to 127.0.0.1:",
        "/mefine-static:day97-v144@sha256:",
        "promoted workload:  allowed",
        "an unlocked image:  denied: deny_no_mecipol_image: image 127.0.0.1:",
        "holds no verified MECIPOL attestation in its registry",
    ] {
        assert!(
            stdout.contains(needle) || stderr.contains(needle),
            "missing `{needle}`:\n{stdout}\n{stderr}"
        );
    }
}
