//! Trials (SPEC §7), the pure parts: evidence parsing (Falco, Trivy, Kubernetes events), the
//! PELEGO failure fingerprint and its novelty, the verdict rules, and the manifest rewrites of
//! burst (chaos scheduling) and promote (back to a layer, with the lock). The ledger and the
//! command line drive these; nothing here does I/O.

use std::collections::{BTreeSet, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as J};

use crate::config::Config;
use crate::eval::{Outcome, ResourceReport};
use crate::layer::Layer;
use crate::suite::Verdict as PolicyVerdict;

/// The trial namespace.
pub const TRIAL_NAMESPACE: &str = "chaos-trial";
/// Label naming a workload's trial.
pub const TRIAL_LABEL: &str = "sostle.eose.ca/trial";
/// Hours of clean Falco window a lock needs.
pub const CLEAN_HOURS: i64 = 24;

/// A problem in an evidence file, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EvidenceError {
    /// 1-based line (0: the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What a Falco file says about a trial.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalcoSummary {
    /// Events read.
    pub events: usize,
    /// Events on the trial's pods.
    pub on_trial_pods: usize,
    /// Runtime violations: priority ≥ Warning on the trial's pods in chaos-trial.
    pub violations: Vec<FalcoViolation>,
    /// Latest event time seen (RFC 3339), if any.
    pub latest: Option<String>,
}

/// One runtime violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalcoViolation {
    /// Event time.
    pub time: String,
    /// Falco rule.
    pub rule: String,
    /// Priority.
    pub priority: String,
    /// Pod.
    pub pod: String,
}

fn priority_rank(p: &str) -> Option<u8> {
    Some(match p.to_ascii_lowercase().as_str() {
        "emergency" => 7,
        "alert" => 6,
        "critical" => 5,
        "error" => 4,
        "warning" => 3,
        "notice" => 2,
        "informational" | "info" => 1,
        "debug" => 0,
        _ => return None,
    })
}

/// Whether a pod belongs to the trial: in `chaos-trial`, named like one of the subject's
/// workloads (the pod itself, or `<workload>-…` as controllers name pods).
pub fn is_trial_pod(namespace: &str, pod: &str, workloads: &[String]) -> bool {
    namespace == TRIAL_NAMESPACE
        && workloads.iter().any(|w| {
            pod == w
                || pod
                    .strip_prefix(w.as_str())
                    .is_some_and(|r| r.starts_with('-'))
        })
}

/// Parses Falco JSON lines (`json_output: true`).
pub fn parse_falco(text: &str, workloads: &[String]) -> Result<FalcoSummary, EvidenceError> {
    let mut s = FalcoSummary::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: J = serde_json::from_str(line).map_err(|e| EvidenceError {
            line: line_no,
            message: format!("not a Falco JSON event: {e}"),
        })?;
        let field = |k: &str| v.get(k).and_then(J::as_str);
        let (Some(priority), Some(rule)) = (field("priority"), field("rule")) else {
            return Err(EvidenceError {
                line: line_no,
                message: "a Falco event needs `priority` and `rule`".into(),
            });
        };
        let rank = priority_rank(priority).ok_or_else(|| EvidenceError {
            line: line_no,
            message: format!("unknown Falco priority `{priority}`"),
        })?;
        // `time` is RFC 3339 in Falco's output, but real events carry variants (the Falco docs
        // show `…046Z+2`); fall back to `output_fields["evt.time"]` (ns since the epoch).
        let time = match field("time").map(|t| (t, t.parse::<Timestamp>())) {
            Some((_, Ok(t))) => t.to_string(),
            other => v
                .get("output_fields")
                .and_then(|o| o.get("evt.time"))
                .and_then(J::as_i64)
                .and_then(|ns| Timestamp::from_nanosecond(i128::from(ns)).ok())
                .map(|t| t.to_string())
                .or_else(|| other.map(|(raw, _)| raw.to_string()))
                .unwrap_or_default(),
        };
        s.events += 1;
        if time.parse::<Timestamp>().is_ok()
            && s.latest.as_deref().is_none_or(|l| time.as_str() > l)
        {
            s.latest = Some(time.clone());
        }
        let of = v.get("output_fields");
        let ofield = |k: &str| of.and_then(|o| o.get(k)).and_then(J::as_str).unwrap_or("");
        let (ns, pod) = (ofield("k8s.ns.name"), ofield("k8s.pod.name"));
        if is_trial_pod(ns, pod, workloads) {
            s.on_trial_pods += 1;
            if rank >= 3 {
                s.violations.push(FalcoViolation {
                    time,
                    rule: rule.to_string(),
                    priority: priority.to_string(),
                    pod: pod.to_string(),
                });
            }
        }
    }
    Ok(s)
}

