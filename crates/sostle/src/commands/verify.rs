//! `sostle verify DIR`: policy unit tests as data (the cases of `sostle-check`), and the user
//! policies' Rego unit tests, printed by `sostle-printer`.

use std::sync::Arc;

use anyhow::anyhow;
use sostle_check::cases::{self, Verdict};
use sostle_core::{Engine, PolicySource};

use crate::cli::VerifyArgs;
use crate::output::verify::{self as printer, VerifyRun};

/// Reads and judges every case under `dirs`; an unreadable case is reported and counted.
fn judge_all(
    args: &VerifyArgs,
    engine: &Engine,
    now: jiff::Timestamp,
    sources: &[&dyn PolicySource],
) -> anyhow::Result<(Vec<Verdict>, usize)> {
    let mut verdicts = Vec::new();
    let mut load_errors = 0;
    let mut own: std::collections::HashMap<std::path::PathBuf, Engine> = Default::default();
    for p in cases::case_files(&args.dirs)? {
        let case = match cases::read_case(&p, now) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                load_errors += 1;
                continue;
            }
        };
        // A case's own config is read and built once, however many cases name it.
        let engine = match &case.config {
            Some(c) => match own.entry(c.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => &*e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    match crate::settings::config(Some(c)) {
                        Ok(cfg) => &*v.insert(Engine::new(Arc::new(cfg))),
                        Err(e) => {
                            eprintln!("error: {}: config: {e:#}", case.file);
                            load_errors += 1;
                            continue;
                        }
                    }
                }
            },
            None => engine,
        };
        verdicts.push(cases::judge(engine, case, sources));
    }
    Ok((verdicts, load_errors))
}

/// Runs `sostle verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<u8> {
    let crate::settings::Settings { config, now, .. } =
        crate::settings::Settings::resolve(&args.common)?;
    let engine = Engine::new(Arc::new(config));
    let timeout = std::time::Duration::from_secs(2);
    let user = crate::settings::test::user_policies(&args.rego, timeout)?;
    let sources: Vec<&dyn PolicySource> = user.iter().map(|u| u as &dyn PolicySource).collect();
    let (verdicts, load_errors) = judge_all(&args, &engine, now, &sources)?;
    let tests = if args.rego.policy.is_empty() {
        Vec::new()
    } else {
        sostle_rego::run_tests(
            &args.rego.policy,
            &args.rego.data,
            std::time::Duration::from_secs(10),
            args.rego.strict,
        )
        .map_err(|e| anyhow!("--policy: {e}"))?
    };
    let mut run = VerifyRun {
        verdicts: &verdicts,
        tests: &tests,
        load_errors,
        dirs_given: !args.dirs.is_empty(),
        policies_given: !args.rego.policy.is_empty(),
        summary: "",
    };
    let failed_tests = run.failed_tests();
    // conftest verify's summary line (every unit test is a test; none warns, none is excepted).
    let summary = format!(
        "{}, 0 skipped",
        crate::conftest::summary(tests.len() - failed_tests, 0, failed_tests, 0)
    );
    run.summary = &summary;
    printer::print(&mut std::io::stdout().lock(), args.output, &run)?;
    Ok(if load_errors > 0 {
        crate::exit::ERROR
    } else if verdicts.iter().all(|v| v.ok) && failed_tests == 0 {
        crate::exit::OK
    } else {
        crate::exit::FAIL
    })
}
