//! The trial cycle on the embedded ledger (SPEC §7): `trial charge | burst | spiral | verdict |
//! show | list`, `lock`, `promote`, `key generate` and `exempt witness`. The rules live in
//! `sostle_core::trial`; this module reads files, talks to the ledger and prints.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value as J;
use sostle_core::mecipol::{self, ProfileBody, PromotionRefusal};
use sostle_core::trial::{
    self as core_trial, AtBoth, Charge, Evidence, EvidenceKind, Failure, LockRecord, Novelty,
    TrialVerdict, VerdictOutcome,
};
use sostle_core::{Engine, Layer, Outcome};
use sostle_trial::{Charged, EvidenceText, Judged, Trials};

use crate::check::Located;
use crate::cli::{LedgerArgs, TrialCommand, TrialFormat};
use crate::output::{print_yaml, List};

/// The trial cycle over the ledger the flags name.
fn open(common: &crate::cli::Common, ledger: &LedgerArgs) -> anyhow::Result<Trials> {
    let crate::settings::Settings {
        config,
        now,
        token_secret,
    } = crate::settings::Settings::resolve(common)?;
    let ledger = crate::settings::ledger::open_ledger(ledger, &config)?;
    Ok(Trials::new(
        Engine::new(Arc::new(config)),
        now,
        ledger,
        token_secret,
    )?)
}

/// Prints `v` as indented JSON, keys sorted at every level (through a JSON value, as every
/// JSON output of the trial commands has always been).
fn print_json(v: &impl Serialize) -> anyhow::Result<()> {
    let v = serde_json::to_value(v)?;
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &v)?;
    writeln!(out)?;
    Ok(())
}

/// What `trial charge` prints.
#[derive(Serialize)]
struct Filed<'a> {
    trial: &'a str,
    target: Layer,
    epoch_day: i64,
    results: J,
    trial_results: J,
    exemptions_needed: &'a AtBoth<Vec<Failure>>,
    must_fix: &'a AtBoth<Vec<Failure>>,
    novelty: &'a Novelty,
}

/// One record as `trial spiral` reports it.
#[derive(Serialize)]
struct Recorded<'a> {
    kind: EvidenceKind,
    source: &'a str,
    summary: J,
}

/// What `trial spiral` prints.
#[derive(Serialize)]
struct Spiraled<'a> {
    trial: &'a str,
    evidence: Vec<Recorded<'a>>,
    novelty: &'a Novelty,
}

/// What `trial verdict` prints.
#[derive(Serialize)]
struct Reached<'a> {
    trial: &'a str,
    epoch_day: i64,
    #[serde(flatten)]
    outcome: &'a VerdictOutcome,
}

/// A trial as `trial list` prints it.
#[derive(Serialize)]
struct Listed<'a> {
    trial: &'a str,
    target: Layer,
    epoch_day: i64,
    filed_at: Timestamp,
    burst_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    verdict: Option<TrialVerdict>,
}

impl<'a> Listed<'a> {
    fn of(t: &'a sostle_ledger::Trial) -> Listed<'a> {
        Listed {
            trial: &t.id,
            target: t.target,
            epoch_day: t.epoch_day,
            filed_at: t.filed_at,
            burst_at: t.burst_at,
            closed_at: t.closed_at,
            verdict: t.verdict,
        }
    }
}

/// One record as `trial show` prints it.
#[derive(Serialize)]
struct Phase<'a> {
    kind: EvidenceKind,
    source: &'a str,
    recorded_at: Timestamp,
    epoch_day: i64,
    data: J,
}

/// What `trial show` prints: the trial, its subject without the documents, and every record.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    trial: Listed<'a>,
    subject: J,
    phases: Vec<Phase<'a>>,
}

/// `v` without its `documents` (the objects are long; the summaries are what a person reads).
fn without_documents(mut v: J) -> J {
    if let Some(o) = v.as_object_mut() {
        o.remove("documents");
    }
    v
}

