//! The webhook through its router, no sockets: real AdmissionReview bodies from
//! ../shared/fixtures/admission and our own, every refusal path, mutation, reloads and signed
//! profiles.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{json, Value as J};
use sostle_webhook::{parse_review, router, AppState, Settings};
use tower::ServiceExt;

mod approvals;
mod images;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/admission")
}

fn state(settings: Settings) -> Arc<AppState> {
    AppState::new(settings).unwrap()
}

async fn post(state: &Arc<AppState>, path: &str, body: Vec<u8>) -> (StatusCode, J) {
    let resp = router(state.clone())
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(J::Null);
    (status, v)
}

async fn get(state: &Arc<AppState>, path: &str) -> (StatusCode, String) {
    let resp = router(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn review(op: &str, namespace: &str, object: J, old: Option<J>, user: &str) -> Vec<u8> {
    let kind = object["kind"].as_str().unwrap_or("Pod").to_string();
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0f7b6b2a-1111-4222-8333-944455556666",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": object["metadata"]["name"], "namespace": namespace, "operation": op,
            "userInfo": {"username": user}, "object": object, "oldObject": old, "dryRun": false
        }
    }))
    .unwrap()
}

fn pod(ns: &str, extra_meta: J, container: J) -> J {
    let mut meta = json!({"name": "p", "namespace": ns, "labels": {"gamma1": "14134725141734693"}});
    if let (Some(m), Some(e)) = (meta.as_object_mut(), extra_meta.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container]}})
}

fn good_container() -> J {
    json!({"name": "c", "image": "reg.io/c:1.0", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
           "securityContext": {"readOnlyRootFilesystem": true}, "livenessProbe": {"exec": {"command": ["true"]}}})
}

#[tokio::test]
async fn real_requests_from_a_cluster() {
    let s = state(Settings::default());
    for (file, privileged) in [
        ("privileged_container.json", true),
        ("privileged_init_container.json", true),
        ("privileged_ephemeral_container.json", true),
        ("deployment_with_privileged_containers.json", true),
        ("statefulset_with_privileged_container.json", true),
        ("no_privileged_containers.json", false),
    ] {
        let body = std::fs::read(fixtures().join("wrapped-v1").join(file)).unwrap();
        let (status, v) = post(&s, "/validate/L0", body).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        let r = &v["response"];
        assert_eq!(r["uid"], "1299d386-525b-4032-98ae-1949f69f9cfc", "{file}");
        let msg = r["status"]["message"].as_str().unwrap_or("");
        assert_eq!(msg.contains("deny_privileged"), privileged, "{file}: {msg}");
        assert_eq!(
            r["allowed"], false,
            "{file}: no limits are set in any fixture"
        );
        assert!(
            msg.contains("deny_no_limits") && msg.contains("fix: set resources.limits"),
            "{file}: {msg}"
        );
        assert_eq!(r["status"]["code"], 403);
    }
}

#[tokio::test]
async fn allowed_warned_and_never_governed() {
    let s = state(Settings::default());
    let ok = pod("sostle-l2-local", json!({}), good_container());
    let (_, v) = post(
        &s,
        "/validate/L2",
        review("CREATE", "sostle-l2-local", ok.clone(), None, "u"),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true);
    let warnings = v["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("Google SSO")),
        "{warnings:?}"
    );
    assert!(warnings
        .iter()
        .all(|w| w.as_str().unwrap().chars().count() <= 120));
    // kube-system is never governed, whatever the path says.
    let bad = pod(
        "kube-system",
        json!({}),
        json!({"name": "c", "image": "x", "securityContext": {"privileged": true}}),
    );
    let (_, v) = post(
        &s,
        "/validate/L3",
        review("CREATE", "kube-system", bad.clone(), None, "u"),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true);
    // DELETE is allowed.
    let (_, v) = post(
        &s,
        "/validate/L3",
        review("DELETE", "sostle-l3-crew", bad, None, "u"),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true);
}

#[tokio::test]
async fn exemptions_cannot_be_self_granted() {
    let dir = tempfile_dir();
    let cfg = dir.join("sostle.yaml");
    std::fs::write(&cfg, "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nexemptions:\n  writers: [\"system:serviceaccount:sostle:approver\"]\n").unwrap();
    let s = state(Settings {
        config_path: Some(cfg),
        ..Settings::default()
    });
    let old = pod("chaos-trial", json!({}), good_container());
    let new = pod(
        "chaos-trial",
        json!({"annotations": {"sostle.eose.ca/exempt-from": "deny_no_limits"}}),
        good_container(),
    );
    let (_, v) = post(
        &s,
        "/validate/trial",
        review(
            "UPDATE",
            "chaos-trial",
            new.clone(),
            Some(old.clone()),
            "mallory",
        ),
    )
    .await;
    assert_eq!(v["response"]["allowed"], false);
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("not in exemptions.writers"));
    let (_, v) = post(
        &s,
        "/validate/trial",
        review(
            "UPDATE",
            "chaos-trial",
            new,
            Some(old),
            "system:serviceaccount:sostle:approver",
        ),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
}

