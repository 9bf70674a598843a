//! `sostle trendal`: the seven lines of SPEC §8, sequential IDs across processes, every
//! refusal with its message, a manifest that passes its own layer, and reap after a trial closes.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::root;

fn run(ledger: &Path, now: &str, args: &[&str], env: &[(&str, &str)]) -> crate::Run {
    let mut all = vec![
        ("SOSTLE_LEDGER", ledger.to_str().unwrap()),
        ("SOSTLE_NOW", now),
    ];
    all.extend_from_slice(env);
    crate::sostle_with(&root(), args, &all, None)
}

const NOW: &str = "2026-05-11T12:00:00Z";

#[test]
fn spawn_prints_the_seven_lines() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l.db");
    run(
        &l,
        NOW,
        &[
            "trial",
            "charge",
            "examples/mefine-static/fixed",
            "--target",
            "L3",
        ],
        &[],
    );
    let r = run(
        &l,
        NOW,
        &[
            "trendal",
            "spawn",
            "--sostle",
            "L3",
            "--silo",
            "yone",
            "--crew",
            "BOSUN",
            "--crew-spiral",
            "BOSUN+RICK+CODY",
            "--trial-id",
            "TRB-CHAOS-001",
            "--warmth",
            "0.85",
            "--namespace",
            "sostle-l3-crew",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Trendal spawned: TRENDAL-L3-YONE-BOSUN-001\nWarmth: 0.85 (WARM — above 0.5 floor)\nNamespace: sostle-l3-crew\nNode: chaospool (chaos=true toleration injected)\nTrial: TRB-CHAOS-001\nEpoch: γ₁ = 14.134725141734693\nExpires: warmth drops below floor OR trial closes\n");
    let y = run(
        &l,
        NOW,
        &[
            "trendal", "spawn", "--sostle", "L3", "--silo", "yone", "--crew", "BOSUN", "--warmth",
            "0.7", "-o", "yaml",
        ],
        &[],
    );
    insta::assert_snapshot!(y.stdout);
    // Its manifest passes its own layer (deny_no_mecipol_image aside: no --profile).
    let f = dir.path().join("t.yaml");
    std::fs::write(&f, &y.stdout).unwrap();
    let t = run(&l, NOW, &["test", "-o", "json", f.to_str().unwrap()], &[]);
    let v: serde_json::Value = serde_json::from_str(&t.stdout).unwrap();
    let fails: Vec<&serde_json::Value> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "fail")
        .collect();
    assert!(
        fails.iter().all(|r| r["policy"] == "deny_no_mecipol_image"),
        "{fails:?}"
    );
}

#[test]
fn ids_are_sequential_per_prefix_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l.db");
    run(&l, NOW, &["trendal", "list"], &[]);
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_sostle"))
                .args([
                    "trendal", "spawn", "--sostle", "L3", "--silo", "yone", "--crew", "RICK",
                    "--warmth", "0.9", "-o", "json",
                ])
                .current_dir(root())
                .env("SOSTLE_LEDGER", &l)
                .env("SOSTLE_NOW", NOW)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            serde_json::from_slice::<serde_json::Value>(&c.wait_with_output().unwrap().stdout)
                .unwrap()["trendal"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        (1..=6)
            .map(|n| format!("TRENDAL-L3-YONE-RICK-{n:03}"))
            .collect::<Vec<_>>()
    );
    let other = run(
        &l,
        NOW,
        &[
            "trendal", "spawn", "--sostle", "L3", "--silo", "yone", "--crew", "CODY", "--warmth",
            "0.9", "-o", "json",
        ],
        &[],
    );
    assert!(
        other.stdout.contains("TRENDAL-L3-YONE-CODY-001"),
        "a new prefix starts at 001"
    );
}

