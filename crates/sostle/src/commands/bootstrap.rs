//! `sostle bootstrap`: the cluster side as files — the nine layer namespaces, the spot chaos
//! pool (az script and Terraform), and the webhook (Deployment, Service, PDB, certificate,
//! validating and mutating configurations). Every object is built as data here and printed as
//! YAML; the tests check each against the Kubernetes API types.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value as J};
use sostle_core::epoch::GAMMA1_LABEL;
use sostle_core::{Config, Layer};

use crate::cli::{BootstrapArgs, BootstrapPart};

/// Where the webhook runs (a namespace with no `sostle-layer` label: never governed by itself).
pub const SYSTEM_NAMESPACE: &str = "sostle-system";

fn description(l: Layer) -> &'static str {
    match l {
        Layer::L0 => "L0 public: open, no gate; results reported, nothing denied by the gate",
        Layer::L1 => "L1 read-only: warns on declared write operations",
        Layer::L2 => "L2 local: Google SSO expected",
        Layer::L3 => "L3 crew: registered crew members only",
        Layer::L4 => "L4 token: crew with a valid SOSTLE token",
        Layer::L5 => "L5 gated: Kay's explicit approval (kay-approved=true)",
        Layer::L6 => "L6 closed: archive/vault only, no workloads",
        Layer::L7 => "L7 MEGSCIFIAR: all five gates open and the megscifiar role",
        Layer::Trial => "chaos-trial: trial subjects on the spot chaos pool",
    }
}

/// The nine layer namespaces.
pub fn namespaces(config: &Config) -> Vec<J> {
    Layer::ALL
        .iter()
        .map(|l| {
            let name = config.layer(*l).map(|s| s.namespace.clone()).unwrap_or_else(|| l.default_namespace().to_string());
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {"sostle-layer": l.as_str(), "app.kubernetes.io/managed-by": "sostle"},
                    "annotations": {"sostle.eose.ca/layer-description": description(*l)},
                }
            })
        })
        .collect()
}

/// The `az aks nodepool add` script for the chaos pool.
pub fn az_script(config: &Config, cluster: &str, group: &str) -> String {
    let p = &config.chaos_pool;
    format!(
        r#"#!/usr/bin/env sh
# The spot chaos node pool for sostle trials (SPEC §9). Scale-to-zero, evicted spot VMs are
# deleted; AKS adds its own taint kubernetes.azure.com/scalesetpriority=spot:NoSchedule.
set -eu
CLUSTER="${{CLUSTER:-{cluster}}}"
RESOURCE_GROUP="${{RESOURCE_GROUP:-{group}}}"
az aks nodepool add \
  --resource-group "$RESOURCE_GROUP" \
  --cluster-name "$CLUSTER" \
  --name {name} \
  --mode User \
  --priority Spot \
  --eviction-policy Delete \
  --spot-max-price -1 \
  --node-vm-size {vm} \
  --enable-cluster-autoscaler \
  --node-count {min} \
  --min-count {min} \
  --max-count {max} \
  --node-taints chaos=true:NoSchedule \
  --labels role=chaos sostle=trial pool=chaos gamma1={GAMMA1_LABEL}
"#,
        name = p.name,
        vm = p.vm_size,
        min = p.min_count,
        max = p.max_count,
    )
}

/// The same pool as Terraform (azurerm provider v4).
pub fn terraform(config: &Config, cluster: &str, group: &str) -> String {
    let p = &config.chaos_pool;
    format!(
        r#"# The spot chaos node pool for sostle trials (SPEC §9), azurerm provider v4.
terraform {{
  required_providers {{
    azurerm = {{
      source  = "hashicorp/azurerm"
      version = ">= 4.0"
    }}
  }}
}}

variable "cluster_name" {{
  type    = string
  default = "{cluster}"
}}

variable "resource_group_name" {{
  type    = string
  default = "{group}"
}}

data "azurerm_kubernetes_cluster" "this" {{
  name                = var.cluster_name
  resource_group_name = var.resource_group_name
}}

resource "azurerm_kubernetes_cluster_node_pool" "{name}" {{
  name                  = "{name}"
  kubernetes_cluster_id = data.azurerm_kubernetes_cluster.this.id
  mode                  = "User"
  vm_size               = "{vm}"
  priority              = "Spot"
  eviction_policy       = "Delete"
  spot_max_price        = -1
  auto_scaling_enabled  = true
  node_count            = {min}
  min_count             = {min}
  max_count             = {max}
  node_taints = [
    "chaos=true:NoSchedule",
    "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
  ]
  node_labels = {{
    "role"   = "chaos"
    "sostle" = "trial"
    "pool"   = "chaos"
    "gamma1" = "{GAMMA1_LABEL}"
  }}
}}
"#,
        name = p.name,
        vm = p.vm_size,
        min = p.min_count,
        max = p.max_count,
    )
}

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
                crate::output::set(
                    c,
                    "env",
                    json!([{"name": "DOCKER_CONFIG", "value": "/docker"}]),
                );
                if let Some(v) = c.get_mut("volumeMounts").and_then(J::as_array_mut) {
                    v.push(json!({"name": "registry-credentials", "mountPath": "/docker", "readOnly": true}));
                }
            }
        }
    }
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
    out.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "sostle-validate", "annotations": inject},
        "webhooks": validating}));
    out.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "sostle-mutate", "annotations": inject},
        "webhooks": mutating}));
    out
}

