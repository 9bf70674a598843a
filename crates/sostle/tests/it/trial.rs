//! The trial cycle through the binary, on a real ledger file: the whole mefine-static cycle,
//! concurrent charges, refusals, evidence that does not parse, and signatures that openssl
//! verifies.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{json_of, root, Run};

fn run_in(dir: &Path, ledger: &Path, now: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    crate::sostle_with(
        dir,
        args,
        &[
            ("SOSTLE_LEDGER", ledger.to_str().unwrap()),
            ("SOSTLE_NOW", now),
        ],
        stdin,
    )
}

#[test]
fn the_mefine_static_cycle_runs_end_to_end() {
    let out = Command::new("sh")
        .arg(root().join("examples/mefine-static/cycle.sh"))
        .arg(env!("CARGO_BIN_EXE_sostle"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "TRB-CHAOS-001 filed: target L2, epoch day 97",
        "TRB-CHAOS-001: DENY-HARD",
        "must fix (not exemptable at L2): deny_no_limits",
        "TRB-CHAOS-002 filed",
        "nodeSelector:\n        pool: chaos",
        "key: kubernetes.azure.com/scalesetpriority",
        "0 runtime violations",
        "1 evictions survived",
        "TRB-CHAOS-002: MECIPOL-LOCKED",
        "\"profile_id\": \"profile-001\"",
        "\"rekor_entry\": null",
        "Verified OK",
        "namespace: sostle-l2-local",
        "mecipol-profile: profile-001",
        "1 resources: 7 pass, 0 fail, 0 warn",
        "PELEGO novelty: known (first seen in TRB-CHAOS-001)",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

#[test]
fn eight_processes_charging_at_once_get_eight_ids() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    // Create it first so the schema migration is not part of the race.
    assert_eq!(
        run_in(
            &root(),
            &ledger,
            "2026-05-11T09:00:00Z",
            &["trial", "list"],
            None
        )
        .code,
        0
    );
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_sostle"))
                .args([
                    "trial",
                    "charge",
                    "examples/mefine-static/deployment.yaml",
                    "--target",
                    "L2",
                    "-o",
                    "json",
                ])
                .current_dir(root())
                .env("SOSTLE_LEDGER", &ledger)
                .env("SOSTLE_NOW", "2026-05-11T09:00:00Z")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            json_of(c, "a concurrent charge")["trial"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    let want: Vec<String> = (1..=8).map(|n| format!("TRB-CHAOS-{n:03}")).collect();
    assert_eq!(ids, want);
}

#[test]
fn malformed_evidence_is_reported_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let now = "2026-05-11T09:00:00Z";
    assert_eq!(
        run_in(
            &root(),
            &ledger,
            now,
            &[
                "trial",
                "charge",
                "examples/mefine-static/fixed",
                "--target",
                "L2"
            ],
            None
        )
        .code,
        0
    );
    let before = run_in(
        &root(),
        &ledger,
        now,
        &["trial", "show", "TRB-CHAOS-001"],
        None,
    )
    .stdout;
    let bad_falco = dir.path().join("falco.jsonl");
    std::fs::write(
        &bad_falco,
        "{\"priority\":\"Notice\",\"rule\":\"ok\",\"output_fields\":{}}\nnot json at all\n",
    )
    .unwrap();
    // A good Trivy file alongside: all or nothing, so it is not recorded either.
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "--trivy",
            "examples/mefine-static/evidence/trivy.json",
            "--falco",
            bad_falco.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("falco.jsonl:line 2:"), "{}", r.stderr);
    let bad_trivy = dir.path().join("trivy.json");
    std::fs::write(&bad_trivy, "{\"Results\": []}").unwrap();
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "--trivy",
            bad_trivy.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("SchemaVersion"), "{}", r.stderr);
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "--events",
            "examples/mefine-static/fixed/deployment.yaml",
        ],
        None,
    );
    assert_eq!(r.code, 3);
    let after = run_in(
        &root(),
        &ledger,
        now,
        &["trial", "show", "TRB-CHAOS-001"],
        None,
    )
    .stdout;
    assert_eq!(before, after, "nothing was recorded");
}

