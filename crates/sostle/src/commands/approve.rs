//! `sostle approve L5 FILE --key kay.key`: Kay's approval of workloads (SPEC §5) — a signature
//! over each workload's pod template, printed or written into the YAML.

use std::io::Write;

use anyhow::{anyhow, Context};
use sostle_core::manifest::{Entry, Node};
use sostle_core::suite::Gate;
use sostle_core::{approval, kay};

use crate::cli::ApproveArgs;

pub fn run(args: &ApproveArgs) -> anyhow::Result<u8> {
    let settings = crate::settings::Settings::resolve(&args.common)?;
    let config = &settings.config;
    if config.gate(args.layer) != Gate::KayApproved {
        anyhow::bail!(
            "{}'s gate is not Kay's approval (it is {:?}): nothing to approve there",
            args.layer,
            config.gate(args.layer)
        );
    }
    let signer = crate::commands::sign::read_private_key(&args.key)?;
    let mine = approval::CrewKey::new(*signer.verifying_key());
    let Some(kay_member) = config
        .crew
        .iter()
        .find(|m| m.has_role(kay::ROLE) && m.keys.contains(&mine))
    else {
        anyhow::bail!(
            "{}: this key (id {}) is not registered for a crew member with role `kay` (crew[].keys in the config); an approval it made would not verify",
            args.key.display(),
            mine.id
        );
    };
    let now = settings.now;
    let expires = match &args.expires {
        Some(e) => sostle_core::epoch::parse_rfc3339(e).map_err(|m| anyhow!("--expires: {m}"))?,
        None => now
            .checked_add(jiff::SignedDuration::from_hours(
                24 * i64::from(config.exemption_max_days),
            ))
            .map_err(|e| anyhow!("expiry: {e}"))?,
    };
    if expires <= now {
        anyhow::bail!("--expires {expires} is not in the future");
    }
    let expires_text = expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut out = std::io::stdout().lock();
    let mut refused = 0usize;
    let mut signed = 0usize;
    for file in &args.files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
        let loaded = sostle_core::manifest::load(&text);
        if let Some(e) = loaded.errors.first() {
            anyhow::bail!("{name}:{}:{}: {}", e.line, e.col, e.message);
        }
        let mut edits: Vec<Edit> = Vec::new();
        for doc in &loaded.documents {
            let root = &doc.root;
            let s = |path: &[&str]| root.get_path(path).and_then(Node::as_str).unwrap_or("");
            let (kind, ns, wname) = (
                s(&["kind"]),
                s(&["metadata", "namespace"]),
                s(&["metadata", "name"]),
            );
            let Some(digest) = kay::template_digest(root, kind) else {
                continue;
            };
            let here = format!("{name}:{}: {kind}/{ns}/{wname}", root.pos.line);
            if ns.is_empty() || wname.is_empty() {
                eprintln!("refused: {here}: the approval names the namespace and the name; set metadata.namespace and metadata.name");
                refused += 1;
                continue;
            }
            let payload = kay::payload(ns, kind, wname, &digest, &expires_text);
            eprintln!(
                "signing {here} as {}: pod template {digest}, until {expires_text}",
                kay_member.name
            );
            let sig = approval::sign(&signer, &payload);
            signed += 1;
            if !args.write {
                writeln!(out, "# {here}")?;
                writeln!(out, "{}: {}", kay::APPROVAL, serde_json::to_string(&sig)?)?;
                writeln!(
                    out,
                    "{}: {}",
                    kay::EXPIRES,
                    serde_json::to_string(&expires_text)?
                )?;
                continue;
            }
            match plan(&text, root, &sig, &expires_text) {
                Ok(e) => edits.push(e),
                Err(m) => {
                    eprintln!("refused: {here}: {m}; run without --write and add the printed annotations by hand");
                    refused += 1;
                    signed -= 1;
                }
            }
        }
        if args.write && !edits.is_empty() {
            let new_text = apply(&text, edits);
            std::fs::write(file, new_text).with_context(|| format!("cannot write {name}"))?;
        }
    }
    if signed == 0 && refused == 0 {
        eprintln!("no workload found to approve");
        return Ok(crate::exit::FAIL);
    }
    Ok(if refused > 0 {
        crate::exit::FAIL
    } else {
        crate::exit::OK
    })
}

/// Lines to replace (1-based) and lines to insert before a line, for one document.
struct Edit {
    replace: Vec<(usize, String)>,
    insert_before: Option<(usize, Vec<String>)>,
}

/// Whether an entry sits alone in block style on its line, at its column.
fn block_entry(text: &str, e: &Entry) -> Option<(usize, usize)> {
    let line = e.key_pos.line as usize;
    let col = (e.key_pos.col as usize).saturating_sub(1);
    let l = text.lines().nth(line.checked_sub(1)?)?;
    (l.len() > col
        && l.bytes().take(col).all(|b| b == b' ')
        && !l[col..].starts_with([' ', '{', '-']))
    .then_some((line, col))
}

fn plan(text: &str, root: &Node, sig: &str, expires: &str) -> Result<Edit, String> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let metadata = root
        .get("metadata")
        .and_then(Node::as_map)
        .ok_or("no metadata mapping")?;
    let first_meta = metadata.first().ok_or("empty metadata")?;
    let Some(annotations) = metadata.iter().find(|e| e.key == "annotations") else {
        let (line, col) = block_entry(text, first_meta).ok_or("metadata is not in block style")?;
        let pad = " ".repeat(col);
        return Ok(Edit {
            replace: Vec::new(),
            insert_before: Some((
                line,
                vec![
                    format!("{pad}annotations:"),
                    format!("{pad}  {}: {}", kay::APPROVAL, q(sig)),
                    format!("{pad}  {}: {}", kay::EXPIRES, q(expires)),
                ],
            )),
        });
    };
    let entries = annotations
        .value
        .as_map()
        .filter(|m| !m.is_empty())
        .ok_or("metadata.annotations is empty or not a mapping")?;
    let (first_line, col) = block_entry(text, entries.first().ok_or("no annotations")?)
        .ok_or("the annotations are not in block style")?;
    let pad = " ".repeat(col);
    let mut edit = Edit {
        replace: Vec::new(),
        insert_before: None,
    };
    let mut missing = Vec::new();
    for (key, value) in [(kay::APPROVAL, sig), (kay::EXPIRES, expires)] {
        let line = format!("{pad}{key}: {}", q(value));
        match entries.iter().find(|e| e.key == key) {
            Some(e) if e.value.pos.line == e.key_pos.line => {
                let (l, _) =
                    block_entry(text, e).ok_or("an approval annotation is not in block style")?;
                edit.replace.push((l, line));
            }
            Some(_) => return Err("an approval annotation spans several lines".into()),
            None => missing.push(line),
        }
    }
    if !missing.is_empty() {
        edit.insert_before = Some((first_line, missing));
    }
    Ok(edit)
}

fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for e in &edits {
        for (l, new) in &e.replace {
            if let Some(slot) = lines.get_mut(l - 1) {
                slot.clone_from(new);
            }
        }
    }
    // Bottom-up, so earlier line numbers stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse(e.insert_before.as_ref().map_or(0, |(l, _)| *l)));
    for e in edits {
        if let Some((at, new)) = e.insert_before {
            let at = at.saturating_sub(1).min(lines.len());
            for (i, l) in new.into_iter().enumerate() {
                lines.insert(at + i, l);
            }
        }
    }
    lines.join("\n")
}
