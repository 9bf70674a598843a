//! The real cosign fixtures: keys cosign wrote (password `hello`) and signatures cosign made,
//! verified and refused exactly as `fixtures/cosign/expected.json` says.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::Digest as _;
use sostle_sign::keys::{self, KeyError};
use sostle_sign::{RekorKey, SignatureLayer, Signer, Trust};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/cosign")
}

fn read(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// containers/image's on-disk form: 0x00, `sigstore-json\n`, then the layer as JSON.
fn signature_layer(rel: &str) -> SignatureLayer {
    let bytes = read(rel);
    let json = bytes
        .strip_prefix(b"\x00sigstore-json\n")
        .expect("containers/image signature form");
    let v: serde_json::Value = serde_json::from_slice(json).expect("json");
    let ann = |k: &str| v["annotations"][k].as_str().map(str::to_string);
    SignatureLayer {
        payload: B64
            .decode(v["payload"].as_str().expect("payload"))
            .expect("base64"),
        signature: ann("dev.cosignproject.cosign/signature").expect("signature"),
        certificate: ann("dev.sigstore.cosign/certificate"),
        chain: ann("dev.sigstore.cosign/chain"),
        bundle: ann("dev.sigstore.cosign/bundle"),
    }
}

fn key_signer(name: &str, rel: &str) -> Signer {
    Signer::Key {
        name: name.into(),
        key: keys::load_public_key(&read(rel)).expect("public key"),
    }
}

fn rekor() -> Vec<RekorKey> {
    vec![RekorKey::from_pem(&read("containers-image/rekor.pub")).expect("rekor key")]
}

fn digest_of(rel: &str) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(read(rel)))
}

fn fulcio_signer(identity: &str, issuer: &str) -> Signer {
    let roots = x509_cert::Certificate::load_pem_chain(&read("containers-image/fulcio_v1.crt.pem"))
        .expect("root");
    Signer::Keyless {
        name: "ci".into(),
        identity: identity.into(),
        issuer: issuer.into(),
        roots,
    }
}

#[test]
fn every_case_of_expected_json_is_judged_as_it_says() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_slice(&read("expected.json")).expect("expected.json");
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let name = case["case"].as_str().expect("case");
        let sig = signature_layer(case["signature"].as_str().expect("signature"));
        let digest = match case["manifest"].as_str() {
            Some(m) => digest_of(m),
            // No manifest: judge against the digest the payload names (only the key can fail).
            None => sostle_sign::payload::SimpleSigning::decode(&sig.payload)
                .expect("payload")
                .digest()
                .to_string(),
        };
        let mut trust = Trust::default();
        if let Some(k) = case["public_key"].as_str() {
            trust.signers.push(key_signer("release", k));
        }
        if case["fulcio_root"].is_string() {
            trust.signers.push(fulcio_signer(
                "mitr@redhat.com",
                "https://github.com/login/oauth",
            ));
        }
        if case["rekor_public_key"].is_string() {
            trust.rekor = rekor();
        }
        let got = sostle_sign::verify(&sig, &digest, &trust);
        let want_valid = case["expected"]
            .as_str()
            .expect("expected")
            .starts_with("valid");
        assert_eq!(got.is_ok(), want_valid, "{name}: {got:?}");
        if let Some(r) = case["docker_reference"].as_str() {
            if let Ok(v) = &got {
                assert_eq!(v.docker_reference, r, "{name}");
            }
        }
    }
}

#[test]
fn the_manifest_mismatch_is_refused_for_the_digest_not_the_key() {
    let sig = signature_layer("containers-image/dir-img-cosign-modified-manifest/signature-1");
    let digest = digest_of("containers-image/dir-img-cosign-modified-manifest/manifest.json");
    let trust = Trust {
        signers: vec![key_signer("release", "containers-image/cosign.pub")],
        rekor: vec![],
    };
    let err = sostle_sign::verify(&sig, &digest, &trust)
        .expect_err("mismatch")
        .to_string();
    assert!(err.starts_with("the payload signs sha256:634a8f"), "{err}");
    assert!(err.contains(&digest), "{err}");
}

#[test]
fn the_wrong_key_is_named_in_the_refusal() {
    let sig = signature_layer("containers-image/dir-img-cosign-key-rekor-valid/signature-1");
    let digest = digest_of("containers-image/dir-img-cosign-key-rekor-valid/manifest.json");
    let trust = Trust {
        signers: vec![key_signer("release", "containers-image/cosign.pub")],
        rekor: rekor(),
    };
    let err = sostle_sign::verify(&sig, &digest, &trust)
        .expect_err("other key")
        .to_string();
    assert!(
        err.contains("key release (sha256:") && err.ends_with("not signed by this key"),
        "{err}"
    );
}

