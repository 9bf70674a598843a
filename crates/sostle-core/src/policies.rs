//! The ten native policies of SPEC §3, one small function each. A check sees the object, its
//! workload view ([`crate::workload`]) and what it needs from the evaluation ([`PolicyCtx`]: the
//! config, namespace labels, the lock registry) and returns the violations it found; the table
//! in `suite.rs` decides what they mean (layers, verdict, escalation). Field paths, messages and
//! fixes are built only for violations, never on the pass path.

use crate::config::Config;
use crate::epoch::GAMMA1_LABEL;
use crate::images::{is_digest, parse_image};
use crate::layer::Layer;
use crate::manifest::Node;
use crate::mecipol::LockRegistry;
use crate::namespace::{namespace_layer, NamespaceLabels};
use crate::report::{LayerStatus, Violation};
use crate::suite::PolicySpec;
use crate::workload::{is_set, Group, Workload};

/// A native check.
pub type Check = fn(&PolicyCtx<'_>, Option<&Workload<'_>>) -> Vec<Violation>;

/// Every native check, by the policy id the suite table's row names: adding a policy is a row
/// in the table (`suite.rs`), its Rego twin, and one entry here.
pub const NATIVE: [(&str, Check); 10] = [
    ("deny_no_limits", deny_no_limits),
    ("deny_no_readonly", deny_no_readonly),
    ("deny_privileged", deny_privileged),
    ("deny_latest_tag", deny_latest_tag),
    ("deny_no_liveness", deny_no_liveness),
    ("warn_no_gamma1_label", warn_no_gamma1_label),
    ("warn_no_security_ctx", warn_no_security_ctx),
    ("deny_cross_layer", deny_cross_layer),
    ("deny_no_mecipol_image", deny_no_mecipol_image),
    ("warn_trendal_missing", warn_trendal_missing),
];

/// The native check for a policy id.
pub fn native(id: &str) -> Option<Check> {
    NATIVE.iter().find(|(n, _)| *n == id).map(|(_, c)| *c)
}

/// Stand-in for an id with no native check (the config loader refuses those, so this is
/// unreachable in practice); it fails loudly rather than passing.
pub fn unknown(ctx: &PolicyCtx<'_>, _: Option<&Workload<'_>>) -> Vec<Violation> {
    vec![Violation {
        container: None,
        path: String::new(),
        pos: ctx.root.pos,
        message: format!("policy {} has no implementation", ctx.spec.id),
        fix: "remove the policy from the config".into(),
    }]
}

/// What a check sees.
pub struct PolicyCtx<'a> {
    /// The config the engine runs.
    pub config: &'a Config,
    /// The policy's table row.
    pub spec: &'a PolicySpec,
    /// The layer the resource is judged at.
    pub layer: Layer,
    /// The object.
    pub root: &'a Node,
    /// The object's namespace.
    pub namespace: Option<&'a str>,
    /// Namespace labels known to the caller (for the layer of another namespace).
    pub namespaces: &'a dyn NamespaceLabels,
    /// The lock registry, if any.
    pub locks: Option<&'a dyn LockRegistry>,
}

impl std::fmt::Debug for PolicyCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyCtx")
            .field("policy", &self.spec.id)
            .field("layer", &self.layer)
            .field("namespace", &self.namespace)
            .field("locks", &self.locks.is_some())
            .finish_non_exhaustive()
    }
}

impl PolicyCtx<'_> {
    fn label(&self, key: &str) -> Option<&Node> {
        self.root.get_path(&["metadata", "labels", key])
    }

    fn annotation(&self, key: &str) -> Option<&Node> {
        self.root.get_path(&["metadata", "annotations", key])
    }

    fn violation(&self, path: &[&str], message: String, fix: &'static str) -> Violation {
        Violation {
            container: None,
            path: path.join("."),
            pos: self.root.locate(path),
            message,
            fix: fix.into(),
        }
    }

    /// The layer of another namespace (its label, the config, its name), never the flag.
    fn other_layer(&self, ns: &str) -> Option<Layer> {
        match namespace_layer(self.config, ns, self.namespaces) {
            LayerStatus::Layer(l) => Some(l),
            _ => None,
        }
    }
}

const ALL: &[Group] = &[Group::Regular, Group::Init, Group::Ephemeral];
const REGULAR_AND_INIT: &[Group] = &[Group::Regular, Group::Init];

