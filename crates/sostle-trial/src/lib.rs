//! The trial cycle as a service (SPEC §7): a trial charged from manifests, burst onto the chaos
//! pool, fed evidence (Falco, Trivy, events, the live spec), judged, its witnesses registered —
//! over one ledger and the engine. The rules live in `sostle_core::trial`; this crate reads the
//! subject, asks the engine and writes the ledger in one transaction per step, and returns
//! typed results. `sostle trial …` prints them; the controller (SPEC §14) calls the same steps.

use std::path::PathBuf;

use jiff::Timestamp;
use serde_json::Value as J;
use sostle_check::{Located, Report, TestSettings};
use sostle_core::trial::{
    self as core_trial, BurstRecord, Charge, DocumentDigest, Evidence, EvidenceKind, History,
    LiveEvidence, Novelty, Subject, SubjectResource, TrivyEvidence, VerdictOutcome,
};
use sostle_core::{manifest, Engine, EvalContext, Layer, Outcome, ResourceReport};
use sostle_ledger::{Ledger, Snapshot};

mod subject;

pub use subject::{read_subject, SubjectDoc};

/// Why a step of the cycle could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrialError {
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] sostle_ledger::Error),
    /// Evidence did not serialize.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Stored evidence no longer decodes (an upgrade, a hand edit): named, never skipped.
    #[error(transparent)]
    Stored(#[from] core_trial::UndecodableEvidence),
    /// An input is wrong: a file that does not parse, a target that is no layer, no objects.
    #[error("{0}")]
    Input(String),
}

