//! `--output json`: the `sostle/v1` report of SPEC §13, written as it goes — `results`
//! streamed, then `errors`, `skipped`, `charts` and `summary`.

use std::io::{self, Write};

use sostle_check::Located;

use crate::{Printer, Tail};
use serde::Serialize;
use sostle_core::Outcome;

use crate::write_indented;

#[derive(Serialize)]
struct JsonResource<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    file: &'a str,
    /// For rendered input: the file the document came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    line: u32,
    document: usize,
    resource: JsonResource<'a>,
    layer: &'static str,
    policy: &'a str,
    outcome: Outcome,
    violations: Vec<JsonViolation<'a>>,
    exemption: Option<&'a sostle_core::exemption::Judgement>,
}

#[derive(Serialize)]
struct JsonViolation<'a> {
    container: Option<&'a str>,
    path: &'a str,
    line: u32,
    column: u32,
    message: &'a str,
    fix: &'a str,
}

#[derive(Serialize)]
struct JsonError<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    message: &'a str,
}

fn resource_json(l: &Located) -> JsonResource<'_> {
    let r = &l.report.resource;
    JsonResource {
        api_version: &r.api_version,
        kind: &r.kind,
        namespace: r.namespace.as_deref(),
        name: &r.name,
    }
}

/// The results of some resources as §13 JSON result objects.
pub fn json_results(resources: &[Located]) -> serde_json::Value {
    let mut results = Vec::with_capacity(resources.len() * 11);
    push_results(resources, &mut results);
    serde_json::to_value(&results).unwrap_or_default()
}

fn push_results<'a>(resources: &'a [Located], results: &mut Vec<JsonResult<'a>>) {
    for l in resources {
        for r in &l.report.results {
            results.push(JsonResult {
                file: &l.file,
                source: l.origin.as_deref(),
                line: l.report.pos.line,
                document: l.document,
                resource: resource_json(l),
                layer: l.report.layer.as_str(),
                policy: &r.policy,
                outcome: r.outcome,
                violations: r
                    .violations
                    .iter()
                    .map(|v| JsonViolation {
                        container: v.container.as_deref(),
                        path: &v.path,
                        line: v.pos.line,
                        column: v.pos.col,
                        message: &v.message,
                        fix: &v.fix,
                    })
                    .collect(),
                exemption: r.exemption.as_deref(),
            });
        }
    }
}

pub(crate) struct Json {
    epoch_day: i64,
    started: bool,
    first: bool,
}

impl Json {
    pub(crate) fn new(epoch_day: i64) -> Json {
        Json {
            epoch_day,
            started: false,
            first: true,
        }
    }

    fn start(&mut self, w: &mut dyn Write) -> io::Result<()> {
        if !self.started {
            self.started = true;
            write!(
                w,
                "{{\n  \"report\": \"sostle/v1\",\n  \"epoch_day\": {},\n  \"results\": [",
                self.epoch_day
            )?;
        }
        Ok(())
    }
}

impl Printer for Json {
    fn file(&mut self, w: &mut dyn Write, resources: &[Located]) -> io::Result<()> {
        self.start(w)?;
        let mut results = Vec::new();
        push_results(resources, &mut results);
        for r in &results {
            w.write_all(if self.first { b"\n    " } else { b",\n    " })?;
            self.first = false;
            write_indented(w, r, 4)?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, tail: &Tail<'_>) -> io::Result<()> {
        self.start(w)?;
        w.write_all(if self.first { b"]" } else { b"\n  ]" })?;
        let errors: Vec<JsonError<'_>> = tail
            .totals
            .errors
            .iter()
            .map(|e| JsonError {
                file: &e.file,
                line: e.line,
                column: e.column,
                message: &e.message,
            })
            .collect();
        w.write_all(b",\n  \"errors\": ")?;
        write_indented(w, &errors, 2)?;
        w.write_all(b",\n  \"skipped\": ")?;
        write_indented(w, &tail.totals.skipped, 2)?;
        w.write_all(b",\n  \"charts\": ")?;
        write_indented(w, &tail.charts, 2)?;
        w.write_all(b",\n  \"ignored\": ")?;
        write_indented(w, &tail.ignored, 2)?;
        w.write_all(b",\n  \"summary\": ")?;
        write_indented(w, &tail.totals.summary, 2)?;
        w.write_all(b"\n}\n")
    }
}
