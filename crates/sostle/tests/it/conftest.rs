//! sostle as a drop-in for conftest, measured against the real conftest (built from the Go
//! module proxy by scripts/test.sh): the same flags on the same policies and inputs give the same
//! exit status and the same failure, warning and exception messages; `conftest verify` and
//! `sostle verify` agree on the same `*_test.rego`; and the exported suite gives, under conftest
//! (OPA), the denials the native engine gives on the corpus. The policies and inputs are
//! examples/conftest (a rule library imported by package main, deny/violation/warn with strings
//! and objects, exception rules, data files, a conftest.toml, *_test.rego with `with input as`).

use std::path::Path;
use std::process::Command;

use crate::{root, sostle_with, Run};

/// The real conftest (scripts/test.sh builds it into ~/.cache/sostle/bin).
fn conftest(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    crate::run(
        Command::new("conftest")
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1"),
        stdin,
    )
}

/// The result lines (WARN/FAIL/EXCP), sorted — conftest walks files in map order — and the
/// summary line.
fn lines(out: &str) -> (Vec<String>, String) {
    let mut results: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("WARN ") || l.starts_with("FAIL ") || l.starts_with("EXCP "))
        .map(str::to_string)
        .collect();
    results.sort();
    let summary = out
        .lines()
        .rfind(|l| l.contains(" passed, "))
        .unwrap_or_default()
        .to_string();
    (results, summary)
}

/// Runs both with `args` in `dir` (sostle with `-o conftest` unless args choose an output) and
/// requires the same exit status, result lines and summary; returns conftest's run.
fn same(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let c = conftest(dir, &[&["test", "--no-color"], args].concat(), stdin);
    let mut sargs = vec!["test", "--no-color"];
    if !args.iter().any(|a| *a == "-o" || a.starts_with("--output")) {
        sargs.extend(["-o", "conftest"]);
    }
    sargs.extend_from_slice(args);
    let s = sostle_with(dir, &sargs, &[], stdin);
    assert_eq!(
        s.code,
        c.code,
        "exit status differs for {args:?}\nconftest: {}\nsostle: {}",
        c.snapshot(),
        s.snapshot()
    );
    assert_eq!(
        lines(&s.stdout),
        lines(&c.stdout),
        "output differs for {args:?}\nconftest: {}\nsostle: {}",
        c.snapshot(),
        s.snapshot()
    );
    c
}

const P: &str = "examples/conftest/policy";
const D: &str = "examples/conftest/data";
const M: &str = "examples/conftest/manifests";

#[test]
fn the_issue_reproduction_user_policies_are_evaluated_where_sostle_has_no_layer() {
    // The Deployment's namespace has no sostle layer: before, "0 pass, 0 fail, 14 skip", exit 0.
    for flag in ["-p", "--policy"] {
        let r = sostle_with(
            &root(),
            &["test", flag, P, "-d", D, &format!("{M}/web.yaml")],
            &[],
            None,
        );
        assert_eq!(r.code, 1, "{}", r.snapshot());
        for msg in [
            "web: container app must set securityContext.runAsNonRoot",
            "web: image docker.io/library/nginx:1.27 is not from an allowed registry",
            "web: every workload names its team (label team)",
        ] {
            assert!(r.stdout.contains(msg), "missing {msg:?}: {}", r.snapshot());
        }
    }
}