/// What a Trivy report says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrivySummary {
    /// `ArtifactName`.
    pub artifact: String,
    /// Distinct CRITICAL CVE ids, sorted.
    pub critical: Vec<String>,
    /// Distinct vulnerability ids of any severity.
    pub total: usize,
    /// `Metadata.RepoDigests`: `repository@sha256:…` of the scanned image.
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

/// The digest (`sha256:…`) the trial actually ran for `image`: the live pod's
/// `status.containerStatuses[].imageID` for a container running that image, else a Trivy
/// report's `RepoDigests` entry for its repository. `None` when no evidence says.
pub fn ran_digest(image: &str, trivy: &[TrivySummary], live: &[J]) -> Option<String> {
    let digest_of = |s: &str| {
        let d = s.rsplit_once('@')?.1;
        d.starts_with("sha256:").then(|| d.to_string())
    };
    if let Some(d) = image
        .rsplit_once('@')
        .and_then(|(_, d)| d.starts_with("sha256:").then_some(d))
    {
        return Some(d.to_string());
    }
    for pod in live {
        for status in ["containerStatuses", "initContainerStatuses"] {
            for c in pod
                .pointer(&format!("/status/{status}"))
                .and_then(J::as_array)
                .into_iter()
                .flatten()
            {
                if c.get("image").and_then(J::as_str) == Some(image) {
                    if let Some(d) = c.get("imageID").and_then(J::as_str).and_then(digest_of) {
                        return Some(d);
                    }
                }
            }
        }
    }
    let repo = crate::policies::parse_image(image).name;
    trivy
        .iter()
        .flat_map(|t| &t.repo_digests)
        .find(|rd| rd.rsplit_once('@').is_some_and(|(r, _)| r == repo))
        .and_then(|rd| digest_of(rd))
}

/// Parses a Trivy JSON report (SchemaVersion 2).
pub fn parse_trivy(text: &str) -> Result<TrivySummary, EvidenceError> {
    let v: J = serde_json::from_str(text).map_err(|e| EvidenceError {
        line: e.line(),
        message: format!("not JSON: {e}"),
    })?;
    if v.get("SchemaVersion").and_then(J::as_i64) != Some(2) {
        return Err(EvidenceError {
            line: 0,
            message: "not a Trivy report: `SchemaVersion: 2` missing".into(),
        });
    }
    let results = match v.get("Results") {
        None | Some(J::Null) => Vec::new(),
        Some(J::Array(a)) => a.clone(),
        Some(_) => {
            return Err(EvidenceError {
                line: 0,
                message: "`Results` is not a list".into(),
            })
        }
    };
    let mut critical = BTreeSet::new();
    let mut all = HashSet::new();
    for r in &results {
        for vuln in r
            .get("Vulnerabilities")
            .and_then(J::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = vuln.get("VulnerabilityID").and_then(J::as_str) else {
                return Err(EvidenceError {
                    line: 0,
                    message: "a vulnerability without `VulnerabilityID`".into(),
                });
            };
            all.insert(id.to_string());
            if vuln.get("Severity").and_then(J::as_str) == Some("CRITICAL") {
                critical.insert(id.to_string());
            }
        }
    }
    let repo_digests = v
        .pointer("/Metadata/RepoDigests")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    Ok(TrivySummary {
        repo_digests,
        artifact: v
            .get("ArtifactName")
            .and_then(J::as_str)
            .unwrap_or("")
            .to_string(),
        critical: critical.into_iter().collect(),
        total: all.len(),
    })
}

/// What `kubectl get events -o json` says about the trial's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsSummary {
    /// Events read.
    pub events: usize,
    /// Evictions (spot or otherwise) of the trial's pods: each is a forced restart survived.
    pub evictions: usize,
}

/// Event reasons that mean a pod was evicted or preempted.
pub const EVICTION_REASONS: [&str; 5] = [
    "Evicted",
    "Preempted",
    "Preempting",
    "SpotEviction",
    "TaintManagerEviction",
];

