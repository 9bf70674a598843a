//! Trials (SPEC §7), the pure parts: evidence parsing (Falco, Trivy, Kubernetes events), the
//! PELEGO failure fingerprint and its novelty, the verdict rules, and the manifest rewrites of
//! burst (chaos scheduling) and promote (back to a layer, with the lock). The ledger and the
//! command line drive these; nothing here does I/O.

mod charge;
mod evidence;
mod pelego;
mod rewrite;
mod verdict;

pub use charge::*;
pub use evidence::*;
pub use pelego::*;
pub use rewrite::*;
pub use verdict::*;

/// The trial namespace.
pub const TRIAL_NAMESPACE: &str = "chaos-trial";
/// Label naming a workload's trial.
pub const TRIAL_LABEL: &str = "sostle.eose.ca/trial";
/// Hours of clean Falco window a lock needs.
pub const CLEAN_HOURS: i64 = 24;

/// Where a trial is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// Filed, not yet burst.
    Charged,
    /// Running in the trial namespace.
    Burst,
    /// Closed (locked).
    Closed,
}

impl TrialState {
    /// The state of a trial burst at `burst_at` and closed at `closed_at`.
    pub fn of<T>(burst_at: Option<T>, closed_at: Option<T>) -> TrialState {
        if closed_at.is_some() {
            TrialState::Closed
        } else if burst_at.is_some() {
            TrialState::Burst
        } else {
            TrialState::Charged
        }
    }

    /// `charged`, `burst` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Charged => "charged",
            TrialState::Burst => "burst",
            TrialState::Closed => "closed",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::config::Config;
    use crate::layer::Layer;
    use jiff::Timestamp;
    use serde_json::json;

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

    #[test]
    fn a_live_record_that_does_not_decode_is_an_error_not_an_empty_recheck() {
        let t: Timestamp = "2026-05-11T09:00:00Z".parse().unwrap();
        let good = json!({"documents": [{"kind": "Pod"}], "failures": []});
        let bad = json!({"documents": "not a list", "failures": []});
        let charge = json!({"whatever": 1});
        let rec = |id, kind, data| StoredEvidence {
            id,
            trial: "TRB-CHAOS-001",
            kind,
            source: "live.yaml",
            recorded_at: t,
            data,
        };
        // Phases are not inputs: an odd charge record does not stop the verdict.
        let h = History::decode([
            rec(1, EvidenceKind::Charge, &charge),
            rec(2, EvidenceKind::Live, &good),
        ])
        .unwrap();
        assert_eq!(h.live_documents(), vec![json!({"kind": "Pod"})]);
        let e = History::decode([
            rec(2, EvidenceKind::Live, &good),
            rec(3, EvidenceKind::Live, &bad),
        ])
        .unwrap_err();
        assert_eq!((e.kind, e.id), (EvidenceKind::Live, 3));
        assert!(
            e.to_string().contains("live evidence #3 (from live.yaml"),
            "{e}"
        );
    }

    #[test]
    fn a_lock_authorizes_no_layer_whose_gate_is_closed_and_nothing_is_promoted_there() {
        let mut config = Config::default();
        let body = |layers: &[&str]| crate::mecipol::ProfileBody {
            profile_id: "profile-001".into(),
            image: "reg.io/a:1".into(),
            image_digest: None,
            gamma1_epoch: 97,
            policies_passed: Vec::new(),
            policies_exempted: Vec::new(),
            exemptions: Vec::new(),
            falco_clean_hours: 24,
            trivy_critical_cves: 0,
            rekor_entry: None,
            locked_at: "2026-05-11T09:00:00Z".into(),
            sostle_layers_authorized: layers.iter().map(|l| l.to_string()).collect(),
            trial: "TRB-CHAOS-001".into(),
            target: "L2".into(),
        };
        let all = |c: &Config| authorized_layers(c, 97, |_| Vec::new());
        // The built-in table closes L6 only.
        assert_eq!(
            all(&config),
            [0, 1, 2, 3, 4, 5, 7].map(|n| Layer::from_index(n).unwrap())
        );
        let l3 = body(&["L3"]);
        assert!(crate::mecipol::check_promotion_layer(&l3, Layer::L3, &config).is_ok());
        // A config that closes L3 takes it out of every lock and refuses promotion there.
        for spec in &mut config.layers {
            if spec.layer == Layer::L3 {
                spec.gate = crate::suite::Gate::Closed;
            }
        }
        assert!(!all(&config).contains(&Layer::L3));
        let refused = crate::mecipol::check_promotion_layer(&l3, Layer::L3, &config).unwrap_err();
        assert_eq!(refused, crate::mecipol::PromotionRefusal::Closed(Layer::L3));
        assert_eq!(
            refused.to_string(),
            "L3 is closed: nothing is ever promoted there"
        );
    }

    #[test]
    fn a_runtime_violation_of_unreadable_time_leaves_no_clean_window() {
        let config = Config::default();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let falco = vec![FalcoSummary {
            events: 1,
            on_trial_pods: 1,
            violations: vec![FalcoViolation {
                time: "sometime on Tuesday".into(),
                rule: "Terminal shell in container".into(),
                priority: "Warning".into(),
                pod: "w-1".into(),
            }],
            latest: None,
        }];
        let v = verdict(
            &VerdictInput {
                reports: &[],
                target: Layer::L2,
                burst_at: Some(t("2026-05-11T10:00:00Z")),
                falco: &falco,
                falco_checked_until: None,
                trivy: &[],
                now: t("2026-05-13T10:00:00Z"),
            },
            &config,
        );
        assert_eq!(v.verdict, TrialVerdict::DenyHard);
        assert_eq!(v.falco_clean_hours, 0, "{v:?}");
    }
}
