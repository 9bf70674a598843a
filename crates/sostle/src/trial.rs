//! The trial cycle on the embedded ledger (SPEC §7): `trial charge | burst | spiral | verdict |
//! show | list`, `lock`, `promote`, `key generate` and `exempt witness`. The rules live in
//! `sostle_core::trial`; this module reads files, talks to the ledger and prints.

// Builds and reads serde_json objects by index until its results are typed (#11 step 2).
#![allow(clippy::indexing_slicing)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use jiff::Timestamp;
use serde_json::{json, Value as J};
use sostle_core::eval::NoLabels;
use sostle_core::trial::{self as core_trial, TrialVerdict};
use sostle_core::{yaml, Config, Engine, EvalContext, Layer, Outcome, ResourceReport};
use sostle_ledger::{Ledger, Location, Snapshot};

use crate::check::{self, Located};
use crate::cli::{LedgerArgs, TrialCommand, TrialFormat};

/// The embedded ledger's default file.
pub const DEFAULT_LEDGER: &str = ".sostle/ledger.db";

/// The ledger named by `--ledger` or `SOSTLE_LEDGER`, else the config's `ledger.url`; `None`
/// when neither names one.
fn named_ledger(args: &LedgerArgs, config: &Config) -> Option<Location> {
    args.ledger
        .as_deref()
        .or(config.ledger_url.as_deref())
        .map(Location::parse)
}

/// Opens (creating and migrating when needed) the ledger: `--ledger`, `SOSTLE_LEDGER`,
/// `ledger.url` in the config, or `.sostle/ledger.db`.
pub fn open_ledger(args: &LedgerArgs, config: &Config) -> anyhow::Result<Ledger> {
    let location =
        named_ledger(args, config).unwrap_or_else(|| Location::File(PathBuf::from(DEFAULT_LEDGER)));
    let ledger = Ledger::open(&location).with_context(|| format!("ledger {location}"))?;
    warn_about(&ledger);
    Ok(ledger)
}

/// Shows what opening `ledger` noticed but did not stop for.
pub fn warn_about(ledger: &Ledger) {
    for w in ledger.warnings() {
        eprintln!("warning: {w}");
    }
}

/// The ledger `sostle test` consults, if any: the one named, or `.sostle/ledger.db` when it
/// exists. A named ledger must exist.
pub fn test_ledger(args: &LedgerArgs, config: &Config) -> anyhow::Result<Option<Snapshot>> {
    let location = match named_ledger(args, config) {
        Some(l) => l,
        None => {
            let p = PathBuf::from(DEFAULT_LEDGER);
            if !p.exists() {
                return Ok(None);
            }
            Location::File(p)
        }
    };
    let ledger =
        Ledger::open_existing(&location).with_context(|| format!("--ledger {location}"))?;
    warn_about(&ledger);
    Ok(Some(Snapshot::load(&ledger)?))
}

struct Ctx {
    engine: Engine,
    now: Timestamp,
    ledger: Ledger,
    snapshot: Snapshot,
    token_secret: Option<Vec<u8>>,
}

impl Ctx {
    fn new(common: &crate::cli::Common, ledger: &LedgerArgs) -> anyhow::Result<Ctx> {
        let config = check::load_config(common.config.as_deref()).map_err(anyhow::Error::msg)?;
        let now = crate::now_from(common)?;
        let ledger = open_ledger(ledger, &config)?;
        let snapshot = Snapshot::load(&ledger)?;
        Ok(Ctx {
            token_secret: crate::token_secret(&config),
            engine: Engine::new(Arc::new(config)),
            now,
            ledger,
            snapshot,
        })
    }

    fn reload(&mut self) -> anyhow::Result<()> {
        self.snapshot = Snapshot::load(&self.ledger)?;
        Ok(())
    }

    fn day(&self) -> i64 {
        self.engine.epoch_day(self.now)
    }

    /// Evaluates JSON objects at `layer` with the ledger consulted.
    fn evaluate(&self, docs: &[J], layer: Layer) -> Vec<ResourceReport> {
        let ctx = EvalContext {
            now: self.now,
            layer_override: Some(layer),
            namespaces: &NoLabels,
            token_secret: self.token_secret.as_deref(),
            locks: Some(&self.snapshot),
            ledger: Some(&self.snapshot),
        };
        docs.iter()
            .map(|d| self.engine.evaluate(&yaml::from_json(d), &ctx))
            .collect()
    }
}

fn print_json(v: &J) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints objects as a YAML stream.
pub fn print_yaml(docs: &[J], w: &mut dyn Write) -> anyhow::Result<()> {
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            writeln!(w, "---")?;
        }
        let text = serde_saphyr::to_string(d).map_err(|e| anyhow!("cannot write YAML: {e}"))?;
        write!(w, "{text}")?;
        if !text.ends_with('\n') {
            writeln!(w)?;
        }
    }
    Ok(())
}