#[test]
fn keyless_checks_identity_issuer_root_and_needs_a_trusted_time() {
    let sig = signature_layer("containers-image/dir-img-cosign-fulcio-rekor-valid/signature-1");
    let digest = digest_of("containers-image/dir-img-cosign-fulcio-rekor-valid/manifest.json");
    let ok = Trust {
        signers: vec![fulcio_signer(
            "mitr@redhat.com",
            "https://github.com/login/oauth",
        )],
        rekor: rekor(),
    };
    let v = sostle_sign::verify(&sig, &digest, &ok).expect("valid keyless");
    assert_eq!(v.integrated_time, Some(1_674_247_893));
    assert_eq!(v.by, "mitr@redhat.com via https://github.com/login/oauth");

    let other_id = Trust {
        signers: vec![fulcio_signer(
            "mallory@example.com",
            "https://github.com/login/oauth",
        )],
        rekor: rekor(),
    };
    let err = sostle_sign::verify(&sig, &digest, &other_id)
        .expect_err("identity")
        .to_string();
    assert!(
        err.contains("the certificate is for mitr@redhat.com, not mallory@example.com"),
        "{err}"
    );

    let other_issuer = Trust {
        signers: vec![fulcio_signer(
            "mitr@redhat.com",
            "https://accounts.google.com",
        )],
        rekor: rekor(),
    };
    let err = sostle_sign::verify(&sig, &digest, &other_issuer)
        .expect_err("issuer")
        .to_string();
    assert!(
        err.contains("OIDC issuer is https://github.com/login/oauth"),
        "{err}"
    );

    let no_time = Trust {
        signers: vec![fulcio_signer(
            "mitr@redhat.com",
            "https://github.com/login/oauth",
        )],
        rekor: vec![],
    };
    let err = sostle_sign::verify(&sig, &digest, &no_time)
        .expect_err("no rekor")
        .to_string();
    assert!(err.contains("needs a trusted time"), "{err}");

    // A root that did not issue the chain: cosign.pub is no certificate, so use the leaf itself.
    let leaf = x509_cert::Certificate::load_pem_chain(
        sig.certificate.as_deref().unwrap_or_default().as_bytes(),
    )
    .expect("leaf");
    let wrong_root = Trust {
        signers: vec![Signer::Keyless {
            name: "ci".into(),
            identity: "mitr@redhat.com".into(),
            issuer: "https://github.com/login/oauth".into(),
            roots: leaf,
        }],
        rekor: rekor(),
    };
    let err = sostle_sign::verify(&sig, &digest, &wrong_root)
        .expect_err("root")
        .to_string();
    assert!(
        err.contains("does not chain to a configured Fulcio root"),
        "{err}"
    );

    // The bundle binds the signature: with the signature bytes changed, the signature fails
    // first; with the bundle's SET tampered, the log refuses.
    let mut tampered = sig.clone();
    let mut b: serde_json::Value =
        serde_json::from_str(sig.bundle.as_deref().unwrap_or_default()).expect("bundle");
    b["Payload"]["integratedTime"] = serde_json::json!(1_674_247_894);
    tampered.bundle = Some(b.to_string());
    let err = sostle_sign::verify(&tampered, &digest, &ok)
        .expect_err("tampered")
        .to_string();
    assert!(
        err.contains("SignedEntryTimestamp does not verify"),
        "{err}"
    );
    // A truncated bundle is refused, not skipped.
    let mut truncated = sig.clone();
    let full = sig.bundle.clone().unwrap_or_default();
    truncated.bundle = Some(full.get(..full.len() / 2).unwrap_or_default().to_string());
    let err = sostle_sign::verify(&truncated, &digest, &ok)
        .expect_err("truncated")
        .to_string();
    assert!(
        err.contains("the Rekor bundle is not JSON of cosign's shape"),
        "{err}"
    );
}

#[test]
fn cosigns_own_keys_load_with_their_password() {
    for (key, public) in [
        ("keys/sigstore-labeled.key", "keys/sigstore-labeled.pub"),
        ("keys/cosign-labeled.key", "keys/cosign-labeled.pub"),
    ] {
        let k =
            keys::load_private_key(&read(key), b"hello").unwrap_or_else(|e| panic!("{key}: {e}"));
        let p = keys::load_public_key(&read(public)).expect("pub");
        assert_eq!(k.verifying_key(), &p, "{key}");
        assert_eq!(
            keys::load_private_key(&read(key), b"hullo"),
            Err(KeyError::Password),
            "{key}"
        );
    }
    // cosign refuses the SEC1 plaintext; so do we, saying why.
    let e = keys::load_private_key(&read("keys/cosign-labeled-ec-sec1.key"), b"hello")
        .expect_err("sec1");
    assert!(matches!(e, KeyError::NotPkcs8(_)), "{e}");
}
