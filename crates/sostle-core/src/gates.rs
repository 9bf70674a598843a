//! The layer gates (SPEC §4): who may run a workload at a layer. One function per gate; the
//! layer table (`suite`, with config overrides) says which gate each layer has, so nothing here
//! knows a layer by its name.

use std::borrow::Cow;

use jiff::Timestamp;

use crate::config::{Config, CrewMember, Requester};
use crate::layer::Layer;
use crate::manifest::{Node, Pos};
use crate::report::{Outcome, Violation};
use crate::suite::Gate;
use crate::token;

/// What a gate looks at: the workload, the layer it is judged at, the config, and what comes
/// from outside (the token secret, the clock).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GateCtx<'a> {
    /// The config (crew register, MEGSCIFIAR gates).
    pub config: &'a Config,
    /// The workload object.
    pub root: &'a Node,
    /// Its kind.
    pub kind: &'a str,
    /// The layer it is judged at.
    pub layer: Layer,
    /// Secret for SOSTLE tokens, if any.
    pub token_secret: Option<&'a [u8]>,
    /// Now.
    pub now: Timestamp,
    /// Who asks, when known (the door; `sostle test --as`).
    pub requester: Option<&'a Requester>,
}

impl<'a> GateCtx<'a> {
    fn label(&self, key: &str) -> Option<String> {
        self.root
            .get_path(&["metadata", "labels", key])
            .and_then(Node::scalar_text)
    }

    fn annotation(&self, key: &str) -> Option<String> {
        self.root
            .get_path(&["metadata", "annotations", key])
            .and_then(Node::scalar_text)
    }

    fn at(&self, path: &[&str]) -> Pos {
        self.root.locate(path)
    }

    fn violation(
        &self,
        path: &str,
        at: &[&str],
        message: String,
        fix: impl Into<Cow<'static, str>>,
    ) -> Violation {
        Violation {
            container: None,
            path: path.to_string(),
            pos: self.at(at),
            message,
            fix: fix.into(),
        }
    }

    /// The registered crew member the workload names, holding `role` when one is needed.
    fn crew(&self, role: Option<&str>) -> Result<&'a CrewMember, Violation> {
        let l = self.layer;
        let refuse = |message: String, fix: &'static str| {
            self.violation(
                "metadata.labels.crew-member",
                &["metadata", "labels", "crew-member"],
                message,
                fix,
            )
        };
        let Some(name) = self.label("crew-member") else {
            return Err(refuse(
                format!("{l} admits only registered crew, and label crew-member is missing"),
                "set label crew-member=<registered crew name>",
            ));
        };
        let Some(member) = self.config.crew_member(&name) else {
            return Err(refuse(
                format!("crew-member `{name}` is not registered crew"),
                "name a crew member registered in the SostleConfig",
            ));
        };
        if let Some(role) = role {
            if !member.has_role(role) {
                return Err(refuse(
                    format!(
                        "crew member {} lacks the `{role}` role that {l} requires",
                        member.name
                    ),
                    "name a crew member who holds the role, or ask for it in the config",
                ));
            }
        }
        // A label names a member; only the requester's authenticated identity proves it is
        // them (SPEC §5). Kubernetes' own controllers make pods from templates the door
        // already judged under their creator's identity.
        if let Some(r) = self.requester {
            if !r.is_cluster_controller() && !member.acts_for(r) {
                let groups = if r.groups.is_empty() {
                    String::new()
                } else {
                    format!(" (groups {})", r.groups.join(", "))
                };
                return Err(refuse(
                    format!(
                        "the request comes from {}{groups}, who does not act for crew member {}: the crew-member label names a member, it does not prove who deploys",
                        r.user, member.name
                    ),
                    "deploy as one of the member's subjects (crew[].subjects in the config: user:, group:, serviceaccount:)",
                ));
            }
        }
        Ok(member)
    }
}

/// The outcome a gate's violations carry: the read-only and SSO gates warn, the others deny.
pub(crate) fn verdict(gate: Gate) -> Outcome {
    match gate {
        Gate::ReadOnly | Gate::Sso => Outcome::Warn,
        _ => Outcome::Fail,
    }
}

/// The violations of `gate` for the workload in `g`.
pub(crate) fn check(gate: Gate, g: &GateCtx<'_>) -> Vec<Violation> {
    match gate {
        Gate::Open => Vec::new(),
        Gate::ReadOnly => read_only(g),
        Gate::Sso => sso(g),
        Gate::Crew => g.crew(None).err().into_iter().collect(),
        Gate::Token => with_token(g),
        Gate::KayApproved => kay_approved(g),
        Gate::Closed => closed(g),
        Gate::Mega => megscifiar(g),
    }
}

/// Read-only: no declared write operations.
fn read_only(g: &GateCtx<'_>) -> Vec<Violation> {
    let Some(ops) = g.annotation("sostle.eose.ca/operations") else {
        return Vec::new();
    };
    let writes: Vec<&str> = ops
        .split(',')
        .map(str::trim)
        .filter(|o| {
            ["write", "create", "update", "patch", "delete"]
                .contains(&o.to_ascii_lowercase().as_str())
        })
        .collect();
    if writes.is_empty() {
        return Vec::new();
    }
    vec![g.violation(
        "metadata.annotations.sostle.eose.ca/operations",
        &["metadata", "annotations", "sostle.eose.ca/operations"],
        format!(
            "{} is read-only, but the workload declares write operations: {}",
            g.layer,
            writes.join(",")
        ),
        "remove write,create,update,patch,delete from sostle.eose.ca/operations",
    )]
}