/// The line `trial spiral` prints for one record.
fn spiral_line(e: &Evidence, target: Layer) -> String {
    match e {
        Evidence::Falco(f) => format!(
            "{} events, {} on trial pods, {} runtime violations",
            f.events,
            f.on_trial_pods,
            f.violations.len()
        ),
        Evidence::Trivy(t) => format!(
            "{}: {} CRITICAL ({} new), {} vulnerabilities",
            t.summary.artifact,
            t.summary.critical.len(),
            t.new_critical.len(),
            t.summary.total
        ),
        Evidence::Events(s) => format!("{} events, {} evictions survived", s.events, s.evictions),
        Evidence::Live(l) => format!(
            "live spec re-checked at {target}: {} failures",
            l.failures.len()
        ),
        other => format!("{} recorded", other.kind()),
    }
}

/// The text of an evidence file, or of standard input for `-`.
fn read_input(p: &Path) -> anyhow::Result<String> {
    if p.as_os_str() == "-" {
        let mut s = String::new();
        io::Read::read_to_string(&mut io::stdin().lock(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))
    }
}

pub fn run(cmd: TrialCommand) -> anyhow::Result<u8> {
    match cmd {
        TrialCommand::Charge {
            paths,
            target,
            output,
            common,
            ledger,
        } => charge(paths, target, output, common, ledger),
        TrialCommand::Burst {
            trial,
            output,
            common,
            ledger,
        } => burst(trial, output, common, ledger),
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
            // In the order they are recorded: Falco, Trivy, events, the live spec.
            let files = (falco.map(|f| (EvidenceKind::Falco, f)).into_iter())
                .chain(trivy.into_iter().map(|f| (EvidenceKind::Trivy, f)))
                .chain(events.map(|f| (EvidenceKind::Events, f)))
                .chain(live.map(|f| (EvidenceKind::Live, f)))
                .collect();
            spiral(trial, files, output, common, ledger)
        }
        TrialCommand::Verdict {
            trial,
            output,
            common,
            ledger,
        } => verdict(trial, output, common, ledger),
        TrialCommand::Show {
            trial,
            common,
            ledger,
        } => show(trial, common, ledger),
        TrialCommand::List {
            output,
            common,
            ledger,
        } => list(output, common, ledger),
    }
}

/// `trial charge`: files a trial and prints what it was charged with.
fn charge(
    paths: Vec<PathBuf>,
    target: Layer,
    output: TrialFormat,
    common: crate::cli::Common,
    ledger: LedgerArgs,
) -> anyhow::Result<u8> {
    let mut c = open(&common, &ledger)?;
    let Charged {
        trial: t,
        day,
        at_target,
        at_trial,
        images,
        charge,
    } = c.charge(&paths, target)?;
    let filed = || Filed {
        trial: &t.id,
        target,
        epoch_day: day,
        results: crate::output::json_results(&at_target.resources),
        trial_results: crate::output::json_results(&at_trial.resources),
        exemptions_needed: &charge.exemptions_needed,
        must_fix: &charge.must_fix,
        novelty: &charge.novelty,
    };
    match output {
        TrialFormat::Json => print_json(&filed())?,
        TrialFormat::Yaml => {
            print_yaml(&[serde_json::to_value(filed())?], &mut io::stdout().lock())?
        }
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
            writeln!(w, "PELEGO novelty: {}", charge.novelty)?;
        }
    }
    Ok(crate::exit::OK)
}

/// `trial burst`: prints the subject rewritten for the chaos pool.
fn burst(
    trial: String,
    output: TrialFormat,
    common: crate::cli::Common,
    ledger: LedgerArgs,
) -> anyhow::Result<u8> {
    let (t, docs) = open(&common, &ledger)?.burst(&trial)?;
    match output {
        TrialFormat::Json => print_json(&List::of(&docs))?,
        _ => {
            let mut w = io::stdout().lock();
            writeln!(
                w,
                "# {} burst at {}: apply with kubectl apply -f -",
                t.id,
                t.burst_at.map(|b| b.to_string()).unwrap_or_default()
            )?;
            print_yaml(&docs, &mut w)?;
        }
    }
    Ok(crate::exit::OK)
}

