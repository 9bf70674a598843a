//! `sostle token issue` / `verify`, and the L4 gate using an issued token end to end.

use crate::{root, sostle_in};

const SECRET: &str = "an-integration-test-secret";

fn with_secret(args: &[&str], stdin: Option<&[u8]>) -> crate::Run {
    crate::sostle_with(&root(), args, &[("SOSTLE_TOKEN_SECRET", SECRET)], stdin)
}

fn issue(crew: &str, layer: &str, expires: &str) -> String {
    let r = with_secret(
        &[
            "token",
            "issue",
            "--crew",
            crew,
            "--layer",
            layer,
            "--expires",
            expires,
            "--now",
            "2026-05-11T00:00:00Z",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_string()
}

#[test]
fn issued_token_has_the_spec_form() {
    let t = issue("BOSUN", "L4", "2026-06-01T00:00:00Z");
    let parts: Vec<&str> = t.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], "v1");
    assert_eq!(parts[1], "1780272000");
    assert_eq!(parts[2].len(), 32);
    assert!(parts[2]
        .chars()
        .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)));
    assert!(t.len() <= 63);
}

#[test]
fn token_matches_an_independent_hmac() {
    // HMAC-SHA256 over `sostle-token/v1|BOSUN|L4|1780272000`, lowercase base32, first 32 chars,
    // computed with Python's standard library (hmac, hashlib, base64) for the secret above.
    let t = issue("BOSUN", "L4", "2026-06-01T00:00:00Z");
    let want = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,base64,sys;m=hmac.new(sys.argv[1].encode(),b'sostle-token/v1|BOSUN|L4|1780272000',hashlib.sha256).digest();print('v1.1780272000.'+base64.b32encode(m).decode().rstrip('=').lower()[:32])",
            SECRET,
        ])
        .output();
    match want {
        Ok(out) if out.status.success() => {
            assert_eq!(t, String::from_utf8_lossy(&out.stdout).trim())
        }
        _ => eprintln!("python3 not available; skipped the independent check"),
    }
}

#[test]
fn verify_refuses_with_reasons() {
    let t = issue("BOSUN", "L4", "2026-06-01T00:00:00Z");
    let ok = with_secret(
        &[
            "token",
            "verify",
            &t,
            "--crew",
            "BOSUN",
            "--layer",
            "L4",
            "--now",
            "2026-05-20T00:00:00Z",
        ],
        None,
    );
    assert_eq!(ok.code, 0);
    let expired = with_secret(
        &[
            "token",
            "verify",
            &t,
            "--crew",
            "BOSUN",
            "--layer",
            "L4",
            "--now",
            "2026-06-02T00:00:00Z",
        ],
        None,
    );
    assert_eq!(expired.code, 1);
    assert!(expired.stdout.contains("expired"), "{}", expired.stdout);
    let foreign = with_secret(
        &[
            "token",
            "verify",
            &t,
            "--crew",
            "RICK",
            "--layer",
            "L4",
            "--now",
            "2026-05-20T00:00:00Z",
        ],
        None,
    );
    assert!(
        foreign
            .stdout
            .contains("issued to BOSUN at L4, not to RICK at L4"),
        "{}",
        foreign.stdout
    );
    let layer = with_secret(
        &[
            "token",
            "verify",
            &t,
            "--crew",
            "BOSUN",
            "--layer",
            "L5",
            "--now",
            "2026-05-20T00:00:00Z",
        ],
        None,
    );
    assert!(
        layer.stdout.contains("not to BOSUN at L5"),
        "{}",
        layer.stdout
    );
}

#[test]
fn issue_refuses_unknown_crew_and_past_expiry() {
    let r = with_secret(
        &[
            "token",
            "issue",
            "--crew",
            "MALLORY",
            "--layer",
            "L4",
            "--expires",
            "2026-06-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("not registered crew"));
    let r = with_secret(
        &[
            "token",
            "issue",
            "--crew",
            "BOSUN",
            "--layer",
            "L4",
            "--expires",
            "2020-01-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(r.code, 3);
    let r = sostle_in(
        &root(),
        &[
            "token",
            "issue",
            "--crew",
            "BOSUN",
            "--layer",
            "L4",
            "--expires",
            "2030-01-01T00:00:00Z",
        ],
        None,
    );
    assert!(r.stderr.contains("SOSTLE_TOKEN_SECRET"), "{}", r.stderr);
}

#[test]
fn l4_gate_admits_an_issued_token() {
    let t = issue("BOSUN", "L4", "2026-06-01T00:00:00Z");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: sostle-l4-token\n  labels:\n    crew-member: BOSUN\n    sostle-token: {t}\nspec:\n  containers: []\n"
    );
    let run = |now: &str| {
        let r = with_secret(
            &["test", "-o", "json", "--now", now, "-"],
            Some(manifest.as_bytes()),
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let gate = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["policy"] == "layer_gate")
            .unwrap()
            .clone();
        gate
    };
    assert_eq!(run("2026-05-20T00:00:00Z")["outcome"], "pass");
    let late = run("2026-06-02T00:00:00Z");
    assert_eq!(late["outcome"], "fail");
    assert!(late["violations"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

/// #24 (also): a secret the config would refuse is refused from the environment too, and a
/// token's expiry has one spelling (the MAC covers the number, so `0…`/`+…` would be another
/// string for the same token).
#[test]
fn a_short_secret_is_refused_and_a_respelled_expiry_does_not_verify() {
    let r = crate::sostle_with(
        &root(),
        &[
            "token",
            "issue",
            "--crew",
            "BOSUN",
            "--layer",
            "L4",
            "--expires",
            "2030-01-01T00:00:00Z",
        ],
        &[("SOSTLE_TOKEN_SECRET", "a")],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(r.stderr.contains("at least 16"), "{}", r.stderr);
    let t = issue("BOSUN", "L4", "2030-01-01T00:00:00Z");
    let verify = |tok: &str| {
        with_secret(
            &["token", "verify", tok, "--crew", "BOSUN", "--layer", "L4"],
            None,
        )
    };
    assert_eq!(verify(&t).code, 0, "{}", verify(&t).snapshot());
    let (head, rest) = t.split_once('.').unwrap();
    for respelled in [format!("{head}.0{rest}"), format!("{head}.+{rest}")] {
        let r = verify(&respelled);
        assert_ne!(r.code, 0, "{respelled} verified: {}", r.snapshot());
    }
}
