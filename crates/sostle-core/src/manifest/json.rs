//! JSON bodies (AdmissionReview objects) decoded straight into the tree, with a depth limit and
//! last-key-wins as the API server's decoder does.

use super::node::{Entry, Node, Pos, Text, Value};

/// Reads a tree straight from any serde data format (positions all zero) — for objects that
/// arrive as JSON over the network, such as an AdmissionReview's object, without an
/// intermediate `serde_json::Value`. Mappings keep their source order; a key given twice keeps
/// its last value (as JSON decoders do). Nesting deeper than [`MAX_JSON_DEPTH`] is an error,
/// whatever the format's own limit, so the stack is never the limit.
impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        serde::de::DeserializeSeed::deserialize(NodeVisitor { depth: 0 }, d)
    }
}

/// Deepest nesting read from JSON (Kubernetes objects stay far below; serde_json's own limit).
pub const MAX_JSON_DEPTH: u32 = 128;

/// Reads one node at `depth`.
#[derive(Clone, Copy)]
pub(crate) struct NodeVisitor {
    depth: u32,
}

impl<'de> serde::de::DeserializeSeed<'de> for NodeVisitor {
    type Value = Node;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        if self.depth > MAX_JSON_DEPTH {
            return Err(serde::de::Error::custom(format!(
                "nesting deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        d.deserialize_any(self)
    }
}

impl NodeVisitor {
    fn child(self) -> NodeVisitor {
        NodeVisitor {
            depth: self.depth + 1,
        }
    }
}

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Node, E> {
        Ok(Node::new(Value::Null, Pos::default()))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Node, E> {
        Ok(Node::new(Value::Bool(b), Pos::default()))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Node, E> {
        Ok(Node::new(Value::Int(i), Pos::default()))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Node, E> {
        let v = i64::try_from(u).map_or(Value::Float(u as f64), Value::Int);
        Ok(Node::new(v, Pos::default()))
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Node, E> {
        Ok(Node::new(Value::Float(f), Pos::default()))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Node, E> {
        Ok(Node::new(Value::Str(s.into()), Pos::default()))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Node, E> {
        Ok(Node::new(Value::Str(s.into()), Pos::default()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        // Four up front: what the first push would allocate, without the growth path.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(item) = seq.next_element_seed(self.child())? {
            items.push(item);
        }
        Ok(Node::new(Value::Seq(items), Pos::default()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<Entry> = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(self.child())?;
            entries.push(Entry {
                key,
                key_pos: Pos::default(),
                value,
            });
        }
        keep_last_of_each_key(&mut entries);
        Ok(Node::new(Value::Map(entries), Pos::default()))
    }
}

/// Reads a mapping key into a [`Text`] (inline when short: no allocation).
pub(crate) struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = Text;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed {
    type Value = Text;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text, E> {
        Ok(Text::new(s))
    }
}

/// Drops every entry whose key comes again later in the mapping (the last one wins, as in JSON
/// decoders). Linear for the small mappings manifests are made of, hashed for large ones, so a
/// hostile body of many keys costs O(n).
pub(crate) fn keep_last_of_each_key(entries: &mut Vec<Entry>) {
    const SMALL: usize = 16;
    let same = |a: &Entry, b: &Entry| a.key.len() == b.key.len() && a.key == b.key;
    let has_duplicates = if entries.len() < 2 {
        false
    } else if entries.len() <= SMALL {
        entries.iter().enumerate().any(|(i, e)| {
            entries
                .get(i + 1..)
                .is_some_and(|rest| rest.iter().any(|later| same(e, later)))
        })
    } else {
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        !entries.iter().all(|e| seen.insert(&*e.key))
    };
    if !has_duplicates {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    let mut kept: Vec<Entry> = entries
        .drain(..)
        .rev()
        .filter(|e| seen.insert(e.key.clone()))
        .collect();
    kept.reverse();
    *entries = kept;
}