/// Parses `kubectl get events -o json` (a `List`/`EventList` of `Event`).
pub fn parse_events(text: &str, workloads: &[String]) -> Result<EventsSummary, EvidenceError> {
    let v: J = serde_json::from_str(text).map_err(|e| EvidenceError {
        line: e.line(),
        message: format!("not JSON: {e}"),
    })?;
    let Some(items) = v.get("items").and_then(J::as_array) else {
        return Err(EvidenceError {
            line: 0,
            message: "not an event list: `items` missing (use `kubectl get events -o json`)".into(),
        });
    };
    let mut s = EventsSummary::default();
    for e in items {
        s.events += 1;
        let reason = e.get("reason").and_then(J::as_str).unwrap_or("");
        let obj = e.get("involvedObject").or_else(|| e.get("regarding"));
        let ns = obj
            .and_then(|o| o.get("namespace"))
            .and_then(J::as_str)
            .unwrap_or("");
        let name = obj
            .and_then(|o| o.get("name"))
            .and_then(J::as_str)
            .unwrap_or("");
        if EVICTION_REASONS.contains(&reason) && is_trial_pod(ns, name, workloads) {
            s.evictions += 1;
        }
    }
    Ok(s)
}

/// The PELEGO failure pattern: sorted `policy|kind|path` of every failure, container indexes
/// replaced by `*` so the same mistake in another container is the same pattern.
pub fn fingerprint<'a>(reports: impl IntoIterator<Item = &'a ResourceReport>) -> Vec<String> {
    let mut set = BTreeSet::new();
    for r in reports {
        for res in &r.results {
            if res.outcome != Outcome::Fail {
                continue;
            }
            for v in &res.violations {
                set.insert(format!(
                    "{}|{}|{}",
                    res.policy,
                    r.resource.kind,
                    normalize_path(&v.path)
                ));
            }
        }
    }
    set.into_iter().collect()
}

fn normalize_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut in_index = false;
    for c in p.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[*]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// How new a failure pattern is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "novelty", rename_all = "lowercase")]
pub enum Novelty {
    /// Nothing failed.
    Clean,
    /// The same pattern was seen before.
    Known {
        /// The first trial that showed it.
        first_seen: String,
    },
    /// Not seen before.
    Novel {
        /// 1 − max Jaccard similarity to earlier patterns (1 when there are none).
        distance: f64,
        /// The nearest earlier trial, if any.
        nearest: Option<String>,
    },
}

impl std::fmt::Display for Novelty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Novelty::Clean => f.write_str("clean (no failures to fingerprint)"),
            Novelty::Known { first_seen } => write!(f, "known (first seen in {first_seen})"),
            Novelty::Novel { distance, nearest } => match nearest {
                Some(n) => write!(f, "NOVEL (distance {distance:.3} to {n})"),
                None => write!(f, "NOVEL (distance {distance:.3}: no earlier pattern)"),
            },
        }
    }
}

/// Novelty of `pattern` against earlier `(trial, pattern)` records (oldest first).
pub fn novelty(pattern: &[String], earlier: &[(String, Vec<String>)]) -> Novelty {
    if pattern.is_empty() {
        return Novelty::Clean;
    }
    let a: HashSet<&String> = pattern.iter().collect();
    let mut best: Option<(f64, &str)> = None;
    for (trial, p) in earlier {
        if p.is_empty() {
            continue;
        }
        let b: HashSet<&String> = p.iter().collect();
        let inter = a.intersection(&b).count() as f64;
        let union = a.union(&b).count() as f64;
        let sim = if union == 0.0 { 0.0 } else { inter / union };
        if (sim - 1.0).abs() < f64::EPSILON {
            return Novelty::Known {
                first_seen: trial.clone(),
            };
        }
        if best.is_none_or(|(s, _)| sim > s) {
            best = Some((sim, trial));
        }
    }
    match best {
        Some((sim, t)) => Novelty::Novel {
            distance: 1.0 - sim,
            nearest: Some(t.to_string()),
        },
        None => Novelty::Novel {
            distance: 1.0,
            nearest: None,
        },
    }
}

/// A trial verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrialVerdict {
    /// Every DENY policy passed or was exempted, Falco clean ≥ 24 h, 0 CRITICAL.
    #[serde(rename = "MECIPOL-LOCKED")]
    MecipolLocked,
    /// The only failures are exemptable ones without a valid exemption.
    #[serde(rename = "EXEMPTIONS-PENDING")]
    ExemptionsPending,
    /// A non-exemptable failure, a runtime violation or a CRITICAL CVE.
    #[serde(rename = "DENY-HARD")]
    DenyHard,
    /// Nothing failed hard, but the window has not elapsed (or evidence is missing).
    #[serde(rename = "SPIRALING")]
    Spiraling,
}

