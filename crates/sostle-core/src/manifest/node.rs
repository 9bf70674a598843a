//! The tree: every node with its line and column, scalars resolved, and the conversions to and from
//! `serde_json` values.

/// The text of a key or a string value: inline up to 24 bytes (most Kubernetes keys and many
/// values: `name`, `image`, `IfNotPresent`, `500m`), on the heap beyond — a tree of a manifest
/// is mostly short strings, and one allocation per string was most of the cost of building it.
pub type Text = compact_str::CompactString;

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Pos {
    /// Line, starting at 1.
    pub line: u32,
    /// Column (in characters), starting at 1.
    pub col: u32,
}

/// One entry of a mapping: the key (always a string in Kubernetes) with its own position.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key text.
    pub key: Text,
    /// Where the key starts.
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
}

/// A value of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// A boolean (`true`/`false`, and YAML 1.1's `yes`/`no`/`on`/`off` as Kubernetes reads them).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(Text),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
}

/// A node of the tree with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the node starts in the source.
    pub pos: Pos,
}

impl Node {
    /// A node with the given value at the given position.
    pub fn new(value: Value, pos: Pos) -> Self {
        Node { value, pos }
    }

    /// The entry for `key` when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| &*e.key == key),
            _ => None,
        }
    }

    /// The value at `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// Follows a path of mapping keys.
    pub fn get_path(&self, path: &[&str]) -> Option<&Node> {
        let mut node = self;
        for key in path {
            node = node.get(key)?;
        }
        Some(node)
    }

    /// Position of the deepest key of `path` that exists below this node (the key itself, not
    /// its value), or this node's own position when the first key is missing.
    pub fn locate(&self, path: &[&str]) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for key in path {
            match node.entry(key) {
                Some(e) => {
                    pos = e.key_pos;
                    node = &e.value;
                }
                None => break,
            }
        }
        pos
    }

    /// Position of the deepest existing node on a dotted field path such as
    /// `spec.template.spec.containers[0].image` (keys may themselves hold dots, like
    /// `metadata.annotations.sostle.eose.ca/trendal`: the longest matching key wins).
    pub fn locate_dotted(&self, path: &str) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        let mut rest = path.trim_start_matches('.');
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let Some((idx, tail)) = after.split_once(']') else {
                    break;
                };
                let Some(item) = idx
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| node.as_seq().and_then(|s| s.get(i)))
                else {
                    break;
                };
                pos = item.pos;
                node = item;
                rest = tail.trim_start_matches('.');
                continue;
            }
            let Some(entries) = node.as_map() else { break };
            let best = entries
                .iter()
                .filter(|e| {
                    rest.strip_prefix(&*e.key)
                        .is_some_and(|t| t.is_empty() || t.starts_with('.') || t.starts_with('['))
                })
                .max_by_key(|e| e.key.len());
            let Some(e) = best else { break };
            pos = e.key_pos;
            node = &e.value;
            rest = rest
                .get(e.key.len()..)
                .unwrap_or("")
                .trim_start_matches('.');
        }
        pos
    }

    /// The string value, when this node is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar rendered as text (strings as they are, numbers and booleans in their
    /// canonical form) — how a label or annotation value reads after the API server's
    /// conversion would reject or keep it.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The boolean value, when this node is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The items, when this node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, when this node is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// True for `null` and for empty mappings and sequences.
    pub fn is_empty_value(&self) -> bool {
        match &self.value {
            Value::Null => true,
            Value::Map(e) => e.is_empty(),
            Value::Seq(s) => s.is_empty(),
            _ => false,
        }
    }

    /// The name of this node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }

    /// Converts to a JSON value (positions dropped). Iterative: safe on any depth the loader
    /// accepts.
    pub fn to_json(&self) -> serde_json::Value {
        to_json(self)
    }
}

pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.to_string()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|e| (e.key.to_string(), to_json(&e.value)))
                .collect(),
        ),
    }
}

/// Builds a tree from a JSON value (positions all zero) — for objects that arrive as JSON over
/// the network, such as an AdmissionReview's object.
pub fn from_json(value: &serde_json::Value) -> Node {
    use serde_json::Value as J;
    let pos = Pos::default();
    let v = match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::Str(s.as_str().into()),
        J::Array(items) => Value::Seq(items.iter().map(from_json).collect()),
        J::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Entry {
                    key: k.as_str().into(),
                    key_pos: pos,
                    value: from_json(v),
                })
                .collect(),
        ),
    };
    Node::new(v, pos)
}
