//! Fuzzes what sostle reads from a registry to judge an image: the signature manifest, each
//! layer's descriptor and blob, and the signature, certificate, chain and Rekor bundle in its
//! annotations, verified against a trust policy with a key, a keyless identity and a Rekor key.
//! Input: a manifest, then 0xFF, then a blob. Any bytes must give a refusal or a verdict, never
//! a panic, and nothing but cosign's real fixture signatures may verify.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sostle_sign::registry::{decode_manifest, signature_layer};
use sostle_sign::{keys, RekorKey, Signer, Trust};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/cosign/containers-image");

fn trust() -> &'static Trust {
    static T: OnceLock<Trust> = OnceLock::new();
    T.get_or_init(|| {
        let read = |f: &str| std::fs::read(format!("{FIXTURES}/{f}")).unwrap_or_else(|e| panic!("{f}: {e}"));
        let key = keys::load_public_key(&read("cosign.pub")).unwrap_or_else(|e| panic!("{e}"));
        let roots = x509_cert::Certificate::load_pem_chain(&read("fulcio_v1.crt.pem")).unwrap_or_else(|e| panic!("{e}"));
        Trust {
            signers: vec![
                Signer::Key { name: "k".into(), key },
                Signer::Keyless { name: "ci".into(), identity: "mitr@redhat.com".into(), issuer: "https://github.com/login/oauth".into(), roots },
            ],
            rekor: vec![RekorKey::from_pem(&read("rekor.pub")).unwrap_or_else(|e| panic!("{e}"))],
        }
    })
}

/// The signature annotations of cosign's real fixture signatures.
fn known() -> &'static Vec<String> {
    static K: OnceLock<Vec<String>> = OnceLock::new();
    K.get_or_init(|| {
        let mut out = Vec::new();
        for dir in std::fs::read_dir(FIXTURES).into_iter().flatten().flatten() {
            let Ok(b) = std::fs::read(dir.path().join("signature-1")) else { continue };
            let Some(json) = b.strip_prefix(b"\x00sigstore-json\n") else { continue };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else { continue };
            if let Some(s) = v["annotations"]["dev.cosignproject.cosign/signature"].as_str() {
                out.push(s.to_string());
            }
        }
        assert!(!out.is_empty(), "fixtures not found at {FIXTURES}");
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let (manifest, blob) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(m) = decode_manifest(manifest) else { return };
    // Judge against the digest the payload names, so the signature, certificate and bundle
    // checks are reached; then only cosign's own fixture signatures may verify.
    let digest = sostle_sign::payload::SimpleSigning::decode(blob)
        .map(|p| p.digest().to_string())
        .unwrap_or_else(|_| format!("sha256:{}", "0".repeat(64)));
    let genuine = |sig: &sostle_sign::SignatureLayer| known().iter().any(|k| k == &sig.signature);
    for layer in &m.layers {
        // The registry path: the blob must be the layer's.
        if let Ok(sig) = signature_layer(layer, blob.to_vec()) {
            if let Ok(v) = sostle_sign::verify(&sig, &digest, trust()) {
                assert!(genuine(&sig), "a made-up signature verified: {v:?}");
            }
        }
        // The verifier on its own, whatever the blob: annotations straight from the input.
        let ann = layer.annotations.clone().unwrap_or_default();
        let sig = sostle_sign::SignatureLayer {
            payload: blob.to_vec(),
            signature: ann.get("dev.cosignproject.cosign/signature").cloned().unwrap_or_default(),
            certificate: ann.get("dev.sigstore.cosign/certificate").cloned(),
            chain: ann.get("dev.sigstore.cosign/chain").cloned(),
            bundle: ann.get("dev.sigstore.cosign/bundle").cloned(),
        };
        if let Ok(v) = sostle_sign::verify(&sig, &digest, trust()) {
            assert!(genuine(&sig), "a made-up signature verified: {v:?}");
        }
    }
});
