//! Exemptions (SPEC §6): seven `sostle.eose.ca/exempt-*` annotations that waive named policies
//! on one resource, for a bounded time, for a trial's reason, owned by one crew member,
//! reviewed by another with the layer's approver role, and witnessed by a SHA-256 of all of it.
//!
//! [`judge_with`] checks every condition and reports **every** one that fails as a sentence saying
//! what to change, so a refused exemption is never a mystery. The matrix of where a policy may
//! be exempted is data (`PolicySpec::exempt`); the ledger's part (registered witnesses, trial
//! existence and state) comes in through [`ExemptionLedger`].

use jiff::Timestamp;

use crate::approval;
use crate::config::{Config, CrewMember};
use crate::layer::{Layer, LayerSet};
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

/// What [`judge_with`] needs to know about the case.
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

/// The outcome of checking one exemption's approval, kept across the policies it lists: the
/// signature check (an ECDSA verification, most of an exemption's cost) depends only on the
/// annotations and the layer, so it runs once per resource, not once per policy.
#[derive(Debug, Default)]
pub struct ApprovalCheck(std::cell::OnceCell<Option<String>>);

/// Judges an exemption of `subject.policy_id` by `ann`, at `now`, sharing `approval` between
/// calls for the same annotations at the same layer (`ApprovalCheck::default()` for one).
pub fn judge_with(
    ann: &Annotations,
    subject: Subject<'_>,
    config: &Config,
    now: Timestamp,
    ledger: Option<&dyn ExemptionLedger>,
    approval: &ApprovalCheck,
) -> Judgement {
    let mut case = Case {
        ann,
        subject,
        config,
        now,
        ledger,
        approval,
        approvers: config
            .layer(subject.layer)
            .map(|l| l.approvers.as_slice())
            .unwrap_or_default(),
        owner: None,
        reviewer: None,
        trial: None,
        days_left: None,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    for (_, rule) in RULES {
        rule(&mut case);
    }
    let valid = case.problems.is_empty();
    if !valid {
        case.warnings.clear();
    }
    Judgement {
        annotations: ann.clone(),
        valid,
        problems: case.problems,
        warnings: case.warnings,
        days_left: case.days_left,
    }
}

/// One rule of an exemption: it reads the case, adds a problem (saying what to change) for
/// each way the exemption breaks it, and notes what later rules need.
type Rule = fn(&mut Case<'_>);

/// The rules, in the order their problems are reported (SPEC §6): the annotations complete and
/// aimed at this policy and resource, the expiry, the trial, owner and reviewer, the witness
/// and the signed approval, and last the matrix of where the policy may be exempted.
const RULES: [(&str, Rule); 9] = [
    ("lists the policy", lists_policy),
    ("applies to this resource", applies_here),
    ("expires in time", expires_in_time),
    ("names a trial", names_a_trial),
    ("owned by crew", owned_by_crew),
    ("reviewed by an approver", reviewed_by_an_approver),
    ("witnessed", witnessed),
    ("approved", approved),
    ("exemptable here", exemptable_here),
];

/// What the rules see: the case, and what earlier rules found on the way.
struct Case<'a> {
    ann: &'a Annotations,
    subject: Subject<'a>,
    config: &'a Config,
    now: Timestamp,
    ledger: Option<&'a dyn ExemptionLedger>,
    approval: &'a ApprovalCheck,
    /// The approver roles of the layer (`self`: the owner may review).
    approvers: &'a [String],
    /// The owner, when registered crew.
    owner: Option<&'a CrewMember>,
    /// The reviewer, when a registered identity.
    reviewer: Option<&'a CrewMember>,
    /// The trial the reason names.
    trial: Option<&'a str>,
    days_left: Option<i64>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl<'a> Case<'a> {
    /// The value of annotation `key`; `None`, with a problem saying what to add, when it is
    /// missing or empty.
    fn present(&mut self, key: &str, value: &'a Option<String>, expected: &str) -> Option<&'a str> {
        match value.as_deref() {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                self.problems.push(format!(
                    "annotation {PREFIX}{key} is missing: add {PREFIX}{key}: {expected}"
                ));
                None
            }
        }
    }

    /// Whether the layer lets the owner review their own exemption (`self` among its approvers).
    fn self_review(&self) -> bool {
        self.approvers.iter().any(|a| a == "self")
    }
}

/// `exempt-from` is written and lists the policy.
fn lists_policy(c: &mut Case<'_>) {
    let (ann, id) = (c.ann, c.subject.policy_id);
    if c.present("from", &ann.from, &format!("\"{id}\"")).is_some() && !ann.lists(id) {
        c.problems
            .push(format!("{id} is not listed in {PREFIX}from"));
    }
}

/// `exempt-applies-to` names this resource as `<namespace>/<name>`.
fn applies_here(c: &mut Case<'_>) {
    let (ann, resource) = (c.ann, c.subject.resource);
    let Some(at) = c.present("applies-to", &ann.applies_to, &format!("\"{resource}\"")) else {
        return;
    };
    if !at.contains('/') {
        c.problems.push(format!(
            "{PREFIX}applies-to `{at}` is not <namespace>/<name>; write \"{resource}\""
        ));
    } else if at != resource {
        c.problems.push(format!(
            "the exemption applies to {at}, not to this resource {resource}: an exemption cannot be copied to another resource"
        ));
    }
}

/// `exempt-expires` is RFC 3339, in the future, and at most `exemptions.maxDays` ahead of the
/// witness's registration (with a ledger) or of now; warns in the last days.
fn expires_in_time(c: &mut Case<'_>) {
    let ann = c.ann;
    let expected = "\"<RFC 3339, at most 30 days ahead>\"";
    let Some(text) = c.present("expires", &ann.expires, expected) else {
        return;
    };
    let Ok(exp) = crate::epoch::parse_rfc3339(text) else {
        c.problems.push(format!(
            "{PREFIX}expires `{text}` is not an RFC 3339 time such as 2026-05-18T00:00:00Z"
        ));
        return;
    };
    let secs = exp.as_second() - c.now.as_second();
    if secs <= 0 {
        let ago = (-secs).div_euclid(86_400);
        c.days_left = Some(-ago);
        c.problems.push(match ago {
            0 => format!("expired today ({text}); renew it with a new review"),
            1 => format!("expired 1 day ago ({text}); renew it with a new review"),
            n => format!("expired {n} days ago ({text}); renew it with a new review"),
        });
        return;
    }
    let registered = ann
        .witness
        .as_deref()
        .and_then(|w| c.ledger.and_then(|l| l.witness_registered_at(w)));
    let base = registered.unwrap_or(c.now);
    let max = i64::from(c.config.exemption_max_days);
    if exp.as_second() - base.as_second() > max * 86_400 {
        c.problems.push(format!(
            "expires {text}, {} days after {}; at most {max} days are allowed: no permanent waivers",
            days_between(base, exp),
            if registered.is_some() { "its witness was registered" } else { "now" }
        ));
    }
    // Whole days left, rounded up: 30 hours is "2 days".
    let left = (secs + 86_399) / 86_400;
    c.days_left = Some(left);
    if left <= EXPIRY_WARNING_DAYS {
        c.warnings.push(format!(
            "expires in {left} day{}",
            if left == 1 { "" } else { "s" }
        ));
    }
}

/// `exempt-reason` starts with a trial id, and (with a ledger) the trial exists.
fn names_a_trial(c: &mut Case<'_>) {
    let ann = c.ann;
    let Some(reason) = c.present("reason", &ann.reason, "\"TRB-CHAOS-NNN — why\"") else {
        return;
    };
    let Some(id) = trial_id(reason) else {
        c.problems.push(format!(
            "{PREFIX}reason must start with a trial id like TRB-CHAOS-001, not `{reason}`"
        ));
        return;
    };
    c.trial = Some(id);
    if c.ledger.is_some_and(|l| l.trial_state(id).is_none()) {
        c.problems
            .push(format!("trial {id} does not exist in the ledger"));
    }
}

/// `exempt-owner` is registered crew.
fn owned_by_crew(c: &mut Case<'_>) {
    let ann = c.ann;
    let Some(o) = c.present("owner", &ann.owner, "\"<crew name>\"") else {
        return;
    };
    c.owner = c.config.crew_member(o);
    if c.owner.is_none() {
        c.problems.push(format!("owner {o} is not registered crew"));
    }
}

/// `exempt-reviewed` is a registered identity with an approver role of the layer, and not the
/// owner (four eyes), unless the layer allows self-review.
fn reviewed_by_an_approver(c: &mut Case<'_>) {
    let ann = c.ann;
    let expected = "\"<approver's crew name or identity>\"";
    let Some(r) = c.present("reviewed", &ann.reviewed, expected) else {
        return;
    };
    let Some(m) = c.config.crew_member(r) else {
        c.problems
            .push(format!("reviewer {r} is not a registered identity"));
        return;
    };
    c.reviewer = Some(m);
    if c.self_review() {
        return;
    }
    let (config, layer, approvers) = (c.config, c.subject.layer, c.approvers);
    if !approvers.iter().any(|role| m.has_role(role)) {
        c.problems.push(format!(
            "reviewer {} is not an approver at {layer}: {}",
            who(config, r),
            holders(config, approvers)
        ));
    }
    if c.owner.is_some_and(|o| o.name == m.name) {
        c.problems.push(format!(
            "reviewer {} is the owner: another approver must review (four eyes): {}",
            who(config, r),
            holders(config, approvers)
        ));
    }
}

/// Whether a witness is `sha256:` and 64 lowercase hex digits.
fn well_formed(w: &str) -> bool {
    w.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `exempt-witness` is well formed, matches the annotations, and (with a ledger) is registered.
fn witnessed(c: &mut Case<'_>) {
    let ann = c.ann;
    let expected = "\"<sha256 from `sostle exempt new` or `sostle exempt hash`>\"";
    let Some(w) = c.present("witness", &ann.witness, expected) else {
        return;
    };
    if !well_formed(w) {
        c.problems.push(format!(
            "{PREFIX}witness `{w}` is not sha256:<64 lowercase hex>"
        ));
    } else if w != ann.computed_witness() {
        c.problems.push(
            "the witness hash does not match the annotations: a value was changed after witnessing; recompute with `sostle exempt hash` and have it reviewed again"
                .to_string(),
        );
    } else if c
        .ledger
        .is_some_and(|l| l.witness_registered_at(w).is_none())
    {
        c.problems.push(
            "the witness is not registered in the ledger: register it with `sostle exempt witness`"
                .into(),
        );
    }
}

/// `exempt-approval` is a signature over the (well-formed) witness by a key of the registered
/// reviewer (or, where the layer allows self-review, of the owner); checked once per resource
/// ([`ApprovalCheck`]). Without `exemptions.requireApproval`, a warning instead.
fn approved(c: &mut Case<'_>) {
    let ann = c.ann;
    let Some(w) = ann.witness.as_deref().filter(|w| well_formed(w)) else {
        return;
    };
    let Some(m) = c.reviewer else {
        return;
    };
    if !c.config.require_approval {
        c.warnings.push(HASH_ONLY_WARNING.to_string());
        return;
    }
    let owner = c.owner.filter(|_| c.self_review());
    let problem = c
        .approval
        .0
        .get_or_init(|| approval_problem(ann.approval.as_deref(), w, m, owner));
    if let Some(p) = problem {
        c.problems.push(p.clone());
    }
}

/// The matrix: the layer gate never, a user policy where `suite.userPolicyExemptable` allows,
/// a suite policy where its `exemptable` rules allow, on their conditions.
fn exemptable_here(c: &mut Case<'_>) {
    match c.subject.policy {
        None if c.subject.policy_id == crate::suite::LAYER_GATE => c.problems.push(format!(
            "{} cannot be exempted: layer gates are never exemptable",
            c.subject.policy_id
        )),
        None => user_policy_exemptable(c),
        Some(spec) => suite_policy_exemptable(c, spec),
    }
}

/// SPEC §6's last row, as the config has it.
fn user_policy_exemptable(c: &mut Case<'_>) {
    let (id, layer) = (c.subject.policy_id, c.subject.layer);
    match crate::suite::user_policy_exemptable(&c.config.user_exempt, id, layer) {
        None => c.problems.push(format!(
            "{id} cannot be exempted at {layer} (user policies follow SPEC §6's last row)"
        )),
        Some(Some(ExemptCondition::ReviewedBy(role))) => {
            if !c.reviewer.is_some_and(|m| m.has_role(&role)) {
                c.problems.push(format!(
                    "{id} may be exempted at {layer} only when reviewed by {}",
                    holders(c.config, std::slice::from_ref(&role))
                ));
            }
        }
        Some(_) => {}
    }
}

/// The policy's `exemptable` rules at the layer: one without a condition, or one whose
/// condition holds.
fn suite_policy_exemptable(c: &mut Case<'_>, spec: &PolicySpec) {
    let layer = c.subject.layer;
    let rules: Vec<_> = spec
        .exempt
        .iter()
        .filter(|r| r.layers.contains(layer))
        .collect();
    if rules.is_empty() {
        let where_ = spec.exempt.iter().fold(LayerSet::NONE, |acc, r| {
            r.layers.iter().fold(acc, |a, l| a.with(l))
        });
        c.problems.push(if where_ == LayerSet::NONE {
            format!("{} can never be exempted", spec.id)
        } else {
            format!(
                "{} cannot be exempted at {layer} (only at {where_})",
                spec.id
            )
        });
        return;
    }
    // Every rule for this layer has a condition: one of them must hold.
    let mut why = Vec::new();
    for r in &rules {
        match r.condition.as_ref().map(|cond| unmet(c, spec, cond)) {
            None | Some(Ok(())) => return,
            Some(Err(reason)) => why.extend(reason),
        }
    }
    c.problems.extend(why);
}

/// Whether an exemption rule's condition holds: `Ok`, or why not (`None`: it does not hold,
/// and another problem already says why).
fn unmet(c: &Case<'_>, spec: &PolicySpec, cond: &ExemptCondition) -> Result<(), Option<String>> {
    let layer = c.subject.layer;
    match cond {
        ExemptCondition::TrialOpen => match (c.ledger, c.trial) {
            (None, _) => Err(Some(format!(
                "at {layer}, {} may be exempted only while its trial is open, and no ledger is in use to confirm that (use --ledger)",
                spec.id
            ))),
            (Some(l), Some(id)) => match l.trial_state(id) {
                Some(TrialState::Open) => Ok(()),
                Some(TrialState::Closed) => Err(Some(format!("at {layer}, {} may be exempted only while its trial is open, and {id} is closed", spec.id))),
                None => Err(None),
            },
            (Some(_), None) => Err(None),
        },
        ExemptCondition::ReviewedBy(role) => {
            if c.reviewer.is_some_and(|m| m.has_role(role)) {
                Ok(())
            } else {
                Err(Some(format!(
                    "{} may be exempted at {layer} only when reviewed by {}",
                    spec.id,
                    holders(c.config, std::slice::from_ref(role))
                )))
            }
        }
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
