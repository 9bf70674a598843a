//! Signatures in a real registry (Debian's docker-registry on loopback): resolving tags,
//! storing where cosign does and appending, reading back, TLS with a CA and basic auth from a
//! Docker config, and registries that fail (unreachable, silent, HTML, oversized layers,
//! malformed manifests) — each a clear error or refusal, never a hang.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use sostle_sign::payload::SimpleSigning;
use sostle_sign::registry::{Credentials, Options, Registry, RegistryError};
use sostle_sign::{keys, SignatureLayer, Signer, Trust};

use sostle_test_support::registry::TestRegistry;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn plain_options(r: &TestRegistry) -> Options {
    Options {
        insecure: vec![r.host.clone()],
        credentials: Credentials::Anonymous,
        timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

fn signature(key: &p256::ecdsa::SigningKey, reference: &str, digest: &str) -> SignatureLayer {
    let payload = SimpleSigning::new(reference, digest).to_bytes();
    let sig: p256::ecdsa::DerSignature = key.sign(&payload);
    SignatureLayer {
        payload,
        signature: B64.encode(sig.as_bytes()),
        ..SignatureLayer::default()
    }
}

#[test]
fn signatures_are_stored_where_cosign_keeps_them_and_appended() {
    let reg = TestRegistry::plain();
    let digest = reg.push_image("team/app", "v1");
    let rt = rt();
    let client = Registry::new(plain_options(&reg)).expect("client");
    let image = rt
        .block_on(client.resolve(&format!("{}/team/app:v1", reg.host)))
        .expect("resolve");
    assert_eq!(image.digest, digest);
    assert_eq!(
        image.signature_tag(),
        format!("{}.sig", digest.replace(':', "-"))
    );
    assert!(rt
        .block_on(client.signatures(&image))
        .expect("none yet")
        .layers
        .is_empty());

    let (k1, k2) = (keys::generate(), keys::generate());
    let s1 = signature(&k1, &format!("{}/team/app", reg.host), &digest);
    rt.block_on(client.push_signature(&image, &s1))
        .expect("push 1");
    rt.block_on(client.push_signature(&image, &signature(&k2, "x", &digest)))
        .expect("push 2");
    // The same signature again is not stored twice.
    rt.block_on(client.push_signature(&image, &s1))
        .expect("push 1 again");
    let got = rt.block_on(client.signatures(&image)).expect("read back");
    assert_eq!(got.layers.len(), 2, "{:?}", got.unreadable);
    assert_eq!(got.layers[0], s1);

    let trust = Trust {
        signers: vec![Signer::Key {
            name: "k2".into(),
            key: *k2.verifying_key(),
        }],
        rekor: vec![],
    };
    let ok: Vec<_> = got
        .layers
        .iter()
        .filter_map(|l| sostle_sign::verify(l, &digest, &trust).ok())
        .collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].docker_reference, "x");

    // skopeo, an independent client, sees an OCI manifest of simple-signing layers under the tag.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/team/app:{}",
            reg.host,
            image.signature_tag()
        ))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("manifest");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(2));
    for l in m["layers"].as_array().into_iter().flatten() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert!(l["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    }
}

#[test]
fn tls_and_basic_auth_from_a_docker_config() {
    let reg = TestRegistry::tls_with_login("ci", "s3cret-pass");
    let digest = reg.push_image("app", "1.0");
    let rt = rt();
    let ca = std::fs::read(reg.ca.as_ref().expect("ca")).expect("ca pem");
    let with = |credentials: Credentials, ca: Vec<Vec<u8>>| {
        Registry::new(Options {
            extra_ca_pem: ca,
            credentials,
            timeout: Duration::from_secs(5),
            ..Options::default()
        })
        .expect("client")
    };
    let image = format!("{}/app:1.0", reg.host);
    let logged_in = with(
        Credentials::DockerConfigIn(reg.docker_config()),
        vec![ca.clone()],
    );
    let resolved = rt
        .block_on(logged_in.resolve(&image))
        .expect("resolve with login");
    assert_eq!(resolved.digest, digest);
    let s = signature(&keys::generate(), &image, &digest);
    rt.block_on(logged_in.push_signature(&resolved, &s))
        .expect("push with login");
    assert_eq!(
        rt.block_on(logged_in.signatures(&resolved))
            .expect("read")
            .layers,
        vec![s]
    );

    let anonymous = with(Credentials::Anonymous, vec![ca]);
    let e = rt
        .block_on(anonymous.resolve(&image))
        .expect_err("no login");
    assert!(e.to_string().contains("unauthorized"), "{e}");

    let untrusted = with(Credentials::DockerConfigIn(reg.docker_config()), vec![]);
    let e = rt
        .block_on(untrusted.resolve(&image))
        .expect_err("unknown CA");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn registries_that_fail_give_clear_errors_and_never_hang() {
    let rt = rt();
    let opts = |host: &str| Options {
        insecure: vec![host.to_string()],
        credentials: Credentials::Anonymous,
        timeout: Duration::from_secs(1),
        ..Options::default()
    };
    // Nobody listens.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let e = rt
        .block_on(
            Registry::new(opts(&host))
                .expect("c")
                .resolve(&format!("{host}/a:b")),
        )
        .expect_err("closed");
    assert!(matches!(e, RegistryError::Unreachable(..)), "{e}");
    assert!(e.is_outage());

    // Accepts and never answers: the time limit ends it.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = silent.local_addr().expect("addr").to_string();
    let keep = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(4));
        drop(conns);
    });
    let t = Instant::now();
    let e = rt
        .block_on(
            Registry::new(opts(&host))
                .expect("c")
                .resolve(&format!("{host}/a:b")),
        )
        .expect_err("silent");
    assert!(matches!(e, RegistryError::Timeout(_, 1)), "{e}");
    assert!(e.is_outage());
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "gave up after {:?}",
        t.elapsed()
    );
    drop(keep);

    // Answers every request with an HTML page.
    let html = TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = html.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for mut c in html.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = "<html><body>Sign in to continue</body></html>";
            let _ = write!(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    let e = rt
        .block_on(
            Registry::new(opts(&host))
                .expect("c")
                .resolve(&format!("{host}/a:b")),
        )
        .expect_err("html");
    assert!(e.to_string().contains("an HTML page"), "{e}");
}

