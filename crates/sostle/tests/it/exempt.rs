//! `sostle exempt new | check | list | hash`: snapshots on examples/exemptions, refusals, and
//! the documented `printf … | sha256sum` reproduction of the witness.

use crate::sostle;

const NOW: &str = "2026-05-11T21:00:00Z";

/// The examples' config: the crew with the demo reviewer keys that signed examples/exemptions.
pub const CONFIG: &str = "examples/sostle.yaml";

#[test]
fn check_explains_every_exemption() {
    let r = sostle(&[
        "exempt",
        "check",
        "--config",
        CONFIG,
        "--now",
        NOW,
        "examples/exemptions",
    ]);
    assert_eq!(r.code, 1, "some exemptions are refused");
    insta::assert_snapshot!(r.snapshot());
}

#[test]
fn list_shows_every_state() {
    let r = sostle(&[
        "exempt",
        "list",
        "--config",
        CONFIG,
        "--now",
        NOW,
        "examples/exemptions",
    ]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!(r.snapshot());
}

#[test]
fn list_json() {
    let r = sostle(&[
        "exempt",
        "list",
        "--config",
        CONFIG,
        "--now",
        NOW,
        "-o",
        "json",
        "examples/exemptions",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let states: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    for s in ["expiring", "orphaned", "expired", "refused", "unused"] {
        assert!(states.contains(&s), "{s} missing from {states:?}");
    }
    // A week later the expiring exemption has expired.
    let later = sostle(&[
        "exempt",
        "list",
        "--config",
        CONFIG,
        "--now",
        "2026-05-19T00:00:00Z",
        "-o",
        "json",
        "examples/exemptions",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&later.stdout).unwrap();
    let first = &rows.as_array().unwrap()[0];
    assert_eq!(first["resource"], "Deployment/chaos-trial/mefine-writable");
    assert_eq!(first["state"], "expired");
}

#[test]
fn test_output_shows_exempted_results() {
    let r = sostle(&[
        "test",
        "--config",
        CONFIG,
        "--now",
        NOW,
        "-o",
        "json",
        "examples/exemptions",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let exempted: Vec<&serde_json::Value> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "exempted")
        .collect();
    assert_eq!(exempted.len(), 2);
    let e = &exempted[0]["exemption"];
    assert_eq!(e["valid"], true);
    for key in [
        "exempt-from",
        "applies-to",
        "reason",
        "expires",
        "owner",
        "reviewed",
        "witness",
    ] {
        assert!(e[key].is_string(), "{key} missing in {e}");
    }
    assert_eq!(e["warnings"][0], "expires in 7 days");
    // A refused one keeps its outcome and lists its problems.
    let copied = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"]["name"] == "copied" && r["policy"] == "deny_no_limits")
        .unwrap();
    assert_eq!(copied["outcome"], "fail");
    assert_eq!(copied["exemption"]["valid"], false);
    assert!(copied["exemption"]["problems"][0]
        .as_str()
        .unwrap()
        .contains("cannot be copied"));
    // SARIF marks exempted results as suppressed; JUnit as skipped with the reason.
    let sarif = sostle(&[
        "test",
        "--config",
        CONFIG,
        "--now",
        NOW,
        "-o",
        "sarif",
        "examples/exemptions",
    ]);
    assert!(sarif.stdout.contains("\"suppressions\""));
    let junit = sostle(&[
        "test",
        "--config",
        CONFIG,
        "--now",
        NOW,
        "-o",
        "junit",
        "examples/exemptions",
    ]);
    assert!(junit
        .stdout
        .contains("<skipped message=\"exempted: TRB-CHAOS-001"));
}

pub const VALUES: [&str; 12] = [
    "--resource",
    "chaos-trial/mefine-static",
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
];

#[test]
fn new_prints_the_seven_annotations() {
    let mut args = vec!["exempt", "new", "--now", NOW];
    args.extend(VALUES);
    let r = sostle(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.snapshot());
}

#[test]
fn new_refuses_with_every_reason() {
    let r = sostle(&[
        "exempt",
        "new",
        "--now",
        NOW,
        "--resource",
        "sostle-l3-crew/web",
        "--policies",
        "deny_no_readonly,deny_privileged",
        "--reason",
        "later",
        "--expires",
        "2026-12-01T00:00:00Z",
        "--owner",
        "RICK",
        "--reviewed",
        "RICK",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    insta::assert_snapshot!(r.snapshot());
}

#[test]
fn the_documented_printf_gives_the_same_hash() {
    let mut args = vec!["exempt", "hash"];
    args.extend(VALUES);
    let ours = sostle(&args).stdout.trim().to_string();
    // The command from docs/exemptions.md, run by a shell.
    let doc = std::fs::read_to_string(crate::root().join("docs/exemptions.md")).unwrap();
    let script: String = doc
        .split("```sh")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("docs/exemptions.md has a sh block with the printf example")
        .to_string();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&out.stdout);
    let theirs = theirs.split_whitespace().next().unwrap_or("");
    assert_eq!(ours, format!("sha256:{theirs}"));
}

#[test]
fn expiring_exemptions_count_for_fail_on_warn() {
    let text =
        std::fs::read_to_string(crate::root().join("examples/exemptions/exemptions.yaml")).unwrap();
    let first = text.split("\n---\n").next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("one.yaml");
    std::fs::write(&f, first).unwrap();
    let f = f.to_str().unwrap();
    assert_eq!(
        sostle(&["test", "--config", CONFIG, "--now", NOW, f]).code,
        0,
        "honoured: no failure"
    );
    assert_eq!(
        sostle(&[
            "test",
            "--config",
            CONFIG,
            "--now",
            NOW,
            "--fail-on-warn",
            f
        ])
        .code,
        1,
        "expires in 7 days is a warning"
    );
    assert_eq!(
        sostle(&[
            "test",
            "--config",
            CONFIG,
            "--now",
            "2026-05-01T00:00:00Z",
            "--fail-on-warn",
            f
        ])
        .code,
        0,
        "17 days left: no warning"
    );
}
