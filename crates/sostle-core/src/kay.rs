//! Kay's approval of an L5 workload (SPEC §5): a signature, not a label. The annotation
//! `sostle.eose.ca/kay-approval` holds base64 DER ECDSA P-256, by a key of a crew member with
//! role `kay`, over the ASCII bytes
//! `sostle-kay-approval/v1|<namespace>|<kind>|<name>|sha256:<hex>|<expires RFC 3339>`, and
//! `sostle.eose.ca/kay-approval-expires` holds the same expiry (at most the config's exemption
//! `max_days` ahead). The digest is of the pod template's canonical JSON.
//!
//! **The pod template that is signed** is what decides what runs, projected so that the API
//! server's defaulting (which the door sees and a file does not: `imagePullPolicy`,
//! `terminationMessagePath`, `dnsPolicy`, an empty `securityContext`…) does not change it: for
//! each container of every sort, in order, its sort, `name`, `image`, `command`, `args`, `env`
//! and `securityContext`; and of the pod, `hostNetwork`, `hostPID`, `hostIPC`, `hostUsers`,
//! its `securityContext`, `serviceAccountName` (absent is `default`) and `volumes`' names and
//! sources' kinds. Empty objects, empty lists and `false` host flags count as absent. A changed
//! image, command, privilege or host namespace makes a new digest, so an approval never carries
//! over to a workload Kay did not see.

use jiff::Timestamp;
use serde_json::{json, Map, Value as J};

use crate::approval;
use crate::config::Config;
use crate::manifest::Node;
use crate::workload::pod_spec_at;

/// The annotation that holds Kay's signature.
pub const APPROVAL: &str = "sostle.eose.ca/kay-approval";
/// The annotation that holds the approval's expiry (RFC 3339).
pub const EXPIRES: &str = "sostle.eose.ca/kay-approval-expires";
/// The role whose keys sign approvals.
pub const ROLE: &str = "kay";

/// The signed text for a workload.
pub fn payload(namespace: &str, kind: &str, name: &str, digest: &str, expires: &str) -> String {
    format!("sostle-kay-approval/v1|{namespace}|{kind}|{name}|{digest}|{expires}")
}

fn non_empty(v: Option<J>) -> Option<J> {
    match v {
        None | Some(J::Null) | Some(J::Bool(false)) => None,
        Some(J::Object(m)) if m.is_empty() => None,
        Some(J::Array(a)) if a.is_empty() => None,
        Some(v) => Some(v),
    }
}

/// The projection of the workload's pod template that is signed (see the module doc); `None`
/// for a kind without a pod template.
pub fn template(root: &Node, kind: &str) -> Option<J> {
    let at = pod_spec_at(kind)?;
    let spec = root.get_path(at.keys).map(Node::to_json).unwrap_or(J::Null);
    let field = |o: &J, k: &str| non_empty(o.get(k).cloned());
    let mut containers = Vec::new();
    for sort in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec.get(sort).and_then(J::as_array).into_iter().flatten() {
            let mut m = Map::new();
            m.insert("sort".into(), json!(sort));
            for k in ["name", "image", "command", "args", "env", "securityContext"] {
                if let Some(v) = field(c, k) {
                    m.insert(k.into(), v);
                }
            }
            containers.push(J::Object(m));
        }
    }
    let mut pod = Map::new();
    for k in [
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "hostUsers",
        "securityContext",
    ] {
        if let Some(v) = field(&spec, k) {
            pod.insert(k.into(), v);
        }
    }
    pod.insert(
        "serviceAccountName".into(),
        field(&spec, "serviceAccountName").unwrap_or_else(|| json!("default")),
    );
    let volumes: Vec<J> = spec
        .get("volumes")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .map(|v| {
            let mut sources: Vec<&String> = v
                .as_object()
                .map(|o| o.keys().filter(|k| *k != "name").collect())
                .unwrap_or_default();
            sources.sort();
            json!({"name": v.get("name"), "sources": sources})
        })
        .collect();
    if !volumes.is_empty() {
        pod.insert("volumes".into(), J::Array(volumes));
    }
    Some(json!({"containers": containers, "pod": pod}))
}

