//! `sostle test DIR` on a whole repository as users keep it (issue #16): a copy of
//! `../shared/realrepos/podinfo` (Helm chart, kustomize bases and overlays, workflows, other
//! YAML) in a temporary directory. Its real findings exit 1, not 3; workflows, values files and
//! chart templates are not errors; ignore files and flags decide what is walked; the real
//! `helm` and `kustomize` (built by scripts/test.sh) render what sostle checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{sostle_in, sostle_with, Run};

/// A writable copy of the podinfo repository.
fn podinfo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy(
        &crate::root().join("../shared/realrepos/podinfo"),
        dir.path(),
    );
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
            let mut perm = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&target, perm).unwrap();
        }
    }
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.snapshot()))
}

fn files_of(v: &serde_json::Value) -> Vec<String> {
    let mut f: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap().to_string())
        .collect();
    f.dedup();
    f
}

fn skipped_files(v: &serde_json::Value) -> Vec<String> {
    v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap().to_string())
        .collect()
}

/// A peer built by scripts/test.sh; the test fails (never skips) without it.
fn peer(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is not on PATH: run the tests with scripts/test.sh, which builds it")
    })
}

#[test]
fn a_real_repository_exits_1_for_its_findings_not_3() {
    let repo = podinfo();
    let d = repo.path();
    let r = sostle_in(d, &["test", "--sostle-layer", "L3", "."], None);
    assert_eq!(r.code, 1, "{}", r.snapshot());
    let last = r.stdout.lines().last().unwrap();
    assert!(last.contains("; 0 errors"), "{last}");
    assert!(last.contains("files not Kubernetes (skipped)"), "{last}");
    assert!(
        r.stderr.contains("note: chart ./charts/podinfo: render it, e.g. helm template ./charts/podinfo | sostle test -"),
        "{}",
        r.stderr
    );
    // The findings are real, each with its source line and a caret under the column.
    assert!(
        r.stdout
            .contains("FAIL deny_no_readonly Deployment/backend [L3]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("      25 |       - name: backend\n         |         ^\n"),
        "{}",
        r.stdout
    );

    let v = json(&sostle_in(
        d,
        &["test", "--sostle-layer", "L3", "-o", "json", "."],
        None,
    ));
    assert_eq!(v["summary"]["errors"], 0, "{}", v["errors"]);
    let files = files_of(&v);
    assert!(
        files.iter().all(|f| !f.contains("/templates/")),
        "chart templates read: {files:?}"
    );
    assert!(
        files.iter().all(|f| !f.starts_with("./.github")),
        "hidden read: {files:?}"
    );
    let skipped = skipped_files(&v);
    for f in [
        "./charts/podinfo/values.yaml",
        "./charts/podinfo/Chart.yaml",
        "./otel/docker-compose.yaml",
    ] {
        assert!(
            skipped.contains(&f.to_string()),
            "{f} not skipped: {skipped:?}"
        );
    }
    assert!(v["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not a Kubernetes object"));
    assert_eq!(
        v["charts"],
        serde_json::json!([{"path": "./charts/podinfo", "rendered": false}])
    );
    // Workloads of the bases and the Deployment of kustomize/ are judged.
    for f in [
        "./deploy/bases/backend/deployment.yaml",
        "./kustomize/deployment.yaml",
    ] {
        assert!(files.contains(&f.to_string()), "{f} not judged: {files:?}");
    }

    // --hidden walks .github too: its workflows are skipped, not errors.
    let v = json(&sostle_in(
        d,
        &["test", "--hidden", "-o", "json", "."],
        None,
    ));
    assert_eq!(v["summary"]["errors"], 0, "{}", v["errors"]);
    assert!(skipped_files(&v).contains(&"./.github/workflows/test.yml".to_string()));
    // -v lists the skipped files.
    let r = sostle_in(d, &["test", "-v", "."], None);
    assert!(
        r.stdout.contains(
            "skipped: ./otel/docker-compose.yaml:1 (document 0): no kind: not a Kubernetes object"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn ignore_files_and_flags_decide_what_is_walked() {
    let repo = podinfo();
    let d = repo.path();
    let judged = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["test", "-o", "json"];
        a.extend(args);
        files_of(&json(&sostle_in(d, &a, None)))
    };
    let secure = "./deploy/secure/backend/deployment.yaml".to_string();
    let webapp = "./deploy/webapp/backend/deployment.yaml".to_string();
    assert!(judged(&["."]).contains(&secure));
    // .gitignore, inside a git repository (as ripgrep reads it).
    std::fs::write(d.join(".gitignore"), "deploy/secure/\n").unwrap();
    let st = Command::new("git")
        .args(["init", "-q", "."])
        .current_dir(d)
        .status()
        .unwrap();
    assert!(st.success());
    let files = judged(&["."]);
    assert!(
        !files.contains(&secure) && files.contains(&webapp),
        "{files:?}"
    );
    // --no-ignore reads it again.
    assert!(judged(&["--no-ignore", "."]).contains(&secure));
    // .sostleignore, and --exclude.
    std::fs::write(d.join("deploy/.sostleignore"), "webapp/\n").unwrap();
    assert!(!judged(&["."]).contains(&webapp));
    let files = judged(&["--no-ignore", "--exclude", "deploy/webapp/**", "."]);
    assert!(
        !files.contains(&webapp) && files.contains(&secure),
        "{files:?}"
    );
    // A file named on the command line is always read.
    let r = sostle_in(
        d,
        &[
            "test",
            "-o",
            "json",
            "deploy/secure/backend/deployment.yaml",
        ],
        None,
    );
    assert_eq!(
        files_of(&json(&r)),
        ["deploy/secure/backend/deployment.yaml"]
    );
}

/// #24 item 9: a change that adds an ignore rule (or a hidden file) does not keep a privileged
/// Pod out of the gate's sight: the file is counted as `ignored` and named with its rule, in JSON,
/// in the human output, and `--no-ignore --hidden` judges it (kubectl apply -f dir applies it).
#[test]
fn ignored_files_holding_kubernetes_objects_are_counted_and_named_with_their_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: evil\n  namespace: sostle-l0-public\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext:\n      privileged: true\n";
    std::fs::create_dir_all(d.join("deploy/.hidden")).unwrap();
    std::fs::write(
        d.join("deploy/ok.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n",
    )
    .unwrap();
    std::fs::write(d.join("deploy/evil.yaml"), pod).unwrap();
    std::fs::write(d.join("deploy/.hidden/evil.yaml"), pod).unwrap();
    // Not Kubernetes: left out and not worth naming.
    std::fs::write(d.join("deploy/notes.yaml"), "title: notes\n").unwrap();
    std::fs::write(
        d.join(".sostleignore"),
        "# keep the noise out\nnotes.yaml\ndeploy/evil.yaml\n",
    )
    .unwrap();
    let r = sostle_in(d, &["test", "-o", "json", "."], None);
    let v = json(&r);
    // The walk itself is unchanged: nothing ignored is judged…
    assert_eq!(files_of(&v), ["./deploy/ok.yaml"], "{}", r.snapshot());
    // …but both files are named, with the rule that left each out.
    assert_eq!(v["summary"]["ignored"], 2, "{}", r.snapshot());
    let ignored: Vec<(String, String)> = v["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["file"].as_str().unwrap().to_string(),
                i["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ignored,
        [
            (
                "./deploy/.hidden/evil.yaml".to_string(),
                "hidden".to_string()
            ),
            (
                "./deploy/evil.yaml".to_string(),
                "./.sostleignore:3".to_string()
            ),
        ]
    );
    // The human output says so on its own lines and in the summary.
    let r = sostle_in(d, &["test", "."], None);
    assert!(
        r.stdout.contains("ignored: ./deploy/evil.yaml: holds Kubernetes objects but is left out by ./.sostleignore:3"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2 files of Kubernetes objects ignored"),
        "{}",
        r.stdout
    );
    // --no-ignore --hidden judges them: the privileged Pods fail.
    let r = sostle_in(
        d,
        &["test", "-o", "json", "--no-ignore", "--hidden", "."],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.snapshot());
    let v = json(&r);
    assert_eq!(v["summary"]["ignored"], 0);
    assert_eq!(files_of(&v).len(), 3, "{}", r.snapshot());
}

#[test]
fn templates_are_skipped_and_broken_kubernetes_still_fails() {
    let repo = podinfo();
    let d = repo.path();
    // A chart template named on the command line: read, found to be a template, skipped.
    let r = sostle_in(
        d,
        &[
            "test",
            "-o",
            "json",
            "charts/podinfo/templates/service.yaml",
        ],
        None,
    );
    let v = json(&r);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(v["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("template"));
    // A broken Kubernetes file is still an error (exit 3), with its line and column.
    std::fs::write(
        d.join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  name: y\n",
    )
    .unwrap();
    let r = sostle_in(d, &["test", "broken.yaml"], None);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(r.stdout.contains("broken.yaml:5:3"), "{}", r.stdout);
    // So is a file that does not parse and is not a template.
    std::fs::write(d.join("bad.yaml"), "kind: Pod\n  - x: [\n").unwrap();
    assert_eq!(sostle_in(d, &["test", "bad.yaml"], None).code, 3);
}

#[test]
fn helm_charts_render_with_the_real_helm() {
    let helm = peer("helm");
    let repo = podinfo();
    let d = repo.path();
    let r = sostle_in(
        d,
        &[
            "test",
            "--render-charts",
            "--sostle-layer",
            "L3",
            "-o",
            "json",
            "charts",
        ],
        None,
    );
    let v = json(&r);
    assert_eq!(v["summary"]["errors"], 0, "{}", v["errors"]);
    assert_eq!(v["charts"][0]["rendered"], true);
    assert!(
        r.stderr
            .contains("rendered with `helm template charts/podinfo`"),
        "{}",
        r.stderr
    );
    // Findings name the template (helm's `# Source:`) and the line in the rendered output.
    let rendered: Vec<&serde_json::Value> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["file"] == "helm template charts/podinfo")
        .collect();
    assert!(!rendered.is_empty());
    let deployment = rendered
        .iter()
        .find(|r| r["resource"]["kind"] == "Deployment" && r["policy"] == "deny_no_readonly")
        .unwrap();
    assert_eq!(
        deployment["source"],
        "charts/podinfo/templates/deployment.yaml"
    );
    // That line of `helm template`'s own output is the Deployment's first line.
    let out = Command::new(&helm)
        .args(["template", "charts/podinfo"])
        .current_dir(d)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = deployment["line"].as_u64().unwrap() as usize;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[line - 1], "apiVersion: apps/v1", "line {line}");
    assert!(lines[..line - 1]
        .iter()
        .rev()
        .find(|l| l.starts_with("# Source:"))
        .unwrap()
        .ends_with("templates/deployment.yaml"));
    // The same objects as `helm template … | sostle test -` (the chart's test pods get random
    // name suffixes on every render, so objects are compared by kind, policy and outcome).
    let piped = sostle_with(
        d,
        &["test", "--sostle-layer", "L3", "-o", "json", "-"],
        &[],
        Some(text.as_bytes()),
    );
    let pv = json(&piped);
    let ids = |v: &serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {}", r["resource"]["kind"], r["policy"], r["outcome"]))
            .collect();
        ids.sort();
        ids
    };
    let only_rendered = serde_json::json!({"results": rendered});
    assert_eq!(ids(&only_rendered), ids(&pv));
}

#[test]
fn kustomize_overlays_render_with_the_real_kustomize() {
    let kustomize = peer("kustomize");
    let repo = podinfo();
    let d = repo.path();
    let overlay = "deploy/overlays/production";
    // The copy holds only YAML/JSON and a few other text files (SOURCES.md): the scripts and
    // configs the bases' configMapGenerators read are not in it, so stand-ins are written.
    for base in std::fs::read_dir(d.join("deploy/bases")).unwrap() {
        let base = base.unwrap().path();
        let k = std::fs::read_to_string(base.join("kustomization.yaml")).unwrap();
        for line in k.lines() {
            let item = line.trim().trim_start_matches("- ");
            if item.ends_with(".sh") || item.ends_with(".conf") {
                let f = base.join(item);
                std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                std::fs::write(f, "# stand-in\n").unwrap();
            }
        }
    }
    let r = sostle_in(
        d,
        &[
            "test",
            "--sostle-layer",
            "L3",
            "-o",
            "json",
            "--kustomize",
            overlay,
        ],
        None,
    );
    let v = json(&r);
    assert_eq!(v["summary"]["errors"], 0, "{}", r.snapshot());
    let out = Command::new(&kustomize)
        .args(["build", overlay])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let piped = json(&sostle_with(
        d,
        &["test", "--sostle-layer", "L3", "-o", "json", "-"],
        &[],
        Some(text.as_bytes()),
    ));
    // The same workloads as the rendered YAML, each named by the overlay…
    let resources = |v: &serde_json::Value| -> Vec<String> {
        let mut r: Vec<String> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resource"].to_string())
            .collect();
        r.sort();
        r.dedup();
        r
    };
    assert_eq!(resources(&v), resources(&piped));
    assert!(resources(&v).iter().any(|r| r.contains("\"Deployment\"")));
    let results = v["results"].as_array().unwrap();
    assert!(results
        .iter()
        .all(|r| r["file"] == format!("kustomize build {overlay}")));
    // …and by the base file it came from.
    let frontend = results
        .iter()
        .find(|r| {
            r["resource"]["kind"] == "Deployment"
                && r["resource"]["name"].as_str().unwrap().contains("frontend")
        })
        .unwrap();
    assert_eq!(
        frontend["source"], "deploy/bases/frontend/deployment.yaml",
        "{frontend}"
    );
    // Plain `sostle test` on the overlay's directory checks its files as they are.
    let plain = json(&sostle_in(d, &["test", "-o", "json", overlay], None));
    assert!(files_of(&plain).iter().all(|f| f.starts_with(overlay)));
}

#[test]
fn the_human_output_on_a_real_repository() {
    // What a person sees at the root of a checkout: findings with their source lines and carets,
    // the summary with the skipped count, and the chart note.
    let repo = podinfo();
    let r = sostle_in(
        repo.path(),
        &[
            "test",
            "--sostle-layer",
            "L3",
            "--now",
            "2026-05-11T21:00:00Z",
            "deploy/bases/cache",
            "charts",
            "otel",
        ],
        None,
    );
    assert_eq!(r.code, 1);
    insta::assert_snapshot!(r.snapshot());
}

#[test]
fn a_template_expression_elsewhere_does_not_excuse_a_syntax_error() {
    // A ConfigMap with Prometheus text `{{ $labels.instance }}`, then a broken Pod: the file is
    // a manifest with an error (exit 3), and its good documents are still judged.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rules\ndata:\n  alert: \"{{ $labels.instance }} is down\"\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: [\n",
    )
    .unwrap();
    let r = sostle_in(d, &["test", "-o", "json", "app.yaml"], None);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    let v = json(&r);
    assert_eq!(v["skipped"], serde_json::json!([]));
    assert_eq!(v["summary"]["resources"], 1, "the ConfigMap is judged");
}

#[test]
fn a_run_longer_than_a_second_shows_progress_on_a_terminal() {
    // A FIFO as input keeps the run waiting until the test writes it; `script` gives sostle a
    // terminal for stderr. After a second the progress line appears; once the input arrives
    // the run ends normally. Without a terminal (every other test) there is no progress line.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("slow.yaml");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let child = Command::new("script")
        .args(["-qec"])
        .arg(format!("'{}' test slow.yaml", env!("CARGO_BIN_EXE_sostle")))
        .arg("/dev/null")
        .current_dir(d)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1800));
    std::fs::write(
        &fifo,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("checked 0/1 files"), "{text:?}");
    assert!(text.contains("1 resources:"), "{text:?}");
    // And not when stderr is a pipe.
    std::fs::remove_file(&fifo).unwrap();
    std::fs::write(
        d.join("c.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    )
    .unwrap();
    let r = sostle_in(d, &["test", "."], None);
    assert_eq!(r.code, 0, "{}", r.snapshot());
    assert!(!r.stderr.contains("checked"), "{}", r.stderr);
}
