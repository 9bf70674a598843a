//! Image signatures at the cluster door, against a real registry on loopback (Debian's
//! docker-registry): signed images are admitted, unsigned ones denied as `deny_unsigned_image`,
//! tags resolved at the registry, an outage served from the cache, an unreachable registry
//! following the layer's fail-open rule, and the metrics that show it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use serde_json::json;
use sostle_sign::payload::SimpleSigning;
use sostle_sign::registry::{Credentials, Options, Registry};
use sostle_sign::{keys, SignatureLayer};
use sostle_webhook::{AppState, Settings};

use crate::{get, good_container, pod, post, review, state, tempfile_dir};
use sostle_test_support::registry::TestRegistry;

/// A client for the test registry (plain HTTP, anonymous).
fn client(reg: &TestRegistry) -> Registry {
    Registry::new(Options {
        insecure: vec![reg.host.clone()],
        credentials: Credentials::Anonymous,
        timeout: Duration::from_secs(5),
        ..Options::default()
    })
    .unwrap()
}

async fn sign(reg: &TestRegistry, image: &str, key: &p256::ecdsa::SigningKey) {
    let client = client(reg);
    let r = client.resolve(image).await.unwrap();
    let payload =
        SimpleSigning::new(&format!("{}/{}", r.registry, r.repository), &r.digest).to_bytes();
    let sig: p256::ecdsa::DerSignature = key.sign(&payload);
    let layer = SignatureLayer {
        payload,
        signature: base64::engine::general_purpose::STANDARD.encode(sig.as_bytes()),
        ..SignatureLayer::default()
    };
    client.push_signature(&r, &layer).await.unwrap();
}

fn config(
    dir: &std::path::Path,
    host: &str,
    key: &p256::ecdsa::SigningKey,
    ttl: u32,
) -> Arc<AppState> {
    std::fs::write(
        dir.join("release.pub"),
        keys::public_key_pem(key.verifying_key()),
    )
    .unwrap();
    let cfg = dir.join("sostle.yaml");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nimages:\n  signers:\n    - name: release\n      key: release.pub\n  require:\n    L0-L7: [release]\n  registries:\n    insecure: [\"{host}\"]\n    timeoutSeconds: 1\n  cache:\n    ttlSeconds: {ttl}\n"
        ),
    )
    .unwrap();
    state(Settings {
        config_path: Some(cfg),
        ..Settings::default()
    })
}

fn with_image(image: &str) -> serde_json::Value {
    let mut c = good_container();
    c["image"] = json!(image);
    pod("sostle-l0-public", json!({}), c)
}

