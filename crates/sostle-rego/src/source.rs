//! User Rego as a [`PolicySource`] of the engine's one pass: each rule's outcome mapped into
//! the engine's results (`rego:<namespace>/<rule>`, deny → fail, warn → warn, an exception →
//! skip), a finding's `path` located in the document, the config's `userPolicyScope` applied.
//! The one home of that mapping: `sostle test`, `verify` and the webhook see the same results.

use std::sync::{Arc, Mutex};

use sostle_core::report::{Outcome, PolicyResult, Violation};
use sostle_core::source::{PolicySource, SourceError, SourceInput};
use sostle_core::{Config, Layer};

use crate::{RuleKind, UserOutcome, UserPolicies};

/// User policies ready to judge documents from any number of threads: the compiled policies
/// are cloned once per thread that needs them and reused (a clone is kept in a small pool).
pub struct RegoSource {
    policies: UserPolicies,
    pool: Mutex<Vec<UserPolicies>>,
}

impl std::fmt::Debug for RegoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegoSource")
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

impl RegoSource {
    /// A source over compiled user policies.
    pub fn new(policies: UserPolicies) -> RegoSource {
        RegoSource {
            policies,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The policies.
    pub fn policies(&self) -> &UserPolicies {
        &self.policies
    }

    /// Runs `f` with an engine of its own (from the pool, or a new clone).
    fn with_engine<T>(&self, f: impl FnOnce(&mut UserPolicies) -> T) -> T {
        let taken = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut engine = taken.unwrap_or_else(|| self.policies.clone());
        let out = f(&mut engine);
        if let Ok(mut p) = self.pool.lock() {
            p.push(engine);
        }
        out
    }
}

impl PolicySource for RegoSource {
    fn judge(&self, input: &SourceInput<'_>) -> Result<Vec<PolicyResult>, SourceError> {
        let json = input.root.to_json();
        let outcomes = self
            .with_engine(|e| e.evaluate(&json))
            .map_err(|e| SourceError(format!("Rego evaluation failed: {e}")))?;
        Ok(results(
            input.config,
            &self.policies,
            outcomes,
            input.layer,
            |p| p.map_or(input.root.pos, |p| input.root.locate_dotted(p)),
        ))
    }

    /// User rules judge every document, as conftest does.
    fn judges_kindless(&self) -> bool {
        true
    }
}

/// The results of user rules (`outcomes`, in `u.rules` order) on a document at `layer`: a
/// rule the config scopes to other layers is `skip`; a finding's `path` is located by `locate`.
fn results(
    config: &Config,
    u: &UserPolicies,
    outcomes: Vec<UserOutcome>,
    layer: Option<Layer>,
    locate: impl Fn(Option<&str>) -> sostle_core::manifest::Pos,
) -> Vec<PolicyResult> {
    let mut out = Vec::with_capacity(u.rules.len());
    for (rule, outcome) in u.rules.iter().zip(outcomes) {
        let id = rule.id();
        let in_scope = config
            .user_rule_layers(&id)
            .is_none_or(|set| layer.is_some_and(|l| set.contains(l)));
        let outcome = if in_scope {
            outcome
        } else {
            UserOutcome::Excepted
        };
        let (outcome, violations) = match outcome {
            UserOutcome::Pass => (Outcome::Pass, Vec::new()),
            UserOutcome::Excepted => (Outcome::Skip, Vec::new()),
            UserOutcome::Findings(f) => (
                match rule.kind {
                    RuleKind::Deny => Outcome::Fail,
                    RuleKind::Warn => Outcome::Warn,
                },
                f.into_iter()
                    .map(|x| Violation {
                        container: None,
                        pos: locate(x.path.as_deref()),
                        path: x.path.unwrap_or_default(),
                        message: x.msg,
                        fix: format!("see {id}").into(),
                    })
                    .collect(),
            ),
        };
        out.push(PolicyResult {
            policy: Arc::from(id.as_str()),
            outcome,
            violations,
            exemption: None,
        });
    }
    out
}
