//! Signed approvals (issue #12) through the binary: the cases of `sostle_test_support::mallory`
//! (the self-granted exemptions every door is held to) through `sostle test` without and with a ledger (same decisions), and through
//! `sostle webhook` over real TLS; `exempt approve` writing approvals that `sostle test`
//! honours and that openssl verifies; `exempt new --approve-key`.

use std::path::Path;

use crate::{root, sostle, sostle_with};

use sostle_test_support::mallory;

/// Writes the config and one JSON file per case into `dir`.
fn setup(dir: &Path) -> Vec<mallory::Case> {
    std::fs::write(dir.join("sostle.yaml"), mallory::config_yaml("")).unwrap();
    let cases = mallory::cases();
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(
            dir.join(format!("case-{i:02}.json")),
            serde_json::to_vec_pretty(&c.object).unwrap(),
        )
        .unwrap();
    }
    cases
}

/// Runs `sostle test` on the cases and checks each decision (`env` adds a ledger). With a
/// ledger the lock check is no longer static: the test images have no lock there, so
/// `deny_no_mecipol_image` fails too, which is not what these cases are about.
fn check_decisions(dir: &Path, cases: &[mallory::Case], env: &[(&str, &str)]) {
    let with_ledger = !env.is_empty();
    let r = sostle_with(
        dir,
        &["test", "--config", "sostle.yaml", "-o", "json", "."],
        env,
        None,
    );
    assert_eq!(r.code, 1, "some cases fail: {}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    for (i, c) in cases.iter().enumerate() {
        let file = format!("case-{i:02}.json");
        let results: Vec<&serde_json::Value> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["file"].as_str().unwrap().ends_with(&file))
            .collect();
        let failing: Vec<&str> = results
            .iter()
            .filter(|r| r["outcome"] == "fail")
            .map(|r| r["policy"].as_str().unwrap())
            .filter(|p| !(with_ledger && *p == "deny_no_mecipol_image"))
            .collect();
        let exempted = results
            .iter()
            .find(|r| r["policy"] == c.policy)
            .unwrap_or_else(|| panic!("{}: no result for {}", c.name, c.policy));
        if c.allowed {
            assert!(failing.is_empty(), "{}: {failing:?}", c.name);
            assert_eq!(exempted["outcome"], "exempted", "{}", c.name);
        } else {
            assert_eq!(failing, [c.policy], "{}", c.name);
            let problems = exempted["exemption"]["problems"].to_string();
            assert!(problems.contains(c.reason), "{}: {problems}", c.name);
        }
    }
}

#[test]
fn sostle_test_decides_as_the_door_without_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let cases = setup(dir.path());
    check_decisions(dir.path(), &cases, &[]);
}

#[test]
fn sostle_test_decides_as_the_door_with_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = setup(d);
    let ledger = d.join("ledger.db");
    let ledger = ledger.to_str().unwrap();
    let env = [("SOSTLE_LEDGER", ledger)];
    // The reason's trial must exist, and each witness be registered.
    let manifest = root().join("examples/mefine-static/deployment.yaml");
    let r = sostle_with(
        d,
        &[
            "trial",
            "charge",
            manifest.to_str().unwrap(),
            "--target",
            "L2",
        ],
        &env,
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for c in &cases {
        let a = &c.object["metadata"]["annotations"];
        let get = |k: &str| {
            a[format!("sostle.eose.ca/exempt-{k}")]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (res, pol, reason, exp, owner, rev) = (
            get("applies-to"),
            get("from"),
            get("reason"),
            get("expires"),
            get("owner"),
            get("reviewed"),
        );
        let r = sostle_with(
            d,
            &[
                "exempt",
                "witness",
                "--config",
                "sostle.yaml",
                "--by",
                "Kay",
                "--resource",
                &res,
                "--policies",
                &pol,
                "--reason",
                &reason,
                "--expires",
                &exp,
                "--owner",
                &owner,
                "--reviewed",
                &rev,
            ],
            &env,
            None,
        );
        assert_eq!(r.code, 0, "{}: {}", c.name, r.stderr);
        assert!(r.stdout.contains(&c.witness), "{}: {}", c.name, r.stdout);
    }
    check_decisions(d, &cases, &env);
}

#[test]
fn the_webhook_over_tls_decides_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::webhook::certs(d, "ca", "server");
    let cases = setup(d);
    let s = crate::webhook::start(d, &["--config", "sostle.yaml"]);
    for (i, c) in cases.iter().enumerate() {
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": format!("case-{i}"), "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "name": c.object["metadata"]["name"], "namespace": "sostle-l3-crew", "operation": "CREATE",
                "userInfo": {"username": "mallory"}, "object": c.object}
        });
        let f = d.join(format!("review-{i}.json"));
        std::fs::write(&f, serde_json::to_vec(&body).unwrap()).unwrap();
        let v = s.post("/validate/L3", &f);
        let msg = v["response"]["status"]["message"].as_str().unwrap_or("");
        assert_eq!(v["response"]["allowed"], c.allowed, "{}: {msg}", c.name);
        assert!(msg.contains(c.reason), "{}: {msg}", c.name);
    }
}