#[test]
fn real_fixtures_are_read() {
    // Trivy's own golden reports and Falco's documented events (../shared/fixtures).
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let now = "2026-05-11T09:00:00Z";
    run_in(
        &root(),
        &ledger,
        now,
        &[
            "trial",
            "charge",
            "examples/mefine-static/fixed",
            "--target",
            "L2",
        ],
        None,
    );
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "-o",
            "json",
            "--falco",
            "../shared/fixtures/falco/events.jsonl",
            "--trivy",
            "../shared/fixtures/trivy/alpine-39.json",
            "--trivy",
            "../shared/fixtures/trivy/fluentd-gems.json",
            "--trivy",
            "../shared/fixtures/trivy/sl-micro-rancher5.4.json",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let ev = v["evidence"].as_array().unwrap();
    assert_eq!(ev[0]["summary"]["events"], 21);
    assert_eq!(
        ev[0]["summary"]["on_trial_pods"], 0,
        "no fixture event is on a chaos-trial pod"
    );
    // alpine-39 has two CRITICAL findings (musl, musl-utils) of one CVE: distinct CVEs count.
    assert_eq!(
        ev[1]["summary"]["critical"],
        serde_json::json!(["CVE-2019-14697"])
    );
    assert_eq!(ev[2]["summary"]["critical"].as_array().unwrap().len(), 1);
    assert_eq!(ev[3]["summary"]["critical"].as_array().unwrap().len(), 0);
    // CRITICAL CVEs make the verdict DENY-HARD.
    let r = run_in(
        &root(),
        &ledger,
        "2026-05-13T09:00:00Z",
        &["trial", "verdict", "TRB-CHAOS-001", "-o", "json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verdict"], "DENY-HARD");
    assert_eq!(r.code, 1);
}

#[test]
fn verdicts_spiral_pend_and_refuse_to_lock() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let day = "2026-05-11T09:00:00Z";
    run_in(
        &root(),
        &ledger,
        day,
        &[
            "trial",
            "charge",
            "examples/mefine-static/fixed",
            "--target",
            "L2",
        ],
        None,
    );
    let v = run_in(
        &root(),
        &ledger,
        day,
        &["trial", "verdict", "TRB-CHAOS-001"],
        None,
    );
    assert!(
        v.stdout.contains("SPIRALING") && v.stdout.contains("not been burst"),
        "{}",
        v.stdout
    );
    // Locking before MECIPOL-LOCKED is refused.
    let keys = dir.path().join("keys");
    run_in(
        &root(),
        &ledger,
        day,
        &["key", "generate", "--out", keys.to_str().unwrap()],
        None,
    );
    let r = run_in(
        &root(),
        &ledger,
        day,
        &[
            "lock",
            "TRB-CHAOS-001",
            "--key",
            keys.join("cosign.key").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is SPIRALING, not MECIPOL-LOCKED"),
        "{}",
        r.stderr
    );
    // A subject whose only failure is exemptable at the target: EXEMPTIONS-PENDING.
    let no_probe = dir.path().join("noprobe.yaml");
    let text = std::fs::read_to_string(root().join("examples/mefine-static/fixed/deployment.yaml"))
        .unwrap();
    let text = text.replace("          livenessProbe:\n            httpGet: {path: /healthz, port: 8080}\n            periodSeconds: 10\n", "");
    std::fs::write(&no_probe, text).unwrap();
    run_in(
        &root(),
        &ledger,
        day,
        &[
            "trial",
            "charge",
            no_probe.to_str().unwrap(),
            "--target",
            "L2",
        ],
        None,
    );
    let v = run_in(
        &root(),
        &ledger,
        day,
        &["trial", "verdict", "TRB-CHAOS-002"],
        None,
    );
    assert!(
        v.stdout.contains("EXEMPTIONS-PENDING") && v.stdout.contains("deny_no_liveness"),
        "{}",
        v.stdout
    );
    assert_eq!(v.code, 1);
    // A Falco Warning on a trial pod is a runtime violation: DENY-HARD.
    run_in(
        &root(),
        &ledger,
        day,
        &["trial", "burst", "TRB-CHAOS-001"],
        None,
    );
    let falco = dir.path().join("f.jsonl");
    std::fs::write(&falco, "{\"priority\":\"Warning\",\"rule\":\"Terminal shell in container\",\"time\":\"2026-05-11T12:00:00Z\",\"output_fields\":{\"k8s.ns.name\":\"chaos-trial\",\"k8s.pod.name\":\"mefine-static-abc-123\"}}\n").unwrap();
    run_in(
        &root(),
        &ledger,
        day,
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "--falco",
            falco.to_str().unwrap(),
            "--trivy",
            "examples/mefine-static/evidence/trivy.json",
        ],
        None,
    );
    let v = run_in(
        &root(),
        &ledger,
        "2026-05-13T09:00:00Z",
        &["trial", "verdict", "TRB-CHAOS-001"],
        None,
    );
    assert!(
        v.stdout.contains("DENY-HARD") && v.stdout.contains("runtime violation"),
        "{}",
        v.stdout
    );
}

