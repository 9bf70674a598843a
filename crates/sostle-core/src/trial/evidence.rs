//! Trial evidence (SPEC §7): Falco, Trivy and Kubernetes events files parsed into summaries,
//! and the digest an image ran as.

use std::collections::{BTreeSet, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value as J;

use super::TRIAL_NAMESPACE;

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
    let repo = crate::images::parse_image(image).name;
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

/// The kinds of record in a trial's history: the phases (charge, burst, verdict, lock) and
/// the evidence ingested by `trial spiral` (falco, trivy, events, live).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    /// The charge: what the subject is and what the charge found.
    Charge,
    /// The burst into the trial namespace.
    Burst,
    /// A Falco summary.
    Falco,
    /// A Trivy summary.
    Trivy,
    /// A Kubernetes events summary.
    Events,
    /// A live re-check of the running objects.
    Live,
    /// A verdict reached.
    Verdict,
    /// The lock: the profiles made.
    Lock,
}

impl EvidenceKind {
    /// Every kind.
    pub const ALL: [EvidenceKind; 8] = [
        EvidenceKind::Charge,
        EvidenceKind::Burst,
        EvidenceKind::Falco,
        EvidenceKind::Trivy,
        EvidenceKind::Events,
        EvidenceKind::Live,
        EvidenceKind::Verdict,
        EvidenceKind::Lock,
    ];

    /// The name the ledger stores.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Charge => "charge",
            EvidenceKind::Burst => "burst",
            EvidenceKind::Falco => "falco",
            EvidenceKind::Trivy => "trivy",
            EvidenceKind::Events => "events",
            EvidenceKind::Live => "live",
            EvidenceKind::Verdict => "verdict",
            EvidenceKind::Lock => "lock",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<EvidenceKind> {
        EvidenceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Trivy summary as recorded: the scan, and the CRITICAL CVEs earlier scans of the trial had
/// not shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrivyEvidence {
    /// The scan.
    #[serde(flatten)]
    pub summary: TrivySummary,
    /// CRITICAL CVEs new in this scan.
    #[serde(default)]
    pub new_critical: Vec<String>,
}

/// A live re-check: the running objects and what fails on them at the target layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveEvidence {
    /// The objects (`kubectl get … -o yaml`), as JSON.
    pub documents: Vec<J>,
    /// `policy on kind/namespace/name` for each failure.
    pub failures: Vec<String>,
}

/// The burst record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BurstRecord {
    /// When the trial window started (the first burst).
    pub burst_at: Option<Timestamp>,
    /// How many documents were burst.
    pub documents: usize,
}

/// The lock record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// The profiles made, one per image.
    pub profiles: Vec<String>,
}

/// One record of a trial's history, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// See [`EvidenceKind::Charge`].
    Charge(super::Charge),
    /// See [`EvidenceKind::Burst`].
    Burst(BurstRecord),
    /// See [`EvidenceKind::Falco`].
    Falco(FalcoSummary),
    /// See [`EvidenceKind::Trivy`].
    Trivy(TrivyEvidence),
    /// See [`EvidenceKind::Events`].
    Events(EventsSummary),
    /// See [`EvidenceKind::Live`].
    Live(LiveEvidence),
    /// See [`EvidenceKind::Verdict`].
    Verdict(super::VerdictOutcome),
    /// See [`EvidenceKind::Lock`].
    Lock(LockRecord),
}

impl Evidence {
    /// Its kind.
    pub fn kind(&self) -> EvidenceKind {
        match self {
            Evidence::Charge(_) => EvidenceKind::Charge,
            Evidence::Burst(_) => EvidenceKind::Burst,
            Evidence::Falco(_) => EvidenceKind::Falco,
            Evidence::Trivy(_) => EvidenceKind::Trivy,
            Evidence::Events(_) => EvidenceKind::Events,
            Evidence::Live(_) => EvidenceKind::Live,
            Evidence::Verdict(_) => EvidenceKind::Verdict,
            Evidence::Lock(_) => EvidenceKind::Lock,
        }
    }

    /// The JSON the ledger stores.
    pub fn to_json(&self) -> Result<J, serde_json::Error> {
        match self {
            Evidence::Charge(x) => serde_json::to_value(x),
            Evidence::Burst(x) => serde_json::to_value(x),
            Evidence::Falco(x) => serde_json::to_value(x),
            Evidence::Trivy(x) => serde_json::to_value(x),
            Evidence::Events(x) => serde_json::to_value(x),
            Evidence::Live(x) => serde_json::to_value(x),
            Evidence::Verdict(x) => serde_json::to_value(x),
            Evidence::Lock(x) => serde_json::to_value(x),
        }
    }

