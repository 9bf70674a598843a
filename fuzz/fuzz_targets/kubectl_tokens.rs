//! The kubectl differential under a fuzzer (issue #24): the fuzz input composes a stream of
//! documents from the scalar spellings whose reading by the real kubectl is recorded in
//! `fuzz/kubectl-tokens.json` (`scripts/record-kubectl-tokens.py`: each spelling as a block
//! value, a flow-sequence item and a mapping key), with the document separators kubectl
//! accepts, CRLF line ends, a BOM, comments and `...` ends; every document sostle reads must hold
//! exactly what kubectl read for each spelling (numbers compared as numbers). Spellings kubectl
//! refuses in a form are not used in that form.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value as J;
use sostle_core::manifest;

struct Token {
    text: String,
    value: Option<J>,
    flow: Option<J>,
    key: Option<String>,
}

fn tokens() -> &'static [Token] {
    static T: OnceLock<Vec<Token>> = OnceLock::new();
    T.get_or_init(|| {
        let table: J = serde_json::from_str(include_str!("../kubectl-tokens.json")).unwrap();
        table["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| Token {
                text: t["token"].as_str().unwrap().to_string(),
                value: t["value"].get("v").cloned(),
                flow: t["flow"].get("v").cloned(),
                key: t["key"].get("v").and_then(J::as_str).map(str::to_string),
            })
            .collect()
    })
}

fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

const SEPARATORS: [&str; 5] = ["---", "---#", "--- # note", "---\t", "---   "];

fuzz_target!(|data: &[u8]| {
    let all = tokens();
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next().unwrap_or(0) as usize;
    let flags = next();
    let nl = if flags & 1 == 1 { "\r\n" } else { "\n" };
    let mut text = String::new();
    if flags & 2 == 2 {
        text.push('\u{feff}');
    }
    let docs = 1 + next() % 4;
    let mut want = Vec::new();
    for d in 0..docs {
        if d > 0 {
            text.push_str(SEPARATORS[next() % SEPARATORS.len()]);
            text.push_str(nl);
        }
        let pick = |i: usize| &all[i % all.len()];
        let (v, f, k) = (pick(next()), pick(next()), pick(next()));
        let mut spec = serde_json::Map::new();
        let mut lines = vec![
            "apiVersion: v1".to_string(),
            "kind: Probe".into(),
            "metadata:".into(),
            format!("  name: doc{d}"),
            "spec:".into(),
        ];
        if let Some(value) = &v.value {
            lines.push(format!("  value: {}", v.text));
            spec.insert("value".into(), value.clone());
        }
        if let Some(item) = &f.flow {
            lines.push(format!("  flow: [{}]", f.text));
            spec.insert("flow".into(), J::Array(vec![item.clone()]));
        }
        if let Some(key) = &k.key {
            lines.push("  keys:".into());
            lines.push(format!("    {}: 1", k.text));
            spec.insert("keys".into(), serde_json::json!({ key.as_str(): 1 }));
        }
        if next() % 5 == 0 {
            lines.insert(2, "# a comment".into());
        }
        for l in lines {
            text.push_str(&l);
            text.push_str(nl);
        }
        if next() % 7 == 0 {
            text.push_str("...");
            text.push_str(nl);
        }
        want.push(J::Object(spec));
    }
    let loaded = manifest::load(&text);
    assert!(loaded.errors.is_empty(), "{text:?}: {:?}", loaded.errors);
    assert_eq!(loaded.documents.len(), want.len(), "{text:?}");
    for (doc, spec) in loaded.documents.iter().zip(&want) {
        let got = doc.root.to_json()["spec"].clone();
        let got = if got.is_null() { J::Object(Default::default()) } else { got };
        assert!(same(&got, spec), "{text:?}: sostle {got} kubectl {spec}");
    }
});