/// `trial spiral`: records evidence and prints the novelty.
fn spiral(
    trial: String,
    files: Vec<(EvidenceKind, PathBuf)>,
    output: TrialFormat,
    common: crate::cli::Common,
    ledger: LedgerArgs,
) -> anyhow::Result<u8> {
    let mut inputs = Vec::with_capacity(files.len());
    for (kind, p) in files {
        inputs.push(EvidenceText {
            source: p.display().to_string(),
            kind,
            text: read_input(&p)?,
        });
    }
    let sostle_trial::Spiraled {
        trial: t,
        items,
        records,
        novelty,
    } = open(&common, &ledger)?.spiral(&trial, &inputs)?;
    let target = t.target;
    match output {
        TrialFormat::Human => {
            let mut w = io::stdout().lock();
            writeln!(w, "{}: evidence recorded", t.id)?;
            for (source, e) in &items {
                writeln!(
                    w,
                    "  {:<6} {source}: {}",
                    e.kind().as_str(),
                    spiral_line(e, target)
                )?;
            }
            writeln!(w, "PELEGO novelty: {novelty}")?;
        }
        _ => print_json(&Spiraled {
            trial: &t.id,
            evidence: items
                .iter()
                .zip(&records)
                .map(|((source, e), (_, _, data))| Recorded {
                    kind: e.kind(),
                    source,
                    summary: without_documents(data.clone()),
                })
                .collect(),
            novelty: &novelty,
        })?,
    }
    Ok(crate::exit::OK)
}

/// `trial verdict`: reaches and records the verdict.
fn verdict(
    trial: String,
    output: TrialFormat,
    common: crate::cli::Common,
    ledger: LedgerArgs,
) -> anyhow::Result<u8> {
    let mut c = open(&common, &ledger)?;
    let (t, v) = c.verdict(&trial)?;
    let day = c.day();
    match output {
        TrialFormat::Human => {
            let mut w = io::stdout().lock();
            writeln!(w, "{}: {}", t.id, v.verdict.as_str())?;
            for r in &v.reasons {
                writeln!(w, "  - {r}")?;
            }
        }
        _ => print_json(&Reached {
            trial: &t.id,
            epoch_day: day,
            outcome: &v,
        })?,
    }
    Ok(if v.verdict.is_refusal() {
        crate::exit::FAIL
    } else {
        crate::exit::OK
    })
}

/// `trial show`: a trial and every record of it.
fn show(trial: String, common: crate::cli::Common, ledger: LedgerArgs) -> anyhow::Result<u8> {
    let mut c = open(&common, &ledger)?;
    let t = c.ledger().trial(&trial)?;
    let evidence = c.ledger().evidence(&t.id)?;
    print_json(&Shown {
        trial: Listed::of(&t),
        subject: without_documents(serde_json::to_value(&t.subject)?),
        phases: evidence
            .iter()
            .map(|e| Phase {
                kind: e.kind,
                source: &e.source,
                recorded_at: e.recorded_at,
                epoch_day: e.epoch_day,
                data: without_documents(e.data.clone()),
            })
            .collect(),
    })?;
    Ok(crate::exit::OK)
}