    /// The record of `kind` stored as `data`.
    pub fn decode(kind: EvidenceKind, data: &J) -> Result<Evidence, serde_json::Error> {
        use serde::de::Deserialize as _;
        Ok(match kind {
            EvidenceKind::Charge => Evidence::Charge(super::Charge::deserialize(data)?),
            EvidenceKind::Burst => Evidence::Burst(BurstRecord::deserialize(data)?),
            EvidenceKind::Falco => Evidence::Falco(FalcoSummary::deserialize(data)?),
            EvidenceKind::Trivy => Evidence::Trivy(TrivyEvidence::deserialize(data)?),
            EvidenceKind::Events => Evidence::Events(EventsSummary::deserialize(data)?),
            EvidenceKind::Live => Evidence::Live(LiveEvidence::deserialize(data)?),
            EvidenceKind::Verdict => Evidence::Verdict(super::VerdictOutcome::deserialize(data)?),
            EvidenceKind::Lock => Evidence::Lock(LockRecord::deserialize(data)?),
        })
    }
}

/// One stored record, as the ledger hands it over.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvidence<'a> {
    /// Its sequence number.
    pub id: i64,
    /// The trial.
    pub trial: &'a str,
    /// Its kind.
    pub kind: EvidenceKind,
    /// Where it came from.
    pub source: &'a str,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// What it says.
    pub data: &'a J,
}

/// A stored record the verdict needs but cannot read (written by another version, edited by
/// hand): the verdict is not reached without it, never reached by skipping it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trial {trial}: {kind} evidence #{id} (from {from}, recorded {recorded_at}) does not decode: {message}; the verdict cannot be reached without it")]
pub struct UndecodableEvidence {
    /// The trial.
    pub trial: String,
    /// The record's kind.
    pub kind: EvidenceKind,
    /// Its sequence number.
    pub id: i64,
    /// Where it came from.
    pub from: String,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// The decoder's complaint.
    pub message: String,
}

/// The evidence a verdict, a lock and the next spiral look at, decoded from a trial's history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Falco summaries, oldest first.
    pub falco: Vec<FalcoSummary>,
    /// When Falco evidence was last recorded: the window is clean only as far as it was checked.
    pub falco_checked_until: Option<Timestamp>,
    /// Trivy summaries, oldest first.
    pub trivy: Vec<TrivySummary>,
    /// Live re-checks, oldest first.
    pub live: Vec<LiveEvidence>,
}

impl History {
    /// Decodes the Falco, Trivy and live records of `records` (the other kinds are phases, not
    /// inputs). The first record that does not decode is the error.
    pub fn decode<'a>(
        records: impl IntoIterator<Item = StoredEvidence<'a>>,
    ) -> Result<History, UndecodableEvidence> {
        let mut h = History::default();
        for r in records {
            if !matches!(
                r.kind,
                EvidenceKind::Falco | EvidenceKind::Trivy | EvidenceKind::Live
            ) {
                continue;
            }
            let decoded = Evidence::decode(r.kind, r.data).map_err(|e| UndecodableEvidence {
                trial: r.trial.to_string(),
                kind: r.kind,
                id: r.id,
                from: r.source.to_string(),
                recorded_at: r.recorded_at,
                message: e.to_string(),
            })?;
            match decoded {
                Evidence::Falco(f) => {
                    h.falco.push(f);
                    h.falco_checked_until = h.falco_checked_until.max(Some(r.recorded_at));
                }
                Evidence::Trivy(t) => h.trivy.push(t.summary),
                Evidence::Live(l) => h.live.push(l),
                _ => {}
            }
        }
        Ok(h)
    }

    /// Every CRITICAL CVE the trial's scans have shown so far.
    pub fn critical_seen(&self) -> BTreeSet<&str> {
        self.trivy
            .iter()
            .flat_map(|t| &t.critical)
            .map(String::as_str)
            .collect()
    }

    /// The latest live re-check, if any.
    pub fn latest_live(&self) -> Option<&LiveEvidence> {
        self.live.last()
    }

    /// Every object of every live re-check.
    pub fn live_documents(&self) -> Vec<J> {
        self.live
            .iter()
            .flat_map(|l| l.documents.iter().cloned())
            .collect()
    }
}
