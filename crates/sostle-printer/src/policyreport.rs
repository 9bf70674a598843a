//! `--output policyreport`: wgpolicyk8s.io/v1alpha2 PolicyReport objects, one per namespace.

use std::io::{self, Write};

use sostle_check::Located;

use crate::{Printer, Tail};
use std::collections::BTreeMap;

use serde_json::json;
use sostle_core::Outcome;

use crate::{exemption_line, set, write_indented, PrintOptions};

/// Bytes of one namespace's results kept in memory before they go to the spill file.
const SPILL_BLOCK: usize = 16 * 1024;

/// One namespace's report so far: counts, and its results (pretty JSON, comma-separated) as
/// blocks in the spill file plus the block being filled.
#[derive(Default)]
struct Group {
    summary: [usize; 5],
    count: usize,
    blocks: Vec<(u64, usize)>,
    buf: Vec<u8>,
}

/// `--output policyreport`: one `wgpolicyk8s.io/v1alpha2` PolicyReport per namespace (a
/// ClusterPolicyReport for cluster-scoped and namespace-less resources), as a YAML stream whose
/// documents are JSON (which is YAML), ready for `kubectl apply -f -`. Reports group results by
/// namespace across the whole input, so results are spilled, as they come, to an anonymous
/// temporary file in blocks per namespace and read back at the end: memory stays flat.
pub(crate) struct PolicyReports {
    now_seconds: i64,
    groups: BTreeMap<Option<String>, Group>,
    spill: std::fs::File,
    offset: u64,
}

impl PolicyReports {
    pub(crate) fn new(opts: PrintOptions) -> io::Result<PolicyReports> {
        Ok(PolicyReports {
            now_seconds: opts.now_seconds,
            groups: BTreeMap::new(),
            spill: tempfile::tempfile()?,
            offset: 0,
        })
    }
}

impl Printer for PolicyReports {
    fn file(&mut self, _w: &mut dyn Write, ls: &[Located]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        for l in ls {
            let res = &l.report.resource;
            let ns = res.namespace.as_deref();
            for r in &l.report.results {
                let (result, idx) = match r.outcome {
                    Outcome::Pass => ("pass", 0),
                    Outcome::Fail => ("fail", 1),
                    Outcome::Warn => ("warn", 2),
                    Outcome::Skip | Outcome::Exempted => ("skip", 4),
                };
                let group = self.groups.entry(ns.map(str::to_string)).or_default();
                if let Some(s) = group.summary.get_mut(idx) {
                    *s += 1;
                }
                let first = r.violations.first();
                let message = match r.outcome {
                    Outcome::Pass => format!("{} passed", r.policy),
                    Outcome::Skip => {
                        format!("{} does not apply at {}", r.policy, l.report.layer.as_str())
                    }
                    Outcome::Exempted => format!(
                        "{} exempted: {}",
                        r.policy,
                        r.exemption
                            .as_deref()
                            .map(exemption_line)
                            .unwrap_or_default()
                    ),
                    _ => r
                        .violations
                        .iter()
                        .map(|v| v.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                };
                let mut properties = serde_json::Map::new();
                properties.insert("layer".into(), json!(l.report.layer.as_str()));
                properties.insert("file".into(), json!(&*l.file));
                properties.insert("document".into(), json!(l.document.to_string()));
                if let Some(v) = first {
                    properties.insert("line".into(), json!(v.pos.line.to_string()));
                    properties.insert("column".into(), json!(v.pos.col.to_string()));
                    properties.insert("path".into(), json!(v.path));
                    properties.insert("fix".into(), json!(v.fix));
                }
                if r.outcome == Outcome::Exempted {
                    properties.insert("exempted".into(), json!("true"));
                }
                if let Some(j) = r.exemption.as_deref() {
                    let a = &j.annotations;
                    properties.insert(
                        "exemption.reason".into(),
                        json!(a.reason.as_deref().unwrap_or("")),
                    );
                    properties.insert(
                        "exemption.expires".into(),
                        json!(a.expires.as_deref().unwrap_or("")),
                    );
                    properties.insert(
                        "exemption.owner".into(),
                        json!(a.owner.as_deref().unwrap_or("")),
                    );
                    properties.insert(
                        "exemption.reviewed".into(),
                        json!(a.reviewed.as_deref().unwrap_or("")),
                    );
                    properties.insert("exemption.valid".into(), json!(j.valid.to_string()));
                    if !j.problems.is_empty() {
                        properties
                            .insert("exemption.problems".into(), json!(j.problems.join("; ")));
                    }
                }
                let mut resource =
                    json!({"apiVersion": res.api_version, "kind": res.kind, "name": res.name});
                if let Some(ns) = ns {
                    set(&mut resource, "namespace", json!(ns));
                }
                let item = json!({
                    "source": "sostle",
                    "policy": &*r.policy,
                    "rule": &*r.policy,
                    "category": format!("sostle {}", l.report.layer.as_str()),
                    "result": result,
                    "severity": if r.outcome == Outcome::Fail { "high" } else { "medium" },
                    "scored": true,
                    "message": message,
                    "resources": [resource],
                    "properties": properties,
                    "timestamp": {"seconds": self.now_seconds, "nanos": 0},
                });
                let group = self.groups.entry(ns.map(str::to_string)).or_default();
                if group.count > 0 {
                    group.buf.extend_from_slice(b",\n    ");
                }
                group.count += 1;
                write_indented(&mut group.buf, &item, 4)?;
                if group.buf.len() >= SPILL_BLOCK {
                    self.spill.write_all_at(&group.buf, self.offset)?;
                    group.blocks.push((self.offset, group.buf.len()));
                    self.offset += group.buf.len() as u64;
                    group.buf.clear();
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, _tail: &Tail<'_>) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut first = true;
        for (ns, group) in &self.groups {
            let [pass, fail, warn, error, skip] = group.summary;
            let mut metadata = json!({"name": format!("sostle-{}", ns.as_deref().unwrap_or("cluster")), "labels": {"app.kubernetes.io/managed-by": "sostle"}});
            let kind = match ns {
                Some(ns) => {
                    set(&mut metadata, "namespace", json!(ns));
                    "PolicyReport"
                }
                None => "ClusterPolicyReport",
            };
            if !first {
                writeln!(w, "---")?;
            }
            first = false;
            write!(
                w,
                "{{\n  \"apiVersion\": \"wgpolicyk8s.io/v1alpha2\",\n  \"kind\": \"{kind}\",\n  \"metadata\": "
            )?;
            write_indented(w, &metadata, 2)?;
            w.write_all(b",\n  \"results\": [\n    ")?;
            let mut block = Vec::new();
            for &(offset, len) in &group.blocks {
                block.resize(len, 0);
                self.spill.read_exact_at(&mut block, offset)?;
                w.write_all(&block)?;
            }
            w.write_all(&group.buf)?;
            w.write_all(b"\n  ],\n  \"summary\": ")?;
            write_indented(
                w,
                &json!({"pass": pass, "fail": fail, "warn": warn, "error": error, "skip": skip}),
                2,
            )?;
            w.write_all(b"\n}\n")?;
        }
        Ok(())
    }
}
