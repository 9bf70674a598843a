//! `sostle trendal spawn | list | warm | reap` (SPEC §8): crew-owned agent workloads per layer,
//! registered in the ledger with sequential IDs per prefix.

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context};
use jiff::Timestamp;
use serde_json::Value as J;
use sostle_core::epoch::GAMMA1;
use sostle_core::trendal::{self, SpawnRequest, TrendalState};
use sostle_core::Layer;
use sostle_core::{manifest, Engine, EvalContext, Outcome};
use sostle_ledger::{NewTrendal, Trendal};

use crate::cli::{TrendalCommand, TrendalFormat};

fn refuse(why: String) -> anyhow::Result<u8> {
    eprintln!("refused: {why}");
    Ok(crate::exit::FAIL)
}

pub fn run(cmd: TrendalCommand) -> anyhow::Result<u8> {
    match cmd {
        TrendalCommand::Spawn(a) => spawn(a),
        TrendalCommand::List {
            output,
            common,
            ledger,
        } => {
            let crate::settings::Settings { config, .. } =
                crate::settings::Settings::resolve(&common)?;
            let l = crate::settings::ledger::open_ledger(&ledger, &config)?;
            let all = l.trendals()?;
            let mut w = std::io::stdout().lock();
            match output {
                TrendalFormat::Json => {
                    let rows = all.iter().map(row).collect::<anyhow::Result<Vec<J>>>()?;
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
                        let feel = if t.spawn.warmth >= 0.5 {
                            "WARM"
                        } else {
                            "COLD"
                        };
                        writeln!(
                            w,
                            "{:<32} {:<6} {:<7.2} {:<6} {:<16} {:<15} {}",
                            t.id,
                            t.spawn.layer.as_str(),
                            t.spawn.warmth,
                            feel,
                            t.spawn.namespace,
                            t.spawn.trial.as_deref().unwrap_or("-"),
                            t.state.as_str()
                        )?;
                    }
                }
            }
            Ok(crate::exit::OK)
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
            let crate::settings::Settings { config, .. } =
                crate::settings::Settings::resolve(&common)?;
            let mut l = crate::settings::ledger::open_ledger(&ledger, &config)?;
            let t = l.atomically(|tx| tx.warm_trendal(&id, warmth))?;
            let feel = if t.spawn.warmth >= 0.5 {
                "WARM — above 0.5 floor"
            } else {
                "COLD — below 0.5 floor; `sostle trendal reap` will expire it"
            };
            println!("{}: warmth {:.2} ({feel})", t.id, t.spawn.warmth);
            Ok(crate::exit::OK)
        }
        TrendalCommand::Reap { common, ledger } => {
            let crate::settings::Settings { config, now, .. } =
                crate::settings::Settings::resolve(&common)?;
            let floor = trendal::floor(&config);
            let mut l = crate::settings::ledger::open_ledger(&ledger, &config)?;
            let closed: Vec<String> = l
                .trial_states()?
                .into_iter()
                .filter(|(_, open)| !open)
                .map(|(id, _)| id)
                .collect();
            let mut deletions = Vec::new();
            for t in l
                .trendals()?
                .into_iter()
                .filter(|t| t.state == TrendalState::Active)
            {
                let reason = if t.spawn.warmth < floor {
                    Some(format!(
                        "warmth {:.2} below the {floor} floor",
                        t.spawn.warmth
                    ))
                } else {
                    t.spawn
                        .trial
                        .as_ref()
                        .filter(|tr| closed.contains(tr))
                        .map(|tr| format!("trial {tr} closed"))
                };
                if let Some(reason) = reason {
                    l.atomically(|tx| tx.reap_trendal(&t.id, &reason, now))?;
                    eprintln!("reaped {}: {reason}", t.id);
                    deletions.push(trendal::deletion(&t.spawn.manifest));
                }
            }
            let mut w = std::io::stdout().lock();
            if deletions.is_empty() {
                eprintln!("nothing to reap");
            } else {
                writeln!(w, "# kubectl delete -f - takes this")?;
                crate::output::print_yaml(&deletions, &mut w)?;
            }
            Ok(crate::exit::OK)
        }
    }
}

