//! The decisions: a workload at its layer (the engine, exemptions, locks and image signatures), a
//! Namespace's relabelling, and the chaos-scheduling patch.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use kube_core::admission::{AdmissionRequest, Operation};
use serde_json::{json, Value as J};
use sostle_core::manifest::Node;
use sostle_core::mecipol::LockProblem;
use sostle_core::mecipol::LockRegistry;
use sostle_core::namespace::UNGOVERNED;

use sostle_core::{
    Config, EvalContext, Layer, Outcome, PolicyResult, PolicySource, SourceError, SourceInput,
    Violation,
};

use crate::{annotations, exempt_annotations, AdmissionObject, Loaded, MAX_WARNING};

/// A decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Admit?
    pub allowed: bool,
    /// Why not (each failure with its fix).
    pub message: String,
    /// Warnings (each ≤ 120 characters).
    pub warnings: Vec<String>,
    /// JSONPatch operations (mutation).
    pub patch: Vec<J>,
}

impl Decision {
    pub(crate) fn allow() -> Decision {
        Decision {
            allowed: true,
            message: String::new(),
            warnings: Vec::new(),
            patch: Vec::new(),
        }
    }
}

pub(crate) fn clip(s: String) -> String {
    if s.chars().count() <= MAX_WARNING {
        return s;
    }
    let mut out: String = s.chars().take(MAX_WARNING - 1).collect();
    out.push('…');
    out
}

/// The signature checks made for one request's images (before the evaluation, which does no
/// I/O): image → check, and whether the layer fails open when a registry cannot be asked.
#[derive(Debug, Clone, Default)]
pub struct ImageResults {
    /// Per image as written in the object.
    pub checks: BTreeMap<String, sostle_core::images::ImageCheck>,
    /// Whether an unavailable registry admits with a warning (the layer fails open).
    pub fail_open: bool,
    /// The locks read from the images' registries, when locks live there.
    pub locks: Option<sostle_core::mecipol::RegistryLocks>,
}

impl sostle_core::images::ImageSignatures for ImageResults {
    fn check(&self, image: &str, _layer: Layer) -> Option<sostle_core::images::ImageCheck> {
        self.checks.get(image).cloned()
    }
}

/// Checks the signatures of the object's images when `layer` requires them: every image at
/// once, each within `budget` (an image whose registry does not answer in time is
/// unavailable). `None` when nothing is required (or the request is not judged at all).
pub async fn check_images(
    loaded: &Loaded,
    layer: Layer,
    req: &AdmissionRequest<AdmissionObject>,
    fail_open: bool,
    budget: Duration,
) -> Option<ImageResults> {
    let checker = loaded.images.as_ref()?;
    if !matches!(req.operation, Operation::Create | Operation::Update)
        || req
            .namespace
            .as_deref()
            .is_some_and(|ns| UNGOVERNED.contains(&ns))
    {
        return None;
    }
    let root = &req.object.as_ref()?.tree;
    let list = sostle_core::workload::images(root);
    let want_signatures = checker.required(layer);
    // Locks only where deny_no_mecipol_image judges, for the new object's images and, on
    // UPDATE, the old one's (the downgrade check needs the current lock).
    let want_locks = checker.reads_locks()
        && loaded
            .engine
            .config()
            .policy("deny_no_mecipol_image")
            .is_some_and(|p| p.enabled && p.layers.contains(layer));
    if !want_signatures && !want_locks {
        return None;
    }
    let mut lock_images: Vec<&str> = Vec::new();
    if want_locks {
        lock_images.extend(list.iter().copied());
        if let Some(old) = req.old_object.as_ref() {
            for i in sostle_core::workload::images(&old.tree) {
                if !lock_images.contains(&i) {
                    lock_images.push(i);
                }
            }
        }
    }
    let late = |image: &str| {
        format!(
            "image {image}: the registry did not answer within {} ms",
            budget.as_millis()
        )
    };
    let signatures = async {
        if !want_signatures {
            return Vec::new();
        }
        futures_util::future::join_all(list.iter().map(|image| async move {
            let c = match tokio::time::timeout(budget, checker.check(image, layer)).await {
                Ok(c) => c,
                Err(_) => Some(sostle_core::images::ImageCheck::Unavailable(late(image))),
            };
            (image.to_string(), c)
        }))
        .await
    };
    let locks = async {
        futures_util::future::join_all(lock_images.iter().map(|image| async move {
            let f = match tokio::time::timeout(budget, checker.locks(image)).await {
                Ok(f) => f.map_err(|e| e.to_string()),
                Err(_) => Err(late(image)),
            };
            (image.to_string(), f)
        }))
        .await
    };
    let (signatures, locks) = futures_util::future::join(signatures, locks).await;
    let registry_locks = want_locks.then(|| {
        let mut rl = sostle_core::mecipol::RegistryLocks::default();
        for (image, found) in locks {
            match found {
                Ok(f) => {
                    rl.set.profiles.extend(f.profiles);
                    if !f.refused.is_empty() {
                        rl.refused.insert(image, f.refused);
                    }
                }
                Err(why) => {
                    rl.unavailable.insert(image, why);
                }
            }
        }
        rl
    });
    Some(ImageResults {
        checks: signatures
            .into_iter()
            .filter_map(|(i, c)| Some((i, c?)))
            .collect(),
        fail_open,
        locks: registry_locks,
    })
}

