//! The manifest model: YAML (and JSON, which is YAML) parsed once into a tree in which every
//! node keeps its line and column, so any finding can point at the field it is about.
//!
//! The event parser is `granit-parser` (chosen by measurement, see `docs/yaml-parser.md`); this
//! module only builds the tree from its events, iteratively (no recursion on input depth), and
//! adds what Kubernetes needs and the parser does not do: scalar resolution as the API server's
//! YAML library does it, duplicate-key errors naming both lines, merge keys, and a budget on
//! alias expansion so an alias bomb is an error, not an out-of-memory kill.

use std::collections::HashMap;

use granit_parser::{Event, Options, Parser, ScalarStyle};

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

fn to_json(node: &Node) -> serde_json::Value {
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
struct NodeVisitor {
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
struct KeySeed;

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
fn keep_last_of_each_key(entries: &mut Vec<Entry>) {
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

/// A non-empty document of a source, numbered from 0 within its file (items of a `kind: List`
/// count as documents; empty documents are not counted).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The document number within its file.
    pub index: usize,
    /// The root node.
    pub root: Node,
}

/// An error met while loading a source, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    /// 1-based line (0 when the error concerns the whole input).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub col: u32,
    /// What is wrong.
    pub message: String,
}

/// Limits that keep loading bounded whatever the input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most nodes one source may expand to (aliases included).
    pub max_nodes: usize,
    /// Deepest nesting, aliases included.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nodes: 4_000_000,
            max_depth: 200,
        }
    }
}

/// What loading one source produced: the documents read before any error, and the error.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Documents in source order (List items spliced in).
    pub documents: Vec<Document>,
    /// Errors (loading stops at a syntax error, so there is at most one of those, but
    /// a `List` with a bad item adds one per bad item).
    pub errors: Vec<LoadError>,
}

/// Loads every document of a YAML or JSON text.
pub fn load(text: &str) -> Loaded {
    load_with(text, Limits::default())
}

/// Loads a byte buffer: a text that is not UTF-8 is reported at the line of the first bad byte.
pub fn load_bytes(bytes: &[u8]) -> Loaded {
    match std::str::from_utf8(bytes) {
        Ok(text) => load(text),
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let col = good.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            Loaded {
                documents: Vec::new(),
                errors: vec![LoadError {
                    line: clamp(line),
                    col: clamp(col),
                    message: format!(
                        "input is not UTF-8 text (invalid byte at offset {}); is it a binary file?",
                        e.valid_up_to()
                    ),
                }],
            }
        }
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn pos_of(m: &granit_parser::Marker) -> Pos {
    Pos {
        line: clamp(m.line()),
        col: clamp(m.col() + 1),
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<Entry>,
        merges: Vec<Node>,
        pending: Option<(Text, Pos, bool)>,
        pos: Pos,
        anchor: usize,
    },
}

struct Anchored {
    node: Node,
    size: usize,
    depth: usize,
}

struct Builder {
    limits: Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    nodes: usize,
    root: Option<Node>,
    /// Errors that spoil the current document but not the parse (duplicate keys).
    soft: Vec<LoadError>,
}

/// Loads every document of a text under the given limits.
pub fn load_with(text: &str, limits: Limits) -> Loaded {
    let mut out = Loaded::default();
    let mut opts = Options::default();
    opts.block_nesting_limit = limits.max_depth;
    opts.flow_nesting_limit = limits.max_depth;
    let mut parser = Parser::new_from_str_with_options(text, opts);
    let mut b = Builder {
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        soft: Vec::new(),
    };
    let mut index = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ev) => ev,
            Err(e) => {
                out.errors.append(&mut b.soft);
                let p = pos_of(e.marker());
                out.errors.push(LoadError {
                    line: p.line,
                    col: p.col,
                    message: format!("YAML syntax error: {}", e.info()),
                });
                return out;
            }
        };
        let pos = pos_of(&span.start);
        let res = match event {
            Event::StreamStart | Event::StreamEnd => Ok(()),
            Event::DocumentStart(..) => {
                b.stack.clear();
                b.root = None;
                b.anchors.clear();
                Ok(())
            }
            Event::DocumentEnd => {
                let root = b.root.take();
                if b.soft.is_empty() {
                    if let Some(root) = root {
                        push_document(root, &mut index, &mut out);
                    }
                } else {
                    // The document is invalid (as the API server would find it): report it,
                    // count it, and go on with the next one.
                    out.errors.append(&mut b.soft);
                    index += 1;
                }
                Ok(())
            }
            Event::Alias(id) => b.alias(id, pos),
            Event::Scalar(text, style, anchor, tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let tag_suffix = tag.as_ref().map(|t| t.suffix());
                let value = resolve_scalar(&text, plain, tag_suffix);
                b.complete(Node::new(value, pos), anchor, Some((text.as_ref(), plain)))
            }
            Event::SequenceStart(_, anchor, _) => b.open(
                Frame::Seq {
                    items: Vec::new(),
                    pos,
                    anchor,
                },
                pos,
            ),
            Event::MappingStart(_, anchor, _) => b.open(
                Frame::Map {
                    entries: Vec::new(),
                    merges: Vec::new(),
                    pending: None,
                    pos,
                    anchor,
                },
                pos,
            ),
            Event::SequenceEnd | Event::MappingEnd => b.close(),
            _ => Ok(()),
        };
        if let Err(e) = res {
            out.errors.append(&mut b.soft);
            out.errors.push(e);
            return out;
        }
    }
    out
}