/// `sha256:<hex>` of the canonical JSON of [`template`].
pub fn template_digest(root: &Node, kind: &str) -> Option<String> {
    let t = template(root, kind)?;
    Some(format!(
        "sha256:{}",
        crate::digest::sha256_hex(crate::digest::canonical_json(&t).as_bytes())
    ))
}

/// The workload's identity as the payload names it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Namespace (the request's, at the door; the manifest's in the CLI).
    pub namespace: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Name.
    pub name: &'a str,
}

/// Why Kay's approval does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No approval annotation.
    #[error("it carries no Kay approval (annotation {APPROVAL}); the label kay-approved=true alone proves nothing")]
    Missing,
    /// No or an unreadable expiry.
    #[error("{EXPIRES} is missing or not an RFC 3339 time: {0}")]
    Expiry(String),
    /// Expired.
    #[error("Kay's approval expired at {0}")]
    Expired(String),
    /// Too far ahead.
    #[error("Kay's approval expires {0}, more than {1} days ahead")]
    TooLong(String, u32),
    /// Not a signature.
    #[error("{0}")]
    Undecodable(String),
    /// No key of a `kay` crew member verifies it over this workload.
    #[error("the approval is not Kay's signature over this workload as it is now (pod template {0}): the template changed since Kay signed, or another key signed")]
    NotKays(String),
    /// Nobody holds the role with a key.
    #[error("no crew member with role `kay` has a key in the config, so no approval can verify")]
    NoKeys,
}

/// Checks Kay's approval of the workload `root` (of `kind`) as `who`, at `now`.
pub fn check(
    config: &Config,
    root: &Node,
    who: &Subject<'_>,
    now: Timestamp,
) -> Result<(), Refusal> {
    let keys: Vec<&approval::CrewKey> = config
        .crew
        .iter()
        .filter(|m| m.has_role(ROLE))
        .flat_map(|m| m.keys.iter())
        .collect();
    check_with(&keys, config.exemption_max_days, root, who, now)
}

/// [`check`] with the `kay` keys and the longest approval in days given (the Rego bridge's
/// entry).
pub fn check_with(
    keys: &[&approval::CrewKey],
    max_days: u32,
    root: &Node,
    who: &Subject<'_>,
    now: Timestamp,
) -> Result<(), Refusal> {
    let ann = |k: &str| {
        root.get_path(&["metadata", "annotations", k])
            .and_then(Node::as_str)
            .map(str::to_string)
    };
    let Some(sig) = ann(APPROVAL) else {
        return Err(Refusal::Missing);
    };
    let expires_text = ann(EXPIRES).unwrap_or_default();
    let expires: Timestamp = expires_text
        .parse()
        .map_err(|e: jiff::Error| Refusal::Expiry(e.to_string()))?;
    if expires <= now {
        return Err(Refusal::Expired(expires_text));
    }
    let max = max_days;
    if expires.as_second() - now.as_second() > i64::from(max) * 86_400 {
        return Err(Refusal::TooLong(expires_text, max));
    }
    let signature = approval::decode(&sig)
        .map_err(|e| Refusal::Undecodable(e.to_string().replace(approval::ANNOTATION, APPROVAL)))?;
    let digest = template_digest(root, who.kind).unwrap_or_default();
    let text = payload(who.namespace, who.kind, who.name, &digest, &expires_text);
    if keys.is_empty() {
        return Err(Refusal::NoKeys);
    }
    if keys.iter().any(|k| k.verifies(&text, &signature)) {
        Ok(())
    } else {
        Err(Refusal::NotKays(digest))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaulting_does_not_change_the_template_and_a_new_image_does() {
        let file = crate::manifest::load(
            "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x:1\n",
        );
        let served = crate::manifest::load(
            "kind: Deployment\nspec:\n  template:\n    spec:\n      dnsPolicy: ClusterFirst\n      securityContext: {}\n      serviceAccountName: default\n      containers:\n      - name: a\n        image: x:1\n        imagePullPolicy: IfNotPresent\n        resources: {}\n        terminationMessagePath: /dev/termination-log\n",
        );
        let d = |l: &crate::manifest::Loaded| {
            template_digest(&l.documents[0].root, "Deployment").unwrap()
        };
        assert_eq!(d(&file), d(&served));
        let other = crate::manifest::load(
            "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x:2\n",
        );
        assert_ne!(d(&file), d(&other));
    }
}
