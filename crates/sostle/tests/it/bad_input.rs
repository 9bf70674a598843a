//! Bad input (SPEC §12): each problem is reported with file and line, the run exits 3, and the
//! good file beside it is still checked and reported.

use crate::{sostle_in, Run};

const NOW: &str = "2026-05-11T21:00:00Z";

const GOOD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\n  namespace: sostle-l0-public\nspec:\n  containers:\n  - name: a\n    image: a:1\n";

/// Writes `good.yaml` and `bad.yaml` (with `bad`) into a temp dir and checks the dir as JSON.
fn check_beside_good(bad: &[u8]) -> (Run, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    let r = sostle_in(dir.path(), &["test", "--now", NOW, "-o", "json", "."], None);
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    (r, v)
}

fn assert_good_still_checked(v: &serde_json::Value) {
    let good: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["file"] == "./good.yaml")
        .collect();
    assert_eq!(good.len(), 11, "the good file is still checked");
    assert!(good
        .iter()
        .any(|r| r["policy"] == "deny_no_limits" && r["outcome"] == "fail"));
}

fn first_error(v: &serde_json::Value) -> (String, u64, String) {
    let e = &v["errors"][0];
    (
        e["file"].as_str().unwrap().to_string(),
        e["line"].as_u64().unwrap(),
        e["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn broken_yaml() {
    let (r, v) = check_beside_good(b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n");
    assert_eq!(r.code, 3);
    let (file, line, msg) = first_error(&v);
    assert_eq!(file, "./bad.yaml");
    assert!(line >= 4, "line {line}");
    assert!(msg.contains("YAML syntax error"), "{msg}");
    assert_good_still_checked(&v);
    assert!(
        r.stderr.contains("./bad.yaml:"),
        "errors also go to stderr: {}",
        r.stderr
    );
}

#[test]
fn duplicate_keys_name_both_lines() {
    let (r, v) = check_beside_good(b"apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  selector: {a: b}\n  ports: []\n  selector: {c: d}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: after}\n");
    assert_eq!(r.code, 3);
    let (_, line, msg) = first_error(&v);
    assert_eq!(line, 8);
    assert!(msg.contains("line 8") && msg.contains("line 6"), "{msg}");
    // The document after the bad one is still read, as document 1.
    let after = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"]["name"] == "after")
        .unwrap();
    assert_eq!(after["document"], 1);
    assert_good_still_checked(&v);
}

#[test]
fn alias_bomb() {
    let mut s = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs: Vec<String> = (0..10).map(|_| format!("*a{}", i - 1)).collect();
        s.push_str(&format!("  a{i}: &a{i} [{}]\n", refs.join(", ")));
    }
    let (r, v) = check_beside_good(s.as_bytes());
    assert_eq!(r.code, 3);
    let (_, _, msg) = first_error(&v);
    assert!(msg.contains("alias bomb"), "{msg}");
    assert_good_still_checked(&v);
}

#[test]
fn deep_nesting() {
    let (r, v) = check_beside_good(&[b"a: ".as_slice(), "[".repeat(20_000).as_bytes()].concat());
    assert_eq!(r.code, 3);
    assert!(first_error(&v).2.contains("recursion limit") || first_error(&v).2.contains("nesting"));
    assert_good_still_checked(&v);
    let block: String = (0..20_000)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i % 4000)))
        .collect();
    let (r, v) = check_beside_good(block.as_bytes());
    assert_eq!(r.code, 3);
    assert_good_still_checked(&v);
}

#[test]
fn binary_garbage() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (r, v) = check_beside_good(&garbage);
    assert_eq!(r.code, 3);
    let (file, line, msg) = first_error(&v);
    assert_eq!(file, "./bad.yaml");
    assert!(line >= 1);
    assert!(msg.contains("UTF-8") || msg.contains("YAML"), "{msg}");
    assert_good_still_checked(&v);
}

