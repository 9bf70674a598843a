//! The Rekor client against a loopback server that replays a real recorded Rekor answer: the
//! production entry behind `dir-img-cosign-key-rekor-valid` (its body, integrated time, log ID,
//! index and SignedEntryTimestamp, exactly as rekor.sigstore.dev signed them). The real
//! rekor-server needs Trillian and a MySQL database beside it; docs/signing.md says why this
//! replay stands in for it. The client must accept that answer only for the entry it sent, only
//! with a SET that verifies with the log's key, and treat 409 as "already logged".

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sostle_sign::rekor::{self, RekorError};
use sostle_sign::{keys, RekorKey, SignatureLayer, Signer, Trust};

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/cosign")
            .join(rel),
    )
    .unwrap()
}

/// The recorded entry: (the signature layer, its bundle as Rekor signed it).
fn recorded() -> (SignatureLayer, serde_json::Value) {
    let b = fixture("containers-image/dir-img-cosign-key-rekor-valid/signature-1");
    let v: serde_json::Value =
        serde_json::from_slice(b.strip_prefix(b"\x00sigstore-json\n").unwrap()).unwrap();
    let bundle: serde_json::Value = serde_json::from_str(
        v["annotations"]["dev.sigstore.cosign/bundle"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let layer = SignatureLayer {
        payload: B64.decode(v["payload"].as_str().unwrap()).unwrap(),
        signature: v["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap()
            .to_string(),
        ..SignatureLayer::default()
    };
    (layer, bundle)
}

#[derive(Clone, Copy)]
enum Mode {
    Created,
    Conflict,
    TamperedSet,
    Unavailable,
}

/// A loopback "Rekor" that answers with the recorded entry; returns its base URL and the
/// bodies it was sent.
fn replay(mode: Mode) -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let (_, bundle) = recorded();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut len = 0usize;
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
            let _ = tx.send(body);
            let p = &bundle["Payload"];
            let set = bundle["SignedEntryTimestamp"].as_str().unwrap().to_string();
            // TamperedSet: the recorded SET beside a changed integratedTime (a SET over other fields).
            let time = match mode {
                Mode::TamperedSet => serde_json::json!(p["integratedTime"].as_i64().unwrap() + 1),
                _ => p["integratedTime"].clone(),
            };
            let answer = serde_json::json!({"24296fb24b8ad77a5f1e9c6e8b4b2b5f1e9c6e8b4b2b5f1e9c6e8b4b2b5f1e9c6e8b4b2b": {
                "body": p["body"], "integratedTime": time, "logID": p["logID"], "logIndex": p["logIndex"],
                "verification": {"signedEntryTimestamp": set}}})
            .to_string();
            let mut c = conn;
            let reply = match (mode, line.starts_with("POST")) {
                (Mode::Unavailable, _) => "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                (Mode::Conflict, true) => "HTTP/1.1 409 Conflict\r\nLocation: /api/v1/log/entries/24296fb2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                (_, post) => format!(
                    "HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    if post { "201 Created" } else { "200 OK" },
                    answer.len()
                ),
            };
            let _ = c.write_all(reply.as_bytes());
        }
    });
    (url, rx)
}

fn rekor_key() -> RekorKey {
    RekorKey::from_pem(&fixture("containers-image/rekor.pub")).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_entry_is_logged_and_its_bundle_verifies_offline() {
    let (layer, recorded_bundle) = recorded();
    let pem = String::from_utf8(fixture("containers-image/cosign2.pub")).unwrap();
    let entry = rekor::hashedrekord(&layer.payload, &layer.signature, &pem);
    // What we send is what the production log recorded.
    let body: serde_json::Value = serde_json::from_slice(
        &B64.decode(recorded_bundle["Payload"]["body"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(entry, body);
    for mode in [Mode::Created, Mode::Conflict] {
        let (url, sent) = replay(mode);
        let key = rekor_key();
        let logged = rt()
            .block_on(rekor::upload(
                &url,
                &entry,
                Some(&key),
                Duration::from_secs(5),
            ))
            .unwrap();
        assert!(logged
            .entry_url
            .starts_with(&format!("{url}/api/v1/log/entries/")));
        assert_eq!(
            logged.integrated_time,
            recorded_bundle["Payload"]["integratedTime"]
                .as_i64()
                .unwrap()
        );
        let got: serde_json::Value = serde_json::from_slice(&sent.recv().unwrap()).unwrap();
        assert_eq!(got, entry);
        // The bundle, stored on the layer, verifies offline with the key and the log.
        let mut with = layer.clone();
        with.bundle = Some(logged.bundle.clone());
        let digest = sostle_sign::payload::SimpleSigning::decode(&layer.payload)
            .unwrap()
            .digest()
            .to_string();
        let trust = Trust {
            signers: vec![Signer::Key {
                name: "k".into(),
                key: keys::load_public_key(pem.as_bytes()).unwrap(),
            }],
            rekor: vec![key],
        };
        sostle_sign::verify(&with, &digest, &trust).unwrap();
    }
}

#[test]
fn answers_that_are_not_the_entry_sent_or_not_signed_are_refused() {
    let (layer, _) = recorded();
    let pem = String::from_utf8(fixture("containers-image/cosign2.pub")).unwrap();
    // Another signature: the log's (recorded) answer is for another entry.
    let mine = rekor::hashedrekord(b"other payload", &layer.signature, &pem);
    let (url, _sent) = replay(Mode::Created);
    let e = rt()
        .block_on(rekor::upload(
            &url,
            &mine,
            Some(&rekor_key()),
            Duration::from_secs(5),
        ))
        .unwrap_err();
    assert!(
        matches!(&e, RekorError::Bad(_, m) if m == "the log answered with another entry"),
        "{e}"
    );
    // The right entry, a SET over other fields.
    let entry = rekor::hashedrekord(&layer.payload, &layer.signature, &pem);
    let (url, _sent) = replay(Mode::TamperedSet);
    let e = rt()
        .block_on(rekor::upload(
            &url,
            &entry,
            Some(&rekor_key()),
            Duration::from_secs(5),
        ))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("SignedEntryTimestamp does not verify"),
        "{e}"
    );
    // A log that is down, or not there at all.
    let (url, _sent) = replay(Mode::Unavailable);
    let e = rt()
        .block_on(rekor::upload(&url, &entry, None, Duration::from_secs(5)))
        .unwrap_err();
    assert!(matches!(e, RekorError::Unavailable(..)), "{e}");
    let e = rt()
        .block_on(rekor::upload(
            "http://127.0.0.1:1",
            &entry,
            None,
            Duration::from_secs(2),
        ))
        .unwrap_err();
    assert!(matches!(e, RekorError::Unavailable(..)), "{e}");
}