/// The config as the webhook's ConfigMap carries it: the file as written, unless it names key
/// files in `crew[].keys` — those cannot be read inside the pod, so the keys' PEM is put inline
/// (the file was loaded and validated before, so every path reads).
/// The webhook's image: by digest when one is given (`repo@sha256:…`, the tag dropped), so
/// the cluster runs exactly the image that was signed.
fn webhook_image(image: &str, digest: Option<&str>) -> anyhow::Result<String> {
    let Some(d) = digest else {
        return Ok(image.to_string());
    };
    if !sostle_sign::payload::is_sha256_digest(d) {
        anyhow::bail!("--image-digest: `{d}` is not sha256:<64 lowercase hex digits>");
    }
    let repo = image.split('@').next().unwrap_or(image);
    // A tag is the part after the last ':' that follows the last '/' (a registry port is not).
    let repo = match repo.rfind(':') {
        Some(i) if repo.get(i..).is_some_and(|t| !t.contains('/')) => repo.get(..i).unwrap_or(repo),
        _ => repo,
    };
    Ok(format!("{repo}@{d}"))
}

fn config_for_cluster(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let loaded = sostle_core::manifest::load(&text);
    let Some(doc) = loaded.documents.first() else {
        return Ok(text);
    };
    let mut json = doc.root.to_json();
    let read = sostle_webhook::key_file_reader(path);
    let mut inlined = false;
    let mut inline = |slot: &mut J| -> anyhow::Result<()> {
        let Some(k) = slot.as_str() else {
            return Ok(());
        };
        if k.trim_start().starts_with("-----BEGIN") {
            return Ok(());
        }
        let pem = read(k.trim()).map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))?;
        *slot = J::String(pem);
        inlined = true;
        Ok(())
    };
    if let Some(crew) = json.get_mut("crew").and_then(J::as_array_mut) {
        for member in crew {
            for key in member
                .get_mut("keys")
                .and_then(J::as_array_mut)
                .into_iter()
                .flatten()
            {
                inline(key)?;
            }
        }
    }
    for k in json
        .get_mut("locks")
        .and_then(|l| l.get_mut("keys"))
        .and_then(J::as_array_mut)
        .into_iter()
        .flatten()
    {
        inline(k)?;
    }
    // Image signers' keys and Fulcio roots, Rekor keys and registry CAs: files too.
    if let Some(images) = json.get_mut("images") {
        for signer in images
            .get_mut("signers")
            .and_then(J::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(k) = signer.get_mut("key") {
                inline(k)?;
            }
            for r in signer
                .get_mut("fulcioRoots")
                .and_then(J::as_array_mut)
                .into_iter()
                .flatten()
            {
                inline(r)?;
            }
        }
        for k in images
            .get_mut("rekorKeys")
            .and_then(J::as_array_mut)
            .into_iter()
            .flatten()
        {
            inline(k)?;
        }
        if let Some(reg) = images.get_mut("registries") {
            for c in reg
                .get_mut("ca")
                .and_then(J::as_array_mut)
                .into_iter()
                .flatten()
            {
                inline(c)?;
            }
        }
    }
    if !inlined {
        return Ok(text);
    }
    let yaml =
        serde_saphyr::to_string(&json).map_err(|e| anyhow::anyhow!("cannot write YAML: {e}"))?;
    Ok(format!(
        "# {} with the key and certificate files inline (the pod cannot read them)\n{yaml}",
        path.display()
    ))
}

const README: &str = r#"# sostle bootstrap

Apply in this order:

1. `kubectl apply -f namespaces.yaml` — the nine layer namespaces, labelled `sostle-layer`.
2. `sh chaos-pool/az.sh` (or `terraform -chdir=chaos-pool apply`) — the spot chaos pool:
   Standard_B2s_v2, autoscaler 0→4, eviction Delete, taint `chaos=true:NoSchedule`.
3. The webhook's serving certificate — with cert-manager installed, nothing to do:
   `webhook.yaml` holds an Issuer and a Certificate, and cert-manager injects the CA into the
   webhook configurations. Without cert-manager, make one with openssl and skip those two objects:

   ```sh
   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
     -keyout tls.key -out tls.crt -subj "/CN=sostle-webhook.sostle-system.svc" \
     -addext "subjectAltName=DNS:sostle-webhook.sostle-system.svc"
   kubectl -n sostle-system create secret tls sostle-webhook-tls --cert=tls.crt --key=tls.key
   # then set every webhook's clientConfig.caBundle to: base64 -w0 tls.crt
   ```
