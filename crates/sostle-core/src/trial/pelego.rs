//! PELEGO: a trial's failure fingerprint and how novel it is against the trials before it.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::report::{Outcome, ResourceReport};

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "novelty", rename_all = "lowercase")]
pub enum Novelty {
    /// Nothing failed.
    #[default]
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