#[test]
fn wrong_types() {
    let (r, v) = check_beside_good(b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: sostle-l0-public\nspec:\n  containers: 42\n");
    assert_eq!(r.code, 3);
    let (_, line, msg) = first_error(&v);
    assert_eq!(line, 7);
    assert!(
        msg.contains("spec.containers") && msg.contains("integer"),
        "{msg}"
    );
    // Never a silent pass: the container rules fail with the reason.
    let limits = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "./bad.yaml" && r["policy"] == "deny_no_limits")
        .unwrap();
    assert_eq!(limits["outcome"], "fail");
    assert_good_still_checked(&v);
}

#[test]
fn unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    // A dangling symlink cannot be read, even by root.
    std::os::unix::fs::symlink(
        dir.path().join("missing-target.yaml"),
        dir.path().join("dangling.yaml"),
    )
    .unwrap();
    let r = sostle_in(
        dir.path(),
        &["test", "--now", NOW, "-o", "json", ".", "no-such-file.yaml"],
        None,
    );
    assert_eq!(r.code, 3);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let files: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"./dangling.yaml") && files.contains(&"no-such-file.yaml"),
        "{files:?}"
    );
    assert_good_still_checked(&v);
}

#[test]
fn bad_config_stops_with_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sostle.yaml");
    std::fs::write(&cfg, "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nsuite:\n  policies:\n    deny_no_limits:\n      layers: [L0-L9]\n").unwrap();
    let r = crate::sostle(&["test", "--config", cfg.to_str().unwrap(), "examples/layers"]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("sostle.yaml:6:")
            && r.stderr.contains("suite.policies.deny_no_limits.layers"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "a bad config is never half-applied: nothing is checked"
    );
}

#[test]
fn bad_flags_exit_3() {
    assert_eq!(
        crate::sostle(&["test", "--sostle-layer", "L9", "examples/layers"]).code,
        3
    );
    assert_eq!(
        crate::sostle(&["test", "--now", "yesterday", "examples/layers"]).code,
        3
    );
    assert_eq!(
        crate::sostle(&["test", "--output", "xml", "examples/layers"]).code,
        3
    );
    assert_eq!(
        crate::sostle(&["test", "--no-such-flag", "examples/layers"]).code,
        3
    );
}

#[test]
fn list_with_a_bad_item() {
    let (r, v) = check_beside_good(b"apiVersion: v1\nkind: List\nitems:\n- 42\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: second}\n");
    assert_eq!(r.code, 3);
    assert_eq!(first_error(&v).1, 4);
    let second = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"]["name"] == "second")
        .unwrap();
    assert_eq!(second["document"], 1);
}

#[test]
fn a_layer_flag_that_names_no_layer_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    for args in [
        &["test", "--sostle-layer", "L9", "good.yaml"][..],
        &["trial", "charge", "good.yaml", "--target", "l8"],
        &[
            "promote",
            "good.yaml",
            "--to",
            "chaos",
            "--profile",
            "profile-001",
        ],
        &["trendal", "spawn", "--sostle", "X1", "--silo", "yone"],
    ] {
        let r = sostle_in(dir.path(), args, None);
        assert_eq!(r.code, 3, "{args:?}: {}", r.snapshot());
        assert!(
            r.stderr.contains("is not a layer; write L0…L7 or trial"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            !dir.path().join(".sostle").exists(),
            "{args:?} opened a ledger before refusing its flag"
        );
    }
}

/// #24: a ledger file that is not there says so (it used to say "… is not in the ledger", the
/// words for a missing record).
#[test]
fn a_ledger_file_that_is_not_there_says_so() {
    let r = crate::sostle(&[
        "test",
        "--ledger",
        "nothere.db",
        "examples/mefine-static/deployment.yaml",
    ]);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(
        r.stderr.contains("nothere.db: no ledger file there")
            && !r.stderr.contains("is not in the ledger"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("nothere.db").count(), 2, "{}", r.stderr);
}