#[test]
fn promote_refuses_unauthorized_layers_foreign_images_and_downgrades() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let work = dir.path();
    // Two locks of the same workload: profile-001 (v144), then profile-002 (v145).
    let keys = work.join("keys");
    run_in(
        &root(),
        &ledger,
        "2026-05-11T09:00:00Z",
        &["key", "generate", "--out", keys.to_str().unwrap()],
        None,
    );
    let v145 = work.join("v145.yaml");
    std::fs::write(
        &v145,
        std::fs::read_to_string(root().join("examples/mefine-static/fixed/deployment.yaml"))
            .unwrap()
            .replace("day97-v144", "day98-v145"),
    )
    .unwrap();
    for (i, manifest) in [
        root().join("examples/mefine-static/fixed/deployment.yaml"),
        v145.clone(),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("TRB-CHAOS-00{}", i + 1);
        let at = |h: &str| format!("2026-05-1{}T{h}:00:00Z", 1 + i);
        run_in(
            &root(),
            &ledger,
            &at("09"),
            &[
                "trial",
                "charge",
                manifest.to_str().unwrap(),
                "--target",
                "L2",
            ],
            None,
        );
        run_in(&root(), &ledger, &at("10"), &["trial", "burst", &id], None);
        // Falco evidence collected a day after burst vouches for the 24-hour window.
        let checked = format!("2026-05-1{}T10:30:00Z", 2 + i);
        let r = run_in(
            &root(),
            &ledger,
            &checked,
            &[
                "trial",
                "spiral",
                &id,
                "--falco",
                "examples/mefine-static/evidence/falco.jsonl",
                "--trivy",
                "examples/mefine-static/evidence/trivy.json",
            ],
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let late = format!("2026-05-1{}T11:00:00Z", 2 + i);
        let r = run_in(
            &root(),
            &ledger,
            &late,
            &[
                "lock",
                &id,
                "--key",
                keys.join("cosign.key").to_str().unwrap(),
                "--out",
                work.join("profiles").to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        // openssl verifies the signature over the canonical profile bytes.
        let profile = work.join(format!("profiles/profile-00{}.json", i + 1));
        let sig_b64 =
            std::fs::read_to_string(work.join(format!("profiles/profile-00{}.json.sig", i + 1)))
                .unwrap();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(sig_b64.trim())
            .unwrap();
        let sig = work.join("sig.der");
        std::fs::write(&sig, der).unwrap();
        let ok = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                keys.join("cosign.pub").to_str().unwrap(),
                "-signature",
                sig.to_str().unwrap(),
                profile.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&ok.stdout)
        );
    }
    let now = "2026-05-13T12:00:00Z";
    let fixed = "examples/mefine-static/fixed/deployment.yaml";
    let r = run_in(
        &root(),
        &ledger,
        now,
        &["promote", fixed, "--to", "L6", "--profile", "profile-001"],
        None,
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("L6 is closed"));
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "promote",
            v145.to_str().unwrap(),
            "--to",
            "L2",
            "--profile",
            "profile-001",
        ],
        None,
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "runs eosefleetacrdev.azurecr.io/mefine-static:day98-v145, but profile-001 locks"
        ),
        "{}",
        r.stderr
    );
    // A workload with a second, unlocked image is refused: it would fail deny_no_mecipol_image.
    let two = work.join("two.yaml");
    std::fs::write(
        &two,
        std::fs::read_to_string(root().join(fixed))
            .unwrap()
            .replace(
                "      volumes:",
                "        - name: sidecar\n          image: reg.io/sidecar:1.0\n      volumes:",
            ),
    )
    .unwrap();
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "promote",
            two.to_str().unwrap(),
            "--to",
            "L2",
            "--profile",
            "profile-001",
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("reg.io/sidecar:1.0"), "{}", r.stderr);
    // The v145 workload is promoted with profile-002; going back to profile-001 is a downgrade.
    let promoted = run_in(
        &root(),
        &ledger,
        now,
        &[
            "promote",
            v145.to_str().unwrap(),
            "--to",
            "L3",
            "--profile",
            "profile-002",
        ],
        None,
    );
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    let back = work.join("back.yaml");
    std::fs::write(&back, promoted.stdout.replace("day98-v145", "day97-v144")).unwrap();
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "promote",
            back.to_str().unwrap(),
            "--to",
            "L3",
            "--profile",
            "profile-001",
        ],
        None,
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("downgrade"), "{}", r.stderr);
    // With the ledger, sostle test checks the lock registry: the downgraded manifest fails at L3.
    let r = run_in(
        &root(),
        &ledger,
        now,
        &["test", "-o", "json", back.to_str().unwrap()],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let m = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "deny_no_mecipol_image")
        .unwrap();
    let text = m["violations"].to_string();
    assert!(
        text.contains("downgrade") || text.contains("is not the locked image"),
        "{text}"
    );
}

