//! The webhook's objects: where it runs and how, and the validating and mutating
//! configurations that send every path to a pod (SPEC §10) to it.

use serde_json::{json, Value as J};
use sostle_core::epoch::GAMMA1_LABEL;
use sostle_core::{Config, Layer};

use crate::SYSTEM_NAMESPACE;

/// Every path that changes what a pod runs (SPEC §10): the workload kinds, and the pod
/// subresources that change a running pod's containers — `pods/ephemeralcontainers` (`kubectl
/// debug`; Kubernetes matches a subresource only when a rule names it) and `pods/resize`
/// (in-place resource changes). Their review's object is the whole Pod.
const WORKLOAD_RESOURCES: [(&str, &str); 11] = [
    ("", "pods"),
    ("", "pods/ephemeralcontainers"),
    ("", "pods/resize"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("rbac.authorization.k8s.io", "rolebindings"),
];

/// The validating rules (workloads, their pod subresources and RoleBindings) or the mutating
/// ones (workloads only: the chaos scheduling is set when a pod is made, never on a subresource).
fn rules(validating: bool) -> J {
    let mut groups: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (g, r) in WORKLOAD_RESOURCES {
        if !validating && (g.starts_with("rbac") || r.contains('/')) {
            continue;
        }
        groups.entry(g).or_default().push(r);
    }
    J::Array(
        groups
            .into_iter()
            .map(|(g, rs)| json!({"apiGroups": [g], "apiVersions": ["*"], "resources": rs, "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}))
            .collect(),
    )
}

/// Where the API server reaches the webhook when not through its Service (`--webhook-url`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL (`https://127.0.0.1:8443`).
    pub url: String,
    /// The serving certificate's CA, base64 of its PEM.
    pub ca_bundle: String,
}

/// The webhook's objects. With `registry_credentials` (the config checks image signatures)
/// the pod reads registry logins from the optional Secret `sostle-registry-credentials` (type
/// kubernetes.io/dockerconfigjson, like an image pull secret) through `DOCKER_CONFIG`.
pub fn webhook(
    config: &Config,
    config_yaml: &str,
    image: &str,
    registry_credentials: bool,
    endpoint: Option<&Endpoint>,
) -> Vec<J> {
    let mut out = workload(config_yaml, image, registry_credentials);
    out.extend(configurations(config, endpoint));
    out
}

/// What runs the webhook: its namespace, service account, config, certificate, Deployment,
/// PDB and Service.
fn workload(config_yaml: &str, image: &str, registry_credentials: bool) -> Vec<J> {
    use sostle_webhook::door;
    let ns = SYSTEM_NAMESPACE;
    let labels = json!({"app.kubernetes.io/name": "sostle-webhook", "app.kubernetes.io/part-of": "sostle", "gamma1": GAMMA1_LABEL});
    let selector = json!({"app.kubernetes.io/name": "sostle-webhook"});
    let dns = format!("sostle-webhook.{ns}.svc");
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"app.kubernetes.io/part-of": "sostle"},
            "annotations": {"sostle.eose.ca/layer-description": "sostle itself: no sostle-layer label, so no sostle webhook ever governs it"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sostle-webhook", "namespace": ns, "labels": labels},
            "automountServiceAccountToken": false}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sostle-config", "namespace": ns, "labels": labels},
            "data": {"sostle.yaml": config_yaml}}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "sostle-selfsigned", "namespace": ns},
            "spec": {"selfSigned": {}}}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "sostle-webhook-tls", "namespace": ns},
            "spec": {"secretName": "sostle-webhook-tls", "dnsNames": [dns, format!("{dns}.cluster.local")],
                     "issuerRef": {"name": "sostle-selfsigned", "kind": "Issuer"},
                     "privateKey": {"algorithm": "ECDSA", "size": 256}, "duration": "2160h", "renewBefore": "360h"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sostle-webhook", "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "sostle-webhook",
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}]}},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}}],
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "webhook",
                        "image": image,
                        "args": ["webhook", "--listen", format!("0.0.0.0:{}", door::PORT), "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key",
                                 "--config", "/config/sostle.yaml", "--log-format", "json", "--drain-seconds", "20"],
                        "ports": [{"name": "https", "containerPort": door::PORT, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
                        "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                                            "privileged": false, "capabilities": {"drop": ["ALL"]}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 10},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 5},
                        "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": true},
                                         {"name": "config", "mountPath": "/config", "readOnly": true}],
                    }],
                    "volumes": [{"name": "tls", "secret": {"secretName": "sostle-webhook-tls"}},
                                {"name": "config", "configMap": {"name": "sostle-config"}}],
                }
            }
        }}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "sostle-webhook", "namespace": ns, "labels": labels},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": selector}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sostle-webhook", "namespace": ns, "labels": labels},
            "spec": {"selector": selector, "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]}}),
    ];
    if registry_credentials {
        for o in out.iter_mut().filter(|o| o["kind"] == "Deployment") {
            let Some(pod) = o.pointer_mut("/spec/template/spec") else {
                continue;
            };
            if let Some(v) = pod.get_mut("volumes").and_then(J::as_array_mut) {
                v.push(json!({"name": "registry-credentials", "secret": {"secretName": "sostle-registry-credentials", "optional": true,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}}));
            }
            if let Some(c) = pod.pointer_mut("/containers/0") {
                if let Some(c) = c.as_object_mut() {
                    let env = json!([{"name": "DOCKER_CONFIG", "value": "/docker"}]);
                    c.insert("env".into(), env);
                }
                if let Some(v) = c.get_mut("volumeMounts").and_then(J::as_array_mut) {
                    v.push(json!({"name": "registry-credentials", "mountPath": "/docker", "readOnly": true}));
                }
            }
        }
    }
    out
}

