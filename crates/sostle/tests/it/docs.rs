//! docs/commands.md is generated from the binary's own `--help` text, and this test keeps it
//! true: it fails when the file and the help differ. Regenerate with
//! `SOSTLE_UPDATE_DOCS=1 cargo test -p sostle --test it docs`.

use crate::{root, sostle};

const COMMANDS: &[&[&str]] = &[
    &[],
    &["test"],
    &["exempt"],
    &["exempt", "new"],
    &["exempt", "check"],
    &["exempt", "list"],
    &["exempt", "hash"],
    &["exempt", "witness"],
    &["trial"],
    &["trial", "charge"],
    &["trial", "burst"],
    &["trial", "spiral"],
    &["trial", "verdict"],
    &["trial", "show"],
    &["trial", "list"],
    &["lock"],
    &["promote"],
    &["key", "generate"],
    &["key", "import"],
    &["sign"],
    &["verify-image"],
    &["trendal"],
    &["trendal", "spawn"],
    &["trendal", "list"],
    &["trendal", "warm"],
    &["trendal", "reap"],
    &["verify"],
    &["policy"],
    &["policy", "export"],
    &["bootstrap"],
    &["webhook"],
    &["token"],
    &["token", "issue"],
    &["token", "verify"],
    &["approve"],
    &["bench"],
];

fn generate() -> String {
    let mut out = String::from(
        "# Command reference\n\nGenerated from `sostle … --help` by `crates/sostle/tests/it/docs.rs`; a test fails when\nthis file and the binary disagree. Regenerate with\n`SOSTLE_UPDATE_DOCS=1 cargo test -p sostle --test it docs`.\n",
    );
    for cmd in COMMANDS {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push("--help");
        let r = sostle(&args);
        assert_eq!(r.code, 0, "{args:?}");
        let title = if cmd.is_empty() {
            "sostle".to_string()
        } else {
            format!("sostle {}", cmd.join(" "))
        };
        out.push_str(&format!("\n## `{title}`\n\n```text\n{}```\n", r.stdout));
    }
    out
}

#[test]
fn commands_doc_is_current() {
    let path = root().join("docs/commands.md");
    let want = generate();
    if std::env::var_os("SOSTLE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "docs/commands.md is stale: regenerate with SOSTLE_UPDATE_DOCS=1 cargo test -p sostle --test it docs");
}
