//! The manifest model: YAML (and JSON, which is YAML) parsed once into a tree in which every
//! node keeps its line and column, so any finding can point at the field it is about.
//!
//! The event parser is `granit-parser` (chosen by measurement, see `docs/yaml-parser.md`); this
//! module only builds the tree from its events, iteratively (no recursion on input depth), and
//! adds what Kubernetes needs and the parser does not do: scalar resolution as the API server's
//! YAML library does it, duplicate-key errors naming both lines, merge keys, and a budget on
//! alias expansion so an alias bomb is an error, not an out-of-memory kill.
//!
//! [`node`] holds the tree, [`yaml`] builds it from YAML, `json` from JSON bodies, `scalar`
//! resolves plain scalars.

mod json;
pub mod node;
mod scalar;
pub mod yaml;

pub use json::*;
pub use node::*;
pub use yaml::*;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn json_reads_straight_into_a_tree_in_source_order() {
        let text = r#"{"kind":"Pod","metadata":{"name":"a","labels":{"z":"1","a":"2"}},
            "spec":{"containers":[{"name":"c","image":"x:1","ports":[80, 18446744073709551615, -1.5]}],
            "hostNetwork":true,"x":null}}"#;
        let node: Node = serde_json::from_str(text).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        // The same content as the detour through serde_json::Value (which sorts keys).
        assert_eq!(node.to_json(), from_json(&value).to_json());
        let labels: Vec<&str> = node
            .get_path(&["metadata", "labels"])
            .unwrap()
            .as_map()
            .unwrap()
            .iter()
            .map(|e| &*e.key)
            .collect();
        assert_eq!(labels, ["z", "a"]);
        let ports = node
            .get_path(&["spec", "containers"])
            .unwrap()
            .as_seq()
            .unwrap()[0]
            .get("ports")
            .unwrap();
        assert_eq!(ports.as_seq().unwrap()[0].value, Value::Int(80));
        assert_eq!(
            ports.as_seq().unwrap()[1].value,
            Value::Float(18446744073709551615.0)
        );
        assert_eq!(
            node.get_path(&["spec", "hostNetwork"]).unwrap().as_bool(),
            Some(true)
        );
    }

    #[test]
    fn json_duplicate_keys_keep_the_last_value() {
        let node: Node = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(node.to_json(), serde_json::json!({"a": 3, "b": 2}));
        assert_eq!(node.as_map().unwrap().len(), 2);
        // A large mapping takes the hashed path.
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{}\":{i},", i % 40));
        }
        text.push_str("\"end\":0}");
        let node: Node = serde_json::from_str(&text).unwrap();
        let map = node.as_map().unwrap();
        assert_eq!(map.len(), 41);
        assert_eq!(node.get("k0").unwrap().value, Value::Int(80));
        assert_eq!(node.get("k39").unwrap().value, Value::Int(79));
    }

    #[test]
    fn json_too_deep_is_an_error_not_a_crash() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = serde_json::from_str::<Node>(&text).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        // (sostle's own limit, for formats with a deeper one, is tested through the webhook's
        // decoder.) Well inside the limits, nesting reads.
        let text = format!("{}{}", "[".repeat(120), "]".repeat(120));
        assert!(serde_json::from_str::<Node>(&text).is_ok());
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let l = load("a: 1\nb:\n  c: x\n  d: [1, 2]\n");
        assert!(l.errors.is_empty());
        let root = &l.documents[0].root;
        assert_eq!(root.locate(&["b", "c"]), Pos { line: 3, col: 3 });
        assert_eq!(
            root.get_path(&["b", "c"]).unwrap().pos,
            Pos { line: 3, col: 6 }
        );
        assert_eq!(root.locate(&["b", "missing"]), Pos { line: 2, col: 1 });
    }

    #[test]
    fn dotted_paths_locate_fields() {
        let l = load("metadata:\n  annotations:\n    sostle.eose.ca/trendal: x\nspec:\n  containers:\n  - name: a\n    image: b\n");
        let r = &l.documents[0].root;
        assert_eq!(
            r.locate_dotted("metadata.annotations.sostle.eose.ca/trendal"),
            Pos { line: 3, col: 5 }
        );
        assert_eq!(
            r.locate_dotted("spec.containers[0].image"),
            Pos { line: 7, col: 5 }
        );
        assert_eq!(
            r.locate_dotted("spec.containers[3].image"),
            Pos { line: 5, col: 3 }
        );
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let l = load("spec:\n  selector: a\n  x: 1\n  selector: b\n---\nkind: Next\n");
        assert_eq!(l.errors.len(), 1);
        // The document is read as kubectl reads it (the last value wins) and judged, and the
        // duplicate is still an error; the next document keeps its number.
        assert_eq!(l.documents.len(), 2);
        assert_eq!(
            l.documents[0]
                .root
                .get_path(&["spec", "selector"])
                .unwrap()
                .as_str(),
            Some("b")
        );
        assert_eq!(l.documents[1].index, 1);
        let e = &l.errors[0];
        assert_eq!((e.line, e.col), (4, 3));
        assert!(
            e.message.contains("line 4") && e.message.contains("line 2"),
            "{}",
            e.message
        );
    }

    #[test]
    fn documents_before_an_error_are_kept() {
        let l = load("a: 1\n---\nb: [\n");
        assert_eq!(l.documents.len(), 1);
        assert_eq!(l.errors.len(), 1);
    }

    #[test]
    fn empty_documents_are_not_counted_and_lists_are_split() {
        let l = load(
            "---\n---\nkind: List\napiVersion: v1\nitems:\n- kind: A\n- kind: B\n---\nkind: C\n",
        );
        let idx: Vec<_> = l.documents.iter().map(|d| d.index).collect();
        assert_eq!(idx, vec![0, 1, 2]);
        assert_eq!(l.documents[2].root.get("kind").unwrap().as_str(), Some("C"));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs: Vec<String> = (0..10).map(|_| format!("*a{}", i - 1)).collect();
            s.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
        }
        let l = load(&s);
        assert_eq!(l.errors.len(), 1);
        assert!(
            l.errors[0].message.contains("alias bomb"),
            "{}",
            l.errors[0].message
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = "[".repeat(20_000);
        let l = load(&s);
        assert_eq!(l.errors.len(), 1);
        let s = (0..20_000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect::<String>();
        let l = load(&s);
        assert_eq!(l.errors.len(), 1);
    }

    #[test]
    fn scalars_resolve_like_kubernetes() {
        let l = load("a: yes\nb: 'yes'\nc: 0x10\nd: 1.5\ne: ~\nf: \"1\"\ng: 012\n");
        let r = &l.documents[0].root;
        assert_eq!(r.get("a").unwrap().value, Value::Bool(true));
        assert_eq!(r.get("b").unwrap().as_str(), Some("yes"));
        assert_eq!(r.get("c").unwrap().value, Value::Int(16));
        assert_eq!(r.get("d").unwrap().value, Value::Float(1.5));
        assert_eq!(r.get("e").unwrap().value, Value::Null);
        assert_eq!(r.get("f").unwrap().as_str(), Some("1"));
        assert_eq!(r.get("g").unwrap().value, Value::Int(10));
    }

    #[test]
    fn merge_keys_merge() {
        // (Not `y` as a key: to Kubernetes' YAML decoder `y` is the boolean true, key "true".)
        let l = load("base: &b {x: 1, z: 2}\nm:\n  <<: *b\n  z: 3\n");
        let m = l.documents[0].root.get("m").unwrap();
        assert_eq!(m.get("x").unwrap().value, Value::Int(1));
        assert_eq!(m.get("z").unwrap().value, Value::Int(3));
    }

    #[test]
    fn non_utf8_is_reported_with_line() {
        let l = load_bytes(b"a: 1\nb: \xff\xfe\n");
        assert_eq!(l.errors[0].line, 2);
    }

    #[test]
    fn documents_split_where_kubectl_splits_them() {
        // `---#` and `--- # note` are separators to kubectl's YAMLReader.
        let l = load("kind: A\n---#\nkind: B\n--- # note\nkind: C\n---\r\nkind: D\n");
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        let kinds: Vec<_> = l
            .documents
            .iter()
            .map(|d| d.root.get("kind").unwrap().as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["A", "B", "C", "D"]);
        // Positions count the lines of the whole file.
        assert_eq!(l.documents[2].root.get("kind").unwrap().pos.line, 5);
        assert_eq!(l.documents[3].root.pos.line, 7);
    }

    #[test]
    fn a_separator_with_text_after_it_is_an_error_and_what_follows_is_still_read() {
        let l = load("kind: A\n--- {kind: B}\n---\nkind: C\n");
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert_eq!(l.errors[0].line, 2);
        assert!(l.errors[0].message.contains("document separator"));
        assert_eq!(l.documents.len(), 3);
        assert_eq!(l.documents[1].root.get("kind").unwrap().as_str(), Some("B"));
    }

    #[test]
    fn a_document_after_the_end_marker_without_a_separator_is_reported_not_read() {
        let l = load("kind: A\n...\nkind: B\n---\nkind: C\n");
        assert_eq!(l.documents.len(), 2);
        assert_eq!(l.documents[1].root.get("kind").unwrap().as_str(), Some("C"));
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert_eq!(l.errors[0].line, 3);
    }

    #[test]
    fn an_alias_bomb_of_long_strings_is_refused_by_its_bytes() {
        // Five levels of nine references to a 10,000-character string: few nodes, 590 MB of text.
        let mut s = format!("a0: &a0 \"{}\"\n", "x".repeat(10_000));
        for i in 1..=5 {
            let refs: Vec<String> = (0..9).map(|_| format!("*a{}", i - 1)).collect();
            s.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
        }
        assert!(s.len() < 11_000);
        let l = load(&s);
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert!(
            l.errors[0].message.contains("MiB"),
            "{}",
            l.errors[0].message
        );
        assert!(l.documents.is_empty());
    }

    #[test]
    fn merge_keys_merge_where_they_stand_as_go_yaml_v2_does() {
        // An explicit key after `<<` overrides it; one before it is overridden (go-yaml v2,
        // kubectl's reader); in a list of mappings the earlier takes precedence.
        let l =
            load("a: &a {x: 1, w: 2}\nb: &b {x: 3, z: 4}\nm:\n  x: 0\n  <<: [*a, *b]\n  w: 9\n");
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        let m = l.documents[0].root.get("m").unwrap();
        assert_eq!(m.get("x").unwrap().value, Value::Int(1));
        assert_eq!(m.get("w").unwrap().value, Value::Int(9));
        assert_eq!(m.get("z").unwrap().value, Value::Int(4));
    }

    #[test]
    fn yaml_1_1_words_are_booleans_in_values_and_keys() {
        let l = load("a: y\nb: N\nc: !!bool \"y\"\nd: !!str y\non: 1\n0x10: x\n");
        let r = &l.documents[0].root;
        assert_eq!(r.get("a").unwrap().value, Value::Bool(true));
        assert_eq!(r.get("b").unwrap().value, Value::Bool(false));
        assert_eq!(r.get("c").unwrap().value, Value::Bool(true));
        assert_eq!(r.get("d").unwrap().as_str(), Some("y"));
        assert_eq!(r.get("true").unwrap().value, Value::Int(1));
        assert_eq!(r.get("16").unwrap().as_str(), Some("x"));
        let l = load("a: !!bool \"1\"\n");
        assert!(l.documents.is_empty());
        assert!(l.errors[0].message.contains("!!bool"), "{:?}", l.errors);
    }
}
