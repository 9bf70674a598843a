//! Exemptions (SPEC §6): seven `sostle.eose.ca/exempt-*` annotations that waive named policies
//! on one resource, for a bounded time, for a trial's reason, owned by one crew member,
//! reviewed by another with the layer's approver role, and witnessed by a SHA-256 of all of it.
//!
//! [`judge`] checks every condition and reports **every** one that fails as a sentence saying
//! what to change, so a refused exemption is never a mystery. The matrix of where a policy may
//! be exempted is data (`PolicySpec::exempt`); the ledger's part (registered witnesses, trial
//! existence and state) comes in through [`ExemptionLedger`].

use jiff::Timestamp;

use crate::approval;
use crate::config::{Config, CrewMember};
use crate::layer::Layer;
use crate::manifest::{Node, Pos};
use crate::suite::{ExemptCondition, PolicySpec};

/// Annotation prefix.
pub const PREFIX: &str = "sostle.eose.ca/exempt-";

/// The seven keys, in the order users write them.
pub const KEYS: [&str; 7] = [
    "from",
    "applies-to",
    "reason",
    "expires",
    "owner",
    "reviewed",
    "witness",
];

/// The warning on every exemption honoured without a signed approval (approvals turned off).
pub const HASH_ONLY_WARNING: &str = "approved by the witness hash only (exemptions.requireApproval is false): the review is not proven by a signature";

/// Days before expiry from which an exemption warns.
pub const EXPIRY_WARNING_DAYS: i64 = 7;

/// The seven values as written (trimmed); a missing key is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Annotations {
    /// `exempt-from`: comma-separated policy ids.
    #[serde(rename = "exempt-from")]
    pub from: Option<String>,
    /// `exempt-applies-to`: `<namespace>/<name>`.
    #[serde(rename = "applies-to")]
    pub applies_to: Option<String>,
    /// `exempt-reason`: `TRB-CHAOS-NNN …`.
    pub reason: Option<String>,
    /// `exempt-expires`: RFC 3339.
    pub expires: Option<String>,
    /// `exempt-owner`: registered crew.
    pub owner: Option<String>,
    /// `exempt-reviewed`: a registered identity with the layer's approver role.
    pub reviewed: Option<String>,
    /// `exempt-witness`: `sha256:<64 hex>`.
    pub witness: Option<String>,
    /// `exempt-approval`: base64 DER ECDSA signature over the witness by the reviewer's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Where the annotations are (the `exempt-from` key, else the first one found).
    #[serde(skip)]
    pub pos: Pos,
}

impl Annotations {
    /// Reads the exemption annotations of an object; `None` when it has none at all.
    pub fn read(root: &Node) -> Option<Annotations> {
        let ann = root.get_path(&["metadata", "annotations"])?;
        let entries = ann.as_map()?;
        let mut a = Annotations::default();
        let mut any = false;
        let mut first_pos = None;
        for e in entries {
            let Some(key) = e.key.strip_prefix(PREFIX) else {
                continue;
            };
            let value = e.value.scalar_text().map(|s| s.trim().to_string());
            let slot = match key {
                "from" => &mut a.from,
                "applies-to" => &mut a.applies_to,
                "reason" => &mut a.reason,
                "expires" => &mut a.expires,
                "owner" => &mut a.owner,
                "reviewed" => &mut a.reviewed,
                "witness" => &mut a.witness,
                "approval" => &mut a.approval,
                _ => continue,
            };
            any = true;
            *slot = value;
            if key == "from" {
                a.pos = e.key_pos;
            }
            first_pos.get_or_insert(e.key_pos);
        }
        if a.from.is_none() {
            a.pos = first_pos.unwrap_or(ann.pos);
        }
        any.then_some(a)
    }

