//! The verdict rules of SPEC §7: what a trial's reports and evidence add up to.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{FalcoSummary, FalcoViolation, TrivySummary, CLEAN_HOURS};
use crate::config::Config;
use crate::layer::Layer;
use crate::report::{Outcome, ResourceReport};
use crate::suite::Verdict as PolicyVerdict;

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
    /// Every verdict.
    pub const ALL: [TrialVerdict; 4] = [
        TrialVerdict::MecipolLocked,
        TrialVerdict::ExemptionsPending,
        TrialVerdict::DenyHard,
        TrialVerdict::Spiraling,
    ];

    /// The verdict named `s`.
    pub fn parse(s: &str) -> Option<TrialVerdict> {
        TrialVerdict::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the trial is refused or waits on exemptions (`trial verdict` then fails); a
    /// locked or still-spiraling trial has nothing wrong yet.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            TrialVerdict::ExemptionsPending | TrialVerdict::DenyHard
        )
    }

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
pub const VERDICT_EXCLUDED: [&str; 2] = [crate::report::LAYER_GATE, "deny_no_mecipol_image"];

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
            // A violation whose time cannot be read restarts the window now: it is never
            // taken for one that happened before the burst.
            let since = violations
                .iter()
                .map(|v| v.time.parse::<Timestamp>().unwrap_or(input.now))
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

/// The layers a lock authorizes: every layer L0…L7 whose gate is not closed and at which the
/// subject (evaluated by `evaluate`) is [`layer_clear`] on `day`.
pub fn authorized_layers(
    config: &Config,
    day: i64,
    evaluate: impl Fn(Layer) -> Vec<ResourceReport>,
) -> Vec<Layer> {
    Layer::ALL
        .into_iter()
        .filter(|l| *l != Layer::Trial && config.gate(*l) != crate::suite::Gate::Closed)
        .filter(|l| layer_clear(&evaluate(*l), config, day))
        .collect()
}

/// What a lock records of a trial's reports at the target layer: the DENY policies that pass
/// (none that fails on any resource), and the exemptions that covered the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockBasis {
    /// DENY policies (on `day`) that pass on every resource, sorted.
    pub passed: Vec<String>,
    /// The exemptions applied, one per policy, sorted by policy.
    pub exempted: Vec<crate::mecipol::ProfileExemption>,
}

/// The [`LockBasis`] of `reports`, evaluated at the target layer on `day`.
pub fn lock_basis(reports: &[ResourceReport], config: &Config, day: i64) -> LockBasis {
    let mut passed = BTreeSet::new();
    let mut failed = BTreeSet::new();
    let mut exempted = std::collections::BTreeMap::new();
    for r in reports {
        for res in &r.results {
            if res.policy.as_ref() == crate::report::LAYER_GATE {
                continue;
            }
            match res.outcome {
                Outcome::Pass
                    if config
                        .policy(&res.policy)
                        .is_some_and(|p| p.verdict_on(day) == PolicyVerdict::Deny) =>
                {
                    passed.insert(res.policy.to_string());
                }
                Outcome::Exempted => {
                    if let Some(j) = &res.exemption {
                        let reason = j
                            .annotations
                            .reason
                            .as_deref()
                            .and_then(crate::exemption::trial_id)
                            .unwrap_or("")
                            .to_string();
                        let expires = j
                            .annotations
                            .expires
                            .as_deref()
                            .map(|e| e.get(..10).unwrap_or(e).to_string())
                            .unwrap_or_default();
                        exempted.insert(
                            res.policy.to_string(),
                            crate::mecipol::ProfileExemption {
                                policy: res.policy.to_string(),
                                reason,
                                expires,
                            },
                        );
                    }
                }
                Outcome::Fail => {
                    failed.insert(res.policy.to_string());
                }
                _ => {}
            }
        }
    }
    LockBasis {
        passed: passed.difference(&failed).cloned().collect(),
        exempted: exempted.into_values().collect(),
    }
}