#[test]
fn conftest_and_sostle_agree_flag_for_flag() {
    let r = root();
    let c = same(&r, &["-p", P, "-d", D, M], None);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout
            .contains("35 tests, 27 passed, 3 warnings, 4 failures, 1 exception"),
        "{}",
        c.stdout
    );
    same(&r, &["-p", P, "-d", D, "--fail-on-warn", M], None);
    same(
        &r,
        &[
            "-p",
            P,
            "-d",
            D,
            "--fail-on-warn",
            &format!("{M}/services.yaml"),
        ],
        None,
    );
    same(&r, &["-p", P, "-d", D, "--no-fail", M], None);
    same(&r, &["-p", P, "-d", D, "--suppress-exceptions", M], None);
    same(&r, &["-p", P, "-d", D, "-n", "kubernetes", M], None);
    same(&r, &["-p", P, "-d", D, "-n", "kube*", M], None);
    same(
        &r,
        &[
            "-p",
            P,
            "-d",
            D,
            "--namespace",
            "main",
            "--namespace",
            "kubernetes",
            M,
        ],
        None,
    );
    same(&r, &["-p", P, "-d", D, "--all-namespaces", M], None);
    // --combine: one evaluation over every document; --ignore REGEX.
    let c = same(&r, &["-p", P, "-n", "combine", "--combine", M], None);
    assert!(
        c.stdout
            .contains("FAIL - Combined - combine - deployment vendor-agent has no Service"),
        "{}",
        c.stdout
    );
    same(
        &r,
        &["-p", P, "-d", D, "--all-namespaces", "--combine", M],
        None,
    );
    same(&r, &["-p", P, "-d", D, "--ignore", "web|vendor", M], None);
    same(
        &r,
        &[
            "-p",
            P,
            "-d",
            D,
            "--ignore",
            "services",
            &format!("{M}/services.yaml"),
            &format!("{M}/api.yaml"),
        ],
        None,
    );
    // Documents that are not Kubernetes objects (a chart's values file) are judged too.
    let v = same(
        &r,
        &["-p", P, "-n", "helm", "examples/conftest/values"],
        None,
    );
    assert!(
        v.stdout
            .contains("values: image ghcr.io/example/web pins no version"),
        "{}",
        v.stdout
    );
    // A data directory with subdirectories (data/teams/…): each file loads under its
    // directory's path, data.teams.
    same(
        &r,
        &[
            "-p",
            P,
            "-d",
            D,
            "--fail-on-warn",
            &format!("{M}/vendor.yaml"),
        ],
        None,
    );
    same(&r, &["-p", P, "-d", D, "-n", "notpresent", M], None);
    // Single files and directories as -p, repeated.
    same(
        &r,
        &[
            "-p",
            &format!("{P}/main.rego"),
            "-p",
            &format!("{P}/lib"),
            "-d",
            &format!("{D}/registries.yaml"),
            M,
        ],
        None,
    );
    // A passing file; and --quiet, which prints nothing when nothing fails.
    same(&r, &["-p", P, "-d", D, &format!("{M}/api.yaml")], None);
    let q = same(
        &r,
        &["-p", P, "-d", D, "--quiet", &format!("{M}/api.yaml")],
        None,
    );
    assert_eq!(q.stdout, "");
    let s = sostle_with(
        &r,
        &[
            "test",
            "-p",
            P,
            "-d",
            D,
            "--quiet",
            "-o",
            "conftest",
            &format!("{M}/api.yaml"),
        ],
        &[],
        None,
    );
    assert_eq!((s.code, s.stdout.as_str()), (0, ""));
    // stdin.
    let web = std::fs::read(r.join(M).join("web.yaml")).unwrap();
    same(&r, &["-p", P, "-d", D, "-"], Some(&web));
}

#[test]
fn parser_json_reads_json_and_refuses_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(M).join("web.yaml")).unwrap();
    let v: serde_json::Value = yaml_to_json(&text);
    let json = dir.path().join("web.json");
    std::fs::write(&json, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (p, d) = (root().join(P), root().join(D));
    let (p, d) = (p.to_str().unwrap(), d.to_str().unwrap());
    same(
        dir.path(),
        &["-p", p, "-d", d, "--parser", "json", "web.json"],
        None,
    );
    // YAML under --parser json: conftest fails to parse it (exit 1), sostle names the file and
    // the place (exit 3, a run error).
    let s = sostle_with(
        &root(),
        &[
            "test",
            "-p",
            P,
            "--parser",
            "json",
            &format!("{M}/web.yaml"),
        ],
        &[],
        None,
    );
    assert_eq!(s.code, 3, "{}", s.snapshot());
    assert!(
        s.stdout.contains(
            "examples/conftest/manifests/web.yaml:1:1: not JSON (--parser json): expected value"
        ),
        "{}",
        s.snapshot()
    );
}