fn deny_no_limits(_: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in w
        .map(|w| w.containers(REGULAR_AND_INIT))
        .into_iter()
        .flatten()
    {
        for (res, label) in [("cpu", "CPU"), ("memory", "memory")] {
            if !is_set(c.node.get_path(&["resources", "limits", res])) {
                out.push(c.violation(
                    &["resources", "limits", res],
                    format!("container {} sets no {label} limit", c.name()),
                    if res == "cpu" {
                        "set resources.limits.cpu"
                    } else {
                        "set resources.limits.memory"
                    },
                ));
            }
        }
    }
    out
}

fn deny_no_readonly(_: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in w
        .map(|w| w.containers(REGULAR_AND_INIT))
        .into_iter()
        .flatten()
    {
        let path = ["securityContext", "readOnlyRootFilesystem"];
        if c.node.get_path(&path).and_then(Node::as_bool) != Some(true) {
            out.push(c.violation(
                &path,
                format!(
                    "container {} does not have a read-only root filesystem",
                    c.name()
                ),
                "set securityContext.readOnlyRootFilesystem: true",
            ));
        }
    }
    out
}

fn deny_privileged(_: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in w.map(|w| w.containers(ALL)).into_iter().flatten() {
        let path = ["securityContext", "privileged"];
        if c.node.get_path(&path).and_then(Node::as_bool) == Some(true) {
            out.push(c.violation(
                &path,
                format!("container {} runs privileged", c.name()),
                "remove securityContext.privileged (or set it to false)",
            ));
        }
    }
    out
}

fn deny_latest_tag(_: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in w.map(|w| w.containers(ALL)).into_iter().flatten() {
        // A container without an image is judged, not skipped (as checkov and Kyverno do).
        let Some(image) = c.image().filter(|i| !i.trim().is_empty()) else {
            out.push(c.violation(
                &["image"],
                format!("container {} has no image", c.name()),
                "set the container's image, pinned to a version tag or a digest",
            ));
            continue;
        };
        let r = parse_image(image);
        if r.digest.is_some_and(is_digest) {
            continue;
        }
        let msg = match r.tag {
            None => format!("image {image} has no tag and no digest"),
            Some("latest") => format!("image {image} uses the `latest` tag"),
            Some(_) => continue,
        };
        out.push(c.violation(
            &["image"],
            msg,
            "pin the image to a version tag or a digest (@sha256:…)",
        ));
    }
    out
}

fn deny_no_liveness(_: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in w
        .map(|w| w.containers(&[Group::Regular]))
        .into_iter()
        .flatten()
    {
        if !is_set(c.node.get("livenessProbe")) {
            out.push(c.violation(
                &["livenessProbe"],
                format!("container {} has no liveness probe", c.name()),
                "add a livenessProbe",
            ));
        }
    }
    out
}

fn warn_no_gamma1_label(p: &PolicyCtx<'_>, _: Option<&Workload<'_>>) -> Vec<Violation> {
    let path = ["metadata", "labels", "gamma1"];
    let fix = "set label gamma1: \"14134725141734693\"";
    match p.label("gamma1").and_then(Node::scalar_text) {
        Some(v) if v == GAMMA1_LABEL => Vec::new(),
        Some(v) => vec![p.violation(
            &path,
            format!("label gamma1 is `{v}`, not {GAMMA1_LABEL}"),
            fix,
        )],
        None => vec![p.violation(&path, "label gamma1 is missing".into(), fix)],
    }
}

fn warn_no_security_ctx(_: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let Some(w) = w else { return Vec::new() };
    if w.pod_spec
        .and_then(|s| s.get("securityContext"))
        .is_some_and(|s| !s.is_empty_value())
    {
        return Vec::new();
    }
    w.containers(REGULAR_AND_INIT)
        .filter(|c| {
            c.node
                .get("securityContext")
                .is_none_or(Node::is_empty_value)
        })
        .map(|c| {
            let mut v = c.violation(
                &["securityContext"],
                format!(
                    "neither the pod nor container {} sets a securityContext",
                    c.name()
                ),
                "set securityContext on the pod or on the container",
            );
            if v.path.is_empty() {
                v.path = w.prefix.to_string();
            }
            v
        })
        .collect()
}