/// The ledger, the engine and the clock of one run of the cycle.
pub struct Trials {
    engine: Engine,
    now: Timestamp,
    ledger: Ledger,
    snapshot: Snapshot,
    token_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Trials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trials")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A trial just charged, and what it was charged on.
#[derive(Debug)]
pub struct Charged {
    /// The trial as filed.
    pub trial: sostle_ledger::Trial,
    /// The epoch day it was filed on.
    pub day: i64,
    /// The subject judged at the target layer, with positions.
    pub at_target: Report,
    /// The subject judged in the chaos-trial namespace.
    pub at_trial: Report,
    /// The container images of the subject.
    pub images: Vec<String>,
    /// The charge: what needs an exemption, what must be fixed, the novelty.
    pub charge: Charge,
}

/// Evidence as it arrived (a file's text), to be parsed and recorded.
#[derive(Debug, Clone)]
pub struct EvidenceText {
    /// Where it came from, as the record names it (a file, or `-`).
    pub source: String,
    /// What it is.
    pub kind: EvidenceKind,
    /// Its text.
    pub text: String,
}

/// Evidence recorded on a trial.
#[derive(Debug)]
pub struct Spiraled {
    /// The trial.
    pub trial: sostle_ledger::Trial,
    /// Each input, parsed, with its source.
    pub items: Vec<(String, Evidence)>,
    /// The rows written (kind, source, data).
    pub records: Vec<(EvidenceKind, String, J)>,
    /// The novelty of the failure pattern as the subject stands now.
    pub novelty: Novelty,
}

/// A verdict and what it was reached on.
#[derive(Debug)]
pub struct Judged {
    /// The verdict and its reasons.
    pub outcome: VerdictOutcome,
    /// The trial's evidence, decoded.
    pub history: History,
    /// The current subject evaluated at the target layer.
    pub reports: Vec<ResourceReport>,
    /// The current subject.
    pub docs: Vec<J>,
}

impl Trials {
    /// The cycle over `ledger` with `engine`, at `now`.
    pub fn new(
        engine: Engine,
        now: Timestamp,
        ledger: Ledger,
        token_secret: Option<Vec<u8>>,
    ) -> Result<Trials, TrialError> {
        let snapshot = Snapshot::load(&ledger)?;
        Ok(Trials {
            engine,
            now,
            ledger,
            snapshot,
            token_secret,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The ledger.
    pub fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The epoch day of now.
    pub fn day(&self) -> i64 {
        self.engine.epoch_day(self.now)
    }

    /// Evaluates JSON objects at `layer` with the ledger consulted.
    pub fn evaluate(&self, docs: &[J], layer: Layer) -> Vec<ResourceReport> {
        let ctx = EvalContext {
            layer_override: Some(layer),
            token_secret: self.token_secret.as_deref(),
            locks: Some(&self.snapshot),
            ledger: Some(&self.snapshot),
            ..EvalContext::new(self.now)
        };
        docs.iter()
            .map(|d| self.engine.evaluate(&manifest::from_json(d), &ctx))
            .collect()
    }

    /// `trial charge`: files a trial of the manifests under `paths` for `target` — the subject,
    /// its fingerprint and its charge in one transaction.
    pub fn charge(&mut self, paths: &[PathBuf], target: Layer) -> Result<Charged, TrialError> {
        if target == Layer::Trial {
            return Err(TrialError::Input(
                "--target: a trial targets a layer L0…L7 (the trial namespace is where it runs)"
                    .into(),
            ));
        }
        let docs = read_subject(paths)?;
        let objects: Vec<J> = docs.iter().map(|d| d.object.clone()).collect();
        // Evaluate with positions, from the files, for the report.
        let settings = |layer| TestSettings {
            layer: Some(layer),
            token_secret: self.token_secret.clone(),
            ledger: Some(self.snapshot.clone()),
            ..TestSettings::new(paths.to_vec(), self.now)
        };
        let mut errors = Vec::new();
        let sources = sostle_check::collect_sources(paths, &mut errors);
        let at_target = sostle_check::run(&self.engine, &settings(target), &sources, Vec::new());
        let at_trial =
            sostle_check::run(&self.engine, &settings(Layer::Trial), &sources, Vec::new());
        let reports =
            |l: &[Located]| -> Vec<ResourceReport> { l.iter().map(|l| l.report.clone()).collect() };
        let target_reports = reports(&at_target.resources);
        let trial_reports = reports(&at_trial.resources);
        let subject = Subject {
            resources: at_target.resources.iter().map(subject_resource).collect(),
            images: core_trial::subject_images(&objects),
            digests: docs
                .iter()
                .map(|d| DocumentDigest {
                    file: d.file.clone(),
                    document: d.document,
                    sha256: d.sha256.clone(),
                })
                .collect(),
            documents: objects,
        };
        let pattern = core_trial::fingerprint(&target_reports);
        let novelty = core_trial::novelty(&pattern, &self.ledger.fingerprints()?);
        let config = self.engine.config();
        let charge = Charge::new(&target_reports, target, &trial_reports, config, novelty);
        let day = self.day();
        let charge_record = rows(&[("charge".into(), Evidence::Charge(charge.clone()))])?;
        // One transaction: the trial, its fingerprint and its charge, or none of them.
        let now = self.now;
        let trial = self.ledger.atomically(|tx| {
            let t = tx.file_trial(target, day, now, &subject, &charge)?;
            tx.add_fingerprint(&t.id, &pattern, now)?;
            tx.add_evidence(&t.id, &charge_record, now, day)?;
            Ok::<_, sostle_ledger::Error>(t)
        })?;
        Ok(Charged {
            trial,
            day,
            at_target,
            at_trial,
            images: subject.images,
            charge,
        })
    }

    /// `trial burst`: the subject rewritten for the chaos pool, and the burst recorded.
    pub fn burst(&mut self, id: &str) -> Result<(sostle_ledger::Trial, Vec<J>), TrialError> {
        let day = self.day();
        let now = self.now;
        self.ledger.atomically(|tx| {
            let t = tx.burst(id, now)?;
            let docs: Vec<J> = t
                .subject
                .documents
                .iter()
                .map(|d| core_trial::burst_object(d, &t.id))
                .collect();
            let record = Evidence::Burst(BurstRecord {
                burst_at: t.burst_at,
                documents: docs.len(),
            });
            let row = (record.kind(), "burst".into(), record.to_json()?);
            tx.add_evidence(&t.id, &[row], now, day)?;
            Ok::<_, TrialError>((t, docs))
        })
    }

    /// `trial spiral`: every input parsed and checked before anything is written, then all of
    /// it recorded in one transaction; the novelty of the subject as it stands now.
    pub fn spiral(&mut self, id: &str, inputs: &[EvidenceText]) -> Result<Spiraled, TrialError> {
        let t = self.ledger.trial(id)?;
        let (history, _) = self.history(&t)?;
        let items = self.parse_evidence(&t, &history, inputs)?;
        if items.is_empty() {
            return Err(TrialError::Input(
                "give evidence: --falco FILE, --trivy FILE, --events FILE or --live FILE|-".into(),
            ));
        }
        let (day, now) = (self.day(), self.now);
        let records = rows(&items)?;
        self.ledger
            .atomically(|tx| tx.add_evidence(&t.id, &records, now, day))?;
        // Novelty of the failure pattern (charge and live together): the subject as it stands
        // now is the latest live re-check — this one's, else the history's. (The evidence
        // changes neither witnesses, trial states nor locks: the snapshot stands.)
        let latest_live = items
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                Evidence::Live(l) => Some(l),
                _ => None,
            })
            .or(history.latest_live());
        let docs = t.subject.current_documents(latest_live);
        let pattern = core_trial::fingerprint(&self.evaluate(&docs, t.target));
        let earlier: Vec<(String, Vec<String>)> = self
            .ledger
            .fingerprints()?
            .into_iter()
            .take_while(|(id, _)| id != &t.id)
            .collect();
        let novelty = core_trial::novelty(&pattern, &earlier);
        Ok(Spiraled {
            trial: t,
            items,
            records,
            novelty,
        })
    }

    /// Each input parsed as its kind; a CRITICAL CVE is new when no earlier Trivy record had it;
    /// the live spec is re-checked at the target layer.
    fn parse_evidence(
        &self,
        t: &sostle_ledger::Trial,
        history: &History,
        inputs: &[EvidenceText],
    ) -> Result<Vec<(String, Evidence)>, TrialError> {
        let names = t.subject.workload_names();
        let previous_critical = history.critical_seen();
        let bad =
            |source: &str, e: core_trial::EvidenceError| TrialError::Input(format!("{source}:{e}"));
        let mut items = Vec::new();
        for input in inputs {
            let (source, text) = (&input.source, &input.text);
            let evidence = match input.kind {
                EvidenceKind::Falco => Evidence::Falco(
                    core_trial::parse_falco(text, &names).map_err(|e| bad(source, e))?,
                ),
                EvidenceKind::Trivy => {
                    let summary = core_trial::parse_trivy(text).map_err(|e| bad(source, e))?;
                    let new_critical = summary
                        .critical
                        .iter()
                        .filter(|c| !previous_critical.contains(c.as_str()))
                        .cloned()
                        .collect();
                    Evidence::Trivy(TrivyEvidence {
                        summary,
                        new_critical,
                    })
                }
                EvidenceKind::Events => Evidence::Events(
                    core_trial::parse_events(text, &names).map_err(|e| bad(source, e))?,
                ),
                EvidenceKind::Live => Evidence::Live(self.live(t, source, text)?),
                other => {
                    return Err(TrialError::Input(format!(
                        "{source}: {} is not evidence a person records",
                        other.as_str()
                    )))
                }
            };
            items.push((source.clone(), evidence));
        }
        Ok(items)
    }

    /// The live objects of a trial, re-checked at its target layer.
    fn live(
        &self,
        t: &sostle_ledger::Trial,
        source: &str,
        text: &str,
    ) -> Result<LiveEvidence, TrialError> {
        let loaded = manifest::load(text);
        if let Some(e) = loaded.errors.first() {
            let m = format!("{source}:{}:{}: {}", e.line, e.col, e.message);
            return Err(TrialError::Input(m));
        }
        let documents: Vec<J> = loaded.documents.iter().map(|d| d.root.to_json()).collect();
        let failures = self
            .evaluate(&documents, t.target)
            .iter()
            .flat_map(|r| {
                r.results
                    .iter()
                    .filter(|x| x.outcome == Outcome::Fail)
                    .map(move |x| format!("{} on {}", x.policy, r.resource.display()))
            })
            .collect();
        Ok(LiveEvidence {
            documents,
            failures,
        })
    }

    /// `trial verdict`: judged and recorded (the verdict and its evidence row together).
    pub fn verdict(
        &mut self,
        id: &str,
    ) -> Result<(sostle_ledger::Trial, VerdictOutcome), TrialError> {
        let t = self.ledger.trial(id)?;
        let v = self.judge(&t)?.outcome;
        let (day, now) = (self.day(), self.now);
        let record = rows(&[("verdict".into(), Evidence::Verdict(v.clone()))])?;
        self.ledger.atomically(|tx| {
            tx.set_verdict(&t.id, v.verdict, false, now)?;
            tx.add_evidence(&t.id, &record, now, day)
        })?;
        Ok((t, v))
    }

    /// A trial's evidence decoded, and its subject as it stands (the charged documents, with
    /// the latest live objects in place of the charged ones).
    fn history(&self, t: &sostle_ledger::Trial) -> Result<(History, Vec<J>), TrialError> {
        let rows = self.ledger.evidence(&t.id)?;
        let history = History::decode(rows.iter().map(sostle_ledger::Evidence::stored))?;
        let docs = t.subject.current_documents(history.latest_live());
        Ok((history, docs))
    }

    /// The verdict a trial stands at now. Stored evidence that no longer decodes is an error
    /// that names it, never skipped: a skipped Trivy summary would stop counting its CRITICAL
    /// CVEs.
    pub fn judge(&self, t: &sostle_ledger::Trial) -> Result<Judged, TrialError> {
        let (history, docs) = self.history(t)?;
        let reports = self.evaluate(&docs, t.target);
        let input = core_trial::VerdictInput {
            reports: &reports,
            target: t.target,
            burst_at: t.burst_at,
            falco_checked_until: history.falco_checked_until,
            falco: &history.falco,
            trivy: &history.trivy,
            now: self.now,
        };
        let outcome = core_trial::verdict(&input, self.engine.config());
        Ok(Judged {
            outcome,
            history,
            reports,
            docs,
        })
    }

    /// `exempt witness`: registers a witness hash by crew member `by`.
    pub fn register_witness(
        &mut self,
        values: &sostle_core::exemption::Values,
        by: &str,
    ) -> Result<sostle_ledger::Witness, TrialError> {
        if self.engine.config().crew_member(by).is_none() {
            return Err(TrialError::Input(format!(
                "--by: `{by}` is not registered crew"
            )));
        }
        let hash = sostle_core::exemption::witness(values);
        let stored_values = serde_json::to_value(values)?;
        let now = self.now;
        Ok(self
            .ledger
            .atomically(|tx| tx.register_witness(&hash, by, &stored_values, now))?)
    }
}

/// One resource of the subject, as the trial names it.
fn subject_resource(l: &Located) -> SubjectResource {
    SubjectResource {
        kind: l.report.resource.kind.clone(),
        namespace: l.report.resource.namespace.clone(),
        name: l.report.resource.name.clone(),
        file: l.file.to_string(),
        document: l.document,
    }
}

/// The ledger rows of `items` (source, evidence).
pub fn rows(items: &[(String, Evidence)]) -> Result<Vec<(EvidenceKind, String, J)>, TrialError> {
    Ok(items
        .iter()
        .map(|(source, e)| Ok((e.kind(), source.clone(), e.to_json()?)))
        .collect::<Result<Vec<_>, serde_json::Error>>()?)
}