/// Decides a validation request at `layer` — the same engine and the same rules as
/// `sostle test --sostle-layer <layer>`, plus what only admission can see: the user who
/// writes exemption annotations, and the old object's lock on UPDATE.
pub fn validate(
    loaded: &Loaded,
    layer: Layer,
    req: &AdmissionRequest<AdmissionObject>,
    now: Timestamp,
    token_secret: Option<&[u8]>,
    signatures: Option<&ImageResults>,
) -> Decision {
    if matches!(req.operation, Operation::Delete | Operation::Connect) {
        return Decision::allow();
    }
    if req
        .namespace
        .as_deref()
        .is_some_and(|ns| UNGOVERNED.contains(&ns))
    {
        return Decision::allow();
    }
    let Some(obj) = req.object.as_ref() else {
        return Decision::allow();
    };
    let root = &obj.tree;
    // The identity the API server authenticated: the L3 gate (and L4, L5 on it) holds only for
    // a requester that acts for the crew member the workload names.
    let requester = sostle_core::config::Requester {
        user: req.user_info.username.clone().unwrap_or_default(),
        groups: req.user_info.groups.clone().unwrap_or_default(),
    };
    let checked = signatures.map(|s| sostle_core::images::SignatureSource {
        checks: s,
        fail_open: s.fail_open,
    });
    // On UPDATE, what only an update can be refused for (exemption annotations written by
    // someone who may not, a downgrade of a locked image) is a source of the same pass.
    let update = matches!(req.operation, Operation::Update).then_some(UpdateChecks {
        loaded,
        layer,
        req,
        signatures,
    });
    let (one, two): ([&dyn PolicySource; 1], [&dyn PolicySource; 2]);
    let sources: &[&dyn PolicySource] = match (&checked, &update) {
        (Some(c), Some(u)) => {
            two = [c, u];
            &two
        }
        (Some(c), None) => {
            one = [c];
            &one
        }
        (None, Some(u)) => {
            one = [u];
            &one
        }
        (None, None) => &[],
    };
    let ctx = EvalContext {
        requester: Some(&requester),
        layer_override: Some(layer),
        token_secret,
        locks: match signatures.and_then(|s| s.locks.as_ref()) {
            Some(registry) => Some(registry as &dyn LockRegistry),
            None => loaded.locks.as_ref().map(|l| l as &dyn LockRegistry),
        },
        sources,
        ..EvalContext::new(now)
    };
    let report = loaded.engine.evaluate(root, &ctx);
    // Every failure, with its fix, in one message ("; " between them), written in place.
    let mut message = String::new();
    // Parts are pushed as they are (no formatting machinery: this runs for every failure of
    // every request).
    let mut fail = |parts: &[&str]| {
        if !message.is_empty() {
            message.push_str("; ");
        }
        for p in parts {
            message.push_str(p);
        }
    };
    let mut warnings = Vec::new();
    for r in &report.results {
        match r.outcome {
            Outcome::Fail => {
                for v in &r.violations {
                    fail(&[&r.policy, ": ", &v.message, " (fix: ", &v.fix, ")"]);
                }
                if r.violations.is_empty() {
                    fail(&[&r.policy, " failed"]);
                }
                // An exemption was there but not honoured: say why, once per policy.
                if let Some(j) = r.exemption.as_deref() {
                    fail(&[
                        &r.policy,
                        " exemption not honoured: ",
                        &j.problems.join("; "),
                    ]);
                }
            }
            Outcome::Warn => {
                for v in &r.violations {
                    warnings.push(clip([&*r.policy, ": ", &v.message].concat()));
                }
            }
            Outcome::Exempted => {
                for w in r.exemption.iter().flat_map(|j| &j.warnings) {
                    warnings.push(clip(format!("{} exemption {w}", r.policy)));
                }
            }
            _ => {}
        }
    }
    let allowed = message.is_empty();
    Decision {
        allowed,
        message,
        warnings,
        patch: Vec::new(),
    }
}

