//! The self-granted exemption of issue #12 and its variants, as data: a config that registers
//! test keys for four crew members, and objects at L3 whose only failure is exemptable, each
//! with the decision the cluster door must reach. Shared by the webhook's
//! router tests and the `sostle` binary's tests (`sostle test` with and without a ledger, and
//! the webhook over real TLS), so every path is held to the same decisions.

use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value as J};
use sostle_core::exemption::{witness, Values};

/// A test key: a fixed seed per crew member (public, so tests only).
pub fn key(name: &str) -> SigningKey {
    let seed = match name {
        "BOSUN" => 1u8,
        "IMHOTEP" => 2,
        "Kay" => 3,
        "RICK" => 4,
        _ => 9,
    };
    SigningKey::from_bytes(&[seed; 32].into()).unwrap()
}

fn public_pem(name: &str) -> String {
    key(name)
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

/// A SostleConfig registering the test keys of BOSUN, IMHOTEP, Kay and RICK (inline PEM), with
/// the built-in roles; `extra` is appended (YAML).
pub fn config_yaml(extra: &str) -> String {
    // mallory deploys as a subject of BOSUN (a CI account bound to BOSUN): the identity the
    // API server authenticated holds, so what these cases show is the exemption's judgement.
    let member = |name: &str, identity: Option<&str>, roles: &str| {
        let pem: String = public_pem(name)
            .lines()
            .map(|l| format!("        {l}\n"))
            .collect();
        format!(
            "  - name: {name}\n{}{}    roles: [{roles}]\n    keys:\n      - |\n{pem}",
            identity
                .map(|i| format!("    identity: {i}\n"))
                .unwrap_or_default(),
            if name == "BOSUN" {
                "    subjects: [\"user:mallory\"]\n"
            } else {
                ""
            }
        )
    };
    format!(
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\ncrew:\n{}{}{}{}{extra}",
        member("BOSUN", None, "crew, l3, bosun"),
        member("IMHOTEP", None, "crew, l3, l5-authorized, imhotep"),
        member(
            "Kay",
            Some("kayyo@pemos.ca"),
            "crew, l3, l5-authorized, kay"
        ),
        member("RICK", None, "crew, l3"),
    )
}

/// One case: an object CREATEd in `sostle-l3-crew` by mallory.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it shows.
    pub name: &'static str,
    /// The object.
    pub object: J,
    /// Whether the door admits it.
    pub allowed: bool,
    /// A text the denial (or, for an admitted object, nothing) must contain.
    pub reason: &'static str,
    /// The witness, to register in a ledger where one is in use.
    pub witness: String,
    /// The exempted policy.
    pub policy: &'static str,
}

/// Ten days from now, to the second (the webhook reads the real clock).
pub fn expires() -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(240);
    jiff::Timestamp::from_second(t.as_second())
        .unwrap()
        .to_string()
}

fn values(name: &str, policy: &str, owner: &str, reviewed: &str) -> Values {
    Values {
        applies_to: format!("sostle-l3-crew/{name}"),
        from: policy.into(),
        expires: expires(),
        owner: owner.into(),
        reason: "TRB-CHAOS-001 — sizing under load".into(),
        reviewed: reviewed.into(),
    }
}