/// The first YAML document of `text` as JSON, by the engine's own parser.
fn yaml_to_json(text: &str) -> serde_json::Value {
    sostle_core::manifest::load(text)
        .documents
        .into_iter()
        .next()
        .unwrap()
        .root
        .to_json()
}

#[test]
fn conftest_toml_is_read_like_conftest_reads_it() {
    let dir = root().join("examples/conftest");
    let c = same(&dir, &["manifests"], None);
    assert_eq!(c.code, 1, "{}", c.snapshot());
    // The command line wins over the file.
    same(&dir, &["-n", "kubernetes", "manifests"], None);
}

#[test]
fn conftest_json_is_conftests_json() {
    let r = root();
    let c = conftest(
        &r,
        &["test", "--no-color", "-o", "json", "-p", P, "-d", D, M],
        None,
    );
    let s = sostle_with(
        &r,
        &["test", "-o", "conftest-json", "-p", P, "-d", D, M],
        &[],
        None,
    );
    assert_eq!(s.code, c.code, "{}", s.snapshot());
    let norm = |text: &str| {
        let mut v: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
        for c in &mut v {
            let o = c.as_object_mut().unwrap();
            for k in ["warnings", "failures", "exceptions"] {
                if let Some(serde_json::Value::Array(items)) = o.get_mut(k) {
                    // conftest's metadata carries each query; only the messages are compared.
                    let mut msgs: Vec<serde_json::Value> =
                        items.iter().map(|i| i["msg"].clone()).collect();
                    msgs.sort_by_key(|m| m.to_string());
                    *items = msgs;
                }
            }
        }
        v.sort_by_key(|c| (c["filename"].to_string(), c["namespace"].to_string()));
        v
    };
    assert_eq!(norm(&s.stdout), norm(&c.stdout));
}

#[test]
fn the_conftest_output_snapshot() {
    let r = sostle_with(
        &root(),
        &["test", "-o", "conftest", "-p", P, "-d", D, M],
        &[],
        None,
    );
    insta::assert_snapshot!("conftest_output", r.snapshot());
    let r = sostle_with(
        &root(),
        &["test", "-o", "table", "-p", P, "-d", D, M],
        &[],
        None,
    );
    insta::assert_snapshot!("conftest_table", r.snapshot());
    let r = sostle_with(
        &root(),
        &["test", "-o", "azuredevops", "-p", P, "-d", D, M],
        &[],
        None,
    );
    insta::assert_snapshot!("conftest_azuredevops", r.snapshot());
}