/// The refusals only an UPDATE can have, as a source of the engine's one pass (the old object
/// and who writes are what admission adds to the document). Not exemptable: an exemption
/// cannot waive the check of who may write exemptions, nor a downgrade.
struct UpdateChecks<'a> {
    loaded: &'a Loaded,
    layer: Layer,
    req: &'a AdmissionRequest<AdmissionObject>,
    signatures: Option<&'a ImageResults>,
}

/// The result id of the exemption-writers check.
const EXEMPTION_WRITERS: &str = "exemption_writers";
/// The policy a downgrade fails.
const MECIPOL: &str = "deny_no_mecipol_image";
/// What to do about a downgrade.
const DOWNGRADE_FIX: &str = "deploy the image the newer lock names, or lock this one anew";

impl PolicySource for UpdateChecks<'_> {
    fn judge(&self, input: &SourceInput<'_>) -> Result<Vec<PolicyResult>, SourceError> {
        let mut results: Vec<PolicyResult> = Vec::new();
        let root = input.root;
        update_refusals(self, root, &mut |policy, message, fix| {
            let violation = Violation {
                container: None,
                path: String::new(),
                pos: root.pos,
                message,
                fix: fix.into(),
            };
            match results.iter_mut().find(|r| *r.policy == *policy) {
                Some(r) => r.violations.push(violation),
                None => results.push(PolicyResult {
                    policy: policy.into(),
                    outcome: Outcome::Fail,
                    violations: vec![violation],
                    exemption: None,
                }),
            }
        });
        Ok(results)
    }

    fn exemptable(&self) -> bool {
        false
    }
}

/// What only an UPDATE can be refused for: exemption annotations changed by someone who may
/// not write them, and a downgrade of a locked image (by the old object's lock, and by the lock
/// of each image being replaced).
fn update_refusals(
    UpdateChecks {
        loaded,
        layer,
        req,
        signatures,
    }: &UpdateChecks<'_>,
    root: &Node,
    refuse: &mut dyn FnMut(&'static str, String, &'static str),
) {
    let (layer, signatures) = (*layer, *signatures);
    let Some(obj) = req.object.as_ref() else {
        return;
    };
    // Exemptions cannot be self-granted: only configured writers may add or change them.
    let before = exempt_annotations(req.old_object.as_ref());
    let after = exempt_annotations(Some(obj));
    let changed: Vec<&str> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| *k)
        .collect();
    let user = req.user_info.username.as_deref().unwrap_or_default();
    let groups = req.user_info.groups.clone().unwrap_or_default();
    if !changed.is_empty()
        && !Config::listed(&loaded.engine.config().exemption_writers, user, &groups)
    {
        refuse(
            EXEMPTION_WRITERS,
            format!(
                "exemption annotations changed by {user}, who is not in exemptions.writers: {}",
                changed.join(", ")
            ),
            "have a member of exemptions.writers make the change",
        );
    }
    // A downgrade: the new image's lock is older than the old object's lock.
    let old_profile = annotations(req.old_object.as_ref())
        .find(|(k, _)| *k == "mecipol-profile")
        .map(|(_, v)| v);
    let lock_registry: Option<&dyn LockRegistry> = match signatures.and_then(|s| s.locks.as_ref()) {
        Some(registry) => Some(registry),
        None => loaded.locks.as_ref().map(|l| l as &dyn LockRegistry),
    };
    if let (Some(old_profile), Some(locks)) = (old_profile, lock_registry) {
        for image in sostle_core::workload::images(root) {
            for p in locks.check(image, layer, Some(old_profile)) {
                if let LockProblem::Downgrade { .. } = p {
                    refuse(MECIPOL, p.to_string(), DOWNGRADE_FIX);
                }
            }
        }
    }
    // The lock of each image being replaced, whatever the annotations say now or said
    // before (an UPDATE that first drops `mecipol-profile` proves nothing).
    if let (Some(old), Some(locks)) = (req.old_object.as_ref(), lock_registry) {
        let policy_here = loaded
            .engine
            .config()
            .policy("deny_no_mecipol_image")
            .is_some_and(|p| p.enabled && p.layers.contains(layer));
        if policy_here {
            for p in sostle_core::mecipol::replacement_downgrades(locks, &old.tree, root) {
                refuse(MECIPOL, p.to_string(), DOWNGRADE_FIX);
            }
        }
    }
}

