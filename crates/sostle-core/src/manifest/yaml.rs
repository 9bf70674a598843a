//! YAML streams into documents: the tree built iteratively from `granit-parser`'s events (no
//! recursion on input depth), duplicate keys named with both lines, merge keys, and a budget on
//! alias expansion.

use std::collections::HashMap;

use granit_parser::{Event, Options, Parser, ScalarStyle};

use super::node::{Entry, Node, Pos, Text, Value};
use super::scalar::resolve_scalar;

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

pub(crate) fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn pos_of(m: &granit_parser::Marker) -> Pos {
    Pos {
        line: clamp(m.line()),
        col: clamp(m.col() + 1),
    }
}

pub(crate) enum Frame {
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

pub(crate) struct Anchored {
    node: Node,
    size: usize,
    depth: usize,
}

pub(crate) struct Builder {
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

pub(crate) fn push_document(root: Node, index: &mut usize, out: &mut Loaded) {
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
pub(crate) fn measure(node: &Node) -> (usize, usize) {
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
