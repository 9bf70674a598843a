//! `sostle test`: the policy check of files, directories, charts and kustomizations (SPEC §13), with
//! conftest's flags and user policies, printed in every format.

use std::io::{self, Write};

use sostle_core::Engine;

use crate::cli::{Format, TestArgs};
use crate::settings::test::TestRun;
use crate::{check, conftest, exit, inputs, output, progress, settings};

/// Runs `sostle test`.
pub fn run(mut args: TestArgs) -> anyhow::Result<u8> {
    let TestRun {
        check: settings,
        config,
        format,
        walk,
        render,
        pulled: _pulled,
    } = TestRun::resolve(&mut args)?;
    let now = settings.now;
    let engine = Engine::new(std::sync::Arc::new(config));
    let mut gathered = inputs::gather(&settings.paths, &walk, &render);
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
    // Started before the run's label pass: on a large input reading every file is the wait.
    let progress = progress::Progress::start(gathered.sources.len());
    // Results are printed as files complete, in input order, and dropped.
    let (sources, errors) = (&gathered.sources, std::mem::take(&mut gathered.errors));
    let tick = || progress.tick();
    let mut totals = check::run_with(&engine, &settings, sources, errors, &tick, |resources| {
        printer.file(w, &resources)
    })?;
    drop(progress);
    totals.summary.ignored = gathered.ignored.len();
    printer.finish(
        w,
        &output::Tail {
            epoch_day,
            totals: &totals,
            charts: &gathered.charts,
            ignored: &gathered.ignored,
        },
    )?;
    w.flush()?;
    let mut code = exit::of_test(&totals.summary, totals.expiring, args.fail_on_warn);
    if args.quiet && code != exit::OK {
        direct.write_all(&held)?;
        direct.flush()?;
    }
    if args.no_fail && code != exit::ERROR {
        code = exit::OK;
    }
    notes(format, &gathered, &totals)?;
    Ok(code)
}

/// On stderr: the charts met, and for machine formats (which carry them in their output) the
/// ignored files and run errors again, so a person sees them.
fn notes(format: Format, gathered: &inputs::Gathered, totals: &check::Totals) -> io::Result<()> {
    let mut e = io::stderr().lock();
    for c in &gathered.charts {
        writeln!(e, "note: {}", c.note())?;
    }
    if format == Format::Human {
        return Ok(());
    }
    for ig in &gathered.ignored {
        writeln!(
            e,
            "ignored: {}: holds Kubernetes objects but is left out by {}",
            ig.file, ig.rule
        )?;
    }
    for err in &totals.errors {
        writeln!(
            e,
            "error: {}:{}:{}: {}",
            err.file, err.line, err.column, err.message
        )?;
    }
    Ok(())
}
