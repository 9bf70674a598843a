//! The config file as written: serde types that mirror its YAML keys one to one (unknown keys
//! are errors), before [`super::validate`] turns them into a [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::suite::Verdict;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) api_version: String,
    pub(super) kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) epoch: Option<RawEpoch>,
    #[serde(default)]
    pub(super) default_layer: Option<String>,
    #[serde(default)]
    pub(super) namespaces: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) crew: Vec<RawCrew>,
    #[serde(default)]
    pub(super) suite: Option<RawSuite>,
    #[serde(default)]
    pub(super) layers: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub(super) gates: BTreeMap<String, RawGate>,
    #[serde(default)]
    pub(super) tokens: Option<RawTokens>,
    #[serde(default)]
    pub(super) exemptions: Option<RawExemptions>,
    #[serde(default)]
    pub(super) chaos_pool: Option<RawChaosPool>,
    #[serde(default)]
    pub(super) cluster: Option<RawCluster>,
    #[serde(default)]
    pub(super) images: Option<RawImages>,
    #[serde(default)]
    pub(super) locks: Option<RawLocks>,
    #[serde(default)]
    pub(super) rekor: Option<RawRekor>,
    #[serde(default)]
    pub(super) ledger: Option<RawLedger>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawLedger {
    pub(super) url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawRekor {
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) key: Option<String>,
    #[serde(default)]
    pub(super) required: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawLocks {
    #[serde(default)]
    pub(super) keys: Vec<String>,
    #[serde(default)]
    pub(super) source: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawImages {
    #[serde(default)]
    pub(super) signers: Vec<RawSigner>,
    #[serde(default)]
    pub(super) rekor_keys: Vec<String>,
    #[serde(default)]
    pub(super) require: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub(super) registries: Option<RawRegistries>,
    #[serde(default)]
    pub(super) cache: Option<RawCache>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawSigner {
    pub(super) name: String,
    #[serde(default)]
    pub(super) key: Option<String>,
    #[serde(default)]
    pub(super) identity: Option<String>,
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) fulcio_roots: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawRegistries {
    #[serde(default)]
    pub(super) insecure: Vec<String>,
    #[serde(default)]
    pub(super) ca: Vec<String>,
    #[serde(default)]
    pub(super) timeout_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawCache {
    #[serde(default)]
    pub(super) ttl_seconds: Option<u32>,
    #[serde(default)]
    pub(super) entries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawCluster {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) resource_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawEpoch {
    pub(super) origin: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawCrew {
    pub(super) name: String,
    #[serde(default)]
    pub(super) identity: Option<String>,
    pub(super) roles: Vec<String>,
    #[serde(default)]
    pub(super) keys: Vec<String>,
    #[serde(default)]
    pub(super) subjects: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawSuite {
    #[serde(default)]
    pub(super) policies: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    pub(super) user_policy_exemptable: Option<Vec<RawUserExempt>>,
    #[serde(default)]
    pub(super) user_policy_scope: Vec<RawUserScope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawUserScope {
    pub(super) rules: Vec<String>,
    pub(super) layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawUserExempt {
    pub(super) layers: Vec<String>,
    pub(super) patterns: Vec<String>,
    #[serde(default)]
    pub(super) except: Vec<String>,
    #[serde(default)]
    pub(super) reviewed_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default)]
    pub(super) layers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) verdict: Option<Verdict>,
    #[serde(default)]
    pub(super) escalation: Option<Option<RawEscalation>>,
    #[serde(default)]
    pub(super) enabled: Option<bool>,
    #[serde(default)]
    pub(super) floor: Option<f64>,
    #[serde(default)]
    pub(super) exemptable: Option<Vec<RawExemptRule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawEscalation {
    pub(super) day: i64,
    pub(super) verdict: Verdict,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawExemptRule {
    pub(super) layers: Vec<String>,
    #[serde(default)]
    pub(super) requires_open_trial: bool,
    #[serde(default)]
    pub(super) reviewed_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawLayer {
    #[serde(default)]
    pub(super) namespace: Option<String>,
    #[serde(default)]
    pub(super) approvers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawGate {
    pub(super) open: bool,
    #[serde(default)]
    pub(super) opened_by: Option<String>,
    #[serde(default)]
    pub(super) opened_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawTokens {
    #[serde(default)]
    pub(super) secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawExemptions {
    #[serde(default)]
    pub(super) max_days: Option<u32>,
    #[serde(default)]
    pub(super) writers: Vec<String>,
    #[serde(default)]
    pub(super) require_approval: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawChaosPool {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) vm_size: Option<String>,
    #[serde(default)]
    pub(super) min_count: Option<u32>,
    #[serde(default)]
    pub(super) max_count: Option<u32>,
}
