//! conftest compatibility of `sostle test`'s flags: `conftest.toml` in the working directory
//! (its keys are conftest's flag names; a flag given on the command line wins) and the default
//! `./policy` directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{Format, InputParser, TestArgs};

/// `conftest.toml` as conftest reads it: its keys are conftest's flag names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConftestToml {
    #[serde(default)]
    policy: Option<OneOrMany>,
    #[serde(default)]
    namespace: Option<OneOrMany>,
    #[serde(default)]
    data: Option<OneOrMany>,
    #[serde(default)]
    all_namespaces: bool,
    #[serde(default)]
    fail_on_warn: bool,
    #[serde(default)]
    no_fail: bool,
    #[serde(default)]
    no_color: bool,
    #[serde(default)]
    suppress_exceptions: bool,
    #[serde(default)]
    quiet: bool,
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    show_builtin_errors: bool,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    combine: bool,
    #[serde(default)]
    ignore: Option<String>,
    #[serde(default)]
    parser: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Applies `conftest.toml` from the working directory (when there is one) under the command
/// line — a flag given wins — and the default `./policy` directory.
pub fn apply_defaults(args: &mut TestArgs) -> anyhow::Result<()> {
    let file = Path::new("conftest.toml");
    if file.is_file() {
        let text = std::fs::read_to_string(file)?;
        let t: ConftestToml = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text.get(..s.start).map_or(0, |p| p.matches('\n').count()) + 1;
                    format!(":{line}")
                })
                .unwrap_or_default();
            anyhow::anyhow!("conftest.toml{at}: {}", e.message())
        })?;
        if args.rego.policy.is_empty() {
            if let Some(p) = t.policy {
                args.rego.policy = p.into_vec().into_iter().map(PathBuf::from).collect();
            }
        }
        if args.rego.namespace.is_empty() {
            if let Some(n) = t.namespace {
                args.rego.namespace = n.into_vec();
            }
        }
        if args.rego.data.is_empty() {
            if let Some(d) = t.data {
                args.rego.data = d.into_vec().into_iter().map(PathBuf::from).collect();
            }
        }
        args.rego.all_namespaces |= t.all_namespaces;
        args.fail_on_warn |= t.fail_on_warn;
        args.no_fail |= t.no_fail;
        args.no_color |= t.no_color;
        args.suppress_exceptions |= t.suppress_exceptions;
        args.quiet |= t.quiet;
        args.rego.strict |= t.strict || t.show_builtin_errors;
        args.combine |= t.combine;
        if args.ignore.is_none() {
            args.ignore = t.ignore;
        }
        if args.parser.is_none() {
            if let Some(p) = t.parser {
                args.parser = Some(
                    <InputParser as clap::ValueEnum>::from_str(&p, true).map_err(|_| {
                        anyhow::anyhow!("conftest.toml: parser `{p}`: sostle reads yaml and json")
                    })?,
                );
            }
        }
        if args.output.is_none() {
            if let Some(o) = t.output {
                args.output = Some(<Format as clap::ValueEnum>::from_str(&o, true).map_err(
                    |_| anyhow::anyhow!("conftest.toml: output `{o}` is not a format sostle knows"),
                )?);
            }
        }
    }
    if args.rego.policy.is_empty() {
        let dir = Path::new("policy");
        if dir.is_dir() && !is_sostle_suite(dir) {
            args.rego.policy.push(dir.to_path_buf());
        }
    }
    Ok(())
}

/// Whether `dir` holds sostle's own suite in Rego (this repository's `policy/`, or what `sostle
/// policy export` wrote): the native engine runs the suite already, so it is not loaded again as
/// user policies (every finding would be reported twice).
fn is_sostle_suite(dir: &Path) -> bool {
    let Some((_, ours)) = sostle_rego::FILES.iter().find(|(n, _)| *n == "suite.rego") else {
        return false;
    };
    std::fs::read_to_string(dir.join("suite.rego")).is_ok_and(|t| t == *ours)
}
