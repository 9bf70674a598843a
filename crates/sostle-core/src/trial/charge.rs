//! The charge of a trial (SPEC §7): what is put on trial (the subject: its resources, images,
//! manifest digests and documents) and what the charge found (outcome counts at the target
//! layer and in the trial namespace, the failures an exemption could cover and those that
//! must be fixed).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value as J;

use super::{LiveEvidence, Novelty, VERDICT_EXCLUDED};
use crate::config::Config;
use crate::eval::Engine;
use crate::layer::Layer;
use crate::report::{Outcome, ResourceReport};

/// One resource of the subject, where it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectResource {
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, if set.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// The file it was read from.
    pub file: String,
    /// Its document number in that file.
    pub document: usize,
}

/// The SHA-256 of one charged document (its canonical JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentDigest {
    /// The file.
    pub file: String,
    /// The document number.
    pub document: usize,
    /// Hex SHA-256.
    pub sha256: String,
}

/// What is put on trial.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// The resources, in file order.
    pub resources: Vec<SubjectResource>,
    /// Every container image, each once, in first-seen order.
    pub images: Vec<String>,
    /// The digest of each document.
    pub digests: Vec<DocumentDigest>,
    /// The documents themselves (JSON).
    pub documents: Vec<J>,
}

impl Subject {
    /// The names of the subject's resources: which pods in the evidence are the trial's.
    pub fn workload_names(&self) -> Vec<String> {
        self.resources.iter().map(|r| r.name.clone()).collect()
    }

    /// The subject as it stands: the charged documents, with the objects of the latest live
    /// re-check replacing the charged ones of the same kind and name.
    pub fn current_documents(&self, latest_live: Option<&LiveEvidence>) -> Vec<J> {
        let mut docs = self.documents.clone();
        let key = |o: &J| {
            (
                o.get("kind").cloned(),
                o.get("metadata").and_then(|m| m.get("name")).cloned(),
            )
        };
        for l in latest_live
            .map(|l| l.documents.as_slice())
            .unwrap_or_default()
        {
            let k = key(l);
            docs.retain(|x| key(x) != k);
            docs.push(l.clone());
        }
        docs
    }
}

/// Every image of `objects`, each once, in first-seen order: a repeated image anywhere in the
/// subject is one image, so it gets one lock.
pub fn subject_images(objects: &[J]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut v: Vec<String> = objects
        .iter()
        .flat_map(crate::workload::json_images)
        .collect();
    v.retain(|i| seen.insert(i.clone()));
    v
}

/// A failing policy on one resource, as the charge lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The policy.
    pub policy: String,
    /// `kind/namespace/name`.
    pub resource: String,
    /// The layer it fails at.
    pub layer: Layer,
    /// What an exemption would name (`namespace/name`).
    #[serde(rename = "applies-to")]
    pub applies_to: String,
    /// The first violation's message.
    pub why: Option<String>,
}

/// A list per place the charge evaluated: the target layer and the trial namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtBoth<T> {
    /// At the target layer.
    pub target: T,
    /// In `chaos-trial`.
    pub trial: T,
}

/// Results per outcome (`pass`, `fail`, …).
pub type OutcomeCounts = BTreeMap<String, usize>;

/// What the charge found (the default: nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    /// Outcome counts at the target layer.
    pub at_target: OutcomeCounts,
    /// Outcome counts in the trial namespace.
    pub in_trial_namespace: OutcomeCounts,
    /// Failures an exemption could cover.
    pub exemptions_needed: AtBoth<Vec<Failure>>,
    /// Failures no exemption covers at that layer.
    pub must_fix: AtBoth<Vec<Failure>>,
    /// How new the failure pattern is.
    pub novelty: Novelty,
}

impl Charge {
    /// The charge of a subject evaluated at `target` and in the trial namespace.
    pub fn new(
        at_target: &[ResourceReport],
        target: Layer,
        in_trial: &[ResourceReport],
        config: &Config,
        novelty: Novelty,
    ) -> Charge {
        let (need_target, hard_target) = classify_failures(at_target, target, config);
        let (need_trial, hard_trial) = classify_failures(in_trial, Layer::Trial, config);
        Charge {
            at_target: outcome_counts(at_target),
            in_trial_namespace: outcome_counts(in_trial),
            exemptions_needed: AtBoth {
                target: need_target,
                trial: need_trial,
            },
            must_fix: AtBoth {
                target: hard_target,
                trial: hard_trial,
            },
            novelty,
        }
    }
}

/// Results per outcome over `reports`.
pub fn outcome_counts(reports: &[ResourceReport]) -> OutcomeCounts {
    let mut counts = OutcomeCounts::new();
    for r in reports.iter().flat_map(|r| &r.results) {
        *counts.entry(r.outcome.as_str().to_string()).or_insert(0) += 1;
    }
    counts
}

/// The failures of `reports` (evaluated at `layer`) the verdict judges, split into those an
/// exemption rule of the suite covers at that layer and those it does not.
pub fn classify_failures(
    reports: &[ResourceReport],
    layer: Layer,
    config: &Config,
) -> (Vec<Failure>, Vec<Failure>) {
    let mut exemptable = Vec::new();
    let mut hard = Vec::new();
    for r in reports {
        for res in &r.results {
            if res.outcome != Outcome::Fail || VERDICT_EXCLUDED.contains(&&*res.policy) {
                continue;
            }
            let item = Failure {
                policy: res.policy.to_string(),
                resource: r.resource.display(),
                layer,
                applies_to: Engine::exemption_target(&r.resource),
                why: res.violations.first().map(|v| v.message.clone()),
            };
            if config
                .policy(&res.policy)
                .is_some_and(|p| p.exempt.iter().any(|rule| rule.layers.contains(layer)))
            {
                exemptable.push(item);
            } else {
                hard.push(item);
            }
        }
    }
    (exemptable, hard)
}