/// `trial list`: every trial.
fn list(output: TrialFormat, common: crate::cli::Common, ledger: LedgerArgs) -> anyhow::Result<u8> {
    let trials = open(&common, &ledger)?.ledger().trials()?;
    match output {
        TrialFormat::Human => {
            let mut w = io::stdout().lock();
            writeln!(
                w,
                "{:<15} {:<6} {:<5} {:<20} STATE",
                "TRIAL", "TARGET", "DAY", "VERDICT"
            )?;
            for t in &trials {
                writeln!(
                    w,
                    "{:<15} {:<6} {:<5} {:<20} {}",
                    t.id,
                    t.target.as_str(),
                    t.epoch_day,
                    t.verdict.map_or("-", TrialVerdict::as_str),
                    t.state().as_str()
                )?;
            }
        }
        _ => print_json(&trials.iter().map(Listed::of).collect::<Vec<_>>())?,
    }
    Ok(crate::exit::OK)
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

fn print_needed(w: &mut dyn Write, charge: &Charge) -> io::Result<()> {
    for (need, hard, label) in [
        (
            &charge.exemptions_needed.target,
            &charge.must_fix.target,
            "at the target layer",
        ),
        (
            &charge.exemptions_needed.trial,
            &charge.must_fix.trial,
            "in chaos-trial",
        ),
    ] {
        if need.is_empty() && hard.is_empty() {
            continue;
        }
        writeln!(w, "{label}:")?;
        for n in need {
            writeln!(
                w,
                "  exemption needed: {} on {} (sostle exempt new --resource {} --policies {} …)",
                n.policy, n.resource, n.applies_to, n.policy
            )?;
        }
        for h in hard {
            writeln!(
                w,
                "  must fix (not exemptable at {}): {} on {}",
                h.layer, h.policy, h.resource
            )?;
        }
    }
    Ok(())
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
    let mut c = open(common, ledger)?;
    let t = c.ledger().trial(trial)?;
    let Judged {
        outcome: v,
        history,
        reports,
        docs,
    } = c.judge(&t)?;
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
        return Ok(crate::exit::FAIL);
    }
    let signing = crate::commands::sign::read_private_key(key)?;
    let day = c.day();
    let authorized =
        core_trial::authorized_layers(c.engine().config(), day, |l| c.evaluate(&docs, l));
    let basis = core_trial::lock_basis(&reports, c.engine().config(), day);
    let images = t.subject.images.clone();
    if images.is_empty() {
        bail!("{} has no container image to lock", t.id);
    }
    // The digest each image ran as: the evidence's, else (when attaching) the registry's for
    // the tag. All registry questions are asked before anything is recorded.
    let live = history.live_documents();
    let registry = match attach {
        Some(args) => Some((
            crate::commands::sign::registry(args)?,
            crate::commands::sign::runtime()?,
        )),
        None => None,
    };
    let rekor_config = c.engine().config().rekor.clone();
    let rekor_rt = match (
        rekor.rekor_url.is_some() || rekor_config.url.is_some(),
        &registry,
    ) {
        (true, None) => Some(crate::commands::sign::runtime()?),
        _ => None,
    };
    let digests = ran_digests(&images, &history, &live, registry.as_ref())?;
    let dir = out_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".sostle/profiles"));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    // One transaction: every image's profile, the verdict and the lock record — or none.
    let now = c.now();
    let profiles = c.ledger().atomically(|tx| {
        let mut profiles = Vec::new();
        for image in &images {
            let image_digest = digests.get(image).and_then(|(d, _)| d.clone());
            let profile = tx.add_profile(&t.id, image, now, |id| {
                let mut body = ProfileBody {
                    profile_id: id.to_string(),
                    image: image.clone(),
                    image_digest: image_digest.clone(),
                    gamma1_epoch: day,
                    policies_passed: basis.passed.clone(),
                    policies_exempted: basis.exempted.iter().map(|e| e.policy.clone()).collect(),
                    exemptions: basis.exempted.clone(),
                    falco_clean_hours: v.falco_clean_hours,
                    trivy_critical_cves: u64::try_from(v.trivy_critical_cves).unwrap_or(u64::MAX),
                    rekor_entry: None,
                    locked_at: now.to_string(),
                    sostle_layers_authorized: authorized.iter().map(|l| l.to_string()).collect(),
                    trial: t.id.clone(),
                    target: t.target.to_string(),
                };
                // With a Rekor: log the profile as locked so far (rekor_entry null), then seal the
                // entry's URL into it. A verifier nulls rekor_entry to recompute the logged hash.
                let rt = registry.as_ref().map(|(_, rt)| rt).or(rekor_rt.as_ref());
                if let Some(rt) = rt {
                    let logged = crate::commands::sign::log_in_rekor(
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
        tx.set_verdict(&t.id, TrialVerdict::MecipolLocked, true, now)?;
        let record = Evidence::Lock(LockRecord {
            profiles: profiles.iter().map(|p| p.id.clone()).collect(),
        });
        tx.add_evidence(
            &t.id,
            &[(record.kind(), "lock".into(), record.to_json()?)],
            now,
            day,
        )?;
        Ok::<_, sostle_ledger::Error>(profiles)
    })?;
    let mut written = Vec::new();
    for profile in profiles {
        let canonical = sostle_core::digest::canonical_json(&profile.profile);
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
        attach_attestations(&written, &digests, client, rt, &signing)?;
    }
    Ok(crate::exit::OK)
}

/// Each image's digest (as it ran: the evidence's, else the registry's for the tag when
/// attaching) and, when attaching, the registry's answer.
type Digests =
    std::collections::BTreeMap<String, (Option<String>, Option<sostle_sign::registry::Resolved>)>;

/// The digest each image ran as. All registry questions are asked before anything is
/// recorded.
fn ran_digests(
    images: &[String],
    history: &core_trial::History,
    live: &[serde_json::Value],
    registry: Option<&(sostle_sign::registry::Registry, tokio::runtime::Runtime)>,
) -> anyhow::Result<Digests> {
    let mut digests = Digests::new();
    for image in images {
        let from_evidence = core_trial::ran_digest(image, &history.trivy, live);
        let resolved = match registry {
            None => None,
            Some((client, rt)) => {
                let name = sostle_core::images::parse_image(image).name;
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
    Ok(digests)
}

/// `--attach`: each profile's attestation pushed beside its image.
fn attach_attestations(
    written: &[(sostle_ledger::Profile, PathBuf)],
    digests: &Digests,
    client: &sostle_sign::registry::Registry,
    rt: &tokio::runtime::Runtime,
    signing: &p256::ecdsa::SigningKey,
) -> anyhow::Result<()> {
    use sostle_sign::attest;
    for (p, _) in written {
        let Some((_, Some(resolved))) = digests.get(&p.image) else {
            continue;
        };
        let statement = attest::Statement::new(
            &format!("{}/{}", resolved.registry, resolved.repository),
            &resolved.digest,
            attest::MECIPOL_PREDICATE,
            p.profile.clone(),
        );
        let envelope = attest::sign(signing, &statement);
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
    Ok(())
}

/// `sostle promote FILE --to L<N> --profile profile-NNN`.
pub fn promote(
    paths: &[PathBuf],
    layer: Layer,
    profile_id: &str,
    output: crate::cli::PromoteFormat,
    common: &crate::cli::Common,
    ledger: &LedgerArgs,
) -> anyhow::Result<u8> {
    let mut c = open(common, ledger)?;
    let profile = c.ledger().profile(profile_id)?;
    let refuse = |why: String| -> anyhow::Result<u8> {
        eprintln!("refused: {why}");
        Ok(crate::exit::FAIL)
    };
    let body = ProfileBody::decode(&profile.profile)
        .map_err(|e| anyhow!("{profile_id} in the ledger does not decode: {e}"))?;
    if let Err(why) = mecipol::check_promotion_layer(&body, layer, c.engine().config()) {
        return refuse(why.to_string());
    }
    let docs = sostle_trial::read_subject(paths)?;
    let mut out = Vec::new();
    for sostle_trial::SubjectDoc {
        file, object: obj, ..
    } in &docs
    {
        if let Err(why) = mecipol::check_promotion(&profile, obj) {
            return refuse(match why {
                PromotionRefusal::OtherImage { .. } => format!("{file}: {why}"),
                other => other.to_string(),
            });
        }
        let namespace = c
            .engine()
            .config()
            .layer(layer)
            .map(|l| l.namespace.clone())
            .unwrap_or_else(|| layer.default_namespace().to_string());
        let day = body.gamma1_epoch;
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
            serde_json::to_writer_pretty(&mut w, &serde_json::to_value(List::of(&out))?)?;
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
    Ok(crate::exit::OK)
}

/// `sostle exempt witness …`: registers a witness hash in the ledger.
pub fn witness(
    values: &sostle_core::exemption::Values,
    by: &str,
    common: &crate::cli::Common,
    ledger: &LedgerArgs,
) -> anyhow::Result<u8> {
    let w = open(common, ledger)?.register_witness(values, by)?;
    println!(
        "{} registered at {} by {}",
        w.hash, w.registered_at, w.registered_by
    );
    Ok(crate::exit::OK)
}
