//! Trendals (SPEC §8): crew-owned agent workloads, one per layer, silo and crew member. What a
//! spawn asks is checked against the layer's gate from the config (a layer's name decides
//! nothing here: what L4 demands is whatever gate the suite table gives L4), and the manifest
//! is built to satisfy that gate.

use serde_json::{json, Map, Value as J};

use crate::config::{Config, CrewMember};
use crate::epoch::GAMMA1_LABEL;
use crate::layer::Layer;
use crate::mecipol::Profile;
use crate::suite::Gate;

/// The image a trendal runs when neither `--image` nor a profile names one.
pub const DEFAULT_IMAGE: &str = "ghcr.io/eose/trendal:0.1.0";
/// The warmth floor when the suite's `warn_trendal_missing` row names none.
pub const DEFAULT_FLOOR: f64 = 0.5;

/// Where a trendal is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrendalState {
    /// Running (or meant to be).
    Active,
    /// Expired: its warmth fell below the floor, or its trial closed.
    Reaped,
}

impl TrendalState {
    /// `active` or `reaped`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendalState::Active => "active",
            TrendalState::Reaped => "reaped",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<TrendalState> {
        [TrendalState::Active, TrendalState::Reaped]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for TrendalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a spawn asks for.
#[derive(Debug, Clone)]
pub struct SpawnRequest<'a> {
    /// The layer it serves.
    pub layer: Layer,
    /// The silo (letters, digits, dashes).
    pub silo: &'a str,
    /// The crew member who owns it (none only where the gate is open).
    pub crew: Option<&'a str>,
    /// `A+B`: crew members it spirals with.
    pub crew_spiral: Option<&'a str>,
    /// A SOSTLE token, for a token-gated layer.
    pub token: Option<&'a str>,
    /// Kay's approval, for a Kay-gated layer.
    pub kay_approved: bool,
    /// Its warmth, in [0, 1].
    pub warmth: f64,
    /// The trial whose chaos pool it runs on, if any.
    pub trial: Option<&'a str>,
}

/// Why a spawn is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnRefusal {
    /// The trial namespace is not a layer.
    #[error("a trendal belongs to a layer L0…L7; use --trial-id to run it on the chaos pool")]
    TrialLayer,
    /// The layer's gate is closed.
    #[error("{0} is closed: no trendal may be spawned there")]
    Closed(Layer),
    /// Warmth outside [0, 1].
    #[error("warmth {0} is outside [0, 1]")]
    WarmthRange(f64),
    /// Warmth below the floor.
    #[error("warmth {warmth} is below the {floor} floor (COLD)")]
    Cold {
        /// The warmth asked for.
        warmth: f64,
        /// The floor.
        floor: f64,
    },
    /// A silo that is not letters, digits and dashes.
    #[error("silo `{0}` must be letters, digits and dashes")]
    Silo(String),
    /// No crew where the gate needs one.
    #[error("{0} needs --crew (a registered crew member)")]
    NoCrew(Layer),
    /// Crew not registered.
    #[error("crew `{0}` is not registered")]
    UnknownCrew(String),
    /// A spiral member not registered.
    #[error("crew-spiral member `{0}` is not registered")]
    UnknownSpiralMember(String),
    /// A token-gated layer without a token.
    #[error("{0} needs --token (a SOSTLE token for this crew member at {0})")]
    NoToken(Layer),
    /// A Kay-gated layer without the approval.
    #[error("{0} needs Kay's approval: --kay-approved")]
    NoKay(Layer),
    /// The MEGSCIFIAR layer with a gate shut.
    #[error("{0} needs all five MEGSCIFIAR gates open")]
    GatesShut(Layer),
}

/// A checked spawn: everything the manifest needs but its id.
#[derive(Debug, Clone)]
pub struct SpawnPlan<'a> {
    /// The request.
    pub request: SpawnRequest<'a>,
    /// The layer's gate.
    pub gate: Gate,
    /// The owner, when the layer names one.
    pub member: Option<CrewMember>,
    /// `PUBLIC` or the member's name.
    pub crew_name: String,
    /// The namespace it runs in.
    pub namespace: String,
    /// The image it runs.
    pub image: String,
    /// The lock it carries, if any.
    pub profile: Option<&'a Profile>,
}

/// The warmth floor of the suite (`warn_trendal_missing.floor`).
pub fn floor(config: &Config) -> f64 {
    config
        .policy("warn_trendal_missing")
        .map_or(DEFAULT_FLOOR, |p| p.floor)
}