/// A trendal as `trendal list` and `spawn -o json` print it.
#[derive(serde::Serialize)]
struct Row<'a> {
    trendal: &'a str,
    layer: Layer,
    silo: &'a str,
    crew: &'a str,
    crew_spiral: Option<&'a str>,
    trial: Option<&'a str>,
    warmth: f64,
    namespace: &'a str,
    state: TrendalState,
    spawned_at: Timestamp,
    reaped_at: Option<Timestamp>,
    reap_reason: Option<&'a str>,
}

/// `t` as printed, keys sorted (through a JSON value, as it always printed).
fn row(t: &Trendal) -> anyhow::Result<J> {
    Ok(serde_json::to_value(Row {
        trendal: &t.id,
        layer: t.spawn.layer,
        silo: &t.spawn.silo,
        crew: &t.spawn.crew,
        crew_spiral: t.spawn.spiral.as_deref(),
        trial: t.spawn.trial.as_deref(),
        warmth: t.spawn.warmth,
        namespace: &t.spawn.namespace,
        state: t.state,
        spawned_at: t.spawned_at,
        reaped_at: t.reaped_at,
        reap_reason: t.reap_reason.as_deref(),
    })?)
}

fn spawn(a: crate::cli::SpawnArgs) -> anyhow::Result<u8> {
    let crate::settings::Settings {
        config,
        now,
        token_secret,
    } = crate::settings::Settings::resolve(&a.common)?;
    let layer = a.sostle;
    let floor = trendal::floor(&config);
    let request = SpawnRequest {
        layer,
        silo: &a.silo,
        crew: a.crew.as_deref(),
        crew_spiral: a.crew_spiral.as_deref(),
        token: a.token.as_deref(),
        kay_approved: a.kay_approved,
        warmth: a.warmth,
        trial: a.trial_id.as_deref(),
    };
    // Checked before the ledger is opened: a refused spawn touches nothing.
    if let Err(why) = trendal::plan(request.clone(), &config, None, None, None) {
        return refuse(why.to_string());
    }
    let mut ledger = crate::settings::ledger::open_ledger(&a.ledger, &config)?;
    if let Some(trial) = &a.trial_id {
        let t = ledger
            .trial(trial)
            .with_context(|| format!("--trial-id {trial}"))?;
        if t.closed_at.is_some() {
            return refuse(format!("trial {trial} is closed"));
        }
    }
    let profile = match &a.profile {
        Some(p) => Some(ledger.profile(p)?),
        None => None,
    };
    let plan = trendal::plan(
        request,
        &config,
        a.namespace.as_deref(),
        a.image.as_deref(),
        profile.as_ref(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let prefix = plan.prefix();
    let build = |id: &str| plan.manifest(id);
    let engine = Engine::new(Arc::new(config.clone()));
    let check = |m: &J| -> Vec<String> {
        let secret = token_secret.clone();
        let ctx = EvalContext {
            layer_override: Some(layer),
            token_secret: secret.as_deref(),
            ..EvalContext::new(now)
        };
        let r = engine.evaluate(&manifest::from_json(m), &ctx);
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
        tx.add_trendal(&prefix, now, |id| NewTrendal {
            layer,
            silo: a.silo.clone(),
            crew: plan.crew_name.clone(),
            spiral: a.crew_spiral.clone(),
            trial: a.trial_id.clone(),
            warmth: a.warmth,
            namespace: plan.namespace.clone(),
            manifest: build(id),
        })
    })?;
    let mut w = std::io::stdout().lock();
    match a.output {
        TrendalFormat::Yaml => {
            crate::output::print_yaml(std::slice::from_ref(&t.spawn.manifest), &mut w)?
        }
        TrendalFormat::Json => {
            serde_json::to_writer_pretty(&mut w, &row(&t)?)?;
            writeln!(w)?;
        }
        TrendalFormat::Text => {
            writeln!(w, "Trendal spawned: {}", t.id)?;
            writeln!(w, "Warmth: {} (WARM — above {floor} floor)", a.warmth)?;
            writeln!(w, "Namespace: {}", t.spawn.namespace)?;
            match &t.spawn.trial {
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
                if t.spawn.trial.is_some() {
                    "warmth drops below floor OR trial closes"
                } else {
                    "warmth drops below floor"
                }
            )?;
        }
    }
    Ok(crate::exit::OK)
}