#[test]
fn oversized_and_malformed_signatures_are_refusals_with_reasons() {
    let reg = TestRegistry::plain();
    reg.push_image("big", "v1");
    let rt = rt();
    let client = Registry::new(plain_options(&reg)).expect("client");
    let image = rt
        .block_on(client.resolve(&format!("{}/big:v1", reg.host)))
        .expect("resolve");
    // A 50 MiB "payload" layer: stored, but never read past its declared size.
    let big = SignatureLayer {
        payload: vec![b' '; 50 << 20],
        signature: "AAAA".into(),
        ..SignatureLayer::default()
    };
    rt.block_on(client.push_signature(&image, &big))
        .expect("push big");
    let got = rt.block_on(client.signatures(&image)).expect("read");
    assert!(got.layers.is_empty());
    assert_eq!(got.unreadable.len(), 1);
    assert!(
        got.unreadable[0].contains("52428800 bytes, above the 65536"),
        "{:?}",
        got.unreadable
    );

    // A layer whose annotation is not base64 and whose payload names another digest.
    let image2 = rt
        .block_on(client.resolve(&format!("{}/big:v1", reg.host)))
        .expect("resolve");
    let other = format!("sha256:{}", "0".repeat(64));
    let mut bad = signature(&keys::generate(), "x", &other);
    bad.signature = "not base64!".into();
    let trust = Trust {
        signers: vec![Signer::Key {
            name: "k".into(),
            key: *keys::generate().verifying_key(),
        }],
        rekor: vec![],
    };
    let e = sostle_sign::verify(&bad, &image2.digest, &trust)
        .expect_err("other digest")
        .to_string();
    assert!(e.contains("the payload signs sha256:0000"), "{e}");
    let mut bad2 = signature(&keys::generate(), "x", &image2.digest);
    bad2.signature = "not base64!".into();
    let e = sostle_sign::verify(&bad2, &image2.digest, &trust)
        .expect_err("not base64")
        .to_string();
    assert!(e.contains("is not base64"), "{e}");

    // A signature manifest that is not an OCI manifest.
    let sig_ref: oci_client::Reference = format!("{}/big:{}", reg.host, image.signature_tag())
        .parse()
        .expect("ref");
    let raw = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"nope","layers":7}"#.to_vec();
    let pushed = rt.block_on(raw.push_manifest_raw(
        &sig_ref,
        body,
        reqwest::header::HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
    ));
    if pushed.is_ok() {
        let e = rt
            .block_on(client.signatures(&image))
            .expect_err("malformed");
        assert!(e.to_string().contains("is not an OCI manifest"), "{e}");
    } else {
        // distribution validates manifests it stores; then the refusal is the registry's own.
        let e = pushed.expect_err("refused");
        assert!(e.to_string().to_lowercase().contains("manifest"), "{e}");
    }
}

#[test]
fn the_bearer_token_flow_with_credentials_from_a_docker_config() {
    // docker-registry with `auth: token`: 401 + WWW-Authenticate: Bearer, a token service that
    // takes the basic credentials, a token per scope (pull for reading, pull,push for signing).
    let reg = TestRegistry::with_token_service("ci-bot", "t0ken-pass");
    let digest = reg.push_image("team/api", "2.0");
    let rt = rt();
    let with = |credentials: Credentials| {
        Registry::new(Options {
            insecure: vec![reg.host.clone()],
            credentials,
            timeout: Duration::from_secs(5),
            ..Options::default()
        })
        .expect("client")
    };
    let image = format!("{}/team/api:2.0", reg.host);
    let client = with(Credentials::DockerConfigIn(reg.docker_config()));
    let resolved = rt
        .block_on(client.resolve(&image))
        .expect("resolve through a token");
    assert_eq!(resolved.digest, digest);
    let s = signature(&keys::generate(), &image, &digest);
    rt.block_on(client.push_signature(&resolved, &s))
        .expect("push through a push-scoped token");
    assert_eq!(
        rt.block_on(client.signatures(&resolved))
            .expect("read")
            .layers,
        vec![s]
    );
    let e = rt
        .block_on(with(Credentials::Anonymous).resolve(&image))
        .expect_err("no credentials, no token");
    assert!(e.to_string().contains("unauthorized"), "{e}");
}
