//! The workload view the policies share: which kinds carry a pod spec and where, the containers of every sort with their field paths, the shape checks of the fields the policies read, and the images a workload runs.

use crate::manifest::{Node, Value};
use crate::report::{ShapeError, Violation};

/// Where a workload kind keeps its pod spec, in the three spellings its readers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodSpecAt {
    /// The keys from the root, e.g. `["spec", "template", "spec"]`.
    pub keys: &'static [&'static str],
    /// The same, dotted (`spec.template.spec`): the prefix of violation paths.
    pub dotted: &'static str,
    /// The same as a JSON pointer (`/spec/template/spec`): the base of JSONPatch paths.
    pub pointer: &'static str,
}

/// Where `kind` keeps its pod spec; `None` for kinds that are not [`WORKLOAD_KINDS`].
pub fn pod_spec_at(kind: &str) -> Option<PodSpecAt> {
    if !WORKLOAD_KINDS.contains(&kind) {
        return None;
    }
    Some(match kind {
        "Pod" => PodSpecAt {
            keys: &["spec"],
            dotted: "spec",
            pointer: "/spec",
        },
        "CronJob" => PodSpecAt {
            keys: &["spec", "jobTemplate", "spec", "template", "spec"],
            dotted: "spec.jobTemplate.spec.template.spec",
            pointer: "/spec/jobTemplate/spec/template/spec",
        },
        _ => PodSpecAt {
            keys: &["spec", "template", "spec"],
            dotted: "spec.template.spec",
            pointer: "/spec/template/spec",
        },
    })
}

/// The pod-bearing kinds.
pub const WORKLOAD_KINDS: [&str; 8] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

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
    pub(crate) prefix: &'static str,
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

    pub(crate) fn violation(&self, rest: &[&str], message: String, fix: &'static str) -> Violation {
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
    pub(crate) prefix: &'static str,
    containers: Vec<Container<'a>>,
}

impl<'a> Workload<'a> {
    /// Finds the pod spec of a workload kind and checks the shape of the fields the policies
    /// read, adding a [`ShapeError`] for each wrong type.
    pub fn new(root: &'a Node, kind: &str, errors: &mut Vec<ShapeError>) -> Workload<'a> {
        // Called for workload kinds; anything else is read as the common template shape.
        let at = pod_spec_at(kind).unwrap_or(PodSpecAt {
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

pub(crate) fn check_container_shape(c: &Container<'_>, errors: &mut Vec<ShapeError>) {
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

pub(crate) fn is_set(n: Option<&Node>) -> bool {
    n.is_some_and(|n| !matches!(n.value, Value::Null))
}

/// The images of a workload's containers of every sort (init, regular, ephemeral), each once,
/// in that order; none for a kind that is not a workload (a custom resource shaped like one is
/// not). The one list of a workload's images: the webhook's signature and lock checks, the
/// trial's subject and a promotion all read it.
pub fn images(root: &Node) -> Vec<&str> {
    let kind = root.get("kind").and_then(Node::as_str).unwrap_or("");
    if pod_spec_at(kind).is_none() {
        return Vec::new();
    }
    let workload = Workload::new(root, kind, &mut Vec::new());
    let mut out: Vec<&str> = Vec::new();
    for c in workload.containers(&[Group::Init, Group::Regular, Group::Ephemeral]) {
        if let Some(i) = c.image() {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// [`images`] of an object given as JSON.
pub fn json_images(obj: &serde_json::Value) -> Vec<String> {
    images(&crate::manifest::from_json(obj))
        .into_iter()
        .map(str::to_string)
        .collect()
}
