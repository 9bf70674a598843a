//! `sostle trendal spawn | list | warm | reap` (SPEC §8): crew-owned agent workloads per layer,
//! registered in the ledger with sequential IDs per prefix.

// Builds and reads serde_json objects by index until its results are typed (#11 step 2).
#![allow(clippy::indexing_slicing)]

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::{json, Value as J};
use sostle_core::epoch::{GAMMA1, GAMMA1_LABEL};
use sostle_core::eval::NoLabels;
use sostle_core::{yaml, Engine, EvalContext, Layer, Outcome};
use sostle_ledger::Trendal;

use crate::cli::{TrendalCommand, TrendalFormat};

fn refuse(why: String) -> anyhow::Result<u8> {
    eprintln!("refused: {why}");
    Ok(1)
}

pub fn run(cmd: TrendalCommand) -> anyhow::Result<u8> {
    match cmd {
        TrendalCommand::Spawn(a) => spawn(a),
        TrendalCommand::List {
            output,
            common,
            ledger,
        } => {
            let config =
                crate::check::load_config(common.config.as_deref()).map_err(anyhow::Error::msg)?;
            let l = crate::trial::open_ledger(&ledger, &config)?;
            let _ = crate::now_from(&common)?;
            let all = l.trendals()?;
            let mut w = std::io::stdout().lock();
            match output {
                TrendalFormat::Json => {
                    let rows: Vec<J> = all.iter().map(row).collect();
                    serde_json::to_writer_pretty(&mut w, &rows)?;
                    writeln!(w)?;
                }
                _ => {
                    writeln!(
                        w,
                        "{:<32} {:<6} {:<7} {:<6} {:<16} {:<15} STATE",
                        "TRENDAL", "LAYER", "WARMTH", "", "NAMESPACE", "TRIAL"
                    )?;
                    for t in &all {
                        let feel = if t.warmth >= 0.5 { "WARM" } else { "COLD" };
                        writeln!(
                            w,
                            "{:<32} {:<6} {:<7.2} {:<6} {:<16} {:<15} {}",
                            t.id,
                            t.layer,
                            t.warmth,
                            feel,
                            t.namespace,
                            t.trial.as_deref().unwrap_or("-"),
                            t.state
                        )?;
                    }
                }
            }
            Ok(0)
        }
        TrendalCommand::Warm {
            id,
            warmth,
            common,
            ledger,
        } => {
            if !(0.0..=1.0).contains(&warmth) {
                bail!("warmth {warmth} is outside [0, 1]");
            }
            let _ = crate::now_from(&common)?;
            let config =
                crate::check::load_config(common.config.as_deref()).map_err(anyhow::Error::msg)?;
            let mut l = crate::trial::open_ledger(&ledger, &config)?;
            let t = l.atomically(|tx| tx.warm_trendal(&id, warmth))?;
            let feel = if t.warmth >= 0.5 {
                "WARM — above 0.5 floor"
            } else {
                "COLD — below 0.5 floor; `sostle trendal reap` will expire it"
            };
            println!("{}: warmth {:.2} ({feel})", t.id, t.warmth);
            Ok(0)
        }
        TrendalCommand::Reap { common, ledger } => {
            let config =
                crate::check::load_config(common.config.as_deref()).map_err(anyhow::Error::msg)?;
            let floor = config
                .policy("warn_trendal_missing")
                .map_or(0.5, |p| p.floor);
            let now = crate::now_from(&common)?;
            let mut l = crate::trial::open_ledger(&ledger, &config)?;
            let closed: Vec<String> = l
                .trial_states()?
                .into_iter()
                .filter(|(_, open)| !open)
                .map(|(id, _)| id)
                .collect();
            let mut deletions = Vec::new();
            for t in l.trendals()?.into_iter().filter(|t| t.state == "active") {
                let reason = if t.warmth < floor {
                    Some(format!("warmth {:.2} below the {floor} floor", t.warmth))
                } else {
                    t.trial
                        .as_ref()
                        .filter(|tr| closed.contains(tr))
                        .map(|tr| format!("trial {tr} closed"))
                };
                if let Some(reason) = reason {
                    l.atomically(|tx| tx.reap_trendal(&t.id, &reason, now))?;
                    eprintln!("reaped {}: {reason}", t.id);
                    let m = &t.manifest;
                    deletions.push(json!({"apiVersion": m["apiVersion"], "kind": m["kind"],
                        "metadata": {"name": m["metadata"]["name"], "namespace": m["metadata"]["namespace"]}}));
                }
            }
            let mut w = std::io::stdout().lock();
            if deletions.is_empty() {
                eprintln!("nothing to reap");
            } else {
                writeln!(w, "# kubectl delete -f - takes this")?;
                crate::trial::print_yaml(&deletions, &mut w)?;
            }
            Ok(0)
        }
    }
}