impl TrialVerdict {
    /// The verdict's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialVerdict::MecipolLocked => "MECIPOL-LOCKED",
            TrialVerdict::ExemptionsPending => "EXEMPTIONS-PENDING",
            TrialVerdict::DenyHard => "DENY-HARD",
            TrialVerdict::Spiraling => "SPIRALING",
        }
    }
}

/// Policies a trial's verdict does not judge: the gate (it judges who deploys, not the image)
/// and the lock itself (the trial is how a lock is earned).
pub const VERDICT_EXCLUDED: [&str; 2] = ["layer_gate", "deny_no_mecipol_image"];

/// Everything the verdict looks at.
#[derive(Debug, Clone)]
pub struct VerdictInput<'a> {
    /// The subject evaluated at the target layer (charge, and any live re-check).
    pub reports: &'a [ResourceReport],
    /// The target layer.
    pub target: Layer,
    /// When the trial was burst.
    pub burst_at: Option<Timestamp>,
    /// Falco summaries ingested.
    pub falco: &'a [FalcoSummary],
    /// When Falco evidence was last ingested: the window is clean only as far as it was checked.
    pub falco_checked_until: Option<Timestamp>,
    /// Trivy summaries ingested.
    pub trivy: &'a [TrivySummary],
    /// Now.
    pub now: Timestamp,
}

/// The verdict with its reasons, and the Falco clean hours it counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictOutcome {
    /// The verdict.
    pub verdict: TrialVerdict,
    /// Why, one sentence each.
    pub reasons: Vec<String>,
    /// Whole hours of clean Falco window.
    pub falco_clean_hours: i64,
    /// Distinct CRITICAL CVEs in the latest scans.
    pub trivy_critical_cves: usize,
}

