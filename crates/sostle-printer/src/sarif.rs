//! `--output sarif`: SARIF 2.1.0 with regions, for code-scanning dashboards.

use std::io::{self, Write};

use sostle_check::Located;

use crate::{Printer, Tail};
use serde_json::json;
use sostle_core::{Config, Outcome};

use crate::{exemption_line, findings, set, write_indented};

/// `--output sarif`: SARIF 2.1.0, one result per offending field, with regions; results are
/// written as files complete, the invocation (errors) after them.
pub(crate) struct Sarif {
    rules: Vec<serde_json::Value>,
    started: bool,
    first: bool,
}

impl Sarif {
    pub(crate) fn new(config: &Config) -> Sarif {
        let mut rules = vec![json!({
            "id": sostle_core::report::LAYER_GATE,
            "name": sostle_core::report::LAYER_GATE,
            "shortDescription": {"text": "the layer's own admission gate (SPEC §2)"},
            "defaultConfiguration": {"level": "error"},
        })];
        for p in &config.policies {
            rules.push(json!({
            "id": p.id,
            "name": p.id,
            "shortDescription": {"text": p.summary},
            "defaultConfiguration": {"level": if p.verdict == sostle_core::suite::Verdict::Deny { "error" } else { "warning" }},
            "properties": {"layers": p.layers.to_string()},
        }));
        }
        Sarif {
            rules,
            started: false,
            first: true,
        }
    }

    fn start(&mut self, w: &mut dyn Write) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let tool = json!({"driver": {
            "name": "sostle",
            "version": env!("CARGO_PKG_VERSION"),
            "informationUri": "https://github.com/eose/sostle",
            "rules": self.rules,
        }});
        w.write_all(b"{\n  \"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\",\n  \"version\": \"2.1.0\",\n  \"runs\": [\n    {\n      \"tool\": ")?;
        write_indented(w, &tool, 6)?;
        w.write_all(b",\n      \"results\": [")
    }
}

impl Printer for Sarif {
    fn file(&mut self, w: &mut dyn Write, ls: &[Located]) -> io::Result<()> {
        self.start(w)?;
        let mut results = Vec::new();
        for l in ls {
            for (r, v) in findings(l) {
                results.push(json!({
                "ruleId": &*r.policy,
                "level": if r.outcome == Outcome::Fail { "error" } else { "warning" },
                "message": {"text": format!("{} — fix: {}", v.message, v.fix)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&l.file)},
                        "region": {"startLine": v.pos.line.max(1), "startColumn": v.pos.col.max(1)},
                    },
                    "logicalLocations": [{"fullyQualifiedName": format!("{}#{}", l.report.resource.display(), v.path), "kind": "resource"}],
                }],
                "properties": {
                    "resource": l.report.resource.display(),
                    "layer": l.report.layer.as_str(),
                    "container": v.container,
                    "path": v.path,
                    "document": l.document,
                },
            }));
            }
        }
        for l in ls {
            for (r, j) in crate::exempted(l) {
                let justification = exemption_line(j);
                for v in &r.violations {
                    results.push(json!({
                    "ruleId": &*r.policy,
                    "level": "note",
                    "message": {"text": format!("{} — exempted", v.message)},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri(&l.file)},
                            "region": {"startLine": v.pos.line.max(1), "startColumn": v.pos.col.max(1)},
                        },
                    }],
                    "suppressions": [{"kind": "external", "status": "accepted", "justification": justification}],
                    "properties": {"resource": l.report.resource.display(), "layer": l.report.layer.as_str(), "path": v.path},
                }));
                }
            }
        }
        for r in &results {
            w.write_all(if self.first {
                b"\n        "
            } else {
                b",\n        "
            })?;
            self.first = false;
            write_indented(w, r, 8)?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        self.start(w)?;
        w.write_all(if self.first { b"]" } else { b"\n      ]" })?;
        let notifications: Vec<_> = tail
            .totals
            .errors
            .iter()
            .map(|e| {
                let mut loc =
                    json!({"physicalLocation": {"artifactLocation": {"uri": uri(&e.file)}}});
                if e.line > 0 {
                    if let Some(physical) = loc.get_mut("physicalLocation") {
                        set(
                            physical,
                            "region",
                            json!({"startLine": e.line, "startColumn": e.column.max(1)}),
                        );
                    }
                }
                json!({"level": "error", "message": {"text": e.message}, "locations": [loc]})
            })
            .collect();
        let invocations = json!([{
            "executionSuccessful": tail.totals.errors.is_empty(),
            "toolExecutionNotifications": notifications,
        }]);
        w.write_all(b",\n      \"invocations\": ")?;
        write_indented(w, &invocations, 6)?;
        w.write_all(b",\n      \"properties\": ")?;
        write_indented(w, &json!({"epoch_day": tail.epoch_day}), 6)?;
        w.write_all(b"\n    }\n  ]\n}\n")
    }
}

fn uri(file: &str) -> String {
    file.replace('\\', "/").replace(' ', "%20")
}