    /// The policy ids listed in `exempt-from`.
    pub fn policies(&self) -> Vec<&str> {
        self.from
            .as_deref()
            .map(|f| {
                f.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `policy` is listed.
    pub fn lists(&self, policy: &str) -> bool {
        self.policies().contains(&policy)
    }

    /// The witness hash of these values (missing values count as empty).
    pub fn computed_witness(&self) -> String {
        let v = |o: &Option<String>| o.clone().unwrap_or_default();
        witness(&Values {
            applies_to: v(&self.applies_to),
            from: v(&self.from),
            expires: v(&self.expires),
            owner: v(&self.owner),
            reason: v(&self.reason),
            reviewed: v(&self.reviewed),
        })
    }
}

/// The six values the witness covers (serialized with the annotation names the ledger keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Values {
    /// `<namespace>/<name>`.
    #[serde(rename = "applies-to")]
    pub applies_to: String,
    /// Comma-separated policy ids.
    #[serde(rename = "exempt-from")]
    pub from: String,
    /// RFC 3339 expiry.
    pub expires: String,
    /// Owner.
    pub owner: String,
    /// Reason.
    pub reason: String,
    /// Reviewer.
    pub reviewed: String,
}

/// `sha256:` + hex SHA-256 of the seven witness lines (SPEC §6), values trimmed.
pub fn witness(v: &Values) -> String {
    let text = format!(
        "sostle-exemption/v1\napplies-to={}\nexempt-from={}\nexpires={}\nowner={}\nreason={}\nreviewed={}\n",
        v.applies_to.trim(),
        v.from.trim(),
        v.expires.trim(),
        v.owner.trim(),
        v.reason.trim(),
        v.reviewed.trim()
    );
    format!("sha256:{}", crate::digest::sha256_hex(text.as_bytes()))
}

/// Whether a reason starts with a trial id: `^TRB-CHAOS-\d{3,}\b`. Returns the id.
pub fn trial_id(reason: &str) -> Option<&str> {
    let rest = reason.strip_prefix("TRB-CHAOS-")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits < 3 {
        return None;
    }
    let next = rest.as_bytes().get(digits).copied();
    if next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    reason.get(..10 + digits)
}

/// What the ledger knows about a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    /// Filed and not yet closed.
    Open,
    /// Closed.
    Closed,
}

/// The ledger's part of exemption checking.
pub trait ExemptionLedger: Sync {
    /// When a witness hash was registered, if it was.
    fn witness_registered_at(&self, witness: &str) -> Option<Timestamp>;
    /// The state of a trial, if it exists.
    fn trial_state(&self, trial: &str) -> Option<TrialState>;
}

/// The verdict on one exemption for one policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Judgement {
    /// The seven values.
    #[serde(flatten)]
    pub annotations: Annotations,
    /// Whether it is honoured.
    pub valid: bool,
    /// Every failing condition, each saying what to change.
    pub problems: Vec<String>,
    /// Warnings for an honoured exemption (`expires in N days`).
    pub warnings: Vec<String>,
    /// Whole days until expiry (negative once expired), when `expires` parses.
    pub days_left: Option<i64>,
}

/// What [`judge`] needs to know about the case.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The policy's table row (`None` for the layer gate, which is never exemptable).
    pub policy: Option<&'a PolicySpec>,
    /// The policy id.
    pub policy_id: &'a str,
    /// The layer.
    pub layer: Layer,
    /// `<namespace>/<name>` of the resource.
    pub resource: &'a str,
}

fn days_between(from: Timestamp, to: Timestamp) -> i64 {
    (to.as_second() - from.as_second()).div_euclid(86_400)
}

fn who(config: &Config, name: &str) -> String {
    match config.crew_member(name) {
        Some(m) if m.name != name => format!("{name} ({})", m.name),
        _ => name.to_string(),
    }
}