/// Applies SPEC §7's verdict rules.
pub fn verdict(input: &VerdictInput<'_>, config: &Config) -> VerdictOutcome {
    let mut hard = Vec::new();
    let mut pending = Vec::new();
    let mut waiting = Vec::new();
    for r in input.reports {
        for res in &r.results {
            if res.outcome != Outcome::Fail || VERDICT_EXCLUDED.contains(&&*res.policy) {
                continue;
            }
            let exemptable = config.policy(&res.policy).is_some_and(|p| {
                p.exempt
                    .iter()
                    .any(|rule| rule.layers.contains(input.target))
            });
            let what = format!(
                "{} fails on {}{}",
                res.policy,
                r.resource.display(),
                res.violations
                    .first()
                    .map(|v| format!(" ({})", v.message))
                    .unwrap_or_default()
            );
            if exemptable {
                let why = res
                    .exemption
                    .as_ref()
                    .map(|j| format!(": exemption refused: {}", j.problems.join("; ")))
                    .unwrap_or_else(|| {
                        format!(": exemptable at {} but not exempted", input.target)
                    });
                pending.push(format!("{what}{why}"));
            } else {
                hard.push(format!("{what}: not exemptable at {}", input.target));
            }
        }
    }
    let violations: Vec<&FalcoViolation> = input.falco.iter().flat_map(|f| &f.violations).collect();
    for v in &violations {
        hard.push(format!(
            "runtime violation: Falco {} `{}` on pod {} at {}",
            v.priority, v.rule, v.pod, v.time
        ));
    }
    // The latest scan per artifact decides.
    let mut latest: Vec<&TrivySummary> = Vec::new();
    for t in input.trivy {
        latest.retain(|x| x.artifact != t.artifact);
        latest.push(t);
    }
    let critical: BTreeSet<&String> = latest.iter().flat_map(|t| &t.critical).collect();
    if !critical.is_empty() {
        hard.push(format!(
            "Trivy reports {} CRITICAL CVE{}: {}",
            critical.len(),
            if critical.len() == 1 { "" } else { "s" },
            critical
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let clean_hours = match input.burst_at {
        None => 0,
        Some(b) => {
            let since = violations
                .iter()
                .filter_map(|v| v.time.parse::<Timestamp>().ok())
                .filter(|t| *t > b)
                .max()
                .unwrap_or(b);
            let until = input
                .falco_checked_until
                .map_or(input.now, |t| t.min(input.now));
            ((until.as_second() - since.as_second()) / 3600).max(0)
        }
    };
    if input.burst_at.is_none() {
        waiting.push(
            "the trial has not been burst yet: `sostle trial burst` starts the window".to_string(),
        );
    } else if clean_hours < CLEAN_HOURS {
        waiting.push(format!(
            "Falco clean for {clean_hours} h of the {CLEAN_HOURS} h window since burst"
        ));
    }
    if input.falco.is_empty() {
        waiting.push("no Falco evidence yet (`sostle trial spiral --falco FILE`)".into());
    }
    if input.trivy.is_empty() {
        waiting.push("no Trivy scan yet (`sostle trial spiral --trivy FILE`)".into());
    }
    let (verdict, reasons) = if !hard.is_empty() {
        hard.extend(pending);
        (TrialVerdict::DenyHard, hard)
    } else if !pending.is_empty() {
        (TrialVerdict::ExemptionsPending, pending)
    } else if !waiting.is_empty() {
        (TrialVerdict::Spiraling, waiting)
    } else {
        (
            TrialVerdict::MecipolLocked,
            vec![format!(
                "every DENY policy of {} passes or is exempted; Falco clean for {clean_hours} h; Trivy reports 0 CRITICAL",
                input.target
            )],
        )
    };
    VerdictOutcome {
        verdict,
        reasons,
        falco_clean_hours: clean_hours,
        trivy_critical_cves: critical.len(),
    }
}

/// Whether every DENY policy (bar [`VERDICT_EXCLUDED`]) passes or is exempted in `reports`, which
/// were evaluated at one layer on `day`.
pub fn layer_clear(reports: &[ResourceReport], config: &Config, day: i64) -> bool {
    reports.iter().all(|r| {
        r.results.iter().all(|res| {
            VERDICT_EXCLUDED.contains(&&*res.policy)
                || res.outcome != Outcome::Fail
                || config
                    .policy(&res.policy)
                    .is_some_and(|p| p.verdict_on(day) == PolicyVerdict::Warn)
        })
    })
}

/// The pod template (`metadata` + `spec`) of a workload; `None` for a Pod, which is its own.
fn pod_template_mut(obj: &mut J) -> Option<&mut J> {
    let at = crate::eval::pod_spec_at(obj.get("kind").and_then(J::as_str).unwrap_or(""))?;
    let (_, template) = at.keys.split_last()?;
    if template.is_empty() {
        return None;
    }
    template
        .iter()
        .try_fold(obj, |node, key| node.get_mut(*key))
}

fn pod_spec_mut(obj: &mut J) -> Option<&mut J> {
    let at = crate::eval::pod_spec_at(obj.get("kind").and_then(J::as_str).unwrap_or(""))?;
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
        sel.insert("pool".into(), json!("chaos"));
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
                if sel.get("pool").and_then(J::as_str) == Some("chaos") {
                    sel.remove("pool");
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
    if crate::eval::WORKLOAD_KINDS.contains(&kind.as_str()) {
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

/// Every image of a workload object (containers, init and ephemeral).
pub fn images(obj: &J) -> Vec<String> {
    let mut o = obj.clone();
    let mut out = Vec::new();
    if let Some(spec) = pod_spec_mut(&mut o) {
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            for c in spec.get(key).and_then(J::as_array).into_iter().flatten() {
                if let Some(i) = c.get("image").and_then(J::as_str) {
                    if !out.iter().any(|x: &String| x == i) {
                        out.push(i.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Canonical JSON: keys sorted at every level, no whitespace — the bytes a profile signature
/// covers.
pub fn canonical_json(v: &J) -> String {
    fn sort(v: &J) -> J {
        match v {
            J::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        out.insert(k.clone(), sort(x));
                    }
                }
                J::Object(out)
            }
            J::Array(a) => J::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn novelty_known_and_novel() {
        let a = vec!["p|K|x".to_string(), "q|K|y".to_string()];
        let earlier = vec![("TRB-CHAOS-001".to_string(), a.clone())];
        assert_eq!(
            novelty(&a, &earlier),
            Novelty::Known {
                first_seen: "TRB-CHAOS-001".into()
            }
        );
        let b = vec!["p|K|x".to_string()];
        match novelty(&b, &earlier) {
            Novelty::Novel { distance, nearest } => {
                assert!((distance - 0.5).abs() < 1e-9);
                assert_eq!(nearest.as_deref(), Some("TRB-CHAOS-001"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(novelty(&[], &earlier), Novelty::Clean);
    }

    #[test]
    fn burst_then_promote_round_trips_scheduling() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "namespace": "x"},
            "spec": {"template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        let b = burst_object(&d, "TRB-CHAOS-001");
        let b2 = burst_object(&b, "TRB-CHAOS-001");
        assert_eq!(b, b2, "burst is idempotent");
        let spec = &b["spec"]["template"]["spec"];
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(spec["nodeSelector"]["pool"], "chaos");
        assert_eq!(b["metadata"]["namespace"], "chaos-trial");
        let p = promote_object(
            &b,
            "sostle-l2-local",
            &LockLabels {
                image: "i:1".into(),
                digest: None,
                profile: "profile-001".into(),
                epoch: 98,
            },
        );
        let spec = &p["spec"]["template"]["spec"];
        assert!(spec.get("tolerations").is_none() && spec.get("nodeSelector").is_none());
        assert_eq!(p["metadata"]["labels"]["mecipol-locked"], "true");
        assert_eq!(
            p["metadata"]["annotations"]["mecipol-profile"],
            "profile-001"
        );
        assert!(p["metadata"]["labels"].get(TRIAL_LABEL).is_none());
    }

    #[test]
    fn the_digest_a_trial_ran_comes_from_the_live_pod_then_trivy() {
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let trivy = [TrivySummary {
            repo_digests: vec![format!("reg.io/team/app@{d2}")],
            ..TrivySummary::default()
        }];
        let pod = serde_json::json!({"status": {"containerStatuses": [
            {"image": "reg.io/team/app:1.4", "imageID": format!("docker-pullable://reg.io/team/app@{d1}")}]}});
        assert_eq!(
            ran_digest("reg.io/team/app:1.4", &trivy, std::slice::from_ref(&pod)),
            Some(d1.clone())
        );
        assert_eq!(
            ran_digest("reg.io/team/app:1.4", &trivy, &[]),
            Some(d2.clone())
        );
        assert_eq!(ran_digest("reg.io/other:1.4", &trivy, &[pod]), None);
        assert_eq!(ran_digest(&format!("x/y@{d1}"), &[], &[]), Some(d1));
    }

    #[test]
    fn the_clean_window_counts_only_as_far_as_falco_was_checked() {
        let config = Config::default();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let falco = [FalcoSummary::default()];
        let trivy = [TrivySummary {
            artifact: "a".into(),
            critical: vec![],
            total: 0,
            repo_digests: vec![],
        }];
        let input = |checked: &str| VerdictInput {
            reports: &[],
            target: Layer::L2,
            burst_at: Some(t("2026-05-11T10:00:00Z")),
            falco: &falco,
            falco_checked_until: Some(t(checked)),
            trivy: &trivy,
            now: t("2026-05-13T10:00:00Z"),
        };
        let early = verdict(&input("2026-05-11T11:00:00Z"), &config);
        assert_eq!(
            early.verdict,
            TrialVerdict::Spiraling,
            "{:?}",
            early.reasons
        );
        assert_eq!(early.falco_clean_hours, 1);
        let late = verdict(&input("2026-05-12T10:30:00Z"), &config);
        assert_eq!(
            late.verdict,
            TrialVerdict::MecipolLocked,
            "{:?}",
            late.reasons
        );
        assert_eq!(late.falco_clean_hours, 24);
    }

    #[test]
    fn falco_violations_only_on_trial_pods() {
        let text = r#"{"priority":"Warning","rule":"Terminal shell","time":"2026-05-12T00:00:00Z","output_fields":{"k8s.ns.name":"chaos-trial","k8s.pod.name":"web-5d8f-abc"}}
{"priority":"Critical","rule":"Other","time":"2026-05-12T00:00:00Z","output_fields":{"k8s.ns.name":"default","k8s.pod.name":"web-5d8f-abc"}}
{"priority":"Notice","rule":"Quiet","time":"2026-05-12T00:00:00Z","output_fields":{"k8s.ns.name":"chaos-trial","k8s.pod.name":"web-1"}}"#;
        let s = parse_falco(text, &["web".into()]).unwrap();
        assert_eq!((s.events, s.on_trial_pods, s.violations.len()), (3, 2, 1));
        assert_eq!(parse_falco("{\"rule\": 1}\n", &[]).unwrap_err().line, 1);
    }
}