pub(crate) fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The JSONPatch that pins each container image the layer requires signed to the digest its
/// signature verified, as sigstore's policy-controller does (`name:tag@sha256:…`), so the
/// kubelet pulls exactly what was judged, whatever the tag points at later (SPEC §10). An image
/// already pinned, unsigned, or whose registry did not answer in `budget` is left as it is: the
/// validating entry judges it.
pub async fn pin_patch(loaded: &Loaded, layer: Layer, obj: &Node, budget: Duration) -> Vec<J> {
    let Some(checker) = loaded.images.as_ref() else {
        return Vec::new();
    };
    if !checker.required(layer) {
        return Vec::new();
    }
    let kind = obj.get("kind").and_then(Node::as_str).unwrap_or_default();
    let Some(at) = sostle_core::workload::pod_spec_at(kind) else {
        return Vec::new();
    };
    let Some(spec) = obj.get_path(at.keys) else {
        return Vec::new();
    };
    let mut targets: Vec<(String, String)> = Vec::new();
    for sort in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in spec
            .get(sort)
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(image) = c.get("image").and_then(Node::as_str) {
                if !image.contains('@') {
                    targets.push((
                        format!("{}/{sort}/{i}/image", at.pointer),
                        image.to_string(),
                    ));
                }
            }
        }
    }
    let checks = futures_util::future::join_all(targets.iter().map(|(_, image)| async move {
        tokio::time::timeout(budget, checker.check(image, layer))
            .await
            .ok()
            .flatten()
    }))
    .await;
    targets
        .into_iter()
        .zip(checks)
        .filter_map(|((path, image), check)| match check {
            Some(sostle_core::images::ImageCheck::Verified { digest, .. }) => {
                Some(json!({"op": "replace", "path": path, "value": format!("{image}@{digest}")}))
            }
            _ => None,
        })
        .collect()
}

/// The JSONPatch that adds the chaos scheduling to a trial workload; empty when it is already
/// there (idempotent).
pub fn chaos_patch(obj: &Node) -> Vec<J> {
    let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("");
    let Some(at) = sostle_core::workload::pod_spec_at(kind) else {
        return Vec::new();
    };
    let base = at.pointer;
    let Some(spec) = obj.get_path(at.keys).filter(|s| s.as_map().is_some()) else {
        return Vec::new();
    };
    let mut ops = Vec::new();
    let wanted = sostle_core::trial::chaos_tolerations();
    match spec.get("tolerations").and_then(Node::as_seq) {
        None => {
            ops.push(json!({"op": "add", "path": format!("{base}/tolerations"), "value": wanted}))
        }
        Some(have) => {
            for t in wanted {
                let same = |x: &Node, key: &str| {
                    x.get(key).and_then(Node::as_str) == t.get(key).and_then(J::as_str)
                };
                let present = have
                    .iter()
                    .any(|x| same(x, "key") && same(x, "value") && same(x, "effect"));
                if !present {
                    ops.push(
                        json!({"op": "add", "path": format!("{base}/tolerations/-"), "value": t}),
                    );
                }
            }
        }
    }
    let (key, value) = sostle_core::trial::CHAOS_SELECTOR;
    match spec.get("nodeSelector").filter(|n| n.as_map().is_some()) {
        None => ops.push(
            json!({"op": "add", "path": format!("{base}/nodeSelector"), "value": {key: value}}),
        ),
        Some(sel) if sel.get(key).and_then(Node::as_str) != Some(value) => {
            ops.push(json!({"op": "add", "path": format!("{base}/nodeSelector/{}", escape_pointer(key)), "value": value}));
        }
        Some(_) => {}
    }
    ops
}