fn push_document(root: Node, index: &mut usize, out: &mut Loaded) {
    if matches!(root.value, Value::Null) {
        return;
    }
    let is_list = root
        .get("kind")
        .and_then(Node::as_str)
        .is_some_and(|k| k == "List" || (k.ends_with("List") && root.get("items").is_some()))
        && root.get("items").is_some_and(|i| i.as_seq().is_some());
    if is_list {
        let Value::Map(entries) = root.value else {
            return;
        };
        for e in entries {
            if &*e.key != "items" {
                continue;
            }
            if let Value::Seq(items) = e.value.value {
                for item in items {
                    if item.as_map().is_some() {
                        out.documents.push(Document {
                            index: *index,
                            root: item,
                        });
                    } else if !matches!(item.value, Value::Null) {
                        out.errors.push(LoadError {
                            line: item.pos.line,
                            col: item.pos.col,
                            message: format!(
                                "List item {} is a {}, not an object",
                                *index,
                                item.type_name()
                            ),
                        });
                    }
                    *index += 1;
                }
            }
        }
        return;
    }
    out.documents.push(Document {
        index: *index,
        root,
    });
    *index += 1;
}

impl Builder {
    fn err(pos: Pos, message: String) -> LoadError {
        LoadError {
            line: pos.line,
            col: pos.col,
            message,
        }
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), LoadError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(Self::err(
                pos,
                format!(
                    "document expands to more than {} nodes (an alias bomb?); refusing to load it",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), LoadError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(Self::err(
                pos,
                format!("nesting deeper than {} levels", self.limits.max_depth),
            ));
        }
        self.count(1, pos)?;
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) -> Result<(), LoadError> {
        match self.stack.pop() {
            Some(Frame::Seq { items, pos, anchor }) => {
                self.complete(Node::new(Value::Seq(items), pos), anchor, None)
            }
            Some(Frame::Map {
                mut entries,
                merges,
                pos,
                anchor,
                ..
            }) => {
                for merged in merges {
                    let sources: Vec<Node> = match merged.value {
                        Value::Map(_) => vec![merged],
                        Value::Seq(items) => items,
                        _ => {
                            return Err(Self::err(
                                merged.pos,
                                "merge key `<<` needs a mapping or a list of mappings".into(),
                            ))
                        }
                    };
                    for src in sources {
                        let Value::Map(src_entries) = src.value else {
                            return Err(Self::err(
                                src.pos,
                                "merge key `<<` needs a mapping or a list of mappings".into(),
                            ));
                        };
                        for e in src_entries {
                            if !entries.iter().any(|x| x.key == e.key) {
                                entries.push(e);
                            }
                        }
                    }
                }
                self.complete(Node::new(Value::Map(entries), pos), anchor, None)
            }
            None => Ok(()),
        }
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), LoadError> {
        let Some(a) = self.anchors.get(&id) else {
            return Err(Self::err(pos, "alias to an unknown anchor".into()));
        };
        if self.stack.len() + a.depth > self.limits.max_depth {
            return Err(Self::err(
                pos,
                format!("alias expands deeper than {} levels", self.limits.max_depth),
            ));
        }
        let size = a.size;
        self.count(size, pos)?;
        let node = self
            .anchors
            .get(&id)
            .map(|a| a.node.clone())
            .unwrap_or_else(|| Node::new(Value::Null, pos));
        self.complete(node, 0, None)
    }

