//! The one `sostle` binary: parse flags, build settings, call the core, print. Kept thin — the
//! decisions live in `sostle-core`.

// The binary is the edge where output goes: the libraries deny printing, it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bootstrap;
mod check;
mod cli;
mod conftest;
mod exempt;
mod exit;
mod inputs;
mod ledger;
mod output;
mod policy_oci;
mod settings;
mod sign;
mod trendal;
mod trial;
mod verify;
mod webhook;

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

/// mimalloc instead of the system allocator: the engine builds a tree of small nodes per
/// document and the webhook one per request, and glibc's malloc/free was a third of the
/// webhook's CPU time (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use sostle_core::{token, Engine};

use crate::cli::{Cli, Command, Format, TestArgs, TokenCommand};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; a bad flag is a run error (exit 3).
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(exit::ERROR),
            };
        }
    };
    let result = match cli.command {
        Command::Test(args) => cmd_test(args),
        Command::Exempt(e) => exempt::run(e),
        Command::Trial(t) => trial::run(t),
        Command::Lock {
            trial,
            key,
            out,
            attach,
            registry,
            rekor,
            common,
            ledger,
        } => trial::lock(
            &trial,
            &key,
            &trial::LockOutputs {
                out_dir: out.as_deref(),
                attach: attach.then_some(&registry),
                rekor: &rekor,
                timeout: registry.registry_timeout,
            },
            &common,
            &ledger,
        ),
        Command::Promote {
            paths,
            to,
            profile,
            output,
            common,
            ledger,
        } => trial::promote(&paths, to, &profile, output, &common, &ledger),
        Command::Key(k) => sign::key(k),
        Command::Sign(a) => sign::sign(&a),
        Command::VerifyImage(a) => sign::verify_image(&a),
        Command::Webhook(w) => webhook::run(w),
        Command::Bootstrap(b) => bootstrap::run(b),
        Command::Trendal(t) => trendal::run(t),
        Command::Ledger(l) => ledger::run(l),
        Command::Policy(p) => policy_export(p),
        Command::Verify(v) => verify::run(v),
        Command::Token(t) => cmd_token(t),
        Command::Bench(b) => bench::run(&b),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A closed pipe (`sostle test … | head`) is not an error worth a message, wherever
            // in the chain it is (serde_json and context wrap the io::Error).
            let broken_pipe = e.chain().any(|cause| {
                cause
                    .downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
                    || cause
                        .downcast_ref::<serde_json::Error>()
                        .and_then(serde_json::Error::io_error_kind)
                        == Some(io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn cmd_test(mut args: TestArgs) -> anyhow::Result<u8> {
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
    let settings = check::TestSettings {
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
            Some(
                sostle_rego::UserPolicies::load(
                    &args.policy,
                    &args.data,
                    &args.namespace,
                    args.all_namespaces,
                    std::time::Duration::from_millis(args.rego_timeout_ms),
                    args.strict,
                )
                .map_err(|e| anyhow::anyhow!("--policy: {e}"))?,
            )
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
    let collected = inputs::collect(&settings.paths, &walk, &mut errors);
    let mut sources = collected.sources;
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
    let conftest_meta =
        conftest::Meta::new(settings.user.as_ref(), args.suppress_exceptions, color);
    let opts = output::PrintOptions {
        color,
        now_seconds: now.as_second(),
        verbose: args.verbose,
    };
    let epoch_day = engine.epoch_day(now);
    let mut printer = output::printer(format, opts, engine.config(), epoch_day, conftest_meta)?;
    // Results are printed as files complete, in input order, and dropped.
    let totals = check::run_with(&engine, &settings, &sources, errors, |resources| {
        printer.file(w, &resources)
    })?;
    printer.finish(
        w,
        &output::Tail {
            epoch_day,
            totals: &totals,
            charts: &charts,
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

fn cmd_token(t: TokenCommand) -> anyhow::Result<u8> {
    match t {
        TokenCommand::Issue {
            crew,
            layer,
            expires,
            common,
        } => {
            let settings::Settings {
                config,
                now,
                token_secret,
            } = settings::Settings::resolve(&common)?;
            let member = config
                .crew_member(&crew)
                .ok_or_else(|| anyhow::anyhow!("--crew: `{crew}` is not registered crew"))?;
            let expires = sostle_core::epoch::parse_rfc3339(&expires)
                .map_err(|m| anyhow::anyhow!("--expires: {m}"))?;
            if expires <= now {
                anyhow::bail!("--expires: {expires} is not in the future");
            }
            let secret = token_secret.ok_or_else(|| {
                anyhow::anyhow!(
                    "no token secret: set SOSTLE_TOKEN_SECRET or tokens.secret in the config"
                )
            })?;
            let tok = token::issue(&secret, &member.name, layer, expires.as_second());
            println!("{tok}");
            Ok(exit::OK)
        }
        TokenCommand::Verify {
            token: tok,
            crew,
            layer,
            common,
        } => {
            let settings::Settings {
                config,
                now,
                token_secret,
            } = settings::Settings::resolve(&common)?;
            let member = config
                .crew_member(&crew)
                .ok_or_else(|| anyhow::anyhow!("--crew: `{crew}` is not registered crew"))?;
            let secret = token_secret.ok_or_else(|| {
                anyhow::anyhow!(
                    "no token secret: set SOSTLE_TOKEN_SECRET or tokens.secret in the config"
                )
            })?;
            let names = config.crew.iter().map(|c| c.name.as_str());
            match token::verify(&secret, &tok, &member.name, layer, now.as_second(), names) {
                Ok(()) => {
                    println!("valid: {} at {layer}", member.name);
                    Ok(exit::OK)
                }
                Err(e) => {
                    println!("refused: {e}");
                    Ok(exit::FAIL)
                }
            }
        }
    }
}

/// Writes the Rego suite, `config.rego` and `data.json` into `dir`.
pub(crate) fn write_policy_dir(
    dir: &std::path::Path,
    config: &sostle_core::Config,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in sostle_rego::FILES {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        written.push(p);
    }
    let p = dir.join("config.rego");
    std::fs::write(&p, sostle_rego::config_rego(config))?;
    written.push(p);
    let p = dir.join("data.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&sostle_rego::data_json(config))? + "\n",
    )?;
    written.push(p);
    Ok(written)
}

fn policy_export(cmd: cli::PolicyCommand) -> anyhow::Result<u8> {
    match cmd {
        cli::PolicyCommand::Export { out, config } => {
            let config = settings::config(config.as_deref())?;
            for p in write_policy_dir(&out, &config)? {
                println!("{}", p.display());
            }
            Ok(exit::OK)
        }
        cli::PolicyCommand::Push {
            dir,
            reference,
            data,
            registry,
        } => policy_oci::push(&dir, &reference, data.as_deref(), &registry),
        cli::PolicyCommand::Pull {
            reference,
            dir,
            policy_key,
            registry,
        } => policy_oci::pull(&reference, &dir, &registry, &policy_key),
    }
}