/// Names of the crew members holding any of `roles`, as "A, B or C".
fn holders(config: &Config, roles: &[String]) -> String {
    let names: Vec<&str> = config
        .crew
        .iter()
        .filter(|c| roles.iter().any(|r| c.has_role(r)))
        .map(|c| c.name.as_str())
        .collect();
    match names.as_slice() {
        [] => "nobody".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The judgement on a failing policy that an exemption present on the resource does not list.
pub fn not_listed(ann: &Annotations, policy: &str) -> Judgement {
    Judgement {
        annotations: ann.clone(),
        valid: false,
        problems: vec![format!(
            "exempt-from lists {}, not {policy}",
            ann.policies().join(",")
        )],
        warnings: Vec::new(),
        days_left: None,
    }
}

/// Why an approval does not prove the review by `reviewer` (or, where the layer allows
/// self-review, by `owner`) of `witness`; `None` when it does.
fn approval_problem(
    approval: Option<&str>,
    witness: &str,
    reviewer: &CrewMember,
    owner: Option<&CrewMember>,
) -> Option<String> {
    let name = &reviewer.name;
    let keys: Vec<_> = reviewer
        .keys
        .iter()
        .chain(owner.iter().flat_map(|o| o.keys.iter()))
        .collect();
    let Some(value) = approval.filter(|a| !a.trim().is_empty()) else {
        return Some(format!(
            "not approved: no signature by a key of {name}: add {} (`sostle exempt approve FILE --key <{name}'s key>`)",
            approval::ANNOTATION
        ));
    };
    if keys.is_empty() {
        return Some(format!(
            "not approved: no signature by a key of {name}: {name} has no registered key (crew[].keys in the config)"
        ));
    }
    let sig = match approval::decode(value) {
        Ok(s) => s,
        Err(e) => return Some(format!("not approved: {e}")),
    };
    if keys.iter().any(|k| k.verifies(witness, &sig)) {
        None
    } else {
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        Some(format!(
            "not approved: no signature by a key of {name} over this witness (keys {})",
            ids.join(", ")
        ))
    }
}

/// Judges an exemption of `subject.policy_id` by `ann`, at `now`.
pub fn judge(
    ann: &Annotations,
    subject: Subject<'_>,
    config: &Config,
    now: Timestamp,
    ledger: Option<&dyn ExemptionLedger>,
) -> Judgement {
    judge_with(ann, subject, config, now, ledger, &ApprovalCheck::default())
}

/// The outcome of checking one exemption's approval, kept across the policies it lists: the
/// signature check (an ECDSA verification, most of an exemption's cost) depends only on the
/// annotations and the layer, so it runs once per resource, not once per policy.
#[derive(Debug, Default)]
pub struct ApprovalCheck(std::cell::OnceCell<Option<String>>);

/// [`judge`] sharing `approval` between calls for the same annotations at the same layer.
pub fn judge_with(
    ann: &Annotations,
    subject: Subject<'_>,
    config: &Config,
    now: Timestamp,
    ledger: Option<&dyn ExemptionLedger>,
    approval: &ApprovalCheck,
) -> Judgement {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let layer = subject.layer;
    // 1. complete, well-formed, P listed, applies to R.
    let missing =
        |key: &str, value: &Option<String>, expected: String, problems: &mut Vec<String>| {
            if value.as_deref().is_none_or(str::is_empty) {
                problems.push(format!(
                    "annotation {PREFIX}{key} is missing: add {PREFIX}{key}: {expected}"
                ));
                true
            } else {
                false
            }
        };
    if !missing(
        "from",
        &ann.from,
        format!("\"{}\"", subject.policy_id),
        &mut problems,
    ) && !ann.lists(subject.policy_id)
    {
        problems.push(format!(
            "{} is not listed in {PREFIX}from",
            subject.policy_id
        ));
    }
    if !missing(
        "applies-to",
        &ann.applies_to,
        format!("\"{}\"", subject.resource),
        &mut problems,
    ) {
        let at = ann.applies_to.as_deref().unwrap_or_default();
        if !at.contains('/') {
            problems.push(format!(
                "{PREFIX}applies-to `{at}` is not <namespace>/<name>; write \"{}\"",
                subject.resource
            ));
        } else if at != subject.resource {
            problems.push(format!(
                "the exemption applies to {at}, not to this resource {}: an exemption cannot be copied to another resource",
                subject.resource
            ));
        }
    }
    // 2. expires: RFC 3339, future, ≤ max_days ahead of registration (ledger) or now.
    let mut days_left = None;
    if !missing(
        "expires",
        &ann.expires,
        "\"<RFC 3339, at most 30 days ahead>\"".into(),
        &mut problems,
    ) {
        let text = ann.expires.as_deref().unwrap_or_default();
        match crate::epoch::parse_rfc3339(text) {
            Err(_) => problems.push(format!(
                "{PREFIX}expires `{text}` is not an RFC 3339 time such as 2026-05-18T00:00:00Z"
            )),
            Ok(exp) => {
                let secs = exp.as_second() - now.as_second();
                if secs <= 0 {
                    let ago = (-secs).div_euclid(86_400);
                    days_left = Some(-ago);
                    problems.push(match ago {
                        0 => format!("expired today ({text}); renew it with a new review"),
                        1 => format!("expired 1 day ago ({text}); renew it with a new review"),
                        n => format!("expired {n} days ago ({text}); renew it with a new review"),
                    });
                } else {
                    let registered = ann
                        .witness
                        .as_deref()
                        .and_then(|w| ledger.and_then(|l| l.witness_registered_at(w)));
                    let base = registered.unwrap_or(now);
                    let ahead = days_between(base, exp);
                    let max = i64::from(config.exemption_max_days);
                    if exp.as_second() - base.as_second() > max * 86_400 {
                        problems.push(format!(
                            "expires {text}, {ahead} days after {}; at most {max} days are allowed: no permanent waivers",
                            if registered.is_some() { "its witness was registered" } else { "now" }
                        ));
                    }
                    // Whole days left, rounded up: 30 hours is "2 days".
                    let left = (secs + 86_399) / 86_400;
                    days_left = Some(left);
                    if left <= EXPIRY_WARNING_DAYS {
                        warnings.push(format!(
                            "expires in {left} day{}",
                            if left == 1 { "" } else { "s" }
                        ));
                    }
                }
            }
        }
    }
    // 3. reason names a trial (which, with a ledger, exists).
    let mut trial = None;
    if !missing(
        "reason",
        &ann.reason,
        "\"TRB-CHAOS-NNN — why\"".into(),
        &mut problems,
    ) {
        let reason = ann.reason.as_deref().unwrap_or_default();
        match trial_id(reason) {
            None => problems.push(format!(
                "{PREFIX}reason must start with a trial id like TRB-CHAOS-001, not `{reason}`"
            )),
            Some(id) => {
                trial = Some(id);
                if let Some(l) = ledger {
                    if l.trial_state(id).is_none() {
                        problems.push(format!("trial {id} does not exist in the ledger"));
                    }
                }
            }
        }
    }
    // 4. owner registered crew; reviewer an approver at L, not the owner (except L0).
    let approvers = config
        .layer(layer)
        .map(|l| l.approvers.clone())
        .unwrap_or_default();
    let owner = if missing("owner", &ann.owner, "\"<crew name>\"".into(), &mut problems) {
        None
    } else {
        let o = ann.owner.as_deref().unwrap_or_default();
        let m = config.crew_member(o);
        if m.is_none() {
            problems.push(format!("owner {o} is not registered crew"));
        }
        m
    };
    let reviewer = if missing(
        "reviewed",
        &ann.reviewed,
        "\"<approver's crew name or identity>\"".into(),
        &mut problems,
    ) {
        None
    } else {
        let r = ann.reviewed.as_deref().unwrap_or_default();
        match config.crew_member(r) {
            None => {
                problems.push(format!("reviewer {r} is not a registered identity"));
                None
            }
            Some(m) => {
                let self_ok = approvers.iter().any(|a| a == "self");
                if !self_ok && !approvers.iter().any(|role| m.has_role(role)) {
                    problems.push(format!(
                        "reviewer {} is not an approver at {layer}: {}",
                        who(config, r),
                        holders(config, &approvers)
                    ));
                }
                if !self_ok && owner.is_some_and(|o| o.name == m.name) {
                    problems.push(format!(
                        "reviewer {} is the owner: another approver must review (four eyes): {}",
                        who(config, r),
                        holders(config, &approvers)
                    ));
                }
                Some(m)
            }
        }
    };
    // 5. the witness matches (and, with a ledger, is registered).
    if !missing(
        "witness",
        &ann.witness,
        "\"<sha256 from `sostle exempt new` or `sostle exempt hash`>\"".into(),
        &mut problems,
    ) {
        let w = ann.witness.as_deref().unwrap_or_default();
        let well_formed = w.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !well_formed {
            problems.push(format!(
                "{PREFIX}witness `{w}` is not sha256:<64 lowercase hex>"
            ));
        } else if w != ann.computed_witness() {
            problems.push(
                "the witness hash does not match the annotations: a value was changed after witnessing; recompute with `sostle exempt hash` and have it reviewed again"
                    .to_string(),
            );
        } else if let Some(l) = ledger {
            if l.witness_registered_at(w).is_none() {
                problems.push("the witness is not registered in the ledger: register it with `sostle exempt witness`".into());
            }
        }
        // 5b. the approval: a signature over the (well-formed) witness by a key of the reviewer.
        if let Some(m) = reviewer.filter(|_| well_formed) {
            if config.require_approval {
                let self_ok = approvers.iter().any(|a| a == "self");
                let problem = approval.0.get_or_init(|| {
                    approval_problem(ann.approval.as_deref(), w, m, owner.filter(|_| self_ok))
                });
                if let Some(p) = problem {
                    problems.push(p.clone());
                }
            } else {
                warnings.push(HASH_ONLY_WARNING.to_string());
            }
        }
    }
    // 6. the matrix.
    match subject.policy {
        None if subject.policy_id == crate::report::LAYER_GATE => problems.push(format!(
            "{} cannot be exempted: layer gates are never exemptable",
            subject.policy_id
        )),
        None => match crate::suite::user_policy_exemptable(
            &config.user_exempt,
            subject.policy_id,
            layer,
        ) {
            None => problems.push(format!(
                "{} cannot be exempted at {layer} (user policies follow SPEC §6's last row)",
                subject.policy_id
            )),
            Some(Some(ExemptCondition::ReviewedBy(role))) => {
                if !reviewer.is_some_and(|m| m.has_role(&role)) {
                    problems.push(format!(
                        "{} may be exempted at {layer} only when reviewed by {}",
                        subject.policy_id,
                        holders(config, std::slice::from_ref(&role))
                    ));
                }
            }
            Some(_) => {}
        },
        Some(spec) => {
            let rules: Vec<_> = spec
                .exempt
                .iter()
                .filter(|r| r.layers.contains(layer))
                .collect();
            if rules.is_empty() {
                let where_ = spec
                    .exempt
                    .iter()
                    .fold(crate::layer::LayerSet::NONE, |acc, r| {
                        r.layers.iter().fold(acc, |a, l| a.with(l))
                    });
                problems.push(if where_ == crate::layer::LayerSet::NONE {
                    format!("{} can never be exempted", spec.id)
                } else {
                    format!(
                        "{} cannot be exempted at {layer} (only at {where_})",
                        spec.id
                    )
                });
            } else if !rules.iter().any(|r| r.condition.is_none()) {
                // Every rule for this layer has a condition: one of them must hold.
                let mut why = Vec::new();
                let mut ok = false;
                for r in &rules {
                    match &r.condition {
                        Some(ExemptCondition::TrialOpen) => match (ledger, trial) {
                            (None, _) => why.push(format!(
                                "at {layer}, {} may be exempted only while its trial is open, and no ledger is in use to confirm that (use --ledger)",
                                spec.id
                            )),
                            (Some(l), Some(id)) => match l.trial_state(id) {
                                Some(TrialState::Open) => ok = true,
                                Some(TrialState::Closed) => why.push(format!("at {layer}, {} may be exempted only while its trial is open, and {id} is closed", spec.id)),
                                None => {}
                            },
                            (Some(_), None) => {}
                        },
                        Some(ExemptCondition::ReviewedBy(role)) => {
                            if reviewer.is_some_and(|m| m.has_role(role)) {
                                ok = true;
                            } else {
                                why.push(format!(
                                    "{} may be exempted at {layer} only when reviewed by {}",
                                    spec.id,
                                    holders(config, std::slice::from_ref(role))
                                ));
                            }
                        }
                        None => ok = true,
                    }
                }
                if !ok {
                    problems.extend(why);
                }
            }
        }
    }
    let valid = problems.is_empty();
    if !valid {
        warnings.clear();
    }
    Judgement {
        annotations: ann.clone(),
        valid,
        problems,
        warnings,
        days_left,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn witness_matches_the_documented_printf() {
        // printf 'sostle-exemption/v1\napplies-to=%s\nexempt-from=%s\nexpires=%s\nowner=%s\nreason=%s\nreviewed=%s\n' \
        //   chaos-trial/mefine-static deny_no_limits 2026-05-18T00:00:00Z BOSUN TRB-CHAOS-001 kayyo@pemos.ca | sha256sum
        let v = Values {
            applies_to: "chaos-trial/mefine-static".into(),
            from: "deny_no_limits".into(),
            expires: "2026-05-18T00:00:00Z".into(),
            owner: "BOSUN".into(),
            reason: "TRB-CHAOS-001".into(),
            reviewed: "kayyo@pemos.ca".into(),
        };
        // The printf above, run through sha256sum, printed this digest.
        assert_eq!(
            witness(&v),
            "sha256:d6a2bdd1b2e369a9dfda1f03a1f8a56ab22426003a59458f9923a72806461c8e"
        );
        // Values are trimmed before hashing.
        let padded = Values {
            owner: "  BOSUN ".into(),
            ..v.clone()
        };
        assert_eq!(witness(&padded), witness(&v));
    }

    #[test]
    fn trial_ids() {
        assert_eq!(trial_id("TRB-CHAOS-001 — x"), Some("TRB-CHAOS-001"));
        assert_eq!(trial_id("TRB-CHAOS-1234"), Some("TRB-CHAOS-1234"));
        assert_eq!(trial_id("TRB-CHAOS-01"), None);
        assert_eq!(trial_id("TRB-CHAOS-001x"), None);
        assert_eq!(trial_id("see TRB-CHAOS-001"), None);
    }
}