#[test]
fn exempt_approve_writes_approvals_that_test_honours_and_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(root().join("examples/exemptions/exemptions.yaml")).unwrap();
    // The first resource, with its approval removed: what the owner hands the reviewer.
    let first = text.split("\n---\n").next().unwrap();
    let unsigned: String = first
        .lines()
        .filter(|l| !l.contains("exempt-approval"))
        .map(|l| format!("{l}\n"))
        .collect();
    let f = d.join("one.yaml");
    std::fs::write(&f, &unsigned).unwrap();
    let f = f.to_str().unwrap();
    let config = root().join("examples/sostle.yaml");
    let config = config.to_str().unwrap();
    let now = "2026-05-11T21:00:00Z";
    let exempted = |path: &str| -> u64 {
        let r = sostle(&["test", "--config", config, "--now", now, "-o", "json", path]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["summary"]["exempted"].as_u64().unwrap()
    };
    assert_eq!(exempted(f), 0, "not yet approved");
    // A key registered for someone else (BOSUN) signs nothing of Kay's.
    let bosun = root().join("examples/keys/BOSUN.demo.key");
    let r = sostle(&[
        "exempt",
        "approve",
        "--config",
        config,
        "--key",
        bosun.to_str().unwrap(),
        "--write",
        f,
    ]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(
        r.stderr.contains("skipped") && r.stderr.contains("reviewed by kayyo@pemos.ca"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(f).unwrap(),
        unsigned,
        "nothing written"
    );
    // A key nobody registered is refused.
    let stray = d.join("stray");
    assert_eq!(
        sostle(&["key", "generate", "--out", stray.to_str().unwrap()]).code,
        0
    );
    let r = sostle(&[
        "exempt",
        "approve",
        "--config",
        config,
        "--key",
        stray.join("cosign.key").to_str().unwrap(),
        f,
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is not registered for Kay"),
        "{}",
        r.stderr
    );
    // Kay's key writes the approval under the witness; the exemption is then honoured.
    let kay = root().join("examples/keys/Kay.demo.key");
    let r = sostle(&[
        "exempt",
        "approve",
        "--config",
        config,
        "--key",
        kay.to_str().unwrap(),
        "--write",
        f,
    ]);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    let signed = std::fs::read_to_string(f).unwrap();
    let lines: Vec<&str> = signed.lines().collect();
    let w = lines
        .iter()
        .position(|l| l.contains("exempt-witness"))
        .unwrap();
    assert!(
        lines[w + 1].starts_with("    sostle.eose.ca/exempt-approval: \""),
        "{signed}"
    );
    assert_eq!(exempted(f), 2, "deny_no_limits and deny_no_readonly");
    // The reviewer is told what they sign.
    assert!(
        r.stderr.contains("signing ")
            && r.stderr
                .contains("exempt-from=deny_no_limits,deny_no_readonly"),
        "{}",
        r.stderr
    );
    // --write edits YAML only: a JSON manifest is refused, untouched.
    let j = d.join("one.json");
    std::fs::write(&j, "{\"apiVersion\": \"v1\"}").unwrap();
    let r = sostle(&[
        "exempt",
        "approve",
        "--config",
        config,
        "--key",
        kay.to_str().unwrap(),
        "--write",
        j.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--write edits YAML only"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&j).unwrap(),
        "{\"apiVersion\": \"v1\"}"
    );
    // Signing again replaces the approval rather than adding a second.
    sostle(&[
        "exempt",
        "approve",
        "--config",
        config,
        "--key",
        kay.to_str().unwrap(),
        "--write",
        f,
    ]);
    let again = std::fs::read_to_string(f).unwrap();
    assert_eq!(again.matches("exempt-approval").count(), 1);
    // openssl verifies it with Kay's public key over the witness bytes.
    let witness = lines[w].split('"').nth(1).unwrap();
    let approval = lines[w + 1].split('"').nth(1).unwrap();
    let b64 = d.join("sig.b64");
    std::fs::write(&b64, approval).unwrap();
    std::fs::write(d.join("witness.txt"), witness).unwrap();
    let sh = |script: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let out = sh(&format!(
        "base64 -d sig.b64 > sig.der && openssl dgst -sha256 -verify {} -signature sig.der witness.txt",
        root().join("examples/keys/Kay.demo.pub").display()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    // Over another witness openssl refuses it too.
    std::fs::write(d.join("witness.txt"), witness.replace('a', "b")).unwrap();
    let out = sh(&format!(
        "openssl dgst -sha256 -verify {} -signature sig.der witness.txt",
        root().join("examples/keys/Kay.demo.pub").display()
    ));
    assert!(!out.status.success());
}

#[test]
fn exempt_new_with_the_reviewers_key_prints_the_approval() {
    let kay = root().join("examples/keys/Kay.demo.key");
    let mut args = vec![
        "exempt",
        "new",
        "--config",
        "examples/sostle.yaml",
        "--now",
        "2026-05-11T21:00:00Z",
        "--approve-key",
        kay.to_str().unwrap(),
    ];
    args.extend(crate::exempt::VALUES);
    let r = sostle(&args);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    // Eight annotations, the approval last; ECDSA with RFC 6979 is deterministic, so the same
    // values and key give the same approval.
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("sostle.eose.ca/exempt-approval: \""))
        .unwrap_or_else(|| panic!("{}", r.stdout))
        .to_string();
    assert_eq!(r.stdout.matches("sostle.eose.ca/exempt-").count(), 8);
    assert!(sostle(&args).stdout.contains(&line));
    // With BOSUN's key instead (the owner), it is refused: not Kay's signature.
    let bosun = root().join("examples/keys/BOSUN.demo.key");
    args[7] = bosun.to_str().unwrap();
    let r = sostle(&args);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(
        r.stderr.contains("--approve-key: the key")
            && r.stderr.contains("is not registered for Kay"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_replaced_key_file_is_picked_up_without_a_restart() {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::webhook::certs(d, "ca", "server");
    // IMHOTEP's key as a file beside the config.
    let pem = |name: &str| {
        mallory::key(name)
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    };
    std::fs::write(d.join("imhotep.pub"), pem("IMHOTEP")).unwrap();
    std::fs::write(
        d.join("sostle.yaml"),
        // BOSUN, whom the object names, deploys through the CI account `ci`.
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\ncrew:\n  - name: IMHOTEP\n    roles: [crew, l3, l5-authorized, imhotep]\n    keys: [imhotep.pub]\n  - name: BOSUN\n    roles: [crew, l3, bosun]\n    subjects: [\"user:ci\"]\n",
    )
    .unwrap();
    let approved = mallory::cases()
        .into_iter()
        .find(|c| c.name == "valid approval by IMHOTEP's key")
        .unwrap();
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "rotate", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": approved.object["metadata"]["name"], "namespace": "sostle-l3-crew", "operation": "CREATE",
            "userInfo": {"username": "ci"}, "object": approved.object}
    });
    let f = d.join("review.json");
    std::fs::write(&f, serde_json::to_vec(&body).unwrap()).unwrap();
    let s = crate::webhook::start(d, &["--config", "sostle.yaml"]);
    assert_eq!(s.post("/validate/L3", &f)["response"]["allowed"], true);
    // The key is revoked: another key in its place. Within a few reload intervals the same
    // object is refused, with no restart and no change to the config file.
    std::fs::write(d.join("imhotep.pub"), pem("RICK")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = s.post("/validate/L3", &f);
        if v["response"]["allowed"] == false {
            let msg = v["response"]["status"]["message"].as_str().unwrap();
            assert!(
                msg.contains("no signature by a key of IMHOTEP over this witness"),
                "{msg}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replaced key was never picked up"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// #24 item 10 (L5, and L3 by identity), as the CLI judges it: Kay's signature over the pod
/// template is what admits, not the label; `--as` judges who deploys as the door does.
#[test]
fn kay_signs_an_l5_workload_and_a_changed_template_a_stranger_or_another_key_is_refused() {
    let r = root();
    let example = r.join("examples/layers/l5-approved.yaml");
    let config = r.join("examples/sostle.yaml");
    let gate = |file: &Path, extra: &[&str]| -> (String, String) {
        let mut args = vec![
            "test",
            "-o",
            "json",
            "--now",
            "2026-05-11T21:00:00Z",
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        let run = sostle_with(&r, &args, &[], None);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let g = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["policy"] == "layer_gate")
            .unwrap()
            .clone();
        let msgs: Vec<String> = g["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["message"].as_str().unwrap().to_string())
            .collect();
        (g["outcome"].as_str().unwrap().to_string(), msgs.join(" | "))
    };
    assert_eq!(gate(&example, &[]).0, "pass", "{:?}", gate(&example, &[]));
    // Who deploys: a stranger is refused, a subject or a member of a subject group admitted.
    let (o, m) = gate(&example, &["--as", "user:mallory"]);
    assert_eq!(o, "fail");
    assert!(
        m.contains("mallory, who does not act for crew member IMHOTEP"),
        "{m}"
    );
    assert_eq!(gate(&example, &["--as", "user:imhotep@pemos.ca"]).0, "pass");
    assert_eq!(
        gate(
            &example,
            &["--as", "user:ci", "--as-group", "vault-operators"]
        )
        .0,
        "pass"
    );
    // The image changed after Kay signed: refused, with the reason.
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed.yaml");
    let text = std::fs::read_to_string(&example).unwrap();
    std::fs::write(&changed, text.replace("vault:1.15.2", "vault:1.13.0")).unwrap();
    let (o, m) = gate(&changed, &[]);
    assert_eq!(o, "fail");
    assert!(m.contains("the template changed since Kay signed"), "{m}");
    // The label alone is not an approval.
    let unsigned = dir.path().join("unsigned.yaml");
    let stripped: String = text
        .lines()
        .filter(|l| !l.contains("kay-approval"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&unsigned, &stripped).unwrap();
    let (o, m) = gate(&unsigned, &[]);
    assert_eq!(o, "fail");
    assert!(m.contains("kay-approved=true alone proves nothing"), "{m}");
    // Another crew member's key cannot approve; Kay's key writes an approval that holds.
    let approve = |key: &str| {
        sostle_with(
            &r,
            &[
                "approve",
                "L5",
                unsigned.to_str().unwrap(),
                "--key",
                r.join(key).to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
                "--now",
                "2026-05-11T21:00:00Z",
                "--write",
            ],
            &[],
            None,
        )
    };
    let a = approve("examples/keys/IMHOTEP.demo.key");
    assert_ne!(a.code, 0, "{}", a.snapshot());
    assert!(
        a.stderr
            .contains("not registered for a crew member with role `kay`"),
        "{}",
        a.stderr
    );
    let a = approve("examples/keys/Kay.demo.key");
    assert_eq!(a.code, 0, "{}", a.snapshot());
    assert_eq!(gate(&unsigned, &[]).0, "pass");
}