#[test]
fn conftest_verify_and_sostle_verify_agree() {
    let r = root();
    let c = conftest(&r, &["verify", "--no-color", "-p", P, "-d", D], None);
    let s = sostle_with(&r, &["verify", "-p", P, "-d", D], &[], None);
    assert_eq!(
        (s.code, c.code),
        (0, 0),
        "{}\n{}",
        c.snapshot(),
        s.snapshot()
    );
    assert_eq!(
        lines(&s.stdout),
        lines(&c.stdout),
        "{}\n{}",
        c.snapshot(),
        s.snapshot()
    );
    assert!(s.stdout.contains("6 tests, 6 passed"), "{}", s.stdout);
    // A test that is wrong: both fail it, with the same line.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy");
    copy_dir(&r.join(P), &policy);
    let mut t = std::fs::read_to_string(policy.join("main_test.rego")).unwrap();
    t.push_str("\ntest_wrong_on_purpose if {\n\tcount(deny) == 5 with input as deployment({}, \"ghcr.io/x/web:1\")\n}\n");
    std::fs::write(policy.join("main_test.rego"), t).unwrap();
    let data = r.join(D);
    let data = data.to_str().unwrap();
    let c = conftest(
        dir.path(),
        &["verify", "--no-color", "-p", "policy", "-d", data],
        None,
    );
    let s = sostle_with(
        dir.path(),
        &["verify", "-p", "policy", "-d", data],
        &[],
        None,
    );
    assert_eq!(
        (s.code, c.code),
        (1, 1),
        "{}\n{}",
        c.snapshot(),
        s.snapshot()
    );
    assert_eq!(
        lines(&s.stdout),
        lines(&c.stdout),
        "{}\n{}",
        c.snapshot(),
        s.snapshot()
    );
    assert!(
        s.stdout
            .contains("FAIL - policy/main_test.rego -  - data.main.test_wrong_on_purpose"),
        "{}",
        s.stdout
    );
    // Machine formats for CI.
    let tap = sostle_with(
        dir.path(),
        &["verify", "-p", "policy", "-d", data, "-o", "tap"],
        &[],
        None,
    );
    assert_eq!(tap.code, 1);
    assert!(
        tap.stdout.contains("1..7")
            && tap
                .stdout
                .contains("not ok 7 - policy/main_test.rego - data.main.test_wrong_on_purpose"),
        "{}",
        tap.stdout
    );
    let json = sostle_with(
        dir.path(),
        &["verify", "-p", "policy", "-d", data, "-o", "json"],
        &[],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["tests"].as_array().unwrap().len(), 7);
    assert_eq!(
        v["summary"],
        "7 tests, 6 passed, 0 warnings, 1 failure, 0 exceptions, 0 skipped"
    );
    let junit = sostle_with(
        dir.path(),
        &["verify", "-p", "policy", "-d", data, "-o", "junit"],
        &[],
        None,
    );
    assert!(
        junit.stdout.contains(r#"tests="7" failures="1""#),
        "{}",
        junit.stdout
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn the_policy_directory_is_the_default_as_under_conftest_but_not_sostles_own_suite() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join(P), &dir.path().join("policy"));
    copy_dir(&root().join(M), &dir.path().join("manifests"));
    let data = root().join(D);
    let c = conftest(
        dir.path(),
        &[
            "test",
            "--no-color",
            "-d",
            data.to_str().unwrap(),
            "manifests",
        ],
        None,
    );
    let s = sostle_with(
        dir.path(),
        &[
            "test",
            "-o",
            "conftest",
            "-d",
            data.to_str().unwrap(),
            "manifests",
        ],
        &[],
        None,
    );
    assert_eq!(
        (s.code, c.code),
        (1, 1),
        "{}\n{}",
        c.snapshot(),
        s.snapshot()
    );
    assert_eq!(lines(&s.stdout), lines(&c.stdout));
    // In this repository ./policy is sostle's suite, which the native engine runs already: not
    // loaded a second time as user policies.
    let r = sostle_with(
        &root(),
        &[
            "test",
            "-o",
            "json",
            "examples/mefine-static/deployment.yaml",
        ],
        &[],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["policy"].as_str())
        .collect();
    assert!(!ids.iter().any(|p| p.starts_with("rego:")), "{ids:?}");
}

#[test]
fn a_user_rule_scoped_to_layers_by_the_config_judges_only_there() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sostle.yaml");
    std::fs::write(
        &config,
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nsuite:\n  userPolicyScope:\n    - rules: [\"rego:main/deny_registry\"]\n      layers: [L3-L7]\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let web = format!("{M}/web.yaml");
    let json = |extra: &[&str]| {
        let mut args = vec![
            "test", "-o", "json", "--config", cfg, "-p", P, "-d", D, &web,
        ];
        args.extend_from_slice(extra);
        let r = sostle_with(&root(), &args, &[], None);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let outcome = |id: &str| {
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["policy"] == id)
                .map(|x| x["outcome"].as_str().unwrap().to_string())
        };
        (
            outcome("rego:main/deny_registry"),
            outcome("rego:main/deny"),
        )
    };
    // Unlayered: the scoped rule does not judge; the others still do.
    assert_eq!(json(&[]), (Some("skip".into()), Some("fail".into())));
    // At L3 it does.
    assert_eq!(json(&["--sostle-layer", "L3"]).0, Some("fail".into()));
    // A scope naming a suite policy is refused with its key path.
    std::fs::write(
        &config,
        "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nsuite:\n  userPolicyScope:\n    - rules: [deny_no_limits]\n      layers: [L3]\n",
    )
    .unwrap();
    let r = sostle_with(
        &root(),
        &["test", "--config", cfg, "-p", P, &web],
        &[],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(
        r.stderr.contains("suite.userPolicyScope[0].rules"),
        "{}",
        r.stderr
    );
}

/// Every YAML file of ../shared/corpus, sorted.
pub fn corpus_files() -> Vec<String> {
    fn walk(d: &Path, out: &mut Vec<String>) {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        for p in v {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p.to_str().unwrap().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("../shared/corpus"), &mut out);
    out
}

type Findings =
    std::collections::BTreeMap<String, std::collections::BTreeSet<(String, &'static str)>>;

#[test]
fn the_exported_suite_under_conftest_finds_what_the_native_engine_finds_on_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let r = sostle_with(
        &root(),
        &["policy", "export", bundle.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.snapshot());
    let files = corpus_files();
    assert!(files.len() > 1600);
    // Day 297: warn_no_gamma1_label has escalated to DENY; the clock reaches OPA as data.
    let now = "2026-11-27T00:00:00Z";
    let now_ns = i128::from(
        jiff::Timestamp::from_second(1_795_737_600)
            .unwrap()
            .as_second(),
    ) * 1_000_000_000;
    for layer in ["L2", "L3", "trial"] {
        let data = dir.path().join(format!("{layer}.json"));
        std::fs::write(
            &data,
            serde_json::json!({"sostle": {"layer": layer, "now_ns": now_ns}}).to_string(),
        )
        .unwrap();
        let bundle_data = bundle.join("data.json");
        let mut cargs: Vec<String> = [
            "test",
            "--no-color",
            "-o",
            "json",
            "-p",
            bundle.to_str().unwrap(),
            "-d",
            bundle_data.to_str().unwrap(),
            "-d",
            data.to_str().unwrap(),
        ]
        .into_iter()
        .map(str::to_string)
        .collect();
        cargs.extend(files.iter().cloned());
        let cargs: Vec<&str> = cargs.iter().map(String::as_str).collect();
        let c = conftest(&root(), &cargs, None);
        assert!(
            c.code == 0 || c.code == 1,
            "conftest at {layer}: {}",
            c.stderr
        );
        let mut opa = Findings::new();
        for check in serde_json::from_str::<Vec<serde_json::Value>>(&c.stdout).unwrap() {
            let file = check["filename"].as_str().unwrap().to_string();
            let set = opa.entry(file).or_default();
            for (key, outcome) in [("failures", "fail"), ("warnings", "warn")] {
                for m in check[key].as_array().into_iter().flatten() {
                    let msg = m["msg"].as_str().unwrap();
                    let policy = msg.split(':').next().unwrap().to_string();
                    set.insert((policy, outcome));
                }
            }
        }
        let mut sargs = vec!["test", "-o", "json", "--sostle-layer", layer, "--now", now];
        sargs.extend(files.iter().map(String::as_str));
        let s = sostle_with(&root(), &sargs, &[], None);
        // A few corpus files repeat a key, which sostle refuses (Kubernetes' strict decoding
        // does) and conftest's parser takes (last one wins): those are left out.
        assert!(
            matches!(s.code, 0 | 1 | 3),
            "sostle at {layer}: {}",
            s.stderr
        );
        let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
        let refused: std::collections::BTreeSet<String> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["file"].as_str().unwrap().to_string())
            .collect();
        assert!(refused.len() < 20, "{refused:?}");
        let mut native = Findings::new();
        for f in &files {
            native.entry(f.clone()).or_default();
        }
        let mut findings = 0;
        for r in v["results"].as_array().unwrap() {
            let outcome = match r["outcome"].as_str().unwrap() {
                "fail" => "fail",
                "warn" => "warn",
                _ => continue,
            };
            findings += 1;
            native
                .entry(r["file"].as_str().unwrap().to_string())
                .or_default()
                .insert((r["policy"].as_str().unwrap().to_string(), outcome));
        }
        assert!(
            findings > 1000,
            "only {findings} findings at {layer}: the comparison would be vacuous"
        );
        let differ: Vec<String> = native
            .iter()
            .filter(|(f, _)| !refused.contains(*f))
            .filter(|(f, n)| opa.get(*f).cloned().unwrap_or_default() != **n)
            .take(10)
            .map(|(f, n)| format!("{f}: native {n:?} conftest {:?}", opa.get(f)))
            .collect();
        assert!(differ.is_empty(), "at {layer}:\n{}", differ.join("\n"));
    }
}

/// sostle in `dir` with the test registry's Docker config (empty) and key password.
fn sostle_reg(dir: &Path, args: &[&str]) -> Run {
    sostle_with(
        dir,
        args,
        &[
            ("COSIGN_PASSWORD", crate::signatures::PASSWORD),
            ("DOCKER_CONFIG", &dir.join("docker").display().to_string()),
        ],
        None,
    )
}

#[test]
fn policies_travel_through_a_registry_both_ways_and_a_signature_can_be_required() {
    let (reg, dir) = crate::signatures::setup();
    let d = dir.path();
    let r = root();
    let host = reg.host.as_str();
    let insecure = ["--insecure-registry", host];
    let (pol, data) = (r.join(P), r.join(D));
    let (pol, data) = (pol.to_str().unwrap(), data.to_str().unwrap());
    let manifests = r.join(M);
    let manifests = manifests.to_str().unwrap();
    let want = conftest(&r, &["test", "--no-color", "-p", P, "-d", D, M], None);
    let want = lines(&want.stdout).0;
    assert!(!want.is_empty());

    // sostle pushes; the real conftest pulls it and judges with it as it judges the originals.
    let ours = format!("{host}/policies/team:v1");
    let p = sostle_reg(
        d,
        &[&["policy", "push", pol, &ours, "-d", data][..], &insecure].concat(),
    );
    assert_eq!(p.code, 0, "{}", p.snapshot());
    assert!(p.stdout.contains("@sha256:"), "{}", p.stdout);
    let c = conftest(d, &["pull", &format!("oci://{ours}"), "-p", "pulled"], None);
    assert_eq!(c.code, 0, "conftest pull: {}", c.snapshot());
    let pulled = d.join("pulled");
    let c = conftest(
        d,
        &[
            "test",
            "--no-color",
            "-p",
            pulled.join("policy").to_str().unwrap(),
            "-d",
            pulled.join("data").to_str().unwrap(),
            manifests,
        ],
        None,
    );
    let got: Vec<String> = lines(&c.stdout)
        .0
        .iter()
        .map(|l| l.replace(&format!("{}/", r.display()), ""))
        .collect();
    assert_eq!(got, want, "{}", c.snapshot());

    // conftest pushes; sostle tests with --policy oci://… and pulls it.
    let theirs = format!("{host}/policies/theirs:v2");
    let c = conftest(&r, &["push", &theirs, "-p", P, "-d", D], None);
    assert_eq!(c.code, 0, "conftest push: {}", c.snapshot());
    let s = sostle_reg(
        &r,
        &[
            &[
                "test",
                "--no-color",
                "-o",
                "conftest",
                "--policy",
                &format!("oci://{theirs}"),
                M,
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(s.code, 1, "{}", s.snapshot());
    assert_eq!(lines(&s.stdout).0, want, "{}", s.snapshot());
    let s = sostle_reg(
        d,
        &[&["policy", "pull", &theirs, "mine"][..], &insecure].concat(),
    );
    assert_eq!(s.code, 0, "{}", s.snapshot());
    assert!(
        s.stdout.lines().any(|l| l.ends_with("main.rego")),
        "{}",
        s.stdout
    );
    assert!(
        s.stdout.lines().any(|l| l.ends_with("registries.yaml")),
        "{}",
        s.stdout
    );

    // A signed bundle can be required: with the signer's key it is used, with another refused.
    assert_eq!(
        sostle_reg(d, &["key", "generate", "--out", "signer"]).code,
        0
    );
    assert_eq!(
        sostle_reg(d, &["key", "generate", "--out", "stranger"]).code,
        0
    );
    let key = d.join("signer/cosign.pub");
    let stranger = d.join("stranger/cosign.pub");
    let s = sostle_reg(
        d,
        &[
            &["sign", &ours, "--key", "signer/cosign.key"][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(s.code, 0, "{}", s.snapshot());
    let test_with = |k: &Path| {
        sostle_reg(
            &r,
            &[
                &[
                    "test",
                    "-o",
                    "conftest",
                    "--policy",
                    &format!("oci://{ours}"),
                    "--policy-key",
                    k.to_str().unwrap(),
                    M,
                ][..],
                &insecure,
            ]
            .concat(),
        )
    };
    let s = test_with(&key);
    assert_eq!(s.code, 1, "{}", s.snapshot());
    assert_eq!(lines(&s.stdout).0, want);
    let s = test_with(&stranger);
    assert_eq!(s.code, 3, "{}", s.snapshot());
    assert!(s.stderr.contains("has no signature by"), "{}", s.stderr);
    // conftest's unsigned bundle is refused the same way.
    let s = sostle_reg(
        &r,
        &[
            &[
                "test",
                "--policy",
                &format!("oci://{theirs}"),
                "--policy-key",
                key.to_str().unwrap(),
                M,
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(s.code, 3, "{}", s.snapshot());
    assert!(s.stderr.contains("has no signature by"), "{}", s.stderr);
    // A reference that is not there is a clear error.
    let s = sostle_reg(
        &r,
        &[
            &[
                "test",
                "--policy",
                &format!("oci://{host}/policies/none:v9"),
                M,
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert_eq!(s.code, 3, "{}", s.snapshot());
    assert!(s.stderr.contains("not found"), "{}", s.stderr);
}

/// conftest's own Kubernetes example, read in place from the Go module cache (scripts/test.sh
/// downloads the module; nothing of it is copied into this repository).
fn conftest_examples() -> std::path::PathBuf {
    let cache = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{}/go/pkg/mod", std::env::var("HOME").unwrap()));
    let dir = Path::new(&cache).join("github.com/open-policy-agent/conftest@v0.71.1/examples");
    assert!(
        dir.join("kubernetes/policy").is_dir(),
        "{} is missing: scripts/test.sh runs `go mod download github.com/open-policy-agent/conftest@v0.71.1`",
        dir.display()
    );
    dir
}

#[test]
fn conftests_own_kubernetes_example_gives_the_same_answers() {
    let dir = conftest_examples();
    // The issue's reproduction: four failures and exit 1 (before: exit 0, "14 skip").
    let c = same(
        &dir,
        &["-p", "kubernetes/policy", "kubernetes/deployment.yaml"],
        None,
    );
    assert_eq!(c.code, 1);
    assert!(
        c.stdout
            .contains("5 tests, 1 passed, 0 warnings, 4 failures"),
        "{}",
        c.stdout
    );
    same(
        &dir,
        &["-p", "kubernetes/policy", "kubernetes/service.yaml"],
        None,
    );
    same(
        &dir,
        &[
            "-p",
            "kubernetes/policy",
            "--fail-on-warn",
            "kubernetes/service.yaml",
        ],
        None,
    );
    same(
        &dir,
        &[
            "-p",
            "kubernetes/policy",
            "kubernetes/deployment+service.yaml",
        ],
        None,
    );
    same(
        &dir,
        &[
            "-p",
            "kubernetes/policy",
            "--all-namespaces",
            "kubernetes/deployment.yaml",
        ],
        None,
    );
    same(
        &dir,
        &[
            "-p",
            "kubernetes/policy",
            "--namespace",
            "notpresent",
            "kubernetes/deployment.yaml",
        ],
        None,
    );
    // Its unit tests: conftest verify and sostle verify agree.
    let c = conftest(
        &dir,
        &["verify", "--no-color", "-p", "kubernetes/policy"],
        None,
    );
    let s = sostle_with(&dir, &["verify", "-p", "kubernetes/policy"], &[], None);
    assert_eq!(
        (s.code, c.code),
        (0, 0),
        "{}\n{}",
        c.snapshot(),
        s.snapshot()
    );
    assert_eq!(lines(&s.stdout), lines(&c.stdout));
    assert!(s.stdout.contains("4 tests, 4 passed"), "{}", s.stdout);
    // Its --combine example, and the tests that read files with conftest's builtins
    // (parse_combined_config_files, relative to the test file).
    let c = same(
        &dir,
        &[
            "-p",
            "kubernetes/combine",
            "--combine",
            "kubernetes/combine/deployment.yaml",
            "kubernetes/combine/service.yaml",
        ],
        None,
    );
    assert!(
        c.stdout.contains(
            "FAIL - Combined - main - Deployment 'goodbye-kubernetes' has no matching service"
        ),
        "{}",
        c.stdout
    );
    let c = conftest(
        &dir,
        &["verify", "--no-color", "-p", "kubernetes/combine"],
        None,
    );
    let s = sostle_with(&dir, &["verify", "-p", "kubernetes/combine"], &[], None);
    assert_eq!(
        (s.code, c.code),
        (0, 0),
        "{}\n{}",
        c.snapshot(),
        s.snapshot()
    );
    assert_eq!(lines(&s.stdout), lines(&c.stdout));
}

#[test]
fn a_conftest_toml_key_sostle_does_not_know_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("conftest.toml"),
        "policy = \"policy\"\ntrace = true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("m.yaml"),
        "kind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let r = sostle_with(dir.path(), &["test", "m.yaml"], &[], None);
    assert_eq!(r.code, 3, "{}", r.snapshot());
    assert!(
        r.stderr.contains("conftest.toml:2") && r.stderr.contains("trace"),
        "{}",
        r.snapshot()
    );
}

/// #24 item 5: a policy bundle whose manifest names the same 16 MiB blob as many files is
/// refused by its total before anything is downloaded, and a blob is read as it arrives (never
/// sized by its descriptor): `policy pull` and `--policy oci://` stop with a clear error.
#[test]
fn a_policy_bundle_that_claims_more_than_the_total_cap_is_refused_before_downloading() {
    let (reg, dir) = crate::signatures::setup();
    let d = dir.path();
    let host = reg.host.as_str();
    let curl = |args: &[&str]| -> String {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-D", "-"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let upload = |bytes: &[u8]| -> String {
        use sha2::Digest;
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(bytes));
        let file = d.join("blob");
        std::fs::write(&file, bytes).unwrap();
        let head = curl(&[
            "-X",
            "POST",
            &format!("http://{host}/v2/policies/bomb/blobs/uploads/"),
        ]);
        let location = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Location: ")
                    .or_else(|| l.strip_prefix("location: "))
            })
            .unwrap()
            .trim()
            .to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("http://{host}{location}")
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{url}{sep}digest={digest}"),
        ]);
        digest
    };
    let big = vec![b'#'; 16 * 1024 * 1024];
    let blob = upload(&big);
    let config = upload(b"{}");
    // Five files of 16 MiB (80 MiB): above the 64 MiB read from one artifact.
    let layers: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            serde_json::json!({
                "mediaType": "application/vnd.cncf.openpolicyagent.policy.layer.v1+rego",
                "digest": blob, "size": big.len(),
                "annotations": {"org.opencontainers.image.title": format!("policy/p{i}.rego")}
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.openpolicyagent.config.v1+json", "digest": config, "size": 2},
        "layers": layers,
    });
    let mf = d.join("manifest.json");
    std::fs::write(&mf, serde_json::to_vec(&manifest).unwrap()).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", mf.display()),
        &format!("http://{host}/v2/policies/bomb/manifests/v1"),
    ]);
    let r = sostle_reg(
        d,
        &[
            "policy",
            "pull",
            &format!("{host}/policies/bomb:v1"),
            "out",
            "--insecure-registry",
            host,
        ],
    );
    assert_ne!(r.code, 0, "{}", r.snapshot());
    assert!(
        r.stderr
            .contains("above the 67108864 read from one artifact"),
        "{}",
        r.snapshot()
    );
    assert!(!d.join("out/policy/p0.rego").exists());
}
