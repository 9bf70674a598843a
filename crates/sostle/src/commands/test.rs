//! `sostle test`: the policy check of files, directories, charts and kustomizations (SPEC §13), with
//! conftest's flags and user policies, printed in every format.

use std::io::{self, Write};
use std::sync::Arc;

use sostle_core::Engine;

use crate::cli::{self, Format, TestArgs};
use crate::commands::{policy_oci, trial};
use crate::{check, conftest, exit, inputs, output, settings};

/// Runs `sostle test`.
pub fn run(mut args: TestArgs) -> anyhow::Result<u8> {
    conftest::apply_defaults(&mut args)?;
    let format = args.output.unwrap_or(Format::Human);
    // Policies from a registry are pulled into a directory that lives as long as the run.
    let pulled = tempfile::tempdir()?;
    let mut policy = Vec::with_capacity(args.policy.len());
    for (i, p) in std::mem::take(&mut args.policy).into_iter().enumerate() {
        let text = p.to_string_lossy();
        if text.starts_with("oci://") {
            let dir = pulled.path().join(i.to_string());
            let got = policy_oci::fetch(&text, &dir, &args.registry, &args.policy_key)
                .map_err(|e| anyhow::anyhow!("--policy {text}: {e:#}"))?;
            // Data layers load as `-d` on the data directory that was pushed loaded them.
            args.data.extend(got.data_root);
            policy.push(dir);
        } else {
            policy.push(p);
        }
    }
    args.policy = policy;
    let settings::Settings {
        config,
        now,
        token_secret,
    } = settings::Settings::resolve(&args.common)?;
    let layer = args.sostle_layer;
    let images = if args.verify_images {
        Some(Arc::new(check::ImageVerifier::new(&config.images)?))
    } else {
        None
    };
    let requester = match &args.as_subject {
        Some(subject) => Some(
            sostle_core::config::Requester::from_subject(subject, args.as_group.clone())
                .map_err(|m| anyhow::anyhow!("--as: {m}"))?,
        ),
        None => None,
    };
    let settings = check::TestSettings {
        requester,
        combine: args.combine,
        json_only: args.parser == Some(cli::InputParser::Json),
        images,
        paths: args.paths,
        layer,
        now,
        token_secret,
        ledger: trial::test_ledger(&args.ledger, &config)?,
        user: if args.policy.is_empty() {
            None
        } else {
            Some(Arc::new(sostle_rego::RegoSource::new(
                sostle_rego::UserPolicies::load(
                    &args.policy,
                    &args.data,
                    &args.namespace,
                    args.all_namespaces,
                    std::time::Duration::from_millis(args.rego_timeout_ms),
                    args.strict,
                )
                .map_err(|e| anyhow::anyhow!("--policy: {e}"))?,
            )))
        },
    };
    let engine = Engine::new(Arc::new(config));
    let mut errors = Vec::new();
    let walk = inputs::WalkOptions {
        hidden: args.hidden,
        no_ignore: args.no_ignore,
        exclude: args.exclude.clone(),
        ignore: match &args.ignore {
            Some(r) => Some(
                regex::Regex::new(r)
                    .map_err(|e| anyhow::anyhow!("--ignore {r}: not a regex: {e}"))?,
            ),
            None => None,
        },
    };
    let mut collected = inputs::collect(&settings.paths, &walk, &mut errors);
    let mut sources = std::mem::take(&mut collected.sources);
    let mut charts = Vec::new();
    for chart in &collected.charts {
        let path = chart.display().to_string();
        let mut rendered = false;
        if args.render_charts {
            if !inputs::on_path("helm") {
                errors.push(check::RunError {
                    file: path.clone(),
                    line: 0,
                    column: 0,
                    message: "--render-charts: helm is not on PATH".into(),
                });
            } else {
                match inputs::render_chart(chart) {
                    Ok((bytes, origins)) => {
                        sources.push(check::Source::Rendered {
                            name: format!("helm template {path}"),
                            bytes: Arc::new(bytes),
                            origins: Arc::new(origins),
                        });
                        rendered = true;
                    }
                    Err(m) => errors.push(check::RunError {
                        file: path.clone(),
                        line: 0,
                        column: 0,
                        message: m,
                    }),
                }
            }
        }
        charts.push(check::Chart { path, rendered });
    }
    for dir in &args.kustomize {
        let shown = dir.display().to_string();
        match inputs::render_kustomize(dir) {
            Ok((bytes, origins)) => sources.push(check::Source::Rendered {
                name: format!("kustomize build {shown}"),
                bytes: Arc::new(bytes),
                origins: Arc::new(origins),
            }),
            Err(m) => errors.push(check::RunError {
                file: shown,
                line: 0,
                column: 0,
                message: format!("--kustomize: {m}"),
            }),
        }
    }
    let stdout = io::stdout();
    // --quiet (conftest's): nothing at all when the run passes, everything when it does not —
    // so the output is held until the exit status is known.
    let mut held: Vec<u8> = Vec::new();
    let mut direct = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let w: &mut dyn Write = if args.quiet { &mut held } else { &mut direct };
    let color = settings::color(args.no_color);
    let conftest_meta = conftest::Meta::new(
        settings
            .user
            .as_deref()
            .map(sostle_rego::RegoSource::policies),
        args.suppress_exceptions,
        color,
    );
    let opts = output::PrintOptions {
        color,
        now_seconds: now.as_second(),
        verbose: args.verbose,
    };
    let epoch_day = engine.epoch_day(now);
    let mut printer = output::printer(format, opts, engine.config(), epoch_day, conftest_meta)?;
    // Results are printed as files complete, in input order, and dropped.
    let mut totals = check::run_with(&engine, &settings, &sources, errors, |resources| {
        printer.file(w, &resources)
    })?;
    totals.summary.ignored = collected.ignored.len();
    printer.finish(
        w,
        &output::Tail {
            epoch_day,
            totals: &totals,
            charts: &charts,
            ignored: &collected.ignored,
        },
    )?;
    w.flush()?;
    {
        let mut e = io::stderr().lock();
        for c in &charts {
            writeln!(e, "note: {}", c.note())?;
        }
    }
    let mut code = totals.exit_code(args.fail_on_warn);
    if args.quiet && code != exit::OK {
        direct.write_all(&held)?;
        direct.flush()?;
    }
    if args.no_fail && code != exit::ERROR {
        code = exit::OK;
    }
    if format != Format::Human && !collected.ignored.is_empty() {
        let mut e = io::stderr().lock();
        for ig in &collected.ignored {
            writeln!(
                e,
                "ignored: {}: holds Kubernetes objects but is left out by {}",
                ig.file, ig.rule
            )?;
        }
    }
    if format != Format::Human && !totals.errors.is_empty() {
        // Machine formats carry the errors; say so on stderr too so a person sees them.
        let mut e = io::stderr().lock();
        for err in &totals.errors {
            writeln!(
                e,
                "error: {}:{}:{}: {}",
                err.file, err.line, err.column, err.message
            )?;
        }
    }
    Ok(code)
}
