//! The ten native policies of SPEC §3, one small function each, plus the workload view they
//! share (pod spec and containers with their field paths). A check returns the violations it
//! found; the table in `suite.rs` decides what they mean (layers, verdict, escalation).
//! Field paths, messages and fixes are built only for violations, never on the pass path.

use crate::epoch::GAMMA1_LABEL;
use crate::eval::{Engine, EvalContext, LayerStatus, ShapeError, Violation};
use crate::layer::Layer;
use crate::manifest::{Node, Value};
use crate::suite::PolicySpec;

/// A native check.
pub type Check = fn(&PolicyCtx<'_>, Option<&Workload<'_>>) -> Vec<Violation>;

/// The native check for a policy id.
pub fn native(id: &str) -> Option<Check> {
    Some(match id {
        "deny_no_limits" => deny_no_limits,
        "deny_no_readonly" => deny_no_readonly,
        "deny_privileged" => deny_privileged,
        "deny_latest_tag" => deny_latest_tag,
        "deny_no_liveness" => deny_no_liveness,
        "warn_no_gamma1_label" => warn_no_gamma1_label,
        "warn_no_security_ctx" => warn_no_security_ctx,
        "deny_cross_layer" => deny_cross_layer,
        "deny_no_mecipol_image" => deny_no_mecipol_image,
        "warn_trendal_missing" => warn_trendal_missing,
        _ => return None,
    })
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
#[derive(Debug)]
pub struct PolicyCtx<'a> {
    pub(crate) engine: &'a Engine,
    /// The policy's table row.
    pub spec: &'a PolicySpec,
    /// The layer the resource is judged at.
    pub layer: Layer,
    /// The object.
    pub root: &'a Node,
    /// The object's namespace.
    pub namespace: Option<&'a str>,
    pub(crate) ctx: &'a EvalContext<'a>,
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
        match self.engine.namespace_layer(ns, self.ctx.namespaces) {
            LayerStatus::Layer(l) => Some(l),
            _ => None,
        }
    }
}

/// The sort of container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `containers`.
    Regular,
    /// `initContainers`.
    Init,
    /// `ephemeralContainers` (Pods).
    Ephemeral,
}

impl Group {
    fn key(self) -> &'static str {
        match self {
            Group::Regular => "containers",
            Group::Init => "initContainers",
            Group::Ephemeral => "ephemeralContainers",
        }
    }
}

/// One container with where it sits.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    /// The container mapping.
    pub node: &'a Node,
    /// Its sort.
    pub group: Group,
    /// Its index within its list.
    pub index: usize,
    prefix: &'static str,
}

impl<'a> Container<'a> {
    /// The container's name (or `#<index>` when unnamed).
    pub fn name(&self) -> String {
        self.node
            .get("name")
            .and_then(Node::as_str)
            .map_or_else(|| format!("#{}", self.index), str::to_string)
    }

    /// Full path of a field of this container.
    pub fn path(&self, rest: &[&str]) -> String {
        let mut p = String::with_capacity(64);
        p.push_str(self.prefix);
        p.push('.');
        p.push_str(self.group.key());
        p.push('[');
        p.push_str(itoa::Buffer::new().format(self.index));
        p.push(']');
        for r in rest {
            p.push('.');
            p.push_str(r);
        }
        p
    }

    fn violation(&self, rest: &[&str], message: String, fix: &'static str) -> Violation {
        Violation {
            container: Some(self.name()),
            path: self.path(rest),
            pos: self.node.locate(rest),
            message,
            fix: fix.into(),
        }
    }

    /// The image, when set.
    pub fn image(&self) -> Option<&'a str> {
        self.node.get("image").and_then(Node::as_str)
    }
}

/// A workload: its pod spec and containers.
#[derive(Debug)]
pub struct Workload<'a> {
    /// The pod spec, when present.
    pub pod_spec: Option<&'a Node>,
    prefix: &'static str,
    containers: Vec<Container<'a>>,
}