#[test]
fn foreign_or_corrupt_ledgers_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "shopping list").unwrap();
    let r = run_in(
        &root(),
        &notes,
        "2026-05-11T09:00:00Z",
        &["trial", "list"],
        None,
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("is not a sostle ledger"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "shopping list");
    let r = run_in(
        &root(),
        &notes,
        "2026-05-11T09:00:00Z",
        &["test", "examples/layers"],
        None,
    );
    assert_eq!(r.code, 3);
}

#[test]
fn registered_witnesses_are_required_with_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let now = "2026-05-11T21:00:00Z";
    // Trial TRB-CHAOS-001 must exist for the exemption's reason.
    run_in(
        &root(),
        &ledger,
        "2026-05-11T09:00:00Z",
        &[
            "trial",
            "charge",
            "examples/mefine-static/deployment.yaml",
            "--target",
            "L2",
        ],
        None,
    );
    let honoured = |r: &Run| -> usize {
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["summary"]["exempted"].as_u64().unwrap() as usize
    };
    let test = || {
        run_in(
            &root(),
            &ledger,
            now,
            &[
                "test",
                "--config",
                crate::exempt::CONFIG,
                "-o",
                "json",
                "examples/exemptions",
            ],
            None,
        )
    };
    assert_eq!(
        honoured(&test()),
        0,
        "unregistered witnesses are not honoured with a ledger"
    );
    let r = run_in(
        &root(),
        &ledger,
        now,
        &[
            "exempt",
            "witness",
            "--config",
            crate::exempt::CONFIG,
            "--by",
            "Kay",
            "--resource",
            "chaos-trial/mefine-writable",
            "--policies",
            "deny_no_limits,deny_no_readonly",
            "--reason",
            "TRB-CHAOS-001 — chaos trial requires writable fs",
            "--expires",
            "2026-05-18T00:00:00Z",
            "--owner",
            "BOSUN",
            "--reviewed",
            "kayyo@pemos.ca",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(honoured(&test()), 2);
}

/// A subject whose containers repeat an image, not next to each other (issue #11).
const REPEATED_IMAGES: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: repeat\n  namespace: chaos-trial\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          image: reg.io/a:1.0\n        - name: b\n          image: reg.io/b:1.0\n        - name: a2\n          image: reg.io/a:1.0\n";

#[test]
fn trial_charge_dedups_non_adjacent_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ledger = d.join("ledger.db");
    std::fs::write(d.join("repeat.yaml"), REPEATED_IMAGES).unwrap();
    let now = "2026-05-11T09:00:00Z";
    let r = run_in(
        d,
        &ledger,
        now,
        &["trial", "charge", "repeat.yaml", "--target", "L2"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.snapshot());
    let r = run_in(d, &ledger, now, &["trial", "show", "TRB-CHAOS-001"], None);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["subject"]["images"],
        serde_json::json!(["reg.io/a:1.0", "reg.io/b:1.0"]),
        "{}",
        r.stdout
    );
}