/// Finds Service DNS names `<svc>.<ns>.svc[.cluster.local]` in a text; yields (service, namespace).
pub fn service_dns_names(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let is_label = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    let mut from = 0;
    // A plain window scan: most scanned values are short, and `str::find` sets up a two-way
    // searcher for every call.
    let find_svc = |from: usize| {
        bytes
            .get(from..)
            .and_then(|b| b.windows(4).position(|w| w == b".svc"))
    };
    while let Some(found) = find_svc(from) {
        let at = from + found;
        from = at + 4;
        // `.svc` must end the host name (end, `.cluster.local`, port, path, quote…).
        let after = bytes.get(at + 4).copied();
        let ends = match after {
            None => true,
            Some(b'.') => text
                .get(at + 4..)
                .is_some_and(|t| t.starts_with(".cluster.local")),
            Some(b) => !(is_label(b) || b.is_ascii_uppercase() || b == b'_'),
        };
        if !ends {
            continue;
        }
        // Walk back over `<ns>` then `.` then `<svc>`.
        let mut i = at;
        while i > 0 && bytes.get(i - 1).copied().is_some_and(is_label) {
            i -= 1;
        }
        let ns = text.get(i..at).unwrap_or("");
        if ns.is_empty() || i == 0 || bytes.get(i - 1) != Some(&b'.') {
            continue;
        }
        let mut j = i - 1;
        while j > 0 && bytes.get(j - 1).copied().is_some_and(is_label) {
            j -= 1;
        }
        let svc = text.get(j..i - 1).unwrap_or("");
        if svc.is_empty() {
            continue;
        }
        out.push((svc, ns));
    }
    out
}

fn deny_cross_layer(p: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    // (a) the sostle-layer label disagrees with the namespace's layer (the layer judged at,
    // when the namespace has none of its own).
    if let Some(text) = p.label("sostle-layer").and_then(Node::scalar_text) {
        let ns_layer = p
            .namespace
            .and_then(|ns| p.other_layer(ns))
            .unwrap_or(p.layer);
        if Layer::parse(&text) != Some(ns_layer) {
            out.push(p.violation(
                &["metadata", "labels", "sostle-layer"],
                format!("label sostle-layer is `{text}`, but the namespace's layer is {ns_layer}"),
                "make label sostle-layer match the namespace's layer, or move the resource",
            ));
        }
    }
    let foreign = |ns: &str| -> Option<Layer> {
        if Some(ns) == p.namespace {
            return None;
        }
        p.other_layer(ns).filter(|l| *l != p.layer)
    };
    // (b) a RoleBinding binds a ServiceAccount of another layer.
    if w.is_none() {
        if let Some(subjects) = p.root.get("subjects").and_then(Node::as_seq) {
            for (i, s) in subjects.iter().enumerate() {
                if s.get("kind").and_then(Node::as_str) != Some("ServiceAccount") {
                    continue;
                }
                let Some(ns) = s.get("namespace").and_then(Node::as_str).or(p.namespace) else {
                    continue;
                };
                if let Some(other) = foreign(ns) {
                    let name = s.get("name").and_then(Node::as_str).unwrap_or("?");
                    out.push(Violation {
                        container: None,
                        path: format!("subjects[{i}].namespace"),
                        pos: s.locate(&["namespace"]),
                        message: format!(
                            "binds ServiceAccount {ns}/{name} of layer {other} into layer {}",
                            p.layer
                        ),
                        fix: "bind a ServiceAccount of this layer's namespace".into(),
                    });
                }
            }
        }
    }
    // (c) a container names a Service of another layer.
    for c in w.map(|w| w.containers(ALL)).into_iter().flatten() {
        // The path is built only for a violation (`rest` makes it).
        let mut scan = |node: &Node, rest: &dyn Fn() -> Vec<String>| {
            let Some(text) = node.as_str() else { return };
            for (svc, ns) in service_dns_names(text) {
                if let Some(other) = foreign(ns) {
                    let rest = rest();
                    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
                    out.push(Violation {
                        container: Some(c.name()),
                        path: c.path(&rest),
                        pos: node.pos,
                        message: format!(
                            "container {} reaches Service {svc}.{ns} in layer {other} from layer {}",
                            c.name(),
                            p.layer
                        ),
                        fix: "call only Services of this layer, or go through an approved gateway".into(),
                    });
                }
            }
        };
        if let Some(env) = c.node.get("env").and_then(Node::as_seq) {
            for (i, e) in env.iter().enumerate() {
                if let Some(v) = e.get("value") {
                    scan(v, &|| vec![format!("env[{i}]"), "value".into()]);
                }
            }
        }
        for key in ["args", "command"] {
            if let Some(items) = c.node.get(key).and_then(Node::as_seq) {
                for (i, a) in items.iter().enumerate() {
                    scan(a, &|| vec![format!("{key}[{i}]")]);
                }
            }
        }
    }
    out
}