/// The validating and mutating configurations: which namespaces and resources go to which
/// route, failing open or closed per layer.
fn configurations(config: &Config, endpoint: Option<&Endpoint>) -> [J; 2] {
    use sostle_webhook::door;
    let ns = SYSTEM_NAMESPACE;
    let inject = match endpoint {
        None => json!({"cert-manager.io/inject-ca-from": format!("{ns}/sostle-webhook-tls")}),
        Some(_) => json!({}),
    };
    // The Service in the cluster, or (--webhook-url) a URL with the CA bundle given.
    let client = |path: &str| match endpoint {
        None => {
            json!({"service": {"name": "sostle-webhook", "namespace": ns, "path": path, "port": 443}})
        }
        Some(e) => {
            json!({"url": format!("{}{path}", e.url.trim_end_matches('/')), "caBundle": e.ca_bundle})
        }
    };
    // Which namespaces each entry governs: a layer's label (the nine namespaces bootstrap
    // writes carry it); the namespaces the config's `namespaces:` assigns to a layer and that
    // carry no label; and, with `defaultLayer`, every other unlabelled namespace. So the door
    // and `sostle test` agree on whether an object is governed (SPEC §10). A namespace whose
    // name alone puts it in a layer (`sostle-l3-…`) must carry the label: the Namespace entry
    // refuses it without.
    let by_label = |l: Layer| json!({"matchLabels": {"sostle-layer": l.as_str()}});
    let unlabelled = json!({"key": "sostle-layer", "operator": "DoesNotExist"});
    let entry_for = |name: String, l: Layer, kind: &str, selector: J| {
        let low = door::fail_open().contains(l);
        json!({
            "name": name,
            "clientConfig": client(door::route(kind, l).as_ref()),
            "namespaceSelector": selector,
            "rules": rules(kind == "validate"),
            "failurePolicy": if low { "Ignore" } else { "Fail" },
            "timeoutSeconds": door::timeout_seconds(l),
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "matchPolicy": "Equivalent",
        })
    };
    let entries = |l: Layer, kind: &str| -> Vec<J> {
        let low = l.as_str().to_lowercase();
        let mut out = vec![entry_for(
            format!("{low}.{kind}.sostle.eose.ca"),
            l,
            kind,
            by_label(l),
        )];
        let assigned: Vec<&str> = config
            .namespaces
            .iter()
            .filter(|(n, layer)| {
                **layer == l && !sostle_core::namespace::UNGOVERNED.contains(&n.as_str())
            })
            .map(|(n, _)| n.as_str())
            .collect();
        if !assigned.is_empty() {
            out.push(entry_for(
                format!("{low}-assigned.{kind}.sostle.eose.ca"),
                l,
                kind,
                json!({"matchExpressions": [unlabelled.clone(), {"key": "kubernetes.io/metadata.name", "operator": "In", "values": assigned}]}),
            ));
        }
        if config.default_layer == Some(l) {
            let mut others: Vec<&str> = sostle_core::namespace::UNGOVERNED.to_vec();
            others.push(ns);
            others.extend(config.namespaces.keys().map(String::as_str));
            others.sort_unstable();
            others.dedup();
            out.push(entry_for(
                format!("{low}-default.{kind}.sostle.eose.ca"),
                l,
                kind,
                json!({"matchExpressions": [unlabelled.clone(), {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": others}]}),
            ));
        }
        out
    };
    // A namespace's layer label is changed only by `layers.writers` (SPEC §10): every CREATE and
    // UPDATE of a Namespace (but the never-governed ones and sostle's own) goes to sostle,
    // failing closed — through its status and finalize subresources too, which carry the
    // whole object.
    let mut never: Vec<&str> = sostle_core::namespace::UNGOVERNED.to_vec();
    never.push(ns);
    let namespaces_entry = json!({
        "name": "namespaces.validate.sostle.eose.ca",
        "clientConfig": client(door::NAMESPACES_ROUTE),
        "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": never}]},
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["namespaces", "namespaces/status", "namespaces/finalize"], "scope": "Cluster"}],
        "failurePolicy": "Fail",
        "timeoutSeconds": door::NAMESPACES_TIMEOUT_SECONDS,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "matchPolicy": "Equivalent",
    });
    let mut validating: Vec<J> = Layer::ALL
        .iter()
        .flat_map(|l| entries(*l, "validate"))
        .collect();
    validating.push(namespaces_entry);
    // The mutating entries: the chaos scheduling (trial), and at every layer whose images must
    // be signed, the pin of each verified tag to the digest it verified (SPEC §10).
    let mut mutating: Vec<J> = entries(Layer::Trial, "mutate");
    for l in Layer::ALL {
        if l != Layer::Trial && !config.images.required_at(l).is_empty() {
            mutating.extend(entries(l, "mutate"));
        }
    }
    let validating = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "sostle-validate", "annotations": inject},
        "webhooks": validating});
    let mutating = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "sostle-mutate", "annotations": inject},
        "webhooks": mutating});
    [validating, mutating]
}

/// The webhook's image: by digest when one is given (`repo@sha256:…`, the tag dropped), so
/// the cluster runs exactly the image that was signed.
pub fn webhook_image(image: &str, digest: Option<&str>) -> Result<String, ImageError> {
    let Some(d) = digest else {
        return Ok(image.to_string());
    };
    if !sostle_sign::payload::is_sha256_digest(d) {
        return Err(ImageError(d.to_string()));
    }
    let repo = image.split('@').next().unwrap_or(image);
    // A tag is the part after the last ':' that follows the last '/' (a registry port is not).
    let repo = match repo.rfind(':') {
        Some(i) if repo.get(i..).is_some_and(|t| !t.contains('/')) => repo.get(..i).unwrap_or(repo),
        _ => repo,
    };
    Ok(format!("{repo}@{d}"))
}

/// `--image-digest` is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--image-digest: `{0}` is not sha256:<64 lowercase hex digits>")]
pub struct ImageError(pub String);
