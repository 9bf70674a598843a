//! Exemptions that cannot be forged: property tests that changing any one of the seven values
//! (even with the witness recomputed, as anyone can), or moving the annotations to another
//! resource, breaks an honoured, approved exemption; and the ledger
//! seam (registered witnesses, trial existence, L4's open-trial rule) through a test ledger.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use proptest::prelude::*;
use sostle_core::exemption::{self, ExemptionLedger, TrialState, Values};
use sostle_core::{manifest, Config, Engine, EvalContext, Outcome};

const NOW: &str = "2026-05-11T12:00:00Z";

fn now() -> Timestamp {
    sostle_core::epoch::parse_rfc3339(NOW).unwrap()
}

fn values(ns: &str) -> Values {
    Values {
        applies_to: format!("{ns}/subject"),
        from: "deny_no_limits".into(),
        expires: "2026-05-25T00:00:00Z".into(),
        owner: "RICK".into(),
        reason: "TRB-CHAOS-007 — sizing".into(),
        reviewed: "IMHOTEP".into(),
    }
}

/// A pod at `ns` named `name` failing deny_no_limits, with the given seven annotation values
/// and `witness` approved by the reviewer IMHOTEP's test key.
fn manifest(ns: &str, name: &str, v: &Values, witness: &str) -> String {
    let approval = sostle_core::approval::sign(&crate::testkeys::test_key("IMHOTEP"), witness);
    manifest_approved(ns, name, v, witness, &approval)
}

/// The same with the given approval annotation.
fn manifest_approved(ns: &str, name: &str, v: &Values, witness: &str, approval: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    sostle.eose.ca/exempt-from: {}\n    sostle.eose.ca/exempt-applies-to: {}\n    sostle.eose.ca/exempt-reason: {}\n    sostle.eose.ca/exempt-expires: {}\n    sostle.eose.ca/exempt-owner: {}\n    sostle.eose.ca/exempt-reviewed: {}\n    sostle.eose.ca/exempt-witness: {}\n    sostle.eose.ca/exempt-approval: {}\nspec:\n  containers:\n  - name: app\n    image: app:1.0\n",
        q(&v.from), q(&v.applies_to), q(&v.reason), q(&v.expires), q(&v.owner), q(&v.reviewed), q(witness), q(approval)
    )
}

fn outcome(text: &str, ledger: Option<&dyn ExemptionLedger>) -> (Outcome, Vec<String>) {
    let mut config = Config::default();
    crate::testkeys::register_test_keys(&mut config, &[]);
    let engine = Engine::new(Arc::new(config));
    let l = manifest::load(text);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let ctx = EvalContext {
        ledger,
        ..EvalContext::new(now())
    };
    let report = engine.evaluate(&l.documents[0].root, &ctx);
    let r = report
        .results
        .iter()
        .find(|r| &*r.policy == "deny_no_limits")
        .unwrap();
    (
        r.outcome,
        r.exemption
            .as_ref()
            .map(|j| j.problems.clone())
            .unwrap_or_default(),
    )
}

#[test]
fn the_base_case_is_honoured() {
    let v = values("chaos-trial");
    let (o, p) = outcome(
        &manifest("chaos-trial", "subject", &v, &exemption::witness(&v)),
        None,
    );
    assert_eq!(o, Outcome::Exempted, "{p:?}");
}

