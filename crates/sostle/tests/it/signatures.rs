//! `sostle key`, `sostle sign` and `sostle verify-image` with the real cosign (v2, built from
//! the Go module proxy by scripts/test.sh) as the peer, against a real registry on loopback:
//! every format checked both ways.

use std::path::Path;
use std::process::Command;

use crate::registry_harness::TestRegistry;
use crate::sostle_with;

/// The password of every key these tests (and locks.rs) make.
pub const PASSWORD: &str = "correct horse";

fn sostle(dir: &Path, args: &[&str]) -> crate::Run {
    sostle_with(
        dir,
        args,
        &[
            ("COSIGN_PASSWORD", PASSWORD),
            ("DOCKER_CONFIG", &dir.join("docker").display().to_string()),
        ],
        None,
    )
}

/// Runs cosign (offline: no transparency log, no TUF) in `dir`; returns (success, output).
pub fn cosign(dir: &Path, args: &[&str]) -> (bool, String) {
    cosign_with(dir, args, &[])
}

/// [`cosign`] with extra environment.
fn cosign_with(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> (bool, String) {
    let out = Command::new("cosign")
        .args(args)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("TUF_ROOT", dir.join("tuf"))
        .env("SIGSTORE_NO_CACHE", "1")
        .envs(env.iter().copied())
        .output()
        .expect("cosign on PATH (scripts/test.sh builds it)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `cosign verify --offline` of `image` by k/cosign.pub, trusting the Rekor key `rekor`: the
/// signature and its bundle must verify.
fn cosign_verifies_offline(d: &Path, image: &str, rekor: &Path, what: &str) {
    let (ok, text) = cosign_with(
        d,
        &[
            "verify",
            "--key",
            "k/cosign.pub",
            "--offline=true",
            "--allow-insecure-registry",
            image,
        ],
        &[("SIGSTORE_REKOR_PUBLIC_KEY", rekor)],
    );
    assert!(ok, "{what}: {text}");
    assert!(
        text.contains("Existence of the claims in the transparency log was verified offline"),
        "{text}"
    );
}

/// A plain registry and a working directory with an empty Docker config.
pub fn setup() -> (TestRegistry, tempfile::TempDir) {
    let reg = TestRegistry::plain();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("docker")).unwrap();
    std::fs::write(dir.path().join("docker/config.json"), "{\"auths\":{}}").unwrap();
    (reg, dir)
}

#[test]
fn cosign_and_sostle_verify_each_others_signatures() {
    let (reg, dir) = setup();
    let d = dir.path();
    let digest = reg.push_image("team/web", "v1");
    let image = format!("{}/team/web:v1", reg.host);
    let insecure = ["--insecure-registry", reg.host.as_str()];

    // sostle signs with its own key; cosign verifies it.
    let r = sostle(d, &["key", "generate", "--out", "ours"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = sostle(
        d,
        &[
            &["sign", image.as_str(), "--key", "ours/cosign.key"][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("signed {}/team/web@{digest}", reg.host)),
        "{}",
        r.stdout
    );
    let (ok, out) = cosign(
        d,
        &[
            "verify",
            "--key",
            "ours/cosign.pub",
            "--insecure-ignore-tlog=true",
            "--allow-insecure-registry",
            &image,
        ],
    );
    assert!(ok, "cosign verify of sostle's signature: {out}");
    assert!(out.contains(&digest), "{out}");

    // cosign signs with a key it made; sostle verifies it, and the first signature is kept.
    let (ok, out) = cosign(
        &d.join("."),
        &["generate-key-pair", "--output-key-prefix", "theirs"],
    );
    assert!(ok, "{out}");
    let (ok, out) = cosign(
        d,
        &[
            "sign",
            "--key",
            "theirs.key",
            "--tlog-upload=false",
            "--allow-insecure-registry",
            "-y",
            &image,
        ],
    );
    assert!(ok, "cosign sign: {out}");
    let r = sostle(
        d,
        &[
            &["verify-image", image.as_str(), "--key", "theirs.pub"][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("1 of 2 signatures verified"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("refused signature 1: key theirs.pub (sha256:"),
        "{}",
        r.stdout
    );
    let r = sostle(
        d,
        &[
            &[
                "verify-image",
                image.as_str(),
                "--key",
                "ours/cosign.pub",
                "-o",
                "json",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["digest"], digest.as_str());
    assert_eq!(j["verified"][0]["signature"], 1);
    assert_eq!(
        j["verified"][0]["docker_reference"],
        format!("{}/team/web", reg.host)
    );
    assert_eq!(j["refused"].as_array().map(Vec::len), Some(1));

    // sostle signs with cosign's key, and cosign verifies that too.
    let r = sostle(
        d,
        &[
            &["sign", image.as_str(), "--key", "theirs.key"][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Neither accepts a key that signed nothing: sostle exits 1 and says why.
    let r = sostle(d, &["key", "generate", "--out", "stranger"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = sostle(
        d,
        &[
            &[
                "verify-image",
                image.as_str(),
                "--key",
                "stranger/cosign.pub",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("0 of 3 signatures verified"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("not signed by this key"), "{}", r.stdout);
    let (ok, _) = cosign(
        d,
        &[
            "verify",
            "--key",
            "stranger/cosign.pub",
            "--insecure-ignore-tlog=true",
            "--allow-insecure-registry",
            &image,
        ],
    );
    assert!(!ok, "cosign must refuse too");

    // Keyless flags against key signatures: refused, with the reason.
    let root = crate::root().join("../shared/fixtures/cosign/containers-image");
    let r = sostle(
        d,
        &[
            &[
                "verify-image",
                image.as_str(),
                "--certificate-identity",
                "a@example.com",
                "--certificate-oidc-issuer",
                "https://accounts.google.com",
            ][..],
            &[
                "--fulcio-root",
                &root.join("fulcio_v1.crt.pem").display().to_string(),
                "--rekor-key",
                &root.join("rekor.pub").display().to_string(),
            ],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("carries no certificate"), "{}", r.stdout);

    // skopeo, independently, sees all three layers under cosign's tag.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/team/web:{}.sig",
            reg.host,
            digest.replace(':', "-")
        ))
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(3), "{m}");

    // And openssl, from the bytes skopeo copied out: sostle's first signature is ECDSA P-256 /
    // SHA-256 over the stored payload, by sostle's key.
    let sig_dir = d.join("sig-dir");
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!(
            "docker://{}/team/web:{}.sig",
            reg.host,
            digest.replace(':', "-")
        ))
        .arg(format!("dir:{}", sig_dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = &m["layers"][0];
    let blob = sig_dir.join(
        first["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            first["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    std::fs::write(d.join("first.sig"), der).unwrap();
    let out = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "ours/cosign.pub",
            "-signature",
            "first.sig",
        ])
        .arg(&blob)
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&blob).unwrap()).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
}

#[test]
fn keys_load_both_ways_and_imports_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // cosign's keys in sostle, sostle's in cosign: `cosign public-key` decrypts ours.
    let r = sostle(d, &["key", "generate", "--out", "ours"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (ok, out) = cosign(d, &["public-key", "--key", "ours/cosign.key"]);
    assert!(ok, "cosign reads sostle's cosign.key: {out}");
    assert_eq!(
        out.trim(),
        std::fs::read_to_string(d.join("ours/cosign.pub"))
            .unwrap()
            .trim()
    );

    // Import: the same PKCS#8 key through both tools gives the same public key, and each
    // tool reads the other's encrypted result.
    let ssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "plain.pem",
    ]);
    ssl(&["ec", "-in", "plain.pem", "-out", "sec1.pem"]);
    std::fs::create_dir_all(d.join("c")).unwrap();
    let (ok, out) = cosign(
        &d.join("c"),
        &["import-key-pair", "--key", "../plain.pem", "-y"],
    );
    assert!(ok, "cosign import-key-pair: {out}");
    for (src, out_dir) in [("plain.pem", "s1"), ("sec1.pem", "s2")] {
        let r = sostle(d, &["key", "import", src, "--out", out_dir]);
        assert_eq!(r.code, 0, "{src}: {}", r.stderr);
        assert_eq!(
            std::fs::read_to_string(d.join(out_dir).join("import-cosign.pub"))
                .unwrap()
                .trim(),
            std::fs::read_to_string(d.join("c/import-cosign.pub"))
                .unwrap()
                .trim(),
            "{src}"
        );
        let (ok, out) = cosign(
            d,
            &[
                "public-key",
                "--key",
                &format!("{out_dir}/import-cosign.key"),
            ],
        );
        assert!(ok, "cosign reads sostle's import: {out}");
    }
    // sostle reads cosign's import (and cosign's generate-key-pair, above, in the other test).
    let r = sostle_with(
        d,
        &["key", "import", "c/import-cosign.key"],
        &[("COSIGN_PASSWORD", PASSWORD)],
        None,
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("already a cosign key"), "{}", r.stderr);

    // Bad keys are one-line errors naming the file.
    let bad = |args: &[&str], env: &[(&str, &str)], want: &str| {
        let r = sostle_with(d, args, env, None);
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    };
    let sign = ["sign", "127.0.0.1:1/x:y", "--key"];
    bad(
        &[&sign[..], &["ours/cosign.key"]].concat(),
        &[("COSIGN_PASSWORD", "wrong")],
        "--key ours/cosign.key: wrong password",
    );
    let unset = Command::new(env!("CARGO_BIN_EXE_sostle"))
        .args([&sign[..], &["ours/cosign.key"]].concat())
        .current_dir(d)
        .env_remove("COSIGN_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(3));
    let err = String::from_utf8_lossy(&unset.stderr);
    assert!(
        err.contains("--key ours/cosign.key: set COSIGN_PASSWORD"),
        "{err}"
    );
    bad(
        &[&sign[..], &["sec1.pem"]].concat(),
        &[],
        "--key sec1.pem: a SEC1 `EC PRIVATE KEY` is not cosign's format",
    );
    bad(
        &[&sign[..], &["ours/cosign.pub"]].concat(),
        &[],
        "--key ours/cosign.pub: a `PUBLIC KEY` PEM block is not a private key",
    );
    std::fs::write(d.join("garbage.key"), "hello\n").unwrap();
    bad(
        &[&sign[..], &["garbage.key"]].concat(),
        &[],
        "--key garbage.key: not a PEM key",
    );
    ssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        "p384.pem",
    ]);
    bad(
        &[&sign[..], &["p384.pem"]].concat(),
        &[],
        "--key p384.pem: not an ECDSA P-256 key (a P-384 key)",
    );
    // An unreachable registry is a run error, not "unsigned".
    bad(
        &[
            "verify-image",
            "127.0.0.1:1/x:y",
            "--key",
            "ours/cosign.pub",
            "--insecure-registry",
            "127.0.0.1:1",
        ],
        &[],
        "registry 127.0.0.1:1 unreachable",
    );
}

#[test]
fn sostle_test_verify_images_reports_unsigned_images_at_their_line() {
    let (reg, dir) = setup();
    let d = dir.path();
    reg.push_image("app", "signed");
    reg.push_image("app", "unsigned");
    let r = sostle(d, &["key", "generate", "--out", "k"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let signed = format!("{}/app:signed", reg.host);
    let unsigned = format!("{}/app:unsigned", reg.host);
    let r = sostle(
        d,
        &[
            "sign",
            &signed,
            "--key",
            "k/cosign.key",
            "--insecure-registry",
            &reg.host,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(
        d.join("sostle.yaml"),
        format!("apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nimages:\n  signers:\n    - name: release\n      key: k/cosign.pub\n  registries:\n    insecure: [\"{}\"]\n", reg.host),
    )
    .unwrap();
    let pod = |name: &str, image: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: sostle-l3-crew\nspec:\n  containers:\n    - name: c\n      image: {image}\n")
    };
    std::fs::write(
        d.join("pods.yaml"),
        format!("{}---\n{}", pod("a", &signed), pod("b", &unsigned)),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        sostle(
            d,
            &[
                &["test", "--config", "sostle.yaml", "-o", "json", "pods.yaml"][..],
                extra,
            ]
            .concat(),
        )
    };
    let results = |r: &crate::Run| -> Vec<serde_json::Value> {
        let j: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr));
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["policy"] == "deny_unsigned_image")
            .cloned()
            .collect()
    };
    // Off by default.
    assert!(results(&run(&[])).is_empty());
    let r = run(&["--verify-images"]);
    let got = results(&r);
    assert_eq!(got.len(), 2, "{}", r.stdout);
    assert_eq!(got[0]["outcome"], "pass", "{}", got[0]);
    assert_eq!(got[1]["outcome"], "fail", "{}", got[1]);
    let v = &got[1]["violations"][0];
    assert!(
        v["message"].as_str().unwrap().starts_with(&format!(
            "image {unsigned} has no signature by key release (sha256:"
        )),
        "{v}"
    );
    assert_eq!(v["path"], "spec.containers[0].image");
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(19), Some(7)),
        "{v}"
    );

    // Without signers in the config the flag is a run error, not a silent pass.
    std::fs::write(
        d.join("empty.yaml"),
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n",
    )
    .unwrap();
    let r = sostle(
        d,
        &[
            "test",
            "--config",
            "empty.yaml",
            "--verify-images",
            "pods.yaml",
        ],
    );
    assert_eq!(r.code, 3);
    assert!(
        r.stderr
            .contains("--verify-images: the config requires no signatures"),
        "{}",
        r.stderr
    );
}

/// A loopback transparency log: takes hashedrekord entries (`POST /api/v1/log/entries`),
/// answers as Rekor does, and signs each SignedEntryTimestamp with its own key (written to
/// `rekor.pub`). It stands in for rekor-server, which needs Trillian and MySQL beside it; the
/// client itself is also tested against a real recorded Rekor answer (sostle-sign's tests).
/// Returns the URL and the entries it logged.
pub fn loopback_rekor(
    dir: &Path,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;
    use sha2::Digest as _;
    use std::io::{BufRead as _, Read as _, Write as _};
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let spki = key.verifying_key().to_public_key_der().unwrap();
    let pem = key
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    std::fs::write(dir.join("rekor.pub"), pem).unwrap();
    let log_id = format!("{:x}", sha2::Sha256::digest(spki.as_bytes()));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = logged.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut r = std::io::BufReader::new(conn.try_clone().unwrap());
            let (mut line, mut len) = (String::new(), 0usize);
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let entry: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let index = {
                let mut v = keep.lock().unwrap();
                v.push(entry.clone());
                v.len() as i64 - 1
            };
            let b64 = base64::engine::general_purpose::STANDARD.encode(entry.to_string());
            let time = 1_780_000_000 + index;
            // The canonical payload (keys sorted, no spaces) the SET signs.
            let canonical = format!("{{\"body\":\"{b64}\",\"integratedTime\":{time},\"logID\":\"{log_id}\",\"logIndex\":{index}}}");
            let sig: p256::ecdsa::DerSignature = key.sign(canonical.as_bytes());
            let set = base64::engine::general_purpose::STANDARD.encode(sig.as_bytes());
            let answer = format!("{{\"{index:064x}\":{{\"body\":\"{b64}\",\"integratedTime\":{time},\"logID\":\"{log_id}\",\"logIndex\":{index},\"verification\":{{\"signedEntryTimestamp\":\"{set}\"}}}}}}");
            let mut c = conn;
            let _ = write!(c, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
        }
    });
    (url, logged)
}

#[test]
fn signatures_and_locks_are_logged_in_rekor_and_cosign_checks_the_bundle() {
    let (reg, dir) = setup();
    let d = dir.path();
    reg.push_image("logged", "v1");
    let image = format!("{}/logged:v1", reg.host);
    let insecure = ["--insecure-registry", reg.host.as_str()];
    let (url, logged) = loopback_rekor(d);
    assert_eq!(sostle(d, &["key", "generate", "--out", "k"]).code, 0);
    let r = sostle(
        d,
        &[
            &[
                "sign",
                image.as_str(),
                "--key",
                "k/cosign.key",
                "--rekor-url",
                url.as_str(),
                "--rekor-key",
                "rekor.pub",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("logged in Rekor: {url}/api/v1/log/entries/")),
        "{}",
        r.stderr
    );
    assert_eq!(logged.lock().unwrap().len(), 1);
    // sostle verifies the stored bundle against the log's key…
    let r = sostle(
        d,
        &[
            &[
                "verify-image",
                image.as_str(),
                "--key",
                "k/cosign.pub",
                "--rekor-key",
                "rekor.pub",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(", logged 2026-05-28T"), "{}", r.stdout);
    // …and so does cosign, offline, trusting that log's key.
    cosign_verifies_offline(
        d,
        &image,
        &d.join("rekor.pub"),
        "cosign verify with the bundle",
    );

    // The config's `rekor` section stands in for the flags.
    std::fs::write(
        d.join("sostle.yaml"),
        format!("apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nrekor:\n  url: {url}\n  key: rekor.pub\n  required: true\n"),
    )
    .unwrap();
    let r = sostle(
        d,
        &[
            &[
                "sign",
                image.as_str(),
                "--key",
                "k/cosign.key",
                "--config",
                "sostle.yaml",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("logged in Rekor: {url}/api/v1/log/entries/")),
        "{}",
        r.stderr
    );

    // A log that is down: a warning (the signature is stored unlogged), or with
    // --rekor-required an error.
    let dead = "http://127.0.0.1:1";
    let r = sostle(
        d,
        &[
            &[
                "sign",
                image.as_str(),
                "--key",
                "k/cosign.key",
                "--rekor-url",
                dead,
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: Rekor at http://127.0.0.1:1 unavailable"),
        "{}",
        r.stderr
    );
    let r = sostle(
        d,
        &[
            &[
                "sign",
                image.as_str(),
                "--key",
                "k/cosign.key",
                "--rekor-url",
                dead,
                "--rekor-required",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    // A log that is not the one whose key was given: an error.
    assert_eq!(sostle(d, &["key", "generate", "--out", "other"]).code, 0);
    let r = sostle(
        d,
        &[
            &[
                "sign",
                image.as_str(),
                "--key",
                "k/cosign.key",
                "--rekor-url",
                url.as_str(),
                "--rekor-key",
                "other/cosign.pub",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("which is not trusted"), "{}", r.stderr);
}

#[test]
fn a_real_rekor_logs_signatures_once_and_cosign_checks_its_bundle() {
    // rekor-server v1.5.4 with Trillian v1.7.3 on MariaDB, on loopback.
    let rekor = crate::registry_harness::RekorStack::start();
    let (reg, dir) = setup();
    let d = dir.path();
    let digest = reg.push_image("logged", "v2");
    let image = format!("{}/logged:v2", reg.host);
    let key = rekor.key.display().to_string();
    let insecure = ["--insecure-registry", reg.host.as_str()];
    assert_eq!(sostle(d, &["key", "generate", "--out", "k"]).code, 0);
    let sign = || {
        let r = sostle(
            d,
            &[
                &[
                    "sign",
                    image.as_str(),
                    "--key",
                    "k/cosign.key",
                    "--rekor-url",
                    rekor.url.as_str(),
                    "--rekor-key",
                    key.as_str(),
                ][..],
                &insecure,
            ]
            .concat(),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "logged in Rekor: {}/api/v1/log/entries/",
                rekor.url
            )),
            "{}",
            r.stderr
        );
    };
    sign();
    // The same signature again (RFC 6979 makes it identical): Rekor answers 409, the existing
    // entry is fetched, and the registry still holds one layer.
    sign();
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/logged:{}.sig",
            reg.host,
            digest.replace(':', "-")
        ))
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(1), "{m}");
    assert!(m["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"].is_string());
    let r = sostle(
        d,
        &[
            &[
                "verify-image",
                image.as_str(),
                "--key",
                "k/cosign.pub",
                "--rekor-key",
                key.as_str(),
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("1 of 1 signatures verified") && r.stdout.contains(", logged "),
        "{}",
        r.stdout
    );
    cosign_verifies_offline(
        d,
        &image,
        &rekor.key,
        "cosign verify with the real Rekor's bundle",
    );
}