4. `kubectl apply -f webhook.yaml` — Deployment (3 replicas, anti-affinity, PDB), Service,
   ConfigMap with the SostleConfig, and the validating (one entry per layer) and mutating
   (trial) webhook configurations. L0–L2 fail open (`Ignore`, 2 s), L3 and up and trial fail
   closed (`Fail`, 5 s). One more validating entry, `namespaces.validate.sostle.eose.ca`
   (`Fail`), lets only the config's `layers.writers` add, change or remove a namespace's
   `sostle-layer` label or create a namespace whose name puts it in a layer: before applying,
   list there who may (e.g. `group:system:masters`, your GitOps service account). Exemptions
   are honoured only with an approval signed by a key in the reviewer's `crew[].keys`.
   With `locks.keys` in the config, `deny_no_mecipol_image` reads each image's MECIPOL
   attestation from its registry (what `sostle lock --attach` pushes), and with
   `images.signers` every image at L3–L7 must carry a cosign signature by one of them; the
   webhook then reads registry logins from the optional Secret `sostle-registry-credentials`
   (`kubectl create secret docker-registry sostle-registry-credentials -n sostle-system …`).

5. `policy/` — the suite as Rego for conftest, in CI or on a laptop:
   `conftest test --all-namespaces -p policy -d policy/data.json manifest.yaml`.

`sostle-system` carries no `sostle-layer` label, so no sostle webhook ever governs sostle itself,
and `kube-system` is never sent.
"#;

fn write_yaml(path: &Path, docs: &[J]) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    crate::commands::trial::print_yaml(docs, &mut f)
}

pub fn run(args: BootstrapArgs) -> anyhow::Result<u8> {
    let config = crate::settings::config(args.config.as_deref())?;
    let cluster = args
        .cluster
        .clone()
        .or_else(|| config.cluster.name.clone())
        .unwrap_or_else(|| "my-aks-cluster".into());
    let group = args
        .resource_group
        .clone()
        .or_else(|| config.cluster.resource_group.clone())
        .unwrap_or_else(|| "my-resource-group".into());
    let config_yaml = match &args.config {
        Some(p) => config_for_cluster(p)?,
        None => "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n".to_string(),
    };
    let ns = namespaces(&config);
    let image = webhook_image(&args.image, args.image_digest.as_deref())?;
    let endpoint = match (&args.webhook_url, &args.webhook_ca) {
        (Some(url), Some(ca)) => {
            if !url.starts_with("https://") {
                anyhow::bail!("--webhook-url {url}: the API server calls webhooks over https");
            }
            let pem =
                std::fs::read(ca).with_context(|| format!("--webhook-ca {}", ca.display()))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                anyhow::bail!("--webhook-ca {}: not a PEM certificate", ca.display());
            }
            use base64::Engine as _;
            Some(Endpoint {
                url: url.clone(),
                ca_bundle: base64::engine::general_purpose::STANDARD.encode(pem),
            })
        }
        _ => None,
    };
    let wh = webhook(
        &config,
        &config_yaml,
        &image,
        config.images.enabled() || config.locks.from_registry(),
        endpoint.as_ref(),
    );
    if let Some(part) = args.print {
        let mut out = std::io::stdout().lock();
        match part {
            BootstrapPart::Namespaces => crate::commands::trial::print_yaml(&ns, &mut out)?,
            BootstrapPart::Az => write!(out, "{}", az_script(&config, &cluster, &group))?,
            BootstrapPart::Terraform => write!(out, "{}", terraform(&config, &cluster, &group))?,
            BootstrapPart::Webhook => crate::commands::trial::print_yaml(&wh, &mut out)?,
            BootstrapPart::Rego => write!(out, "{}", sostle_rego::single_module(&config))?,
        }
        return Ok(crate::exit::OK);
    }
    let Some(dir) = args.out else {
        anyhow::bail!("give --out DIR (or --print PART)");
    };
    std::fs::create_dir_all(dir.join("chaos-pool"))
        .with_context(|| format!("{}", dir.display()))?;
    write_yaml(&dir.join("namespaces.yaml"), &ns)?;
    write_yaml(&dir.join("webhook.yaml"), &wh)?;
    std::fs::write(
        dir.join("chaos-pool/az.sh"),
        az_script(&config, &cluster, &group),
    )?;
    std::fs::write(
        dir.join("chaos-pool/main.tf"),
        terraform(&config, &cluster, &group),
    )?;
    std::fs::write(dir.join("README.md"), README)?;
    crate::commands::policy::write_policy_dir(&dir.join("policy"), &config)?;
    for f in [
        "README.md",
        "namespaces.yaml",
        "webhook.yaml",
        "chaos-pool/az.sh",
        "chaos-pool/main.tf",
        "policy/",
    ] {
        println!("{}", dir.join(f).display());
    }
    Ok(crate::exit::OK)
}