fn mutate(v: &mut Values, which: usize, extra: &str) -> Option<String> {
    let field = match which {
        0 => &mut v.from,
        1 => &mut v.applies_to,
        2 => &mut v.reason,
        3 => &mut v.expires,
        4 => &mut v.owner,
        5 => &mut v.reviewed,
        _ => {
            return Some(format!(
                "sha256:{}",
                extra.repeat(64).chars().take(64).collect::<String>()
            ))
        }
    };
    field.push_str(extra);
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x7472_6221), .. ProptestConfig::default() })]

    /// Editing any one of the seven values after witnessing breaks the exemption.
    #[test]
    fn changing_any_value_breaks_it(which in 0usize..7, extra in "[a-f0-9,x ]{1,6}") {
        let v = values("chaos-trial");
        let witness = exemption::witness(&v);
        let mut edited = v.clone();
        let forged_witness = mutate(&mut edited, which, &extra);
        let witness = forged_witness.unwrap_or(witness);
        prop_assume!(witness != exemption::witness(&v) || edited != v);
        // Trailing spaces are trimmed by definition; an edit that only adds them changes nothing.
        prop_assume!(edited.from.trim() != v.from || edited.applies_to.trim() != v.applies_to || edited.reason.trim() != v.reason
            || edited.expires.trim() != v.expires || edited.owner.trim() != v.owner || edited.reviewed.trim() != v.reviewed || which == 6);
        let (o, problems) = outcome(&manifest("chaos-trial", "subject", &edited, &witness), None);
        prop_assert_ne!(o, Outcome::Exempted, "edit of value {} with {:?} still honoured", which, extra);
        // Every edit is reported, an exempt-from that no longer lists the policy included.
        prop_assert!(!problems.is_empty());
    }

    /// Anyone can recompute the witness after an edit; nobody but the reviewer can sign it: the
    /// old approval over the old witness does not carry over to any edited value.
    #[test]
    fn changing_any_value_breaks_the_approval(which in 0usize..6, extra in "[a-f0-9,x ]{1,6}") {
        let v = values("chaos-trial");
        let approval = sostle_core::approval::sign(&crate::testkeys::test_key("IMHOTEP"), &exemption::witness(&v));
        let mut edited = v.clone();
        mutate(&mut edited, which, &extra);
        let witness = exemption::witness(&edited);
        prop_assume!(witness != exemption::witness(&v));
        let (o, problems) = outcome(&manifest_approved("chaos-trial", "subject", &edited, &witness, &approval), None);
        prop_assert_ne!(o, Outcome::Exempted, "edit of value {} with {:?} still honoured", which, extra);
        // The reviewer named is still IMHOTEP (unless that is the edit) and the policy still
        // listed (unless the edit dropped it): then the approval itself is what fails.
        let still_listed = edited.from.split(',').any(|p| p.trim() == "deny_no_limits");
        if which != 5 && still_listed {
            prop_assert!(problems.iter().any(|p| p.starts_with("not approved: no signature by a key of IMHOTEP over this witness")), "{:?}", problems);
        } else {
            prop_assert!(!problems.is_empty());
        }
    }

    /// The same seven annotations on another resource (other name or namespace) are refused.
    #[test]
    fn moving_it_breaks_it(name in "[a-z][a-z0-9-]{0,10}", other_ns in prop::bool::ANY) {
        let v = values("chaos-trial");
        let ns = if other_ns { "sostle-l3-crew" } else { "chaos-trial" };
        prop_assume!(!(ns == "chaos-trial" && name == "subject"));
        let (o, problems) = outcome(&manifest(ns, &name, &v, &exemption::witness(&v)), None);
        prop_assert_ne!(o, Outcome::Exempted);
        prop_assert!(problems.iter().any(|p| p.contains("cannot be copied to another resource")), "{:?}", problems);
    }
}

/// A ledger for tests: registered witnesses and trials in maps.
struct TestLedger {
    witnesses: HashMap<String, Timestamp>,
    trials: HashMap<String, TrialState>,
}

impl ExemptionLedger for TestLedger {
    fn witness_registered_at(&self, witness: &str) -> Option<Timestamp> {
        self.witnesses.get(witness).copied()
    }
    fn trial_state(&self, trial: &str) -> Option<TrialState> {
        self.trials.get(trial).copied()
    }
}

#[test]
fn with_a_ledger_the_witness_must_be_registered_and_the_trial_exist() {
    let v = values("chaos-trial");
    let w = exemption::witness(&v);
    let text = manifest("chaos-trial", "subject", &v, &w);
    let empty = TestLedger {
        witnesses: HashMap::new(),
        trials: HashMap::new(),
    };
    let (o, problems) = outcome(&text, Some(&empty));
    assert_eq!(o, Outcome::Fail);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not registered in the ledger")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("TRB-CHAOS-007 does not exist")),
        "{problems:?}"
    );
    let full = TestLedger {
        witnesses: HashMap::from([(w.clone(), now())]),
        trials: HashMap::from([("TRB-CHAOS-007".to_string(), TrialState::Open)]),
    };
    assert_eq!(outcome(&text, Some(&full)).0, Outcome::Exempted);
}

#[test]
fn max_days_counts_from_the_witness_registration() {
    // Registered 20 days before expiry... then evaluated later: still fine.
    let v = values("chaos-trial");
    let w = exemption::witness(&v);
    let text = manifest("chaos-trial", "subject", &v, &w);
    let registered_long_before = sostle_core::epoch::parse_rfc3339("2026-04-01T00:00:00Z").unwrap();
    let ledger = TestLedger {
        witnesses: HashMap::from([(w, registered_long_before)]),
        trials: HashMap::from([("TRB-CHAOS-007".to_string(), TrialState::Open)]),
    };
    // Expiry 2026-05-25 is 54 days after registration: refused though only 14 days from now.
    let (o, problems) = outcome(&text, Some(&ledger));
    assert_eq!(o, Outcome::Fail);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("after its witness was registered")),
        "{problems:?}"
    );
}

#[test]
fn l4_limits_exemption_follows_the_trial_state() {
    let mut v = values("sostle-l4-token");
    v.reviewed = "IMHOTEP".into();
    let w = exemption::witness(&v);
    let text = manifest("sostle-l4-token", "subject", &v, &w);
    let ledger = |state| TestLedger {
        witnesses: HashMap::from([(w.clone(), now())]),
        trials: HashMap::from([("TRB-CHAOS-007".to_string(), state)]),
    };
    assert_eq!(
        outcome(&text, Some(&ledger(TrialState::Open))).0,
        Outcome::Exempted
    );
    let (o, problems) = outcome(&text, Some(&ledger(TrialState::Closed)));
    assert_eq!(o, Outcome::Fail);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("TRB-CHAOS-007 is closed")),
        "{problems:?}"
    );
}