impl<'a> Workload<'a> {
    /// Finds the pod spec of a workload kind and checks the shape of the fields the policies
    /// read, adding a [`ShapeError`] for each wrong type.
    pub fn new(root: &'a Node, kind: &str, errors: &mut Vec<ShapeError>) -> Workload<'a> {
        // Called for workload kinds; anything else is read as the common template shape.
        let at = crate::eval::pod_spec_at(kind).unwrap_or(crate::eval::PodSpecAt {
            keys: &["spec", "template", "spec"],
            dotted: "spec.template.spec",
            pointer: "/spec/template/spec",
        });
        let (path, prefix) = (at.keys, at.dotted);
        // Every step of the path must be a mapping (or absent).
        let mut node = root;
        let mut pod_spec = None;
        for (i, key) in path.iter().enumerate() {
            match node.get(key) {
                None => break,
                Some(n) if matches!(n.value, Value::Null) => break,
                Some(n) if n.as_map().is_none() => {
                    errors.push(ShapeError {
                        path: path.get(..=i).unwrap_or(path).join("."),
                        pos: n.pos,
                        message: format!("{key} is a {}, expected a mapping", n.type_name()),
                    });
                    break;
                }
                Some(n) => {
                    node = n;
                    if i + 1 == path.len() {
                        pod_spec = Some(n);
                    }
                }
            }
        }
        let mut containers = Vec::new();
        if let Some(spec) = pod_spec {
            for group in [Group::Init, Group::Regular, Group::Ephemeral] {
                if group == Group::Ephemeral && kind != "Pod" {
                    continue;
                }
                let Some(list) = spec.get(group.key()) else {
                    continue;
                };
                match &list.value {
                    Value::Null => {}
                    Value::Seq(items) => {
                        for (index, item) in items.iter().enumerate() {
                            if item.as_map().is_none() {
                                errors.push(ShapeError {
                                    path: format!("{prefix}.{}[{index}]", group.key()),
                                    pos: item.pos,
                                    message: format!(
                                        "a container is a mapping, not a {}",
                                        item.type_name()
                                    ),
                                });
                                continue;
                            }
                            let c = Container {
                                node: item,
                                group,
                                index,
                                prefix,
                            };
                            check_container_shape(&c, errors);
                            containers.push(c);
                        }
                    }
                    _ => errors.push(ShapeError {
                        path: format!("{prefix}.{}", group.key()),
                        pos: list.pos,
                        message: format!(
                            "{} is a {}, expected a list of containers",
                            group.key(),
                            list.type_name()
                        ),
                    }),
                }
            }
        }
        // Regular containers first, in the order users read them.
        containers.sort_by_key(|c| match c.group {
            Group::Regular => 0,
            Group::Init => 1,
            Group::Ephemeral => 2,
        });
        Workload {
            pod_spec,
            prefix,
            containers,
        }
    }

    /// Containers of the given sorts.
    pub fn containers<'s>(
        &'s self,
        groups: &'s [Group],
    ) -> impl Iterator<Item = &'s Container<'a>> + 's {
        self.containers
            .iter()
            .filter(move |c| groups.contains(&c.group))
    }
}

fn check_container_shape(c: &Container<'_>, errors: &mut Vec<ShapeError>) {
    let expect = |key: &str, want: &str, ok: fn(&Value) -> bool, errors: &mut Vec<ShapeError>| {
        if let Some(n) = c.node.get(key) {
            if !matches!(n.value, Value::Null) && !ok(&n.value) {
                errors.push(ShapeError {
                    path: c.path(&[key]),
                    pos: n.pos,
                    message: format!("{key} is a {}, expected {want}", n.type_name()),
                });
            }
        }
    };
    let is_map = |v: &Value| matches!(v, Value::Map(_));
    let is_seq = |v: &Value| matches!(v, Value::Seq(_));
    expect("image", "a string", |v| matches!(v, Value::Str(_)), errors);
    expect("securityContext", "a mapping", is_map, errors);
    expect("resources", "a mapping", is_map, errors);
    expect("env", "a list", is_seq, errors);
    expect("args", "a list", is_seq, errors);
    expect("command", "a list", is_seq, errors);
    if let Some(limits) = c.node.get_path(&["resources", "limits"]) {
        if !matches!(limits.value, Value::Map(_) | Value::Null) {
            errors.push(ShapeError {
                path: c.path(&["resources", "limits"]),
                pos: limits.pos,
                message: format!(
                    "resources.limits is a {}, expected a mapping",
                    limits.type_name()
                ),
            });
        }
    }
}

const ALL: &[Group] = &[Group::Regular, Group::Init, Group::Ephemeral];
const REGULAR_AND_INIT: &[Group] = &[Group::Regular, Group::Init];

fn is_set(n: Option<&Node>) -> bool {
    n.is_some_and(|n| !matches!(n.value, Value::Null))
}

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

/// An image reference split into its parts (`registry:5000/app:tag@sha256:…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before the tag and digest.
    pub name: &'a str,
    /// The tag, if any.
    pub tag: Option<&'a str>,
    /// The digest (`sha256:…`), if any.
    pub digest: Option<&'a str>,
}

/// Splits an image reference; a `:` before the last `/` is a registry port, not a tag.
pub fn parse_image(image: &str) -> ImageRef<'_> {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest.rfind(':').filter(|i| *i >= last_slash) {
        Some(i) => ImageRef {
            name: rest.get(..i).unwrap_or(rest),
            tag: rest.get(i + 1..).filter(|t| !t.is_empty()),
            digest,
        },
        None => ImageRef {
            name: rest,
            tag: None,
            digest,
        },
    }
}

fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
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
    if let Some(registry) = p.ctx.locks {
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