#[tokio::test]
async fn trial_mutation_is_a_base64_jsonpatch_and_idempotent() {
    let s = state(Settings::default());
    let body =
        std::fs::read(fixtures().join("wrapped-v1/deployment_with_privileged_containers.json"))
            .unwrap();
    let (status, v) = post(&s, "/mutate/trial", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let r = &v["response"];
    assert_eq!(r["patchType"], "JSONPatch");
    let patch: J = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(r["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let ops = patch.as_array().unwrap();
    assert!(
        ops.iter()
            .any(|o| o["path"] == "/spec/template/spec/tolerations"),
        "{patch}"
    );
    assert!(ops
        .iter()
        .any(|o| o["path"] == "/spec/template/spec/nodeSelector" && o["value"]["pool"] == "chaos"));
    // Apply it, send the patched object again: no further patch.
    let mut review: J = serde_json::from_slice(&body).unwrap();
    for o in ops {
        let path = o["path"].as_str().unwrap().to_string();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let target = review["request"]["object"].pointer_mut(parent).unwrap();
        target[key] = o["value"].clone();
    }
    let (_, v) = post(&s, "/mutate/trial", serde_json::to_vec(&review).unwrap()).await;
    assert!(v["response"].get("patch").is_none(), "{v}");
    // Other layers are not mutated.
    let (_, v) = post(&s, "/mutate/L3", body).await;
    assert!(v["response"].get("patch").is_none());
}

#[tokio::test]
async fn bad_bodies_get_400_413_404() {
    let s = state(Settings::default());
    assert_eq!(
        post(
            &s,
            "/validate/L3",
            b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"Admiss".to_vec()
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&s, "/validate/L3", vec![0xff, 0x00, 0x13, 0x37])
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    // The reason names the spot, on one line.
    let (status, v) = post(
        &s,
        "/validate/L3",
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#
            .to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reason = v["error"].as_str().unwrap();
    assert!(reason.contains("line 1 column"), "{reason}");
    assert!(!reason.contains('\n'), "{reason}");
    // Metadata the API server could not have sent is refused, naming the field.
    let bad = review(
        "CREATE",
        "x",
        pod("x", json!({"labels": {"a": 1}}), good_container()),
        None,
        "u",
    );
    let (status, v) = post(&s, "/validate/L3", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("metadata.labels.a is not a string"),
        "{v}"
    );
    let v1beta1 = std::fs::read(
        fixtures().join("kubernetes-api/admission.k8s.io.v1beta1.AdmissionReview.json"),
    )
    .unwrap();
    let (status, v) = post(&s, "/validate/L3", v1beta1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("admission.k8s.io/v1"),
        "{v}"
    );
    assert_eq!(
        post(
            &s,
            "/validate/L3",
            b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}".to_vec()
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(
            &s,
            "/validate/L9",
            review(
                "CREATE",
                "x",
                pod("x", json!({}), good_container()),
                None,
                "u"
            )
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let mut huge = review(
        "CREATE",
        "x",
        pod(
            "x",
            json!({"annotations": {"big": "x".repeat(4 * 1024 * 1024)}}),
            good_container(),
        ),
        None,
        "u",
    );
    huge.truncate(huge.len());
    assert_eq!(
        post(&s, "/validate/L3", huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (_, metrics) = get(&s, "/metrics").await;
    assert!(
        metrics.contains("sostle_webhook_errors_total{kind=\"bad_request\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_upstream_round_trip_fixture_parses() {
    // kubernetes/api's v1 fixture: every field set to placeholders (operation "operationValue").
    let s = state(Settings::default());
    let body =
        std::fs::read(fixtures().join("kubernetes-api/admission.k8s.io.v1.AdmissionReview.json"))
            .unwrap();
    let (status, _) = post(&s, "/validate/L3", body).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "operationValue is not an operation"
    );
}

#[tokio::test]
async fn internal_errors_deny_high_and_admit_low() {
    let s = state(Settings {
        eval_timeout: Duration::from_millis(50),
        max_concurrency: 1,
        inline_max_bytes: 0,
        ..Settings::default()
    });
    let _held = s.reserve_slot().unwrap();
    let body = review(
        "CREATE",
        "sostle-l3-crew",
        pod("sostle-l3-crew", json!({}), good_container()),
        None,
        "u",
    );
    let (_, v) = post(&s, "/validate/L3", body.clone()).await;
    assert_eq!(v["response"]["allowed"], false);
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("could not check"));
    let (_, v) = post(&s, "/validate/L1", body).await;
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("could not check"));
}

#[tokio::test]
async fn health_readiness_metrics() {
    let s = state(Settings::default());
    assert_eq!(get(&s, "/healthz").await, (StatusCode::OK, "ok".into()));
    assert_eq!(get(&s, "/readyz").await.0, StatusCode::OK);
    s.set_ready(false);
    assert_eq!(get(&s, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let body = review(
        "CREATE",
        "sostle-l0-public",
        pod("sostle-l0-public", json!({}), good_container()),
        None,
        "u",
    );
    post(&s, "/validate/L0", body).await;
    let (_, m) = get(&s, "/metrics").await;
    assert!(
        m.contains(
            "sostle_webhook_requests_total{layer=\"L0\",operation=\"CREATE\",verdict=\"allow\"} 1"
        ),
        "{m}"
    );
    assert!(m.contains("sostle_webhook_request_duration_seconds_count 1"));
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sostle-wh-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn a_bad_new_config_is_refused_and_the_old_kept() {
    let dir = tempfile_dir();
    let cfg = dir.join("sostle.yaml");
    std::fs::write(&cfg, "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n").unwrap();
    let s = state(Settings {
        config_path: Some(cfg.clone()),
        ..Settings::default()
    });
    let body = review(
        "CREATE",
        "sostle-l0-public",
        pod(
            "sostle-l0-public",
            json!({}),
            json!({"name": "c", "image": "c:1"}),
        ),
        None,
        "u",
    );
    assert_eq!(
        post(&s, "/validate/L0", body.clone()).await.1["response"]["allowed"],
        false,
        "limits missing"
    );
    // A good change applies...
    std::fs::write(&cfg, "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nsuite:\n  policies:\n    deny_no_limits: {enabled: false}\n").unwrap();
    s.reload().unwrap();
    assert_eq!(
        post(&s, "/validate/L0", body.clone()).await.1["response"]["allowed"],
        true
    );
    // ...a bad one is refused, the previous config stays, and a metric says so.
    std::fs::write(
        &cfg,
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nsuite: [oops\n",
    )
    .unwrap();
    assert!(s.reload().is_err());
    assert_eq!(
        post(&s, "/validate/L0", body).await.1["response"]["allowed"],
        true
    );
    let (_, m) = get(&s, "/metrics").await;
    assert!(
        m.contains("sostle_webhook_reloads_total{result=\"error\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn without_profiles_the_lock_check_is_static() {
    // No --profiles: like the CLI without a ledger, deny_no_mecipol_image checks the labels only.
    // (Deployed by Kay, whose identity the built-in crew register names: the L3 gate holds.)
    let s = state(Settings::default());
    let obj = pod(
        "sostle-l3-crew",
        json!({"labels": {"gamma1": "14134725141734693", "crew-member": "Kay", "mecipol-locked": "true"},
               "annotations": {"mecipol-image": "reg.io/c:1.0", "sostle.eose.ca/trendal": "TRENDAL-L3-YONE-BOSUN-001", "sostle.eose.ca/trendal-warmth": "0.9"}}),
        good_container(),
    );
    let (_, v) = post(
        &s,
        "/validate/L3",
        review("CREATE", "sostle-l3-crew", obj, None, "kayyo@pemos.ca"),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
}

#[test]
fn the_decoder_bounds_depth_and_keeps_large_numbers() {
    // The webhook's event loops run on 8 MiB stacks; so does this check (debug builds use far
    // larger frames than release ones).
    let check = || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = state(Settings::default());
            // 200 levels inside the object: past the decoder's limit of 128, a 400, not a crash.
            let mut deep = J::Null;
            for _ in 0..200 {
                deep = json!([deep]);
            }
            let c = json!({"name": "c", "args": deep});
            let body = review("CREATE", "x", pod("x", json!({}), c), None, "u");
            let (status, v) = post(&s, "/validate/L3", body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
            assert!(
                v["error"]
                    .as_str()
                    .unwrap()
                    .contains("nesting deeper than 128"),
                "{v}"
            );
            // A number past i64 is kept (as a float), and the review is decided.
            let mut c = good_container();
            c["ports"] = json!([{"containerPort": u64::MAX}]);
            let body = review("CREATE", "x", pod("x", json!({}), c), None, "u");
            let (status, v) = post(&s, "/validate/L3", body).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            assert!(v["response"]["allowed"].is_boolean());
        });
    };
    std::thread::Builder::new()
        .stack_size(sostle_webhook::STACK_SIZE)
        .spawn(check)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_null_or_missing_namespace_is_filled_in_from_the_request() {
    let ns = |object: J| {
        let mut body: J =
            serde_json::from_slice(&review("CREATE", "team-a", object, None, "u")).unwrap();
        body["request"]["name"] = json!("p");
        let req = parse_review(body.to_string().as_bytes()).unwrap();
        let tree = &req.object.unwrap().tree;
        tree.get_path(&["metadata", "namespace"])
            .and_then(|n| n.as_str())
            .map(str::to_string)
    };
    let mut p = pod("team-a", json!({}), good_container());
    p["metadata"]["namespace"] = J::Null;
    assert_eq!(ns(p.clone()).as_deref(), Some("team-a"));
    p["metadata"] = J::Null;
    assert_eq!(ns(p.clone()).as_deref(), Some("team-a"));
    p.as_object_mut().unwrap().remove("metadata");
    assert_eq!(ns(p.clone()).as_deref(), Some("team-a"));
    // A namespace the object states is left as it is.
    let p = pod("other", json!({}), good_container());
    assert_eq!(ns(p).as_deref(), Some("other"));
}
