//! The one `sostle` binary: parse flags, build settings, call the core, print. Kept thin — the
//! decisions live in `sostle-core`.

// The binary is the edge where output goes: the libraries deny printing, it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod exit;
mod progress;
mod settings;

// The libraries under the names the commands use.
use sostle_check as check;
use sostle_check::inputs;
use sostle_cli as cli;
use sostle_printer as output;
use sostle_printer::conftest;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc instead of the system allocator: the engine builds a tree of small nodes per
/// document and the webhook one per request, and glibc's malloc/free was a third of the
/// webhook's CPU time (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Test(args) => commands::test::run(args),
        Command::Exempt(e) => commands::exempt::run(e),
        Command::Trial(t) => commands::trial::run(t),
        Command::Lock {
            trial,
            key,
            out,
            attach,
            registry,
            rekor,
            common,
            ledger,
        } => commands::trial::lock(
            &trial,
            &key,
            &commands::trial::LockOutputs {
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
        } => commands::trial::promote(&paths, to, &profile, output, &common, &ledger),
        Command::Key(k) => commands::sign::key(k),
        Command::Sign(a) => commands::sign::sign(&a),
        Command::VerifyImage(a) => commands::sign::verify_image(&a),
        Command::Webhook(w) => commands::webhook::run(w),
        Command::Bootstrap(b) => commands::bootstrap::run(b),
        Command::Trendal(t) => commands::trendal::run(t),
        Command::Ledger(l) => commands::ledger::run(l),
        Command::Policy(p) => commands::policy::run(p),
        Command::Verify(v) => commands::verify::run(v),
        Command::Token(t) => commands::token::run(t),
        Command::Approve(a) => commands::approve::run(&a),
        Command::Bench(b) => commands::bench::run(&b),
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
