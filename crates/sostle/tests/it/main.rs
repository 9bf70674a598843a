//! Integration tests of the `sostle` binary: every output format and exit code as snapshots,
//! bad input, config errors, tokens, and the whole corpus.

// A failing test is meant to stop: the harnesses and helpers unwrap, index and panic freely.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

mod approvals;
mod bad_input;
mod bootstrap;
mod cluster;
mod conftest;
mod control_plane;
mod corpus;
mod docs;
mod exempt;
mod formats;
mod kubectl_yaml;
mod ledger;
mod locks;
pub use sostle_test_support::postgres as pg_harness;
mod realrepo;
pub use sostle_test_support::registry as registry_harness;
mod rego;
mod signatures;
mod token;
mod trendal;
mod trial;
mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root (tests run with it as the working directory, so paths are relative).
/// Waits for a child that prints JSON; asserts it succeeded (`what` and its stderr otherwise).
pub fn json_of(child: std::process::Child, what: &str) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Output of one run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code, stdout and stderr in one text, for snapshots.
    pub fn snapshot(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs sostle in `dir` with `args`, extra environment and optional stdin; no colour and no
/// ambient config, clock, ledger or token secret unless `env` sets them. Keys are encrypted
/// with the empty password (COSIGN_PASSWORD="", which cosign allows) unless `env` gives one.
pub fn sostle_with(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sostle"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COSIGN_PASSWORD", "");
    for var in [
        "SOSTLE_CONFIG",
        "SOSTLE_NOW",
        "SOSTLE_TOKEN_SECRET",
        "SOSTLE_LEDGER",
        "PGPASSWORD",
        "PGPASSFILE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, stdin)
}

/// Runs `cmd` with `stdin` (none: an empty one) and captures what it printed.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs sostle in `dir` with `args` and optional stdin.
pub fn sostle_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    sostle_with(dir, args, &[], stdin)
}

/// Runs sostle at the repository root.
pub fn sostle(args: &[&str]) -> Run {
    sostle_in(&root(), args, None)
}