#[test]
fn trial_charge_o_yaml_prints_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ledger = d.join("ledger.db");
    std::fs::write(d.join("repeat.yaml"), REPEATED_IMAGES).unwrap();
    let r = run_in(
        d,
        &ledger,
        "2026-05-11T09:00:00Z",
        &[
            "trial",
            "charge",
            "repeat.yaml",
            "--target",
            "L2",
            "-o",
            "yaml",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(
        !r.stdout.trim_start().starts_with('{'),
        "JSON, not YAML: {}",
        r.stdout
    );
    assert!(r.stdout.contains("trial: TRB-CHAOS-001\n"), "{}", r.stdout);
    // And it is the same document as -o json.
    let loaded = sostle_core::manifest::load(&r.stdout);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.documents[0].root.to_json()["target"], "L2");
}

#[test]
fn verdict_refuses_evidence_that_does_not_decode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ledger = d.join("ledger.db");
    std::fs::write(d.join("repeat.yaml"), REPEATED_IMAGES).unwrap();
    let now = "2026-05-11T09:00:00Z";
    assert_eq!(
        run_in(
            d,
            &ledger,
            now,
            &["trial", "charge", "repeat.yaml", "--target", "L2"],
            None
        )
        .code,
        0
    );
    // A stored Trivy summary in a shape this version cannot read (as after an upgrade).
    let mut l =
        sostle_ledger::Ledger::open(&sostle_ledger::Location::File(ledger.clone())).unwrap();
    let t = sostle_core::epoch::parse_rfc3339(now).unwrap();
    l.atomically(|tx| {
        tx.add_evidence(
            "TRB-CHAOS-001",
            &[(
                sostle_core::trial::EvidenceKind::Trivy,
                "old-trivy.json".into(),
                serde_json::json!({"artifact": "reg.io/a:1.0", "critical": 3}),
            )],
            t,
            97,
        )
    })
    .unwrap();
    drop(l);
    let r = run_in(
        d,
        &ledger,
        now,
        &["trial", "verdict", "TRB-CHAOS-001"],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(
        r.stderr.contains("trivy evidence #")
            && r.stderr.contains("old-trivy.json")
            && r.stderr.contains("does not decode"),
        "{}",
        r.stderr
    );
}

#[test]
fn trial_show_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ledger = d.join("ledger.db");
    std::fs::write(d.join("repeat.yaml"), REPEATED_IMAGES).unwrap();
    let now = "2026-05-11T09:00:00Z";
    run_in(
        d,
        &ledger,
        now,
        &["trial", "charge", "repeat.yaml", "--target", "L2"],
        None,
    );
    // A reader that is gone before sostle writes (as `| head` is after its lines): the first
    // write fails with EPIPE.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(sleep 0.2; exec '{}' trial show TRB-CHAOS-001) | (exec 0<&-; sleep 1); exit 0",
            env!("CARGO_BIN_EXE_sostle")
        ))
        .env("SOSTLE_LEDGER", &ledger)
        .env("SOSTLE_NOW", now)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("error"),
        "{stderr}"
    );
}