/// An L3 pod named `name` that passes everything but `deny_no_limits` (and, with
/// `cross_layer`, also fails `deny_cross_layer` by its sostle-layer label), with the exemption
/// `v` witnessed as `w` and approved by `approval`.
fn object(name: &str, v: &Values, w: &str, approval: Option<String>, cross_layer: bool) -> J {
    let mut ann = json!({
        "mecipol-image": "reg.io/app:1.0",
        "sostle.eose.ca/trendal": "TRENDAL-L3-YONE-BOSUN-001",
        "sostle.eose.ca/trendal-warmth": "0.9",
        "sostle.eose.ca/exempt-from": v.from,
        "sostle.eose.ca/exempt-applies-to": v.applies_to,
        "sostle.eose.ca/exempt-reason": v.reason,
        "sostle.eose.ca/exempt-expires": v.expires,
        "sostle.eose.ca/exempt-owner": v.owner,
        "sostle.eose.ca/exempt-reviewed": v.reviewed,
        "sostle.eose.ca/exempt-witness": w,
    });
    if let Some(a) = approval {
        ann["sostle.eose.ca/exempt-approval"] = json!(a);
    }
    let mut labels =
        json!({"crew-member": "BOSUN", "gamma1": "14134725141734693", "mecipol-locked": "true"});
    if cross_layer {
        labels["sostle-layer"] = json!("L4");
    }
    let mut container = json!({"name": "app", "image": "reg.io/app:1.0",
        "securityContext": {"readOnlyRootFilesystem": true}, "livenessProbe": {"exec": {"command": ["true"]}}});
    if cross_layer {
        container["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "sostle-l3-crew", "labels": labels, "annotations": ann},
        "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [container]}})
}

fn sign(by: &str, w: &str) -> Option<String> {
    Some(sostle_core::approval::sign(&key(by), w))
}

/// Every case, in order.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut case = |name: &'static str,
                    object: J,
                    allowed: bool,
                    reason: &'static str,
                    witness: String,
                    policy: &'static str| {
        out.push(Case {
            name,
            object,
            allowed,
            reason,
            witness,
            policy,
        })
    };
    let limits = "deny_no_limits";
    // mallory writes seven annotations naming BOSUN and IMHOTEP, the witness from sha256sum.
    let v = values("mallory", limits, "BOSUN", "IMHOTEP");
    let w = witness(&v);
    case(
        "mallory: no approval",
        object("mallory", &v, &w, None, false),
        false,
        "not approved: no signature by a key of IMHOTEP",
        w.clone(),
        limits,
    );
    // The owner signs for the reviewer.
    let v = values("owner-signs", limits, "BOSUN", "IMHOTEP");
    let w = witness(&v);
    case(
        "owner signs as the reviewer",
        object("owner-signs", &v, &w, sign("BOSUN", &w), false),
        false,
        "not approved: no signature by a key of IMHOTEP over this witness",
        w.clone(),
        limits,
    );
    // The owner reviews and approves their own exemption at L3.
    let v = values("self-approved", limits, "BOSUN", "BOSUN");
    let w = witness(&v);
    case(
        "owner self-approves at L3",
        object("self-approved", &v, &w, sign("BOSUN", &w), false),
        false,
        "is the owner",
        w.clone(),
        limits,
    );
    // A crew member without the approver role signs with a registered key of their own.
    let v = values("not-approver", limits, "BOSUN", "RICK");
    let w = witness(&v);
    case(
        "approval by a crew member without the approver role",
        object("not-approver", &v, &w, sign("RICK", &w), false),
        false,
        "reviewer RICK is not an approver at L3",
        w.clone(),
        limits,
    );
    // IMHOTEP's signature over another exemption's witness.
    let v = values("other-witness", limits, "BOSUN", "IMHOTEP");
    let w = witness(&v);
    let other = witness(&values("elsewhere", limits, "BOSUN", "IMHOTEP"));
    case(
        "approval over another witness",
        object("other-witness", &v, &w, sign("IMHOTEP", &other), false),
        false,
        "over this witness",
        w.clone(),
        limits,
    );
    // A valid approval copied, with the other six values, from the resource it was made for:
    // once as is, once with applies-to and the witness rewritten (anyone can recompute those).
    let v = values("original", limits, "BOSUN", "IMHOTEP");
    let w = witness(&v);
    let approval = sign("IMHOTEP", &w);
    case(
        "approval copied from another resource",
        object("copy", &v, &w, approval.clone(), false),
        false,
        "cannot be copied to another resource",
        w.clone(),
        limits,
    );
    let moved = values("copy-rewritten", limits, "BOSUN", "IMHOTEP");
    let mw = witness(&moved);
    case(
        "approval copied, applies-to and witness rewritten",
        object("copy-rewritten", &moved, &mw, approval, false),
        false,
        "not approved: no signature by a key of IMHOTEP over this witness",
        mw.clone(),
        limits,
    );
    // The real thing: IMHOTEP reviewed and signed.
    let v = values("approved", limits, "BOSUN", "IMHOTEP");
    let w = witness(&v);
    case(
        "valid approval by IMHOTEP's key",
        object("approved", &v, &w, sign("IMHOTEP", &w), false),
        true,
        "",
        w.clone(),
        limits,
    );
    // deny_cross_layer is exemptable at L3 only when reviewed by Kay.
    let cross = "deny_cross_layer";
    let v = values("kay-cross", cross, "BOSUN", "kayyo@pemos.ca");
    let w = witness(&v);
    case(
        "Kay's key for deny_cross_layer",
        object("kay-cross", &v, &w, sign("Kay", &w), true),
        true,
        "",
        w.clone(),
        cross,
    );
    let v = values("imhotep-cross", cross, "BOSUN", "IMHOTEP");
    let w = witness(&v);
    case(
        "IMHOTEP's key for deny_cross_layer",
        object("imhotep-cross", &v, &w, sign("IMHOTEP", &w), true),
        false,
        "only when reviewed by Kay",
        w.clone(),
        cross,
    );
    out
}
