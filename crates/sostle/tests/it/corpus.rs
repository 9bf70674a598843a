//! The whole corpus (../shared/corpus): counts per layer are stable (a snapshot), every
//! finding has a position inside its file, and the only errors are the nine files with
//! duplicate keys.

use crate::sostle;

fn summary(layer: Option<&str>) -> (serde_json::Value, serde_json::Value) {
    // --hidden: the corpus keeps some manifests under hidden directories (.github, .workshop).
    let mut args = vec![
        "test",
        "--hidden",
        "--now",
        "2026-11-27T00:00:00Z",
        "-o",
        "json",
    ];
    if let Some(l) = layer {
        args.extend(["--sostle-layer", l]);
    }
    args.push("../shared/corpus");
    let r = sostle(&args);
    assert_eq!(
        r.code, 3,
        "the nine duplicate-key files make the run exit 3"
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    (v["summary"].clone(), v)
}

#[test]
fn corpus_counts_are_stable() {
    let mut lines = Vec::new();
    for layer in [
        None,
        Some("L0"),
        Some("L1"),
        Some("L2"),
        Some("L3"),
        Some("L4"),
        Some("L5"),
        Some("L6"),
        Some("L7"),
        Some("trial"),
    ] {
        let (s, v) = summary(layer);
        lines.push(format!("{:<9} {}", layer.unwrap_or("(names)"), s));
        if layer == Some("trial") {
            // Positions: every violation points inside its file.
            for r in v["results"].as_array().unwrap() {
                for viol in r["violations"].as_array().unwrap() {
                    assert!(viol["line"].as_u64().unwrap() >= 1, "{r}");
                    assert!(viol["column"].as_u64().unwrap() >= 1, "{r}");
                }
            }
            let errors = v["errors"].as_array().unwrap();
            assert_eq!(errors.len(), 9);
            assert!(errors
                .iter()
                .all(|e| e["message"].as_str().unwrap().contains("duplicate key")));
        }
    }
    insta::assert_snapshot!(lines.join("\n"));
}