/// Checks `request` against its layer's gate and the crew register; the plan to build from.
pub fn plan<'a>(
    request: SpawnRequest<'a>,
    config: &Config,
    namespace: Option<&str>,
    image: Option<&str>,
    profile: Option<&'a Profile>,
) -> Result<SpawnPlan<'a>, SpawnRefusal> {
    let layer = request.layer;
    if layer == Layer::Trial {
        return Err(SpawnRefusal::TrialLayer);
    }
    let spec = config.layer(layer);
    let gate = config.gate(layer);
    if gate == Gate::Closed {
        return Err(SpawnRefusal::Closed(layer));
    }
    if !(0.0..=1.0).contains(&request.warmth) {
        return Err(SpawnRefusal::WarmthRange(request.warmth));
    }
    let floor = floor(config);
    if request.warmth < floor {
        return Err(SpawnRefusal::Cold {
            warmth: request.warmth,
            floor,
        });
    }
    if request.silo.is_empty()
        || !request
            .silo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(SpawnRefusal::Silo(request.silo.to_string()));
    }
    // Crew: none where the gate is open (public), else a registered member.
    let member = match (request.crew, gate) {
        (None, Gate::Open) => None,
        (None, _) => return Err(SpawnRefusal::NoCrew(layer)),
        (Some(c), _) => match config.crew_member(c) {
            Some(m) => Some(m.clone()),
            None => return Err(SpawnRefusal::UnknownCrew(c.to_string())),
        },
    };
    if let Some(spiral) = request.crew_spiral {
        for m in spiral.split('+').map(str::trim) {
            if config.crew_member(m).is_none() {
                return Err(SpawnRefusal::UnknownSpiralMember(m.to_string()));
            }
        }
    }
    match gate {
        Gate::Token if request.token.is_none() => return Err(SpawnRefusal::NoToken(layer)),
        Gate::KayApproved if !request.kay_approved => return Err(SpawnRefusal::NoKay(layer)),
        Gate::Mega if !config.all_gates_open() => return Err(SpawnRefusal::GatesShut(layer)),
        _ => {}
    }
    let crew_name = member
        .as_ref()
        .map_or("PUBLIC".to_string(), |m| m.name.clone());
    Ok(SpawnPlan {
        request,
        gate,
        member,
        crew_name,
        namespace: namespace
            .map(str::to_string)
            .or_else(|| spec.map(|l| l.namespace.clone()))
            .unwrap_or_default(),
        image: image
            .map(str::to_string)
            .or_else(|| profile.map(|p| p.image.clone()))
            .unwrap_or_else(|| DEFAULT_IMAGE.into()),
        profile,
    })
}

impl SpawnPlan<'_> {
    /// The id prefix: `TRENDAL-L3-YONE-BOSUN` (the ledger numbers it).
    pub fn prefix(&self) -> String {
        format!(
            "TRENDAL-{}-{}-{}",
            self.request.layer.as_str(),
            self.request.silo.to_uppercase(),
            self.crew_name.to_uppercase()
        )
    }

    /// The trendal's Deployment for `id`: the labels and annotations its layer's gate asks
    /// for, the lock when a profile is given, and chaos scheduling when it runs in a trial.
    pub fn manifest(&self, id: &str) -> J {
        let r = &self.request;
        let mut labels = Map::new();
        let mut annotations = Map::new();
        let mut label = |k: &str, v: J| labels.insert(k.to_string(), v);
        label("app.kubernetes.io/name", json!("trendal"));
        label("sostle.eose.ca/trendal", json!(id));
        label("gamma1", json!(GAMMA1_LABEL));
        label("sostle-layer", json!(r.layer.as_str()));
        let mut annotate = |k: &str, v: J| annotations.insert(k.to_string(), v);
        annotate("sostle.eose.ca/trendal", json!(id));
        annotate("sostle.eose.ca/trendal-warmth", json!(r.warmth.to_string()));
        annotate("sostle.eose.ca/silo", json!(r.silo));
        if let Some(m) = &self.member {
            labels.insert("crew-member".into(), json!(m.name));
        }
        if let Some(s) = r.crew_spiral {
            annotations.insert("sostle.eose.ca/crew-spiral".into(), json!(s));
        }
        match self.gate {
            Gate::ReadOnly => {
                annotations.insert("sostle.eose.ca/operations".into(), json!("read"));
            }
            Gate::Sso => {
                annotations.insert("sostle.eose.ca/sso".into(), json!("google"));
            }
            Gate::Token => {
                labels.insert("sostle-token".into(), json!(r.token.unwrap_or_default()));
            }
            Gate::KayApproved => {
                labels.insert("kay-approved".into(), json!("true"));
            }
            _ => {}
        }
        if let Some(p) = self.profile {
            labels.insert("mecipol-locked".into(), json!("true"));
            annotations.insert("mecipol-image".into(), json!(p.image));
            annotations.insert("mecipol-profile".into(), json!(p.id));
            let epoch = p.profile.get("gamma1_epoch").cloned().unwrap_or(J::Null);
            annotations.insert("mecipol-epoch".into(), json!(epoch.to_string()));
        }
        let mut pod_spec = json!({
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "trendal", "image": self.image,
                "args": ["--trendal", id, "--silo", r.silo],
                "resources": {"requests": {"cpu": "25m", "memory": "32Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}},
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "livenessProbe": {"exec": {"command": ["/trendal", "--alive"]}, "periodSeconds": 30},
            }],
        });
        match r.trial {
            Some(trial) => {
                crate::trial::add_chaos_scheduling(&mut pod_spec);
                labels.insert(crate::trial::TRIAL_LABEL.into(), json!(trial));
            }
            None => {
                if let Some(spec) = pod_spec.as_object_mut() {
                    spec.insert(
                        "nodeSelector".into(),
                        json!({"kubernetes.azure.com/agentpool": "agents"}),
                    );
                }
            }
        }
        let labels = J::Object(labels);
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": id.to_lowercase(), "namespace": self.namespace, "labels": labels, "annotations": annotations},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"sostle.eose.ca/trendal": id}},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})
    }
}

