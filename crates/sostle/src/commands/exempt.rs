//! `sostle exempt new | check | list | hash`: the exemption commands, on top of the same
//! engine and inputs as `sostle test`.

use std::io::{self, Write};
use std::sync::Arc;

use serde::Serialize;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use sostle_core::approval;
use sostle_core::exemption::{self, Annotations, Judgement, Values};
use sostle_core::{Engine, Layer, Outcome};

use crate::check::{self, Located, TestSettings};
use crate::cli::{Common, ExemptCommand, ExemptValues, ListFormat};

fn values(v: &ExemptValues) -> Values {
    Values {
        applies_to: v.resource.trim().to_string(),
        from: v
            .policies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(","),
        expires: v.expires.trim().to_string(),
        owner: v.owner.trim().to_string(),
        reason: v.reason.trim().to_string(),
        reviewed: v.reviewed.trim().to_string(),
    }
}

pub fn run(cmd: ExemptCommand) -> anyhow::Result<u8> {
    match cmd {
        ExemptCommand::Hash { values: v } => {
            println!("{}", exemption::witness(&values(&v)));
            Ok(crate::exit::OK)
        }
        ExemptCommand::New {
            values: v,
            layer,
            approve_key,
            common,
        } => new(&v, layer, approve_key.as_deref(), &common),
        ExemptCommand::Approve {
            files,
            key,
            write,
            common,
        } => approve(&files, &key, write, &common),
        ExemptCommand::Witness {
            values: v,
            by,
            common,
            ledger,
        } => crate::commands::trial::witness(&values(&v), &by, &common, &ledger),
        ExemptCommand::Check {
            paths,
            sostle_layer,
            common,
            ledger,
        } => {
            let (engine, report) = evaluate(paths, sostle_layer, &common, &ledger)?;
            check_cmd(&engine, &report, &mut io::stdout().lock())
        }
        ExemptCommand::List {
            paths,
            sostle_layer,
            output,
            common,
            ledger,
        } => {
            let (engine, report) = evaluate(paths, sostle_layer, &common, &ledger)?;
            let rows = list_rows(&engine, &report);
            let mut out = io::stdout().lock();
            match output {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &rows)?;
                    writeln!(out)?;
                }
                ListFormat::Human => print_rows(&rows, &mut out)?,
            }
            print_errors(&report)?;
            Ok(if report.totals.errors.is_empty() {
                0
            } else {
                3
            })
        }
    }
}

/// Reads a reviewer's private key.
fn signing_key(path: &Path) -> anyhow::Result<p256::ecdsa::SigningKey> {
    crate::commands::sign::read_private_key(path)
}

/// Whether `key` is registered for the crew member `reviewed` names; the error says what to do.
fn check_key_is_reviewers(
    config: &sostle_core::Config,
    reviewed: &str,
    key: &p256::ecdsa::SigningKey,
) -> Result<(), String> {
    let ck = approval::CrewKey::new(*key.verifying_key());
    let Some(m) = config.crew_member(reviewed) else {
        return Err(format!("reviewer {reviewed} is not registered crew"));
    };
    if m.keys.contains(&ck) {
        Ok(())
    } else {
        Err(format!(
            "the key {} is not registered for {} (crew[].keys in the config): the approval would not be honoured",
            ck.id, m.name
        ))
    }
}