/// Reads manifests: every document as JSON, with its file and evaluation.
fn read_subject(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, usize, J, String)>> {
    let mut errors = Vec::new();
    let sources = check::collect_sources(paths, &mut errors);
    if let Some(e) = errors.first() {
        bail!("{}: {}", e.file, e.message);
    }
    let mut out = Vec::new();
    for src in &sources {
        let bytes = match src {
            check::Source::File(p) => {
                std::fs::read(p).with_context(|| format!("{}", p.display()))?
            }
            check::Source::Stdin(b) | check::Source::Rendered { bytes: b, .. } => b.to_vec(),
        };
        let loaded = yaml::load_bytes(&bytes);
        if let Some(e) = loaded.errors.first() {
            bail!("{}:{}:{}: {}", src.name(), e.line, e.col, e.message);
        }
        for d in loaded.documents {
            let j = d.root.to_json();
            let digest = sostle_core::digest::sha256_hex(core_trial::canonical_json(&j).as_bytes());
            out.push((src.name(), d.index, j, digest));
        }
    }
    if out.is_empty() {
        bail!(
            "no Kubernetes objects in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(out)
}

fn workload_names(subject: &J) -> Vec<String> {
    subject["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect()
}

fn subject_docs(trial: &sostle_ledger::Trial) -> Vec<J> {
    trial.subject["documents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn failures_needing_exemption(
    reports: &[ResourceReport],
    layer: Layer,
    config: &Config,
) -> (Vec<J>, Vec<J>) {
    let mut exemptable = Vec::new();
    let mut hard = Vec::new();
    for r in reports {
        for res in &r.results {
            if res.outcome != Outcome::Fail || core_trial::VERDICT_EXCLUDED.contains(&&*res.policy)
            {
                continue;
            }
            let item = json!({
                "policy": &*res.policy,
                "resource": r.resource.display(),
                "layer": layer.as_str(),
                "applies-to": Engine::exemption_target(&r.resource),
                "why": res.violations.first().map(|v| v.message.clone()),
            });
            if config
                .policy(&res.policy)
                .is_some_and(|p| p.exempt.iter().any(|rule| rule.layers.contains(layer)))
            {
                exemptable.push(item);
            } else {
                hard.push(item);
            }
        }
    }
    (exemptable, hard)
}

pub fn run(cmd: TrialCommand) -> anyhow::Result<u8> {
    match cmd {
        TrialCommand::Charge {
            paths,
            target,
            output,
            common,
            ledger,
        } => {
            let mut c = Ctx::new(&common, &ledger)?;
            let target = crate::parse_layer("--target", &target)?;
            if target == Layer::Trial {
                bail!("--target: a trial targets a layer L0…L7 (the trial namespace is where it runs)");
            }
            let docs = read_subject(&paths)?;
            let objs: Vec<J> = docs.iter().map(|d| d.2.clone()).collect();
            // Evaluate with positions, from the files, for the report.
            let settings = |layer| check::TestSettings {
                combine: false,
                json_only: false,
                images: None,
                paths: paths.clone(),
                layer: Some(layer),
                now: c.now,
                token_secret: c.token_secret.clone(),
                ledger: Some(c.snapshot.clone()),
                user: None,
            };
            let mut errors = Vec::new();
            let sources = check::collect_sources(&paths, &mut errors);
            let at_target = check::run(&c.engine, &settings(target), &sources, Vec::new());
            let at_trial = check::run(&c.engine, &settings(Layer::Trial), &sources, Vec::new());
            let target_reports: Vec<ResourceReport> = at_target
                .resources
                .iter()
                .map(|l| l.report.clone())
                .collect();
            let trial_reports: Vec<ResourceReport> = at_trial
                .resources
                .iter()
                .map(|l| l.report.clone())
                .collect();
            let (need_target, hard_target) =
                failures_needing_exemption(&target_reports, target, c.engine.config());
            let (need_trial, hard_trial) =
                failures_needing_exemption(&trial_reports, Layer::Trial, c.engine.config());
            let images: Vec<String> = {
                // Each image once, in first-seen order (a repeated image anywhere in the
                // subject is one image, so it gets one lock).
                let mut seen = std::collections::HashSet::new();
                let mut v: Vec<String> = objs.iter().flat_map(core_trial::images).collect();
                v.retain(|i| seen.insert(i.clone()));
                v
            };
            let subject = json!({
                "resources": at_target.resources.iter().map(|l| json!({
                    "kind": l.report.resource.kind, "namespace": l.report.resource.namespace, "name": l.report.resource.name,
                    "file": &*l.file, "document": l.document})).collect::<Vec<_>>(),
                "images": images,
                "digests": docs.iter().map(|d| json!({"file": d.0, "document": d.1, "sha256": d.3})).collect::<Vec<_>>(),
                "documents": objs,
            });
            let pattern = core_trial::fingerprint(&target_reports);
            let earlier = c.ledger.fingerprints()?;
            let novelty = core_trial::novelty(&pattern, &earlier);
            let charge = json!({
                "at_target": summary(&target_reports),
                "in_trial_namespace": summary(&trial_reports),
                "exemptions_needed": {"target": need_target, "trial": need_trial},
                "must_fix": {"target": hard_target, "trial": hard_trial},
                "novelty": novelty,
            });
            let day = c.day();
            // One transaction: the trial, its fingerprint and its charge, or none of them.
            let now = c.now;
            let t = c.ledger.atomically(|tx| {
                let t = tx.file_trial(target.as_str(), day, now, &subject, &charge)?;
                tx.add_fingerprint(&t.id, &pattern, now)?;
                tx.add_evidence(
                    &t.id,
                    &[("charge".into(), "charge".into(), charge.clone())],
                    now,
                    day,
                )?;
                Ok::<_, sostle_ledger::Error>(t)
            })?;
            let filed = || {
                json!({
                    "trial": t.id,
                    "target": target.as_str(),
                    "epoch_day": day,
                    "results": crate::output::json_results(&at_target.resources),
                    "trial_results": crate::output::json_results(&at_trial.resources),
                    "exemptions_needed": charge["exemptions_needed"],
                    "must_fix": charge["must_fix"],
                    "novelty": novelty,
                })
            };
            match output {
                TrialFormat::Json => print_json(&filed())?,
                TrialFormat::Yaml => print_yaml(&[filed()], &mut io::stdout().lock())?,
                TrialFormat::Human => {
                    let mut w = io::stdout().lock();
                    writeln!(w, "{} filed: target {target}, epoch day {day}", t.id)?;
                    for r in at_target.resources.iter() {
                        writeln!(
                            w,
                            "  subject: {} ({}:{})",
                            r.report.resource.display(),
                            r.file,
                            r.report.pos.line
                        )?;
                    }
                    for i in &images {
                        writeln!(w, "  image: {i}")?;
                    }
                    print_findings(&mut w, &format!("at {target}"), &at_target.resources)?;
                    print_findings(&mut w, "in chaos-trial", &at_trial.resources)?;
                    print_needed(&mut w, &charge)?;
                    writeln!(w, "PELEGO novelty: {novelty}")?;
                }
            }
            Ok(0)
        }
        TrialCommand::Burst {
            trial,
            output,
            common,
            ledger,
        } => {
            let mut c = Ctx::new(&common, &ledger)?;
            let day = c.day();
            let now = c.now;
            let (t, docs) = c.ledger.atomically(|tx| {
                let t = tx.burst(&trial, now)?;
                let docs: Vec<J> = subject_docs(&t)
                    .iter()
                    .map(|d| core_trial::burst_object(d, &t.id))
                    .collect();
                tx.add_evidence(
                    &t.id,
                    &[(
                        "burst".into(),
                        "burst".into(),
                        json!({"burst_at": t.burst_at, "documents": docs.len()}),
                    )],
                    now,
                    day,
                )?;
                Ok::<_, sostle_ledger::Error>((t, docs))
            })?;
            match output {
                TrialFormat::Json => {
                    print_json(&json!({"apiVersion": "v1", "kind": "List", "items": docs}))?
                }
                _ => {
                    let mut w = io::stdout().lock();
                    writeln!(
                        w,
                        "# {} burst at {}: apply with kubectl apply -f -",
                        t.id,
                        t.burst_at.as_deref().unwrap_or("")
                    )?;
                    print_yaml(&docs, &mut w)?;
                }
            }
            Ok(0)
        }
        TrialCommand::Spiral {
            trial,
            falco,
            trivy,
            events,
            live,
            output,
            common,
            ledger,
        } => {
            let mut c = Ctx::new(&common, &ledger)?;
            let t = c.ledger.trial(&trial)?;
            let target = Layer::parse(&t.target)
                .ok_or_else(|| anyhow!("trial {} has a bad target {}", t.id, t.target))?;
            let names = workload_names(&t.subject);
            // Read and check every input before writing anything: all or nothing.
            let mut items: Vec<(String, String, J)> = Vec::new();
            let read = |p: &Path| -> anyhow::Result<String> {
                if p.as_os_str() == "-" {
                    let mut s = String::new();
                    io::Read::read_to_string(&mut io::stdin().lock(), &mut s)?;
                    Ok(s)
                } else {
                    std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))
                }
            };
            if let Some(f) = &falco {
                let s = core_trial::parse_falco(&read(f)?, &names)
                    .map_err(|e| anyhow!("{}:{e}", f.display()))?;
                items.push((
                    "falco".into(),
                    f.display().to_string(),
                    serde_json::to_value(&s)?,
                ));
            }
            let previous_critical: std::collections::BTreeSet<String> = c
                .ledger
                .evidence(&t.id)?
                .iter()
                .filter(|e| e.kind == "trivy")
                .flat_map(|e| e.data["critical"].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            for f in &trivy {
                let s = core_trial::parse_trivy(&read(f)?)
                    .map_err(|e| anyhow!("{}:{e}", f.display()))?;
                let new: Vec<&String> = s
                    .critical
                    .iter()
                    .filter(|c| !previous_critical.contains(*c))
                    .collect();
                let mut v = serde_json::to_value(&s)?;
                v["new_critical"] = json!(new);
                items.push(("trivy".into(), f.display().to_string(), v));
            }
            if let Some(f) = &events {
                let s = core_trial::parse_events(&read(f)?, &names)
                    .map_err(|e| anyhow!("{}:{e}", f.display()))?;
                items.push((
                    "events".into(),
                    f.display().to_string(),
                    serde_json::to_value(&s)?,
                ));
            }
            if let Some(f) = &live {
                let text = read(f)?;
                let loaded = yaml::load(&text);
                if let Some(e) = loaded.errors.first() {
                    bail!("{}:{}:{}: {}", f.display(), e.line, e.col, e.message);
                }
                let objs: Vec<J> = loaded.documents.iter().map(|d| d.root.to_json()).collect();
                let reports = c.evaluate(&objs, target);
                let failing: Vec<String> = reports
                    .iter()
                    .flat_map(|r| {
                        r.results
                            .iter()
                            .filter(|x| x.outcome == Outcome::Fail)
                            .map(move |x| format!("{} on {}", x.policy, r.resource.display()))
                    })
                    .collect();
                items.push((
                    "live".into(),
                    f.display().to_string(),
                    json!({"documents": objs, "failures": failing}),
                ));
            }
            if items.is_empty() {
                bail!("give evidence: --falco FILE, --trivy FILE, --events FILE or --live FILE|-");
            }
            let day = c.day();
            let now = c.now;
            c.ledger
                .atomically(|tx| tx.add_evidence(&t.id, &items, now, day))?;
            c.reload()?;
            // Novelty of the failure pattern (charge and live together).
            let (reports, _) = current_reports(&c, &t, target)?;
            let pattern = core_trial::fingerprint(&reports);
            let earlier: Vec<(String, Vec<String>)> = c
                .ledger
                .fingerprints()?
                .into_iter()
                .take_while(|(id, _)| id != &t.id)
                .collect();
            let novelty = core_trial::novelty(&pattern, &earlier);
            let summary_out = json!({"trial": t.id, "evidence": items.iter().map(|(k, s, d)| {
                let mut d = d.clone();
                if let Some(o) = d.as_object_mut() { o.remove("documents"); }
                json!({"kind": k, "source": s, "summary": d})
            }).collect::<Vec<_>>(), "novelty": novelty});
            match output {
                TrialFormat::Human => {
                    let mut w = io::stdout().lock();
                    writeln!(w, "{}: evidence recorded", t.id)?;
                    for (kind, source, d) in &items {
                        let line = match kind.as_str() {
                            "falco" => format!(
                                "{} events, {} on trial pods, {} runtime violations",
                                d["events"],
                                d["on_trial_pods"],
                                d["violations"].as_array().map_or(0, Vec::len)
                            ),
                            "trivy" => format!(
                                "{}: {} CRITICAL ({} new), {} vulnerabilities",
                                d["artifact"].as_str().unwrap_or(""),
                                d["critical"].as_array().map_or(0, Vec::len),
                                d["new_critical"].as_array().map_or(0, Vec::len),
                                d["total"]
                            ),
                            "events" => format!(
                                "{} events, {} evictions survived",
                                d["events"], d["evictions"]
                            ),
                            _ => format!(
                                "live spec re-checked at {target}: {} failures",
                                d["failures"].as_array().map_or(0, Vec::len)
                            ),
                        };
                        writeln!(w, "  {kind:<6} {source}: {line}")?;
                    }
                    writeln!(w, "PELEGO novelty: {novelty}")?;
                }
                _ => print_json(&summary_out)?,
            }
            Ok(0)
        }
        TrialCommand::Verdict {
            trial,
            output,
            common,
            ledger,
        } => {
            let mut c = Ctx::new(&common, &ledger)?;
            let t = c.ledger.trial(&trial)?;
            let v = compute_verdict(&c, &t)?;
            let day = c.day();
            let now = c.now;
            let record = serde_json::to_value(&v)?;
            c.ledger.atomically(|tx| {
                tx.set_verdict(&t.id, v.verdict.as_str(), false, now)?;
                tx.add_evidence(
                    &t.id,
                    &[("verdict".into(), "verdict".into(), record)],
                    now,
                    day,
                )
            })?;
            match output {
                TrialFormat::Human => {
                    let mut w = io::stdout().lock();
                    writeln!(w, "{}: {}", t.id, v.verdict.as_str())?;
                    for r in &v.reasons {
                        writeln!(w, "  - {r}")?;
                    }
                }
                _ => print_json(
                    &json!({"trial": t.id, "verdict": v.verdict.as_str(), "reasons": v.reasons,
                    "falco_clean_hours": v.falco_clean_hours, "trivy_critical_cves": v.trivy_critical_cves, "epoch_day": day}),
                )?,
            }
            Ok(match v.verdict {
                TrialVerdict::MecipolLocked | TrialVerdict::Spiraling => 0,
                _ => 1,
            })
        }
        TrialCommand::Show {
            trial,
            common,
            ledger,
        } => {
            let c = Ctx::new(&common, &ledger)?;
            let t = c.ledger.trial(&trial)?;
            let evidence = c.ledger.evidence(&t.id)?;
            let mut subject = t.subject.clone();
            if let Some(o) = subject.as_object_mut() {
                o.remove("documents");
            }
            print_json(&json!({
                "trial": t.id, "target": t.target, "epoch_day": t.epoch_day, "filed_at": t.filed_at,
                "burst_at": t.burst_at, "closed_at": t.closed_at, "verdict": t.verdict, "subject": subject,
                "phases": evidence.iter().map(|e| {
                    let mut d = e.data.clone();
                    if let Some(o) = d.as_object_mut() { o.remove("documents"); }
                    json!({"kind": e.kind, "source": e.source, "recorded_at": e.recorded_at, "epoch_day": e.epoch_day, "data": d})
                }).collect::<Vec<_>>(),
            }))?;
            Ok(0)
        }
        TrialCommand::List {
            output,
            common,
            ledger,
        } => {
            let c = Ctx::new(&common, &ledger)?;
            let trials = c.ledger.trials()?;
            match output {
                TrialFormat::Human => {
                    let mut w = io::stdout().lock();
                    writeln!(w, "{:<15} {:<6} {:<5} {:<20} STATE", "TRIAL", "TARGET", "DAY", "VERDICT")?;
                    for t in &trials {
                        let state = if t.closed_at.is_some() { "closed" } else if t.burst_at.is_some() { "burst" } else { "charged" };
                        writeln!(w, "{:<15} {:<6} {:<5} {:<20} {state}", t.id, t.target, t.epoch_day, t.verdict.as_deref().unwrap_or("-"))?;
                    }
                }
                _ => print_json(&json!(trials.iter().map(|t| json!({"trial": t.id, "target": t.target, "epoch_day": t.epoch_day,
                    "filed_at": t.filed_at, "burst_at": t.burst_at, "closed_at": t.closed_at, "verdict": t.verdict})).collect::<Vec<_>>()))?,
            }
            Ok(0)
        }
    }
}

fn summary(reports: &[ResourceReport]) -> J {
    let mut counts = std::collections::BTreeMap::new();
    for r in reports.iter().flat_map(|r| &r.results) {
        *counts.entry(r.outcome.as_str()).or_insert(0usize) += 1;
    }
    json!(counts)
}

fn print_findings(w: &mut dyn Write, title: &str, resources: &[Located]) -> io::Result<()> {
    let mut any = false;
    for l in resources {
        for r in &l.report.results {
            if !matches!(r.outcome, Outcome::Fail | Outcome::Warn | Outcome::Exempted) {
                continue;
            }
            if !any {
                writeln!(w, "{title}:")?;
                any = true;
            }
            let first = r.violations.first();
            writeln!(
                w,
                "  {:<8} {:<22} {} {}{}",
                r.outcome.as_str().to_uppercase(),
                r.policy,
                l.report.resource.display(),
                first
                    .map(|v| format!("{}:{}:{}: ", l.file, v.pos.line, v.pos.col))
                    .unwrap_or_default(),
                first.map(|v| v.message.as_str()).unwrap_or("")
            )?;
        }
    }
    if !any {
        writeln!(w, "{title}: every policy passes")?;
    }
    Ok(())
}

fn print_needed(w: &mut dyn Write, charge: &J) -> io::Result<()> {
    for (key, label) in [
        ("target", "at the target layer"),
        ("trial", "in chaos-trial"),
    ] {
        let need = charge["exemptions_needed"][key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let hard = charge["must_fix"][key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if need.is_empty() && hard.is_empty() {
            continue;
        }
        writeln!(w, "{label}:")?;
        for n in &need {
            writeln!(
                w,
                "  exemption needed: {} on {} (sostle exempt new --resource {} --policies {} …)",
                n["policy"].as_str().unwrap_or(""),
                n["resource"].as_str().unwrap_or(""),
                n["applies-to"].as_str().unwrap_or(""),
                n["policy"].as_str().unwrap_or("")
            )?;
        }
        for h in &hard {
            writeln!(
                w,
                "  must fix (not exemptable at {}): {} on {}",
                h["layer"].as_str().unwrap_or(""),
                h["policy"].as_str().unwrap_or(""),
                h["resource"].as_str().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

/// The subject at the target layer now: the charged documents, replaced by the latest live
/// spec when one was ingested.
/// The subject as it stands: the charged documents, with the latest live objects replacing
/// the charged ones of the same kind and name.
fn current_docs(t: &sostle_ledger::Trial, evidence: &[sostle_ledger::Evidence]) -> Vec<J> {
    let mut docs = subject_docs(t);
    if let Some(live) = evidence.iter().rev().find(|e| e.kind == "live") {
        if let Some(d) = live.data["documents"].as_array() {
            for l in d {
                let key = (l["kind"].clone(), l["metadata"]["name"].clone());
                docs.retain(|x| (x["kind"].clone(), x["metadata"]["name"].clone()) != key);
                docs.push(l.clone());
            }
        }
    }
    docs
}

/// The current subject evaluated at the target layer, with the trial's evidence.
fn current_reports(
    c: &Ctx,
    t: &sostle_ledger::Trial,
    target: Layer,
) -> anyhow::Result<(Vec<ResourceReport>, Vec<sostle_ledger::Evidence>)> {
    let evidence = c.ledger.evidence(&t.id)?;
    let docs = current_docs(t, &evidence);
    Ok((c.evaluate(&docs, target), evidence))
}

fn compute_verdict(
    c: &Ctx,
    t: &sostle_ledger::Trial,
) -> anyhow::Result<core_trial::VerdictOutcome> {
    let target = Layer::parse(&t.target)
        .ok_or_else(|| anyhow!("trial {} has a bad target {}", t.id, t.target))?;
    let (reports, evidence) = current_reports(c, t, target)?;
    // Stored evidence that no longer decodes (an upgrade, a hand edit) is an error that names
    // it, never skipped: a skipped Trivy summary would stop counting its CRITICAL CVEs.
    fn decoded<T: serde::de::DeserializeOwned>(
        evidence: &[sostle_ledger::Evidence],
        kind: &str,
    ) -> anyhow::Result<Vec<T>> {
        evidence
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| {
                serde_json::from_value(e.data.clone()).map_err(|err| {
                    anyhow!(
                        "trial {}: {kind} evidence #{} (from {}, recorded {}) does not decode: {err}; the verdict cannot be reached without it",
                        e.trial,
                        e.id,
                        e.source,
                        e.recorded_at
                    )
                })
            })
            .collect()
    }
    let falco: Vec<core_trial::FalcoSummary> = decoded(&evidence, "falco")?;
    let trivy: Vec<core_trial::TrivySummary> = decoded(&evidence, "trivy")?;
    let burst_at = t
        .burst_at
        .as_deref()
        .and_then(|b| b.parse::<Timestamp>().ok());
    let falco_checked_until = evidence
        .iter()
        .filter(|e| e.kind == "falco")
        .filter_map(|e| e.recorded_at.parse::<Timestamp>().ok())
        .max();
    let input = core_trial::VerdictInput {
        reports: &reports,
        target,
        burst_at,
        falco_checked_until,
        falco: &falco,
        trivy: &trivy,
        now: c.now,
    };
    Ok(core_trial::verdict(&input, c.engine.config()))
}

/// `sostle lock TRB --key FILE`.
/// Where `sostle lock` puts what it makes, beside the ledger.
#[derive(Debug)]
pub struct LockOutputs<'a> {
    /// The profiles directory (default `.sostle/profiles`).
    pub out_dir: Option<&'a Path>,
    /// `--attach`: the registry the attestations go to.
    pub attach: Option<&'a crate::cli::RegistryArgs>,
    /// The Rekor to log in, if any.
    pub rekor: &'a crate::cli::RekorArgs,
    /// The limit on each registry and Rekor call, in seconds.
    pub timeout: u64,
}

pub fn lock(
    trial: &str,
    key: &Path,
    outputs: &LockOutputs<'_>,
    common: &crate::cli::Common,
    ledger: &LedgerArgs,
) -> anyhow::Result<u8> {
    let (out_dir, attach, rekor, registry_timeout) = (
        outputs.out_dir,
        outputs.attach,
        outputs.rekor,
        outputs.timeout,
    );
    let mut c = Ctx::new(common, ledger)?;
    let t = c.ledger.trial(trial)?;
    let v = compute_verdict(&c, &t)?;
    if v.verdict != TrialVerdict::MecipolLocked {
        let mut e = io::stderr().lock();
        writeln!(
            e,
            "refused: {} is {}, not MECIPOL-LOCKED:",
            t.id,
            v.verdict.as_str()
        )?;
        for r in &v.reasons {
            writeln!(e, "  - {r}")?;
        }
        return Ok(1);
    }
    let signing = crate::sign::read_private_key(key)?;
    let target = Layer::parse(&t.target).ok_or_else(|| anyhow!("bad target"))?;
    let day = c.day();
    let (reports, evidence) = current_reports(&c, &t, target)?;
    let docs = current_docs(&t, &evidence);
    // Layers whose DENY policies all pass or are validly exempted (never L6).
    let mut authorized = Vec::new();
    for n in 0..=7u8 {
        let Some(l) = Layer::from_index(n) else {
            continue;
        };
        if l == Layer::L6 {
            continue;
        }
        if core_trial::layer_clear(&c.evaluate(&docs, l), c.engine.config(), day) {
            authorized.push(l.as_str());
        }
    }
    let mut passed = std::collections::BTreeSet::new();
    let mut failed = std::collections::BTreeSet::new();
    let mut exempted = std::collections::BTreeMap::new();
    for r in &reports {
        for res in &r.results {
            if res.policy.as_ref() == "layer_gate" {
                continue;
            }
            match res.outcome {
                Outcome::Pass
                    if c.engine.config().policy(&res.policy).is_some_and(|p| {
                        p.verdict_on(day) == sostle_core::suite::Verdict::Deny
                    }) =>
                {
                    passed.insert(res.policy.to_string());
                }
                Outcome::Exempted => {
                    if let Some(j) = &res.exemption {
                        let reason = j
                            .annotations
                            .reason
                            .as_deref()
                            .and_then(sostle_core::exemption::trial_id)
                            .unwrap_or("")
                            .to_string();
                        let expires = j
                            .annotations
                            .expires
                            .as_deref()
                            .map(|e| e.get(..10).unwrap_or(e).to_string())
                            .unwrap_or_default();
                        exempted.insert(
                            res.policy.to_string(),
                            sostle_core::mecipol::ProfileExemption {
                                policy: res.policy.to_string(),
                                reason,
                                expires,
                            },
                        );
                    }
                }
                Outcome::Fail => {
                    failed.insert(res.policy.to_string());
                }
                _ => {}
            }
        }
    }
    for f in &failed {
        passed.remove(f);
    }
    let images: Vec<String> = t.subject["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.as_str().map(str::to_string))
        .collect();
    if images.is_empty() {
        bail!("{} has no container image to lock", t.id);
    }
    // The digest each image ran as: the evidence's, else (when attaching) the registry's for
    // the tag. All registry questions are asked before anything is recorded.
    let trivy: Vec<core_trial::TrivySummary> = evidence
        .iter()
        .filter(|e| e.kind == "trivy")
        .map(|e| serde_json::from_value(e.data.clone()))
        .collect::<Result<_, _>>()
        .context("stored Trivy evidence does not decode")?;
    let live: Vec<J> = evidence
        .iter()
        .filter(|e| e.kind == "live")
        .flat_map(|e| e.data["documents"].as_array().cloned().unwrap_or_default())
        .collect();
    let registry = match attach {
        Some(args) => Some((crate::sign::registry(args)?, crate::sign::runtime()?)),
        None => None,
    };
    let rekor_config = c.engine.config().rekor.clone();
    let rekor_rt = match (
        rekor.rekor_url.is_some() || rekor_config.url.is_some(),
        &registry,
    ) {
        (true, None) => Some(crate::sign::runtime()?),
        _ => None,
    };
    let mut digests = std::collections::BTreeMap::new();
    for image in &images {
        let from_evidence = core_trial::ran_digest(image, &trivy, &live);
        let resolved = match &registry {
            None => None,
            Some((client, rt)) => {
                let name = sostle_core::policies::parse_image(image).name;
                let reference = match &from_evidence {
                    Some(d) => format!("{name}@{d}"),
                    None => image.clone(),
                };
                Some(
                    rt.block_on(client.resolve(&reference))
                        .map_err(|e| anyhow!("--attach: {e}"))?,
                )
            }
        };
        let digest = resolved
            .as_ref()
            .map(|r| r.digest.clone())
            .or(from_evidence);
        digests.insert(image.clone(), (digest, resolved));
    }
    let dir = out_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".sostle/profiles"));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    // One transaction: every image's profile, the verdict and the lock record — or none.
    let now = c.now;
    let profiles = c.ledger.atomically(|tx| {
        let mut profiles = Vec::new();
        for image in &images {
            let image_digest = digests.get(image).and_then(|(d, _)| d.clone());
            let profile = tx.add_profile(&t.id, image, now, |id| {
                let mut body = sostle_core::mecipol::ProfileBody {
                    profile_id: id.to_string(),
                    image: image.clone(),
                    image_digest: image_digest.clone(),
                    gamma1_epoch: day,
                    policies_passed: passed.iter().cloned().collect(),
                    policies_exempted: exempted.keys().cloned().collect(),
                    exemptions: exempted.values().cloned().collect(),
                    falco_clean_hours: v.falco_clean_hours,
                    trivy_critical_cves: u64::try_from(v.trivy_critical_cves).unwrap_or(u64::MAX),
                    rekor_entry: None,
                    locked_at: now.to_string(),
                    sostle_layers_authorized: authorized.iter().map(|l| l.to_string()).collect(),
                    trial: t.id.clone(),
                    target: t.target.clone(),
                };
                // With a Rekor: log the profile as locked so far (rekor_entry null), then seal the
                // entry's URL into it. A verifier nulls rekor_entry to recompute the logged hash.
                let rt = registry.as_ref().map(|(_, rt)| rt).or(rekor_rt.as_ref());
                if let Some(rt) = rt {
                    let logged = crate::sign::log_in_rekor(
                        rekor,
                        &rekor_config,
                        body.canonical().as_bytes(),
                        &body.sign(&signing),
                        signing.verifying_key(),
                        std::time::Duration::from_secs(registry_timeout),
                        rt,
                    )
                    .map_err(|e| format!("{e:#}"))?;
                    if let Some(l) = logged {
                        body.rekor_entry = Some(l.entry_url);
                    }
                }
                let signature = body.sign(&signing);
                Ok((body.to_json(), signature))
            })?;
            profiles.push(profile);
        }
        tx.set_verdict(&t.id, TrialVerdict::MecipolLocked.as_str(), true, now)?;
        tx.add_evidence(
            &t.id,
            &[(
                "lock".into(),
                "lock".into(),
                json!({"profiles": profiles.iter().map(|p| p.id.clone()).collect::<Vec<_>>()}),
            )],
            now,
            day,
        )?;
        Ok::<_, sostle_ledger::Error>(profiles)
    })?;
    let mut written = Vec::new();
    for profile in profiles {
        let canonical = core_trial::canonical_json(&profile.profile);
        let path = dir.join(format!("{}.json", profile.id));
        std::fs::write(&path, &canonical).with_context(|| format!("{}", path.display()))?;
        std::fs::write(
            dir.join(format!("{}.json.sig", profile.id)),
            &profile.signature,
        )?;
        written.push((profile, path));
    }
    let mut w = io::stdout().lock();
    for (p, path) in &written {
        serde_json::to_writer_pretty(&mut w, &p.profile)?;
        writeln!(w)?;
        eprintln!("locked {} as {} → {} (+ .sig); label the workload mecipol-locked=true, mecipol-image, mecipol-profile={}, mecipol-epoch={day}", p.image, p.id, path.display(), p.id);
    }
    if let Some((client, rt)) = &registry {
        use sostle_sign::attest;
        for (p, _) in &written {
            let Some((_, Some(resolved))) = digests.get(&p.image) else {
                continue;
            };
            let statement = attest::Statement::new(
                &format!("{}/{}", resolved.registry, resolved.repository),
                &resolved.digest,
                attest::MECIPOL_PREDICATE,
                p.profile.clone(),
            );
            let envelope = attest::sign(&signing, &statement);
            rt.block_on(client.push_attestation(resolved, &envelope, attest::MECIPOL_PREDICATE))
                .map_err(|e| {
                    anyhow!(
                        "{} is recorded and written, but its attestation was not attached: {e}",
                        p.id
                    )
                })?;
            eprintln!(
                "attached {} to {} ({}/{}:{})",
                p.id,
                resolved.by_digest(),
                resolved.registry,
                resolved.repository,
                resolved.attestation_tag()
            );
        }
    }
    Ok(0)
}

/// `sostle promote FILE --to L<N> --profile profile-NNN`.
pub fn promote(
    paths: &[PathBuf],
    to: &str,
    profile_id: &str,
    output: crate::cli::PromoteFormat,
    common: &crate::cli::Common,
    ledger: &LedgerArgs,
) -> anyhow::Result<u8> {
    let c = Ctx::new(common, ledger)?;
    let layer = crate::parse_layer("--to", to)?;
    let profile = c.ledger.profile(profile_id)?;
    let refuse = |why: String| -> anyhow::Result<u8> {
        eprintln!("refused: {why}");
        Ok(1)
    };
    if layer == Layer::L6 {
        return refuse("L6 is closed: nothing is ever promoted there".into());
    }
    if layer == Layer::Trial {
        return refuse(
            "promote targets a layer; bursting into chaos-trial is `sostle trial burst`".into(),
        );
    }
    let authorized: Vec<&str> = profile.profile["sostle_layers_authorized"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .collect();
    if !authorized.contains(&layer.as_str()) {
        return refuse(format!(
            "{profile_id} does not authorize {layer} (it authorizes {})",
            if authorized.is_empty() {
                "no layer".to_string()
            } else {
                authorized.join(", ")
            }
        ));
    }
    let docs = read_subject(paths)?;
    let seq = |id: &str| {
        id.strip_prefix("profile-")
            .and_then(|n| n.parse::<u64>().ok())
    };
    let mut out = Vec::new();
    for (file, _, obj, _) in &docs {
        let images = core_trial::images(obj);
        // Every container must run the locked image, or the promoted workload would fail
        // deny_no_mecipol_image at the layer it is promoted to.
        if !images.is_empty() && !images.iter().all(|i| profile.locks_image(i)) {
            return refuse(format!(
                "{file}: {} runs {}, but {profile_id} locks {}",
                obj["metadata"]["name"].as_str().unwrap_or("?"),
                images.join(", "),
                profile.image
            ));
        }
        if let Some(current) = obj["metadata"]["annotations"]["mecipol-profile"].as_str() {
            if let (Some(cur), Some(new)) = (seq(current), seq(profile_id)) {
                if new < cur {
                    return refuse(format!(
                        "downgrade: the workload is locked by {current}, newer than {profile_id} ({})",
                        profile.image
                    ));
                }
            }
        }
        let namespace = c
            .engine
            .config()
            .layer(layer)
            .map(|l| l.namespace.clone())
            .unwrap_or_else(|| layer.default_namespace().to_string());
        let day = profile.profile["gamma1_epoch"].as_i64().unwrap_or(0);
        out.push(core_trial::promote_object(
            obj,
            &namespace,
            &core_trial::LockLabels {
                image: profile.image.clone(),
                digest: profile.digest().map(str::to_string),
                profile: profile.id.clone(),
                epoch: day,
            },
        ));
    }
    let mut w = io::stdout().lock();
    match output {
        crate::cli::PromoteFormat::Json => {
            serde_json::to_writer_pretty(
                &mut w,
                &json!({"apiVersion": "v1", "kind": "List", "items": out}),
            )?;
            writeln!(w)?;
        }
        crate::cli::PromoteFormat::Yaml => {
            writeln!(
                w,
                "# promoted to {layer} with {profile_id} ({})",
                profile.image
            )?;
            print_yaml(&out, &mut w)?;
        }
    }
    Ok(0)
}

/// `sostle exempt witness …`: registers a witness hash in the ledger.
pub fn witness(
    values: &sostle_core::exemption::Values,
    by: &str,
    common: &crate::cli::Common,
    ledger: &LedgerArgs,
) -> anyhow::Result<u8> {
    let mut c = Ctx::new(common, ledger)?;
    if c.engine.config().crew_member(by).is_none() {
        bail!("--by: `{by}` is not registered crew");
    }
    let hash = sostle_core::exemption::witness(values);
    let now = c.now;
    let w = c.ledger.atomically(|tx| {
        tx.register_witness(
            &hash,
            by,
            &json!({"applies-to": values.applies_to, "exempt-from": values.from, "expires": values.expires,
                    "owner": values.owner, "reason": values.reason, "reviewed": values.reviewed}),
            now,
        )
    })?;
    println!(
        "{} registered at {} by {}",
        w.hash, w.registered_at, w.registered_by
    );
    Ok(0)
}