fn deny_no_mecipol_image(p: &PolicyCtx<'_>, w: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    if p.label("mecipol-locked")
        .and_then(Node::scalar_text)
        .as_deref()
        != Some("true")
    {
        out.push(p.violation(
            &["metadata", "labels", "mecipol-locked"],
            "label mecipol-locked=true is missing: the image was not locked by a trial".into(),
            "run the image through a trial (`sostle trial …`, `sostle lock`) and promote it",
        ));
    }
    let locked = p.annotation("mecipol-image").and_then(Node::as_str);
    let containers = || w.map(|w| w.containers(ALL)).into_iter().flatten();
    match locked {
        None => out.push(p.violation(
            &["metadata", "annotations", "mecipol-image"],
            "annotation mecipol-image is missing".into(),
            "set annotation mecipol-image to the locked image",
        )),
        Some(locked) => {
            for c in containers() {
                if let Some(image) = c.image() {
                    if image != locked {
                        out.push(c.violation(
                            &["image"],
                            format!("image {image} is not the locked image {locked}"),
                            "run the locked image, or lock this one through a trial",
                        ));
                    }
                }
            }
        }
    }
    // The lock registry's half: only when one is in use.
    if let Some(registry) = p.locks {
        let profile = p.annotation("mecipol-profile").and_then(Node::as_str);
        for c in containers() {
            if let Some(image) = c.image() {
                for reason in registry.check(image, p.layer, profile) {
                    out.push(c.violation(
                        &["image"],
                        reason.to_string(),
                        "lock the image for this layer with a trial",
                    ));
                }
            }
        }
    }
    out
}

fn warn_trendal_missing(p: &PolicyCtx<'_>, _: Option<&Workload<'_>>) -> Vec<Violation> {
    let mut out = Vec::new();
    let floor = p.spec.floor;
    let trendal = p
        .annotation("sostle.eose.ca/trendal")
        .and_then(Node::scalar_text);
    if trendal.as_deref().is_none_or(|t| t.trim().is_empty()) {
        out.push(p.violation(
            &["metadata", "annotations", "sostle.eose.ca/trendal"],
            "annotation sostle.eose.ca/trendal (the trendal ID) is missing".into(),
            "spawn a trendal (`sostle trendal spawn`) and set sostle.eose.ca/trendal to its ID",
        ));
    }
    let path = ["metadata", "annotations", "sostle.eose.ca/trendal-warmth"];
    match p
        .annotation("sostle.eose.ca/trendal-warmth")
        .and_then(Node::scalar_text)
    {
        None => out.push(p.violation(
            &path,
            "annotation sostle.eose.ca/trendal-warmth is missing".into(),
            "set sostle.eose.ca/trendal-warmth to the trendal's warmth (≥ 0.5)",
        )),
        Some(text) => match text.trim().parse::<f64>() {
            Ok(w) if w >= floor && w <= 1.0 => {}
            Ok(w) if w > 1.0 => out.push(p.violation(
                &path,
                format!("trendal warmth {w} is above 1"),
                "warmth is in [0, 1]",
            )),
            Ok(w) => out.push(p.violation(
                &path,
                format!("trendal warmth {w} is below the floor {floor} (COLD)"),
                "warm the trendal (`sostle trendal warm`) or spawn a new one",
            )),
            Err(_) => out.push(p.violation(
                &path,
                format!("trendal warmth `{text}` is not a number"),
                "set a number in [0, 1]",
            )),
        },
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs() {
        assert_eq!(parse_image("host:5000/app").tag, None);
        assert_eq!(parse_image("host:5000/app:1.2").tag, Some("1.2"));
        assert_eq!(parse_image("nginx").tag, None);
        assert_eq!(parse_image("nginx:latest").tag, Some("latest"));
        let r = parse_image("a/b@sha256:abc");
        assert_eq!((r.name, r.tag, r.digest), ("a/b", None, Some("sha256:abc")));
        let r = parse_image("host:5000/a/b:v1@sha256:abc");
        assert_eq!((r.name, r.tag), ("host:5000/a/b", Some("v1")));
    }

    #[test]
    fn dns_names() {
        assert_eq!(
            service_dns_names("http://db.sostle-l5-gated.svc.cluster.local:5432"),
            vec![("db", "sostle-l5-gated")]
        );
        assert_eq!(
            service_dns_names("redis.cache.svc:6379"),
            vec![("redis", "cache")]
        );
        assert!(service_dns_names("foo.svcx.bar").is_empty());
        assert!(service_dns_names("ns.svc").is_empty());
        assert!(service_dns_names("a.b.service").is_empty());
    }
}