fn new(
    v: &ExemptValues,
    layer: Option<Layer>,
    approve_key: Option<&Path>,
    common: &Common,
) -> anyhow::Result<u8> {
    let crate::settings::Settings { config, now, .. } = crate::settings::Settings::resolve(common)?;
    let signer = approve_key.map(signing_key).transpose()?;
    if let Some(k) = &signer {
        // Whatever the config requires, a signature by someone else's key is no approval.
        check_key_is_reviewers(&config, v.reviewed.trim(), k)
            .map_err(|m| anyhow!("--approve-key: {m}"))?;
    }
    let vals = values(v);
    let Some((ns, _name)) = vals.applies_to.split_once('/') else {
        anyhow::bail!(
            "--resource: `{}` is not <namespace>/<name>",
            vals.applies_to
        );
    };
    let layer = match layer {
        Some(l) => l,
        None => config.namespace_layer(ns).ok_or_else(|| {
            anyhow::anyhow!("namespace {ns} has no layer by name or config: give --layer")
        })?,
    };
    let witness = exemption::witness(&vals);
    let ann = Annotations {
        from: Some(vals.from.clone()),
        applies_to: Some(vals.applies_to.clone()),
        reason: Some(vals.reason.clone()),
        expires: Some(vals.expires.clone()),
        owner: Some(vals.owner.clone()),
        reviewed: Some(vals.reviewed.clone()),
        approval: signer.as_ref().map(|k| approval::sign(k, &witness)),
        witness: Some(witness),
        pos: Default::default(),
    };
    // Without --approve-key the approval is the reviewer's next step (`exempt approve`), not a
    // problem of what is written so far: judge everything else.
    let unsigned;
    let judging = if signer.is_none() && config.require_approval {
        let mut c = config.clone();
        c.require_approval = false;
        unsigned = c;
        &unsigned
    } else {
        &config
    };
    let mut problems: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    if ann.policies().is_empty() {
        problems.push("--policies names no policy".into());
    }
    let approval = exemption::ApprovalCheck::default();
    for p in ann.policies() {
        let spec = config.policy(p);
        if spec.is_none() && p != sostle_core::report::LAYER_GATE {
            problems.push(format!("{p} is not a policy of the suite"));
            continue;
        }
        let j = exemption::judge_with(
            &ann,
            exemption::Subject {
                policy: spec,
                policy_id: p,
                layer,
                resource: &vals.applies_to,
            },
            judging,
            now,
            None,
            &approval,
        );
        for pr in j.problems {
            if !problems.contains(&pr) {
                problems.push(pr);
            }
        }
        for w in j.warnings {
            if w == exemption::HASH_ONLY_WARNING && config.require_approval {
                continue;
            }
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    if !problems.is_empty() {
        let mut e = io::stderr().lock();
        writeln!(
            e,
            "refused: this exemption would not be honoured at {layer}:"
        )?;
        for p in &problems {
            writeln!(e, "  - {p}")?;
        }
        return Ok(crate::exit::FAIL);
    }
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "# exemption of {} at {layer}; paste under the resource's metadata",
        vals.applies_to
    )?;
    writeln!(out, "metadata:")?;
    writeln!(out, "  annotations:")?;
    for (key, value) in [
        ("from", &vals.from),
        ("applies-to", &vals.applies_to),
        ("reason", &vals.reason),
        ("expires", &vals.expires),
        ("owner", &vals.owner),
        ("reviewed", &vals.reviewed),
    ] {
        writeln!(out, "    {}{key}: {}", exemption::PREFIX, q(value))?;
    }
    writeln!(
        out,
        "    {}witness: {}",
        exemption::PREFIX,
        q(ann.witness.as_deref().unwrap_or(""))
    )?;
    match &ann.approval {
        Some(a) => writeln!(out, "    {}: {}", approval::ANNOTATION, q(a))?,
        None if config.require_approval => eprintln!(
            "hint: {} must sign it before it is honoured: sostle exempt approve FILE --key <their key>",
            vals.reviewed
        ),
        None => {}
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(crate::exit::OK)
}

fn evaluate(
    paths: Vec<PathBuf>,
    layer: Option<Layer>,
    common: &Common,
    ledger: &crate::cli::LedgerArgs,
) -> anyhow::Result<(Engine, check::Report)> {
    let crate::settings::Settings {
        config,
        now,
        token_secret,
    } = crate::settings::Settings::resolve(common)?;
    let settings = TestSettings {
        combine: false,
        json_only: false,
        requester: None,
        images: None,
        paths,
        layer,
        now,
        token_secret,
        ledger: crate::settings::ledger::snapshot(ledger, &config)?,
        user: None,
    };
    let engine = Engine::new(Arc::new(config));
    let mut errors = Vec::new();
    let sources = check::collect_sources(&settings.paths, &mut errors);
    let report = check::run(&engine, &settings, &sources, errors);
    Ok((engine, report))
}

fn print_errors(report: &check::Report) -> io::Result<()> {
    let mut e = io::stderr().lock();
    for err in &report.totals.errors {
        writeln!(
            e,
            "error: {}:{}:{}: {}",
            err.file, err.line, err.column, err.message
        )?;
    }
    Ok(())
}

/// One exemption of one policy on one resource.
#[derive(Debug, Serialize)]
pub struct Row {
    file: String,
    line: u32,
    resource: String,
    layer: &'static str,
    policy: String,
    state: &'static str,
    owner: Option<String>,
    reviewed: Option<String>,
    reason: Option<String>,
    expires: Option<String>,
    days_left: Option<i64>,
    problems: Vec<String>,
}

/// The judgement of every listed policy: the engine's own for failing results, a fresh one
/// (same rules) for policies that pass anyway.
fn judgements<'a>(
    engine: &Engine,
    l: &'a Located,
    now: jiff::Timestamp,
) -> Vec<(String, Option<&'a sostle_core::PolicyResult>, Judgement)> {
    let Some(ann) = &l.report.exemption else {
        return Vec::new();
    };
    let target = Engine::exemption_target(&l.report.resource);
    ann.policies()
        .into_iter()
        .map(|p| {
            let result = l.report.results.iter().find(|r| &*r.policy == p);
            let j = match (
                result.and_then(|r| r.exemption.as_deref()),
                l.report.layer.layer(),
            ) {
                (Some(j), _) => j.clone(),
                (None, Some(layer)) => exemption::judge_with(
                    ann,
                    exemption::Subject {
                        policy: engine.config().policy(p),
                        policy_id: p,
                        layer,
                        resource: &target,
                    },
                    engine.config(),
                    now,
                    None,
                    &exemption::ApprovalCheck::default(),
                ),
                (None, None) => Judgement {
                    annotations: ann.clone(),
                    valid: false,
                    problems: vec![format!(
                        "the resource has no layer ({}), so nothing is exempted",
                        l.report.layer.as_str()
                    )],
                    warnings: Vec::new(),
                    days_left: None,
                },
            };
            (p.to_string(), result, j)
        })
        .collect()
}

fn check_cmd(engine: &Engine, report: &check::Report, w: &mut dyn Write) -> anyhow::Result<u8> {
    let now = report.now;
    let mut refused = false;
    let mut found = 0;
    for l in &report.resources {
        let js = judgements(engine, l, now);
        if js.is_empty() {
            continue;
        }
        let pos = l
            .report
            .exemption
            .as_ref()
            .map(|a| a.pos)
            .unwrap_or_default();
        writeln!(
            w,
            "{}:{}:{}: {} [{}]",
            l.file,
            pos.line,
            pos.col,
            l.report.resource.display(),
            l.report.layer.as_str()
        )?;
        for (policy, result, j) in js {
            found += 1;
            let outcome = result.map(|r| r.outcome);
            let days = j
                .days_left
                .filter(|d| *d > 0)
                .map(|d| format!(", {d} day{} left", if d == 1 { "" } else { "s" }))
                .unwrap_or_default();
            match outcome {
                Some(Outcome::Exempted) => writeln!(w, "  {policy}: honoured{days}")?,
                Some(Outcome::Pass) | Some(Outcome::Skip) | None if j.valid => writeln!(
                    w,
                    "  {policy}: unused — the policy {} anyway{days}",
                    if outcome == Some(Outcome::Skip) {
                        "does not apply here"
                    } else {
                        "passes"
                    }
                )?,
                Some(Outcome::Pass) | Some(Outcome::Skip) | None => {
                    writeln!(w, "  {policy}: unused and would not be honoured{days}:")?;
                    refused = true;
                }
                Some(_) => {
                    writeln!(w, "  {policy}: NOT honoured{days}:")?;
                    refused = true;
                }
            }
            for p in &j.problems {
                writeln!(w, "    - {p}")?;
            }
            for warning in &j.warnings {
                writeln!(w, "    warning: {warning}")?;
            }
        }
    }
    writeln!(
        w,
        "{found} exemption{} checked",
        if found == 1 { "" } else { "s" }
    )?;
    print_errors(report)?;
    Ok(if !report.totals.errors.is_empty() {
        3
    } else if refused {
        1
    } else {
        0
    })
}

fn list_rows(engine: &Engine, report: &check::Report) -> Vec<Row> {
    let now = report.now;
    let mut rows = Vec::new();
    for l in &report.resources {
        let target = Engine::exemption_target(&l.report.resource);
        for (policy, result, j) in judgements(engine, l, now) {
            let a = &j.annotations;
            let orphaned = a.applies_to.as_deref().is_some_and(|t| t != target);
            let expired = j.days_left.is_some_and(|d| d <= 0)
                && j.problems.iter().any(|p| p.starts_with("expired"));
            let unused = matches!(
                result.map(|r| r.outcome),
                Some(Outcome::Pass | Outcome::Skip) | None
            );
            let state = if orphaned {
                "orphaned"
            } else if expired {
                "expired"
            } else if unused {
                "unused"
            } else if !j.valid {
                "refused"
            } else if !j.warnings.is_empty() {
                "expiring"
            } else {
                "active"
            };
            rows.push(Row {
                file: l.file.to_string(),
                line: a.pos.line,
                resource: l.report.resource.display(),
                layer: l.report.layer.as_str(),
                policy,
                state,
                owner: a.owner.clone(),
                reviewed: a.reviewed.clone(),
                reason: a.reason.clone(),
                expires: a.expires.clone(),
                days_left: j.days_left,
                problems: j.problems.clone(),
            });
        }
    }
    rows
}

fn print_rows(rows: &[Row], w: &mut dyn Write) -> io::Result<()> {
    let headers = [
        "STATE", "POLICY", "RESOURCE", "LAYER", "OWNER", "REVIEWED", "EXPIRES", "DAYS", "AT",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.state.to_string(),
                r.policy.clone(),
                r.resource.clone(),
                r.layer.to_string(),
                r.owner.clone().unwrap_or_else(|| "-".into()),
                r.reviewed.clone().unwrap_or_else(|| "-".into()),
                r.expires.clone().unwrap_or_else(|| "-".into()),
                r.days_left.map_or("-".into(), |d| d.to_string()),
                format!("{}:{}", r.file, r.line),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for c in &cells {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: Vec<&str>| -> String {
        cols.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(w, "{}", line(headers.to_vec()))?;
    for c in &cells {
        writeln!(w, "{}", line(c.iter().map(String::as_str).collect()))?;
    }
    let count = |s: &str| rows.iter().filter(|r| r.state == s).count();
    writeln!(
        w,
        "{} exemptions: {} active, {} expiring, {} expired, {} orphaned, {} unused, {} refused",
        rows.len(),
        count("active"),
        count("expiring"),
        count("expired"),
        count("orphaned"),
        count("unused"),
        count("refused")
    )
}

/// `sostle exempt approve FILE… --key FILE [--write]`.
fn approve(files: &[PathBuf], key: &Path, write: bool, common: &Common) -> anyhow::Result<u8> {
    let config = crate::settings::config(common.config.as_deref())?;
    let signer = signing_key(key)?;
    let mut out = io::stdout().lock();
    let mut refused = 0usize;
    let mut approved = 0usize;
    let mut skipped = 0usize;
    for file in files {
        let name = file.display().to_string();
        if write && file.extension().is_some_and(|e| e == "json") {
            eprintln!("refused: {name}: --write edits YAML only; run without --write and add the printed annotation to the JSON by hand");
            refused += 1;
            continue;
        }
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
        let loaded = sostle_core::manifest::load(&text);
        if let Some(e) = loaded.errors.first() {
            anyhow::bail!("{name}:{}:{}: {}", e.line, e.col, e.message);
        }
        // (line of the witness key, indentation, existing approval line, approval) per resource.
        let mut edits: Vec<(usize, usize, Option<usize>, String)> = Vec::new();
        for doc in &loaded.documents {
            let Some(ann) = Annotations::read(&doc.root) else {
                continue;
            };
            let what = describe(&doc.root);
            let here = format!("{name}:{}: {what}", ann.pos.line);
            let computed = ann.computed_witness();
            let problem = match (ann.witness.as_deref(), ann.reviewed.as_deref()) {
                (None, _) => Some("it has no witness: write it with `sostle exempt new`".to_string()),
                (_, None) => Some("it names no reviewer (exempt-reviewed)".to_string()),
                (Some(w), _) if w != computed => Some(format!(
                    "the witness does not match the values (they hash to {computed}): a value was changed; review the values, then write the witness again"
                )),
                (Some(_), Some(r)) => {
                    // Another reviewer's exemption in the same file is theirs to sign: skipped.
                    let mine = approval::CrewKey::new(*signer.verifying_key());
                    let holder = config.crew.iter().find(|c| c.keys.contains(&mine));
                    let reviewer = config.crew_member(r).map(|m| m.name.as_str());
                    match holder {
                        Some(h) if reviewer.is_some() && Some(h.name.as_str()) != reviewer => {
                            eprintln!("skipped: {here}: reviewed by {r}, and this is a key of {}", h.name);
                            skipped += 1;
                            continue;
                        }
                        _ => check_key_is_reviewers(&config, r, &signer).err(),
                    }
                }
            };
            if let Some(p) = problem {
                eprintln!("refused: {here}: {p}");
                refused += 1;
                continue;
            }
            // Say what is signed: the reviewer approves these values, not a file.
            eprintln!(
                "signing {here}: exempt-from={} applies-to={} reason={:?} expires={} owner={} reviewed={}",
                ann.from.as_deref().unwrap_or(""),
                ann.applies_to.as_deref().unwrap_or(""),
                ann.reason.as_deref().unwrap_or(""),
                ann.expires.as_deref().unwrap_or(""),
                ann.owner.as_deref().unwrap_or(""),
                ann.reviewed.as_deref().unwrap_or("")
            );
            let sig = approval::sign(&signer, &computed);
            approved += 1;
            if !write {
                writeln!(out, "# {here}")?;
                writeln!(
                    out,
                    "{}: {}",
                    approval::ANNOTATION,
                    serde_json::to_string(&sig)?
                )?;
                continue;
            }
            let Some(entries) = doc
                .root
                .get_path(&["metadata", "annotations"])
                .and_then(sostle_core::manifest::Node::as_map)
            else {
                continue;
            };
            let line_of = |key: &str| {
                entries
                    .iter()
                    .find(|e| e.key == key)
                    .map(|e| (e.key_pos.line as usize, e.key_pos.col as usize))
            };
            // An approval or witness written over several lines (a block scalar) cannot be
            // replaced line-wise.
            let witness_name = format!("{}witness", exemption::PREFIX);
            let multi_line = entries.iter().any(|e| {
                (e.key == approval::ANNOTATION || e.key == witness_name)
                    && (e.value.pos.line != e.key_pos.line || {
                        let line = text
                            .lines()
                            .nth((e.key_pos.line as usize).saturating_sub(1));
                        let v = line
                            .and_then(|l| l.split_once(':'))
                            .map_or("", |(_, v)| v.trim());
                        v.starts_with('|') || v.starts_with('>')
                    })
            });
            if multi_line {
                eprintln!("refused: {here}: the witness or an older approval spans several lines; write the approval by hand (run without --write to print it)");
                refused += 1;
                approved -= 1;
                continue;
            }
            let witness_key = format!("{}witness", exemption::PREFIX);
            let Some((wline, wcol)) = line_of(&witness_key) else {
                continue;
            };
            let existing = line_of(approval::ANNOTATION).map(|(l, _)| l);
            edits.push((wline, wcol.saturating_sub(1), existing, sig));
        }
        if write && !edits.is_empty() {
            let new_text = insert_approvals(&text, &edits).map_err(|m| anyhow!("{name}: {m}"))?;
            std::fs::write(file, new_text).with_context(|| format!("cannot write {name}"))?;
            eprintln!(
                "{name}: {} approval{} written",
                edits.len(),
                if edits.len() == 1 { "" } else { "s" }
            );
        }
    }
    if approved == 0 && refused == 0 {
        if skipped == 0 {
            eprintln!("no exemption annotations found");
            return Ok(crate::exit::FAIL);
        }
        eprintln!("nothing signed: no exemption here is reviewed by the holder of this key");
    }
    Ok(if refused > 0 { 1 } else { 0 })
}

/// `Kind/namespace/name` of a document, for messages.
fn describe(root: &sostle_core::manifest::Node) -> String {
    let s = |path: &[&str]| {
        root.get_path(path)
            .and_then(sostle_core::manifest::Node::as_str)
            .unwrap_or("?")
            .to_string()
    };
    format!(
        "{}/{}/{}",
        s(&["kind"]),
        root.get_path(&["metadata", "namespace"])
            .and_then(sostle_core::manifest::Node::as_str)
            .unwrap_or("default"),
        s(&["metadata", "name"])
    )
}

/// Puts each approval on its own line under the witness line (block-style annotations),
/// replacing an existing approval line.
fn insert_approvals(
    text: &str,
    edits: &[(usize, usize, Option<usize>, String)],
) -> Result<String, String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    // Bottom-up, so earlier line numbers stay valid.
    let mut sorted: Vec<_> = edits.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (wline, indent, existing, sig) in sorted {
        let block = |line: usize| {
            lines.get(line.wrapping_sub(1)).is_some_and(|l| {
                l.len() > *indent
                    && l.bytes().take(*indent).all(|b| b == b' ')
                    && !l[*indent..].starts_with(' ')
            })
        };
        if !block(*wline) || existing.is_some_and(|l| !block(l)) {
            return Err(format!(
                "line {wline}: the annotations are not in block style; add the approval by hand (run without --write to print it)"
            ));
        }
        let entry = format!(
            "{}{}: {}",
            " ".repeat(*indent),
            approval::ANNOTATION,
            serde_json::to_string(sig).unwrap_or_default()
        );
        match existing {
            Some(l) => {
                if let Some(slot) = lines.get_mut(l - 1) {
                    *slot = entry;
                }
            }
            None => lines.insert(*wline, entry),
        }
    }
    Ok(lines.join("\n"))
}