    /// Adds a finished node to its parent (or makes it the document root).
    fn complete(
        &mut self,
        node: Node,
        anchor: usize,
        scalar_key: Option<(&str, bool)>,
    ) -> Result<(), LoadError> {
        if scalar_key.is_some() {
            self.count(1, node.pos)?;
        }
        if anchor > 0 {
            let (size, depth) = measure(&node);
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    size,
                    depth,
                },
            );
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                merges,
                pending,
                ..
            }) => match pending.take() {
                None => {
                    let Some((text, plain)) = scalar_key else {
                        // A key that is a collection or an alias.
                        let key = match &node.value {
                            Value::Str(s) => s.clone(),
                            Value::Int(i) => i.to_string().into(),
                            Value::Bool(b) => b.to_string().into(),
                            _ => {
                                return Err(Self::err(
                                    node.pos,
                                    format!(
                                        "a {} cannot be a mapping key in a Kubernetes object",
                                        node.type_name()
                                    ),
                                ))
                            }
                        };
                        *pending = Some((key, node.pos, false));
                        return Ok(());
                    };
                    let is_merge = plain && text == "<<";
                    *pending = Some((text.into(), node.pos, is_merge));
                    Ok(())
                }
                Some((key, key_pos, is_merge)) => {
                    if is_merge {
                        merges.push(node);
                        return Ok(());
                    }
                    if let Some(first) = entries.iter().find(|e| e.key == key) {
                        self.soft.push(Self::err(
                            key_pos,
                            format!(
                                "duplicate key \"{}\" at line {} (first defined at line {}); \
                                 Kubernetes strict decoding rejects this",
                                key, key_pos.line, first.key_pos.line
                            ),
                        ));
                        return Ok(());
                    }
                    entries.push(Entry {
                        key,
                        key_pos,
                        value: node,
                    });
                    Ok(())
                }
            },
        }
    }
}

/// Size (node count) and depth of a tree, iteratively.
fn measure(node: &Node) -> (usize, usize) {
    let mut size = 0usize;
    let mut depth = 0usize;
    let mut work: Vec<(&Node, usize)> = vec![(node, 1)];
    while let Some((n, d)) = work.pop() {
        size += 1;
        depth = depth.max(d);
        match &n.value {
            Value::Seq(items) => work.extend(items.iter().map(|i| (i, d + 1))),
            Value::Map(entries) => work.extend(entries.iter().map(|e| (&e.value, d + 1))),
            _ => {}
        }
    }
    (size, depth)
}

/// Resolves a scalar the way the Kubernetes API server's YAML library (YAML 1.1 flavoured
/// `go-yaml`) does for plain scalars: `yes`/`no`/`on`/`off` are booleans, `~` is null, numbers
/// are numbers; quoted and block scalars are always strings.
fn resolve_scalar(text: &str, plain: bool, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::Str(text.into()),
        Some("null") => return Value::Null,
        _ => {}
    }
    if !plain {
        return Value::Str(text.into());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes().first().copied().unwrap_or(b'a');
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Some(i) = parse_int(text) {
            return Value::Int(i);
        }
        if looks_like_float(text) {
            if let Ok(f) = text.parse::<f64>() {
                return Value::Float(f);
            }
        }
    }
    Value::Str(text.into())
}

fn parse_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let body_clean: String;
    let body = if body.contains('_') {
        body_clean = body.replace('_', "");
        body_clean.as_str()
    } else {
        body
    };
    let v = if let Some(hex) = body.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = body.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit()) {
        i64::from_str_radix(body, 8).ok()?
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn looks_like_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    let mut digits = 0;
    let mut dots = 0;
    for b in t.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            b'e' | b'E' | b'-' | b'+' => {}
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

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
        // The document after the bad one is still read, and keeps its number.
        assert_eq!(l.documents.len(), 1);
        assert_eq!(l.documents[0].index, 1);
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
        let l = load("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n");
        let m = l.documents[0].root.get("m").unwrap();
        assert_eq!(m.get("x").unwrap().value, Value::Int(1));
        assert_eq!(m.get("y").unwrap().value, Value::Int(3));
    }

    #[test]
    fn non_utf8_is_reported_with_line() {
        let l = load_bytes(b"a: 1\nb: \xff\xfe\n");
        assert_eq!(l.errors[0].line, 2);
    }
}