/// The layer a Namespace object claims: its `sostle-layer` label as written, and the layer its
/// name maps to by the config (explicit assignment, a layer's namespace, the name pattern).
pub(crate) fn namespace_claims(
    config: &Config,
    obj: Option<&AdmissionObject>,
) -> (Option<String>, Option<Layer>) {
    let Some(o) = obj else {
        return (None, None);
    };
    let label = o
        .tree
        .get_path(&["metadata", "labels", "sostle-layer"])
        .and_then(Node::as_str)
        .map(str::to_string);
    let name = o
        .tree
        .get_path(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or_default();
    (label, config.namespace_layer(name))
}

/// Decides a request on a Namespace (`/validate/namespaces`): adding, changing or removing its
/// `sostle-layer` label, or creating a namespace whose name puts it in a layer, is allowed only
/// to `layers.writers` (SPEC §10: a layer cannot be escaped, or entered, by relabelling).
/// Everything else about a Namespace is admitted.
pub fn validate_namespace(config: &Config, req: &AdmissionRequest<AdmissionObject>) -> Decision {
    if req.kind.kind != "Namespace"
        || !matches!(req.operation, Operation::Create | Operation::Update)
    {
        return Decision::allow();
    }
    let (new_label, new_by_name) = namespace_claims(config, req.object.as_ref());
    let (old_label, old_by_name) = namespace_claims(config, req.old_object.as_ref());
    let change = match req.operation {
        Operation::Create => match (&new_label, new_by_name) {
            (Some(l), _) => Some(format!("creates it with sostle-layer={l}")),
            (None, Some(l)) => Some(format!("creates it with a name of layer {l}")),
            (None, None) => None,
        },
        _ if new_label != old_label => Some(match (&old_label, &new_label) {
            (None, Some(n)) => format!("adds sostle-layer={n}"),
            (Some(o), None) => format!("removes sostle-layer={o}"),
            (Some(o), Some(n)) => format!("changes sostle-layer from {o} to {n}"),
            (None, None) => String::new(),
        }),
        _ if new_by_name != old_by_name => Some("changes the layer its name maps to".to_string()),
        _ => None,
    };
    let Some(change) = change else {
        return Decision::allow();
    };
    let user = req.user_info.username.as_deref().unwrap_or_default();
    let groups = req.user_info.groups.clone().unwrap_or_default();
    let name = req.name.as_str();
    if Config::listed(&config.layer_writers, user, &groups) {
        // The door selects a layer's namespaces by the label (and the config's `namespaces:`
        // by name): a namespace whose name alone puts it in a layer would be judged by `sostle
        // test` and never seen at the door, so it must carry the label, even for a writer.
        if let (None, Some(l)) = (&new_label, new_by_name) {
            if !config.namespaces.contains_key(name) {
                return Decision {
                    allowed: false,
                    message: format!(
                        "namespace {name}: its name puts it in layer {l}, but it has no sostle-layer label; the door selects a layer's namespaces by that label, so label it sostle-layer={l} (as sostle bootstrap does)"
                    ),
                    warnings: Vec::new(),
                    patch: Vec::new(),
                };
            }
        }
        return Decision::allow();
    }
    Decision {
        allowed: false,
        message: format!(
            "namespace {name}: {user} {change}, and is not in layers.writers: a namespace's layer is changed only by a layer writer"
        ),
        warnings: Vec::new(),
        patch: Vec::new(),
    }
}
