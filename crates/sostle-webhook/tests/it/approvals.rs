//! Signed approvals at the cluster door (issue #12): the self-granted exemption and its variants
//! through the router on CREATE, with the decisions `mallory.rs` states; the built-in default
//! (no keys) refusing every exemption; approvals turned off (honoured, with a warning); and the
//! Namespace entry that keeps a layer from being escaped by relabelling.

use serde_json::json;
use sostle_webhook::{AppState, Settings};

use crate::{post, review, tempfile_dir};
use sostle_test_support::mallory;

fn with_config(text: &str) -> std::sync::Arc<AppState> {
    let dir = tempfile_dir();
    let cfg = dir.join("sostle.yaml");
    std::fs::write(&cfg, text).unwrap();
    AppState::new(Settings {
        config_path: Some(cfg),
        ..Settings::default()
    })
    .unwrap()
}

#[tokio::test]
async fn every_self_granted_exemption_is_refused_and_the_approved_one_admitted() {
    let s = with_config(&mallory::config_yaml(""));
    for c in mallory::cases() {
        let (status, v) = post(
            &s,
            "/validate/L3",
            review(
                "CREATE",
                "sostle-l3-crew",
                c.object.clone(),
                None,
                "mallory",
            ),
        )
        .await;
        assert_eq!(status, 200, "{}", c.name);
        let r = &v["response"];
        let msg = r["status"]["message"].as_str().unwrap_or("");
        assert_eq!(r["allowed"], c.allowed, "{}: {msg}", c.name);
        if !c.allowed {
            assert!(msg.contains(c.reason), "{}: {msg}", c.name);
            assert!(msg.contains(c.policy), "{}: {msg}", c.name);
        }
    }
}

#[tokio::test]
async fn the_built_in_default_has_no_keys_so_no_exemption_is_proven() {
    let s = AppState::new(Settings::default()).unwrap();
    let approved = mallory::cases()
        .into_iter()
        .find(|c| c.name == "valid approval by IMHOTEP's key")
        .unwrap();
    let (_, v) = post(
        &s,
        "/validate/L3",
        review("CREATE", "sostle-l3-crew", approved.object, None, "mallory"),
    )
    .await;
    assert_eq!(v["response"]["allowed"], false);
    let msg = v["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("IMHOTEP has no registered key"), "{msg}");
}

#[tokio::test]
async fn approvals_off_restores_hash_only_exemptions_with_a_warning() {
    let s = with_config(&mallory::config_yaml(
        "exemptions:\n  requireApproval: false\n",
    ));
    let mallory_case = mallory::cases().remove(0);
    let (_, v) = post(
        &s,
        "/validate/L3",
        review(
            "CREATE",
            "sostle-l3-crew",
            mallory_case.object,
            None,
            "mallory",
        ),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let warnings = v["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("witness hash only")),
        "{warnings:?}"
    );
}

fn namespace(name: &str, layer: Option<&str>, other: &str) -> serde_json::Value {
    let mut labels = json!({"team": other});
    if let Some(l) = layer {
        labels["sostle-layer"] = json!(l);
    }
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn ns_review(
    op: &str,
    new: serde_json::Value,
    old: Option<serde_json::Value>,
    user: &str,
    groups: &[&str],
) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&review(op, "", new, old, user)).unwrap();
    let req = &mut body["request"];
    req["namespace"] = serde_json::Value::Null;
    req["resource"] = json!({"group": "", "version": "v1", "resource": "namespaces"});
    req["userInfo"]["groups"] = json!(groups);
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn a_layer_cannot_be_escaped_or_entered_by_relabelling() {
    let s = with_config(&mallory::config_yaml(
        "layers:\n  writers: [\"system:serviceaccount:flux-system:kustomize-controller\", \"group:system:masters\"]\n",
    ));
    let decide = |body: Vec<u8>| {
        let s = s.clone();
        async move {
            let (status, v) = post(&s, "/validate/namespaces", body).await;
            assert_eq!(status, 200);
            (
                v["response"]["allowed"].as_bool().unwrap(),
                v["response"]["status"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        }
    };
    let l3 = namespace("payments", Some("L3"), "a");
    // Escaping L3: to L0, or by dropping the label.
    for (new, what) in [
        (
            namespace("payments", Some("L0"), "a"),
            "changes sostle-layer from L3 to L0",
        ),
        (namespace("payments", None, "a"), "removes sostle-layer=L3"),
    ] {
        let (ok, msg) = decide(ns_review(
            "UPDATE",
            new.clone(),
            Some(l3.clone()),
            "mallory",
            &[],
        ))
        .await;
        assert!(!ok, "{what}");
        assert!(
            msg.contains(what) && msg.contains("layers.writers"),
            "{msg}"
        );
        // A writer may, by user name or by group.
        let (ok, _) = decide(ns_review(
            "UPDATE",
            new.clone(),
            Some(l3.clone()),
            "system:serviceaccount:flux-system:kustomize-controller",
            &[],
        ))
        .await;
        assert!(ok, "{what} by a writer");
        let (ok, _) = decide(ns_review(
            "UPDATE",
            new,
            Some(l3.clone()),
            "admin",
            &["system:masters"],
        ))
        .await;
        assert!(ok, "{what} by a writer's group");
    }
    // Entering a layer: a label added, or a namespace created with one or with a layer's name.
    let (ok, msg) = decide(ns_review(
        "UPDATE",
        namespace("scratch", Some("L5"), "a"),
        Some(namespace("scratch", None, "a")),
        "mallory",
        &[],
    ))
    .await;
    assert!(!ok && msg.contains("adds sostle-layer=L5"), "{msg}");
    let (ok, msg) = decide(ns_review(
        "CREATE",
        namespace("scratch", Some("L3"), "a"),
        None,
        "mallory",
        &[],
    ))
    .await;
    assert!(
        !ok && msg.contains("creates it with sostle-layer=L3"),
        "{msg}"
    );
    let (ok, msg) = decide(ns_review(
        "CREATE",
        namespace("sostle-l3-extra", None, "a"),
        None,
        "mallory",
        &[],
    ))
    .await;
    assert!(!ok && msg.contains("a name of layer L3"), "{msg}");
    // Everything else about a namespace is admitted.
    let (ok, _) = decide(ns_review(
        "UPDATE",
        namespace("payments", Some("L3"), "b"),
        Some(l3.clone()),
        "mallory",
        &[],
    ))
    .await;
    assert!(ok, "another label changed");
    let (ok, _) = decide(ns_review(
        "CREATE",
        namespace("team-a", None, "a"),
        None,
        "mallory",
        &[],
    ))
    .await;
    assert!(ok, "an unlayered namespace");
    let (ok, _) = decide(ns_review("DELETE", l3.clone(), Some(l3), "mallory", &[])).await;
    assert!(ok, "delete");
}
