//! The manifest rewrites of a trial: burst (into the trial namespace, on the chaos pool) and
//! promote (back to a layer, the lock labels set, the image pinned to the digest that ran).

use serde_json::{json, Value as J};

use super::{TRIAL_LABEL, TRIAL_NAMESPACE};

/// The pod template (`metadata` + `spec`) of a workload; `None` for a Pod, which is its own.
fn pod_template_mut(obj: &mut J) -> Option<&mut J> {
    let at = crate::workload::pod_spec_at(obj.get("kind").and_then(J::as_str).unwrap_or(""))?;
    let (_, template) = at.keys.split_last()?;
    if template.is_empty() {
        return None;
    }
    template
        .iter()
        .try_fold(obj, |node, key| node.get_mut(*key))
}

fn pod_spec_mut(obj: &mut J) -> Option<&mut J> {
    let at = crate::workload::pod_spec_at(obj.get("kind").and_then(J::as_str).unwrap_or(""))?;
    at.keys.iter().try_fold(obj, |node, key| node.get_mut(*key))
}

fn ensure_object<'a>(parent: &'a mut J, key: &str) -> Option<&'a mut serde_json::Map<String, J>> {
    let map = parent.as_object_mut()?;
    let slot = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

/// The node selector a trial workload gets (`pool: chaos`): the spot chaos node pool's label.
/// The mutating webhook patches it in, `trial burst` writes it, promote removes it.
pub const CHAOS_SELECTOR: (&str, &str) = ("pool", "chaos");

/// The chaos tolerations a trial workload gets.
pub fn chaos_tolerations() -> [J; 2] {
    [
        json!({"key": "chaos", "operator": "Equal", "value": "true", "effect": "NoSchedule"}),
        json!({"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}),
    ]
}

fn is_chaos_toleration(t: &J) -> bool {
    let key = t.get("key").and_then(J::as_str);
    (key == Some("chaos")
        && t.get("value")
            .and_then(J::as_str)
            .is_none_or(|v| v == "true"))
        || (key == Some("kubernetes.azure.com/scalesetpriority")
            && t.get("value")
                .and_then(J::as_str)
                .is_none_or(|v| v == "spot"))
}

/// Adds the chaos scheduling to a pod spec: both tolerations and `nodeSelector: {pool: chaos}`.
/// Idempotent.
pub fn add_chaos_scheduling(spec: &mut J) {
    if let Some(map) = spec.as_object_mut() {
        let tolerations = map.entry("tolerations").or_insert_with(|| json!([]));
        if !tolerations.is_array() {
            *tolerations = json!([]);
        }
        if let Some(list) = tolerations.as_array_mut() {
            for t in chaos_tolerations() {
                let present = list.iter().any(|x| {
                    x.get("key") == t.get("key")
                        && x.get("effect") == t.get("effect")
                        && x.get("value") == t.get("value")
                });
                if !present {
                    list.push(t);
                }
            }
        }
    }
    if let Some(sel) = ensure_object(spec, "nodeSelector") {
        sel.insert(CHAOS_SELECTOR.0.into(), json!(CHAOS_SELECTOR.1));
    }
}

/// Rewrites a subject object for the trial: namespace `chaos-trial`, the trial label (on the
/// object and its pod template), and chaos scheduling on workloads.
pub fn burst_object(obj: &J, trial: &str) -> J {
    let mut o = obj.clone();
    if let Some(meta) = ensure_object(&mut o, "metadata") {
        meta.insert("namespace".into(), json!(TRIAL_NAMESPACE));
    }
    if let Some(meta) = o.get_mut("metadata") {
        if let Some(labels) = ensure_object(meta, "labels") {
            labels.insert(TRIAL_LABEL.into(), json!(trial));
        }
    }
    if let Some(t) = pod_template_mut(&mut o) {
        if let Some(meta) = ensure_object(t, "metadata") {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert(TRIAL_LABEL.into(), json!(trial));
            }
        }
    }
    if let Some(spec) = pod_spec_mut(&mut o) {
        add_chaos_scheduling(spec);
    }
    o
}

/// What promote writes on the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLabels {
    /// The locked image.
    pub image: String,
    /// The digest the lock binds (`sha256:…`), when the profile names one: containers running
    /// the locked image are pinned to it (`repo:tag@sha256:…`).
    pub digest: Option<String>,
    /// `profile-NNN`.
    pub profile: String,
    /// Epoch day of the lock.
    pub epoch: i64,
}

/// Rewrites an object for its target layer: the layer's namespace, chaos tolerations and the
/// `pool: chaos` selector removed, the trial label dropped, the lock label and annotations set.
pub fn promote_object(obj: &J, namespace: &str, lock: &LockLabels) -> J {
    let mut o = obj.clone();
    if let Some(meta) = ensure_object(&mut o, "metadata") {
        meta.insert("namespace".into(), json!(namespace));
        if let Some(labels) = meta.get_mut("labels").and_then(J::as_object_mut) {
            labels.remove(TRIAL_LABEL);
        }
    }
    if let Some(spec) = pod_spec_mut(&mut o) {
        if let Some(map) = spec.as_object_mut() {
            if let Some(list) = map.get_mut("tolerations").and_then(J::as_array_mut) {
                list.retain(|t| !is_chaos_toleration(t));
            }
            if map
                .get("tolerations")
                .and_then(J::as_array)
                .is_some_and(Vec::is_empty)
            {
                map.remove("tolerations");
            }
            if let Some(sel) = map.get_mut("nodeSelector").and_then(J::as_object_mut) {
                if sel.get(CHAOS_SELECTOR.0).and_then(J::as_str) == Some(CHAOS_SELECTOR.1) {
                    sel.remove(CHAOS_SELECTOR.0);
                }
            }
            if map
                .get("nodeSelector")
                .and_then(J::as_object)
                .is_some_and(serde_json::Map::is_empty)
            {
                map.remove("nodeSelector");
            }
        }
    }
    let kind = o.get("kind").and_then(J::as_str).unwrap_or("").to_string();
    if let Some(t) = pod_template_mut(&mut o) {
        if let Some(labels) = t
            .get_mut("metadata")
            .and_then(|m| m.get_mut("labels"))
            .and_then(J::as_object_mut)
        {
            labels.remove(TRIAL_LABEL);
        }
    }
    // Pin the locked image to the digest the trial ran: a tag can move, a digest cannot.
    let pinned = match &lock.digest {
        Some(d) if !lock.image.contains('@') => format!("{}@{d}", lock.image),
        _ => lock.image.clone(),
    };
    if let Some(spec) = pod_spec_mut(&mut o) {
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            for c in spec
                .get_mut(key)
                .and_then(J::as_array_mut)
                .into_iter()
                .flatten()
            {
                if c.get("image").and_then(J::as_str) == Some(lock.image.as_str()) {
                    c["image"] = json!(pinned);
                }
            }
        }
    }
    if crate::workload::WORKLOAD_KINDS.contains(&kind.as_str()) {
        if let Some(meta) = o.get_mut("metadata") {
            if let Some(labels) = ensure_object(meta, "labels") {
                labels.insert("mecipol-locked".into(), json!("true"));
            }
            if let Some(ann) = ensure_object(meta, "annotations") {
                ann.insert("mecipol-image".into(), json!(pinned));
                ann.insert("mecipol-profile".into(), json!(lock.profile));
                ann.insert("mecipol-epoch".into(), json!(lock.epoch.to_string()));
            }
        }
    }
    o
}