async fn decide(s: &Arc<AppState>, layer: &str, image: &str) -> (bool, String, Vec<String>) {
    let (_, v) = post(
        s,
        &format!("/validate/{layer}"),
        review("CREATE", "ns-x", with_image(image), None, "u"),
    )
    .await;
    let r = &v["response"];
    let msg = r["status"]["message"].as_str().unwrap_or("").to_string();
    let warnings = r["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    (r["allowed"] == true, msg, warnings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_images_are_admitted_and_unsigned_ones_denied() {
    let reg = TestRegistry::plain();
    let signed_digest = reg.push_image("app", "signed");
    reg.push_image("app", "unsigned");
    let key = keys::generate();
    let signed = format!("{}/app:signed", reg.host);
    let unsigned = format!("{}/app:unsigned", reg.host);
    sign(&reg, &signed, &key).await;
    // Signed by someone else: not by the configured key.
    let other = format!("{}/app:other", reg.host);
    reg.push_image("app", "other");
    sign(&reg, &other, &keys::generate()).await;

    let dir = tempfile_dir();
    let s = config(&dir, &reg.host, &key, 300);

    let (ok, msg, _) = decide(&s, "L0", &signed).await;
    assert!(ok, "{msg}");
    // The same image by digest: the same verdict.
    let by_digest = format!("{}/app@{signed_digest}", reg.host);
    let (ok, msg, _) = decide(&s, "L0", &by_digest).await;
    assert!(ok, "{msg}");

    let (ok, msg, _) = decide(&s, "L0", &unsigned).await;
    assert!(!ok);
    assert!(
        msg.contains(&format!(
            "deny_unsigned_image: image {unsigned} has no signature by key release (sha256:"
        )),
        "{msg}"
    );
    assert!(msg.contains("it has no signatures at sha256-"), "{msg}");
    let (ok, msg, _) = decide(&s, "L0", &other).await;
    assert!(!ok);
    assert!(
        msg.contains("signature 1: key release") && msg.contains("not signed by this key"),
        "{msg}"
    );

    // The suite's other policies still judge: a signed image is no excuse for privilege.
    let mut c = good_container();
    c["image"] = json!(signed);
    c["securityContext"]["privileged"] = json!(true);
    let (_, v) = post(
        &s,
        "/validate/L0",
        review("CREATE", "ns-x", pod("ns-x", json!({}), c), None, "u"),
    )
    .await;
    let m = v["response"]["status"]["message"].as_str().unwrap_or("");
    assert!(
        m.contains("deny_privileged") && !m.contains("deny_unsigned_image"),
        "{m}"
    );

    // Metrics: verdicts, cache hits (the second look at the signed image), registry latency.
    let (_, text) = get(&s, "/metrics").await;
    assert!(
        text.contains("sostle_webhook_image_verifications_total{result=\"verified\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("sostle_webhook_image_verifications_total{result=\"unsigned\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("sostle_webhook_image_cache_total{result=\"hit\"}"),
        "{text}"
    );
    assert!(
        text.contains("sostle_webhook_registry_request_duration_seconds_count"),
        "{text}"
    );

    // A reload with the `images` section unchanged keeps the checker and so its cache.
    let before = s.loaded().images.clone().unwrap();
    s.reload().unwrap();
    let after = s.loaded().images.clone().unwrap();
    assert!(Arc::ptr_eq(&before, &after), "the checker was rebuilt");
    assert!(after.cached() >= 2, "cached verdicts: {}", after.cached());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_serves_cached_verdicts_and_unknown_images_follow_the_layer() {
    let reg = TestRegistry::plain();
    reg.push_image("app", "v1");
    let key = keys::generate();
    let image = format!("{}/app:v1", reg.host);
    sign(&reg, &image, &key).await;
    let dir = tempfile_dir();
    // TTL 0: every review asks the registry, so the outage below is met, not hidden by the TTL.
    let s = config(&dir, &reg.host, &key, 0);
    // (The L3 gate may deny for its own reasons; the signature is not one of them.)
    let (_, msg, _) = decide(&s, "L3", &image).await;
    assert!(!msg.contains("deny_unsigned_image"), "{msg}");
    let host = reg.host.clone();
    drop(reg); // the registry goes away

    // The verified image keeps its (stale) verdict.
    let (_, msg, _) = decide(&s, "L3", &image).await;
    assert!(
        !msg.contains("deny_unsigned_image"),
        "served from the cache during the outage: {msg}"
    );
    let (_, text) = get(&s, "/metrics").await;
    assert!(
        text.contains("sostle_webhook_image_cache_total{result=\"stale\"}"),
        "{text}"
    );
    assert!(
        text.contains("sostle_webhook_registry_errors_total"),
        "{text}"
    );

    // An image never seen: fail closed at L3 (denied, saying the registry is unreachable)…
    let unseen = format!("{host}/app:never");
    let (ok, msg, _) = decide(&s, "L3", &unseen).await;
    assert!(!ok);
    assert!(
        msg.contains(&format!(
            "deny_unsigned_image: image {unseen}: registry {host} unreachable"
        )),
        "{msg}"
    );
    // …and admitted with a warning at L0, which fails open.
    let (ok, msg, warnings) = decide(&s, "L0", &unseen).await;
    assert!(ok, "{msg}");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("deny_unsigned_image: image ")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_config_without_signers_checks_no_signatures() {
    // No `images` section: nothing is asked of any registry (the image's host does not exist).
    let s = state(Settings::default());
    let (_, msg, _) = decide(&s, "L3", "registry.invalid/app:v1").await;
    assert!(!msg.contains("deny_unsigned_image"), "{msg}");
}

/// A MECIPOL attestation for `image`, signed by `key`, pushed as `sostle lock --attach` does.
async fn attach_lock(
    reg: &TestRegistry,
    image: &str,
    key: &p256::ecdsa::SigningKey,
    layers: &[&str],
) {
    use sostle_sign::attest;
    let client = client(reg);
    let r = client.resolve(image).await.unwrap();
    let body = sostle_core::mecipol::ProfileBody {
        profile_id: "profile-001".into(),
        image: image.into(),
        image_digest: Some(r.digest.clone()),
        gamma1_epoch: 98,
        policies_passed: vec!["deny_no_limits".into()],
        policies_exempted: vec![],
        exemptions: vec![],
        falco_clean_hours: 25,
        trivy_critical_cves: 0,
        rekor_entry: None,
        locked_at: "2026-05-12T11:00:00Z".into(),
        sostle_layers_authorized: layers.iter().map(|l| l.to_string()).collect(),
        trial: "TRB-CHAOS-001".into(),
        target: "L3".into(),
    };
    let st = attest::Statement::new(
        &format!("{}/{}", r.registry, r.repository),
        &r.digest,
        attest::MECIPOL_PREDICATE,
        body.to_json(),
    );
    client
        .push_attestation(&r, &attest::sign(key, &st), attest::MECIPOL_PREDICATE)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_from_the_registry_are_served_from_the_cache_through_an_outage() {
    let reg = TestRegistry::plain();
    reg.push_image("locked", "v1");
    let image = format!("{}/locked:v1", reg.host);
    let lock_key = keys::generate();
    attach_lock(&reg, &image, &lock_key, &["L3"]).await;
    let dir = tempfile_dir();
    std::fs::write(
        dir.join("lock.pub"),
        keys::public_key_pem(lock_key.verifying_key()),
    )
    .unwrap();
    let cfg = dir.join("sostle.yaml");
    std::fs::write(
        &cfg,
        format!("apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nlocks:\n  keys: [lock.pub]\nimages:\n  registries:\n    insecure: [\"{}\"]\n    timeoutSeconds: 1\n  cache:\n    ttlSeconds: 0\n", reg.host),
    )
    .unwrap();
    let s = state(Settings {
        config_path: Some(cfg),
        ..Settings::default()
    });
    let workload = |img: &str| {
        let mut c = good_container();
        c["image"] = json!(img);
        pod(
            "sostle-l3-crew",
            json!({"labels": {"mecipol-locked": "true"}, "annotations": {"mecipol-image": img, "mecipol-profile": "profile-001"}}),
            c,
        )
    };
    let lock_msgs = |v: &serde_json::Value| {
        v["response"]["status"]["message"]
            .as_str()
            .unwrap_or("")
            .split("; ")
            .filter(|m| m.starts_with("deny_no_mecipol_image"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (_, v) = post(
        &s,
        "/validate/L3",
        review("CREATE", "sostle-l3-crew", workload(&image), None, "u"),
    )
    .await;
    assert_eq!(lock_msgs(&v), Vec::<String>::new(), "{v}");
    let host = reg.host.clone();
    drop(reg);
    // The registry is gone: the lock read before is served (stale), not turned into a denial…
    let (_, v) = post(
        &s,
        "/validate/L3",
        review("CREATE", "sostle-l3-crew", workload(&image), None, "u"),
    )
    .await;
    assert_eq!(lock_msgs(&v), Vec::<String>::new(), "{v}");
    let (_, text) = get(&s, "/metrics").await;
    assert!(
        text.contains("sostle_webhook_image_cache_total{result=\"stale\"}"),
        "{text}"
    );
    // …while an image never read cannot be checked, and says so.
    let unseen = format!("{host}/locked:v2");
    let (_, v) = post(
        &s,
        "/validate/L3",
        review("CREATE", "sostle-l3-crew", workload(&unseen), None, "u"),
    )
    .await;
    let m = lock_msgs(&v);
    assert!(
        m.iter().any(|x| x.contains(&format!(
            "the lock of image {unseen} cannot be checked: registry {host} unreachable"
        ))),
        "{m:?}"
    );
}