#[test]
fn every_refusal_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l.db");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--sostle", "L6", "--silo", "s", "--crew", "BOSUN", "--warmth", "0.9",
            ],
            "L6 is closed",
        ),
        (
            &[
                "--sostle", "L3", "--silo", "s", "--crew", "BOSUN", "--warmth", "0.49",
            ],
            "below the 0.5 floor (COLD)",
        ),
        (
            &[
                "--sostle", "L3", "--silo", "s", "--crew", "MALLORY", "--warmth", "0.9",
            ],
            "crew `MALLORY` is not registered",
        ),
        (
            &[
                "--sostle",
                "L3",
                "--silo",
                "s",
                "--crew",
                "BOSUN",
                "--crew-spiral",
                "BOSUN+EVE",
                "--warmth",
                "0.9",
            ],
            "crew-spiral member `EVE`",
        ),
        (
            &[
                "--sostle", "L5", "--silo", "s", "--crew", "IMHOTEP", "--warmth", "0.9",
            ],
            "L5 needs Kay's approval",
        ),
        (
            &[
                "--sostle",
                "L5",
                "--silo",
                "s",
                "--crew",
                "RICK",
                "--warmth",
                "0.9",
                "--kay-approved",
            ],
            "lacks the `l5-authorized` role",
        ),
        (
            &[
                "--sostle", "L7", "--silo", "s", "--crew", "BOSUN", "--warmth", "0.9",
            ],
            "all five MEGSCIFIAR gates",
        ),
        (
            &[
                "--sostle", "L4", "--silo", "s", "--crew", "BOSUN", "--warmth", "0.9",
            ],
            "L4 needs --token",
        ),
        (
            &[
                "--sostle",
                "L4",
                "--silo",
                "s",
                "--crew",
                "BOSUN",
                "--warmth",
                "0.9",
                "--token",
                "v1.1.abcdefghijklmnopqrstuvwxyz234567",
            ],
            "SOSTLE token refused",
        ),
        (
            &["--sostle", "L3", "--silo", "s", "--warmth", "0.9"],
            "L3 needs --crew",
        ),
        (
            &[
                "--sostle",
                "L3",
                "--silo",
                "s",
                "--crew",
                "BOSUN",
                "--warmth",
                "0.9",
                "--trial-id",
                "TRB-CHAOS-404",
            ],
            "TRB-CHAOS-404",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["trendal", "spawn"];
        a.extend_from_slice(args);
        let r = run(
            &l,
            NOW,
            &a,
            &[("SOSTLE_TOKEN_SECRET", "a-test-secret-of-16+")],
        );
        assert_ne!(r.code, 0, "{args:?} was not refused");
        assert!(
            r.stderr.contains(want),
            "{args:?}: want {want:?} in {}",
            r.stderr
        );
    }
    // A valid token at L4 is admitted.
    let tok = run(
        &l,
        NOW,
        &[
            "token",
            "issue",
            "--crew",
            "BOSUN",
            "--layer",
            "L4",
            "--expires",
            "2026-06-01T00:00:00Z",
        ],
        &[("SOSTLE_TOKEN_SECRET", "a-test-secret-of-16+")],
    );
    let token = tok.stdout.trim().to_string();
    let r = run(
        &l,
        NOW,
        &[
            "trendal", "spawn", "--sostle", "L4", "--silo", "s", "--crew", "BOSUN", "--warmth",
            "0.9", "--token", &token,
        ],
        &[("SOSTLE_TOKEN_SECRET", "a-test-secret-of-16+")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn reap_after_a_trial_closes_and_below_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l.db");
    let keys = dir.path().join("keys");
    run(
        &l,
        NOW,
        &["key", "generate", "--out", keys.to_str().unwrap()],
        &[],
    );
    run(
        &l,
        "2026-05-11T09:00:00Z",
        &[
            "trial",
            "charge",
            "examples/mefine-static/fixed",
            "--target",
            "L2",
        ],
        &[],
    );
    run(
        &l,
        "2026-05-11T09:05:00Z",
        &["trial", "burst", "TRB-CHAOS-001"],
        &[],
    );
    run(
        &l,
        "2026-05-12T09:30:00Z",
        &[
            "trial",
            "spiral",
            "TRB-CHAOS-001",
            "--falco",
            "examples/mefine-static/evidence/falco.jsonl",
            "--trivy",
            "examples/mefine-static/evidence/trivy.json",
        ],
        &[],
    );
    let a = run(
        &l,
        NOW,
        &[
            "trendal",
            "spawn",
            "--sostle",
            "L3",
            "--silo",
            "yone",
            "--crew",
            "BOSUN",
            "--trial-id",
            "TRB-CHAOS-001",
            "--warmth",
            "0.9",
        ],
        &[],
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    run(
        &l,
        NOW,
        &[
            "trendal", "spawn", "--sostle", "L3", "--silo", "tide", "--crew", "CODY", "--warmth",
            "0.9",
        ],
        &[],
    );
    let r = run(&l, NOW, &["trendal", "reap"], &[]);
    assert!(r.stderr.contains("nothing to reap"), "{}", r.stderr);
    // Locking closes the trial; cooling the other below the floor.
    let lock = run(
        &l,
        "2026-05-12T10:00:00Z",
        &[
            "lock",
            "TRB-CHAOS-001",
            "--key",
            keys.join("cosign.key").to_str().unwrap(),
            "--out",
            dir.path().join("p").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    run(
        &l,
        NOW,
        &["trendal", "warm", "TRENDAL-L3-TIDE-CODY-001", "0.3"],
        &[],
    );
    let r = run(&l, "2026-05-12T11:00:00Z", &["trendal", "reap"], &[]);
    assert!(
        r.stderr
            .contains("reaped TRENDAL-L3-YONE-BOSUN-001: trial TRB-CHAOS-001 closed"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("reaped TRENDAL-L3-TIDE-CODY-001: warmth 0.30 below the 0.5 floor"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("name: trendal-l3-yone-bosun-001")
            && r.stdout.contains("kind: Deployment"),
        "{}",
        r.stdout
    );
    let list = run(&l, NOW, &["trendal", "list", "-o", "json"], &[]);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().all(|t| t["state"] == "reaped"));
    // Reaping again finds nothing.
    assert!(run(&l, NOW, &["trendal", "reap"], &[])
        .stderr
        .contains("nothing to reap"));
}