/// What `kubectl delete -f -` needs to remove a trendal: its manifest's apiVersion, kind,
/// name and namespace.
pub fn deletion(manifest: &J) -> J {
    let field = |path: &str| manifest.pointer(path).cloned().unwrap_or(J::Null);
    json!({"apiVersion": field("/apiVersion"), "kind": field("/kind"),
        "metadata": {"name": field("/metadata/name"), "namespace": field("/metadata/namespace")}})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    fn request(layer: Layer) -> SpawnRequest<'static> {
        SpawnRequest {
            layer,
            silo: "yone",
            crew: Some("BOSUN"),
            crew_spiral: None,
            token: None,
            kay_approved: false,
            warmth: 0.8,
            trial: None,
        }
    }

    #[test]
    fn what_a_spawn_needs_follows_the_layers_gate_not_its_name() {
        let mut config = Config::default();
        // The default table: L4 is token-gated, L3 needs crew only.
        assert_eq!(
            plan(request(Layer::L4), &config, None, None, None).unwrap_err(),
            SpawnRefusal::NoToken(Layer::L4)
        );
        let l3 = plan(request(Layer::L3), &config, None, None, None).unwrap();
        assert!(l3.manifest("T-001")["metadata"]["labels"]
            .get("sostle-token")
            .is_none());
        // A config that token-gates L3 and closes L2 changes what they demand.
        for spec in &mut config.layers {
            match spec.layer {
                Layer::L3 => spec.gate = Gate::Token,
                Layer::L2 => spec.gate = Gate::Closed,
                _ => {}
            }
        }
        assert_eq!(
            plan(request(Layer::L3), &config, None, None, None).unwrap_err(),
            SpawnRefusal::NoToken(Layer::L3)
        );
        assert_eq!(
            plan(request(Layer::L2), &config, None, None, None).unwrap_err(),
            SpawnRefusal::Closed(Layer::L2)
        );
        let with_token = SpawnRequest {
            token: Some("tok"),
            ..request(Layer::L3)
        };
        let m = plan(with_token, &config, None, None, None)
            .unwrap()
            .manifest("T-001");
        assert_eq!(m["metadata"]["labels"]["sostle-token"], "tok");
    }

    #[test]
    fn a_trial_trendal_runs_on_the_chaos_pool() {
        let config = Config::default();
        let r = SpawnRequest {
            trial: Some("TRB-CHAOS-001"),
            ..request(Layer::L3)
        };
        let m = plan(r, &config, None, None, None)
            .unwrap()
            .manifest("T-001");
        let spec = &m["spec"]["template"]["spec"];
        assert_eq!(spec["nodeSelector"]["pool"], "chaos");
        assert_eq!(
            m["spec"]["template"]["metadata"]["labels"][crate::trial::TRIAL_LABEL],
            "TRB-CHAOS-001"
        );
        assert_eq!(
            deletion(&m),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "t-001", "namespace": m["metadata"]["namespace"]}})
        );
    }
}