/// SSO: the workload declares Google SSO.
fn sso(g: &GateCtx<'_>) -> Vec<Violation> {
    let l = g.layer;
    let message = match g.annotation("sostle.eose.ca/sso") {
        Some(s) if s == "google" => return Vec::new(),
        Some(s) => format!("{l} expects Google SSO, but sostle.eose.ca/sso is `{s}`"),
        None => format!("{l} expects Google SSO, and annotation sostle.eose.ca/sso is missing"),
    };
    vec![g.violation(
        "metadata.annotations.sostle.eose.ca/sso",
        &["metadata", "annotations", "sostle.eose.ca/sso"],
        message,
        "set annotation sostle.eose.ca/sso: google",
    )]
}

/// Token: registered crew with a valid SOSTLE token for this member and layer.
fn with_token(g: &GateCtx<'_>) -> Vec<Violation> {
    let l = g.layer;
    let member = match g.crew(None) {
        Err(e) => return vec![e],
        Ok(m) => m,
    };
    let path = "metadata.labels.sostle-token";
    let at = ["metadata", "labels", "sostle-token"];
    match (g.label("sostle-token"), g.token_secret) {
        (None, _) => vec![g.violation(
            path,
            &at,
            format!("{l} needs a SOSTLE token, and label sostle-token is missing"),
            format!("issue one with `sostle token issue --crew NAME --layer {l} --expires …` and set label sostle-token"),
        )],
        (Some(_), None) => vec![g.violation(
            path,
            &at,
            "no token secret is configured, so the SOSTLE token cannot be verified".into(),
            "set SOSTLE_TOKEN_SECRET or tokens.secret in the config",
        )],
        (Some(t), Some(secret)) => {
            let names = g.config.crew.iter().map(|c| c.name.as_str());
            match token::verify(secret, &t, &member.name, l, g.now.as_second(), names) {
                Ok(_) => Vec::new(),
                Err(e) => vec![g.violation(
                    path,
                    &at,
                    format!("SOSTLE token refused: {e}"),
                    "issue a fresh token for this crew member and layer",
                )],
            }
        }
    }
}

/// Kay-approved: crew with `l5-authorized`, and `kay-approved=true`.
fn kay_approved(g: &GateCtx<'_>) -> Vec<Violation> {
    let mut violations: Vec<Violation> = g.crew(Some("l5-authorized")).err().into_iter().collect();
    if g.label("kay-approved").as_deref() != Some("true") {
        violations.push(g.violation(
            "metadata.labels.kay-approved",
            &["metadata", "labels", "kay-approved"],
            format!(
                "{} admits only what Kay approved, and label kay-approved is not `true`",
                g.layer
            ),
            "ask Kay to approve, then set label kay-approved=true",
        ));
    }
    // The label is the seed's rule; Kay's signature over this workload is the proof (SPEC §5).
    // Kubernetes' own controllers make pods from templates the door already judged.
    if !g.requester.is_some_and(Requester::is_cluster_controller) {
        let text = |k: &str| {
            g.root
                .get_path(&["metadata", k])
                .and_then(Node::as_str)
                .unwrap_or_default()
        };
        let who = crate::kay::Subject {
            namespace: text("namespace"),
            kind: g.kind,
            name: text("name"),
        };
        if let Err(e) = crate::kay::check(g.config, g.root, &who, g.now) {
            violations.push(g.violation(
                "metadata.annotations.sostle.eose.ca/kay-approval",
                &["metadata", "annotations", crate::kay::APPROVAL],
                format!("{}: {e}", g.layer),
                "ask Kay to sign this workload: `sostle approve L5 FILE --key kay.key --write`",
            ));
        }
    }
    violations
}

/// Closed: no workload at all.
fn closed(g: &GateCtx<'_>) -> Vec<Violation> {
    vec![g.violation(
        "kind",
        &["kind"],
        format!(
            "{} is closed: no {} may run here (ConfigMaps and Secrets only)",
            g.layer, g.kind
        ),
        "deploy the workload to another layer",
    )]
}

/// MEGSCIFIAR: all five gates open, and crew with the `megscifiar` role.
fn megscifiar(g: &GateCtx<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    let shut: Vec<String> = g
        .config
        .gates
        .iter()
        .enumerate()
        .filter(|(_, gate)| !gate.open)
        .map(|(i, _)| format!("gate-{}", i + 1))
        .collect();
    if !shut.is_empty() {
        violations.push(g.violation(
            "kind",
            &["kind"],
            format!(
                "{} needs all five MEGSCIFIAR gates open; closed: {}",
                g.layer,
                shut.join(", ")
            ),
            "open the gates in the SostleConfig (each names who opened it)",
        ));
    }
    if let Err(e) = g.crew(Some("megscifiar")) {
        violations.push(e);
    }
    violations
}
