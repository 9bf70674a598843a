//! The cluster side of sostle as data: the nine layer namespaces, the spot chaos pool (an az
//! script and Terraform), the webhook's objects (Deployment, Service, PDB, certificate, the
//! validating and mutating configurations) and the config as the pod reads it. `sostle
//! bootstrap` prints them as files; every object is checked against the Kubernetes API types
//! by the tests, and applied to a real API server by the cluster tests.

use serde_json::{json, Value as J};
use sostle_core::epoch::GAMMA1_LABEL;
use sostle_core::{Config, Layer};

mod config;
mod webhook;

pub use config::{config_for_cluster, ConfigError};
pub use webhook::{webhook, webhook_image, Endpoint, ImageError};

/// Where the webhook runs (a namespace with no `sostle-layer` label: never governed by itself).
pub const SYSTEM_NAMESPACE: &str = "sostle-system";

fn description(l: Layer) -> &'static str {
    match l {
        Layer::L0 => "L0 public: open, no gate; results reported, nothing denied by the gate",
        Layer::L1 => "L1 read-only: warns on declared write operations",
        Layer::L2 => "L2 local: Google SSO expected",
        Layer::L3 => "L3 crew: registered crew members only",
        Layer::L4 => "L4 token: crew with a valid SOSTLE token",
        Layer::L5 => "L5 gated: Kay's explicit approval (her signature over the pod template)",
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

/// The README written beside the files.
pub const README: &str = r#"# sostle bootstrap

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