fn row(t: &Trendal) -> J {
    json!({"trendal": t.id, "layer": t.layer, "silo": t.silo, "crew": t.crew, "crew_spiral": t.spiral, "trial": t.trial,
        "warmth": t.warmth, "namespace": t.namespace, "state": t.state, "spawned_at": t.spawned_at,
        "reaped_at": t.reaped_at, "reap_reason": t.reap_reason})
}

fn spawn(a: crate::cli::SpawnArgs) -> anyhow::Result<u8> {
    let config =
        crate::check::load_config(a.common.config.as_deref()).map_err(anyhow::Error::msg)?;
    let now = crate::now_from(&a.common)?;
    let layer = crate::parse_layer("--sostle", &a.sostle)?;
    let floor = config
        .policy("warn_trendal_missing")
        .map_or(0.5, |p| p.floor);
    if layer == Layer::Trial {
        return refuse(
            "a trendal belongs to a layer L0…L7; use --trial-id to run it on the chaos pool".into(),
        );
    }
    if layer == Layer::L6 {
        return refuse("L6 is closed: no trendal may be spawned there".into());
    }
    if !(0.0..=1.0).contains(&a.warmth) {
        return refuse(format!("warmth {} is outside [0, 1]", a.warmth));
    }
    if a.warmth < floor {
        return refuse(format!(
            "warmth {} is below the {floor} floor (COLD)",
            a.warmth
        ));
    }
    if a.silo.is_empty()
        || !a
            .silo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return refuse(format!(
            "silo `{}` must be letters, digits and dashes",
            a.silo
        ));
    }
    // Crew: none at L0 (public), else a registered member.
    let member = match (&a.crew, layer) {
        (None, Layer::L0) => None,
        (None, _) => return refuse(format!("{layer} needs --crew (a registered crew member)")),
        (Some(c), _) => match config.crew_member(c) {
            Some(m) => Some(m.clone()),
            None => return refuse(format!("crew `{c}` is not registered")),
        },
    };
    if let Some(spiral) = &a.crew_spiral {
        for m in spiral.split('+').map(str::trim) {
            if config.crew_member(m).is_none() {
                return refuse(format!("crew-spiral member `{m}` is not registered"));
            }
        }
    }
    let crew_name = member
        .as_ref()
        .map_or("PUBLIC".to_string(), |m| m.name.clone());
    match layer {
        Layer::L4 if a.token.is_none() => {
            return refuse("L4 needs --token (a SOSTLE token for this crew member at L4)".into())
        }
        Layer::L5 if !a.kay_approved => {
            return refuse("L5 needs Kay's approval: --kay-approved".into())
        }
        Layer::L7 if !config.all_gates_open() => {
            return refuse("L7 needs all five MEGSCIFIAR gates open".into())
        }
        _ => {}
    }
    let mut ledger = crate::trial::open_ledger(&a.ledger, &config)?;
    if let Some(trial) = &a.trial_id {
        let t = ledger
            .trial(trial)
            .with_context(|| format!("--trial-id {trial}"))?;
        if t.closed_at.is_some() {
            return refuse(format!("trial {trial} is closed"));
        }
    }
    let namespace = a.namespace.clone().unwrap_or_else(|| {
        config
            .layer(layer)
            .map(|l| l.namespace.clone())
            .unwrap_or_default()
    });
    let profile = match &a.profile {
        Some(p) => Some(ledger.profile(p)?),
        None => None,
    };
    let image = a
        .image
        .clone()
        .or_else(|| profile.as_ref().map(|p| p.image.clone()))
        .unwrap_or_else(|| "ghcr.io/eose/trendal:0.1.0".into());
    let prefix = format!(
        "TRENDAL-{}-{}-{}",
        layer.as_str(),
        a.silo.to_uppercase(),
        crew_name.to_uppercase()
    );
    // Build the manifest for a candidate id and check it passes its own layer before filing.
    let build = |id: &str| -> J {
        let name = id.to_lowercase();
        let mut labels = json!({"app.kubernetes.io/name": "trendal", "sostle.eose.ca/trendal": id, "gamma1": GAMMA1_LABEL, "sostle-layer": layer.as_str()});
        let mut annotations = json!({"sostle.eose.ca/trendal": id, "sostle.eose.ca/trendal-warmth": format!("{}", a.warmth), "sostle.eose.ca/silo": a.silo});
        if let Some(m) = &member {
            labels["crew-member"] = json!(m.name);
        }
        if let Some(s) = &a.crew_spiral {
            annotations["sostle.eose.ca/crew-spiral"] = json!(s);
        }
        match layer {
            Layer::L1 => annotations["sostle.eose.ca/operations"] = json!("read"),
            Layer::L2 => annotations["sostle.eose.ca/sso"] = json!("google"),
            Layer::L4 => labels["sostle-token"] = json!(a.token.clone().unwrap_or_default()),
            Layer::L5 => labels["kay-approved"] = json!("true"),
            _ => {}
        }
        if let Some(p) = &profile {
            labels["mecipol-locked"] = json!("true");
            annotations["mecipol-image"] = json!(p.image);
            annotations["mecipol-profile"] = json!(p.id);
            annotations["mecipol-epoch"] = json!(p.profile["gamma1_epoch"].to_string());
        }
        let mut pod_spec = json!({
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "trendal", "image": image,
                "args": ["--trendal", id, "--silo", a.silo],
                "resources": {"requests": {"cpu": "25m", "memory": "32Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}},
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "livenessProbe": {"exec": {"command": ["/trendal", "--alive"]}, "periodSeconds": 30},
            }],
        });
        if let Some(trial) = &a.trial_id {
            sostle_core::trial::add_chaos_scheduling(&mut pod_spec);
            labels[sostle_core::trial::TRIAL_LABEL] = json!(trial);
        } else {
            pod_spec["nodeSelector"] = json!({"kubernetes.azure.com/agentpool": "agents"});
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"sostle.eose.ca/trendal": id}},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})
    };
    let engine = Engine::new(Arc::new(config.clone()));
    let check = |m: &J| -> Vec<String> {
        let secret = crate::token_secret(&config);
        let ctx = EvalContext {
            now,
            layer_override: Some(layer),
            namespaces: &NoLabels,
            token_secret: secret.as_deref(),
            locks: None,
            ledger: None,
        };
        let r = engine.evaluate(&yaml::from_json(m), &ctx);
        r.results
            .iter()
            .filter(|x| x.outcome == Outcome::Fail)
            .filter(|x| profile.is_some() || &*x.policy != "deny_no_mecipol_image")
            .flat_map(|x| {
                x.violations
                    .iter()
                    .map(move |v| format!("{}: {}", x.policy, v.message))
            })
            .collect()
    };
    let problems = check(&build(&format!("{prefix}-000")));
    if !problems.is_empty() {
        return refuse(format!(
            "the trendal's manifest would not pass {layer}: {}",
            problems.join("; ")
        ));
    }
    let t = ledger.atomically(|tx| {
        tx.add_trendal(&prefix, now, |id| Trendal {
            id: id.to_string(),
            layer: layer.as_str().to_string(),
            silo: a.silo.clone(),
            crew: crew_name.clone(),
            spiral: a.crew_spiral.clone(),
            trial: a.trial_id.clone(),
            warmth: a.warmth,
            namespace: namespace.clone(),
            state: "active".into(),
            spawned_at: now.to_string(),
            reaped_at: None,
            reap_reason: None,
            manifest: build(id),
        })
    })?;
    let mut w = std::io::stdout().lock();
    match a.output {
        TrendalFormat::Yaml => crate::trial::print_yaml(std::slice::from_ref(&t.manifest), &mut w)?,
        TrendalFormat::Json => {
            serde_json::to_writer_pretty(&mut w, &row(&t))?;
            writeln!(w)?;
        }
        TrendalFormat::Text => {
            writeln!(w, "Trendal spawned: {}", t.id)?;
            writeln!(w, "Warmth: {} (WARM — above {floor} floor)", a.warmth)?;
            writeln!(w, "Namespace: {}", t.namespace)?;
            match &t.trial {
                Some(trial) => {
                    writeln!(
                        w,
                        "Node: {} (chaos=true toleration injected)",
                        config.chaos_pool.name
                    )?;
                    writeln!(w, "Trial: {trial}")?;
                }
                None => {
                    writeln!(w, "Node: agents (no chaos toleration)")?;
                    writeln!(w, "Trial: none")?;
                }
            }
            writeln!(w, "Epoch: γ₁ = {GAMMA1}")?;
            writeln!(
                w,
                "Expires: {}",
                if t.trial.is_some() {
                    "warmth drops below floor OR trial closes"
                } else {
                    "warmth drops below floor"
                }
            )?;
        }
    }
    Ok(0)
}
