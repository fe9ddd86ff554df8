//! Dotted JSON paths (`user.emails[0]`, `rooms[*].temp`, `data["odd key"]`): parsing, navigation,
//! and the one-pass sparse extraction that keeps only the parts of a body that paths need.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::EvalErrorKind;
use super::value::Value;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(i64),
    Wildcard,
}

/// A parsed dotted path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DottedPath {
    pub segments: Vec<Segment>,
}

impl fmt::Display for DottedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, &self.segments)
    }
}

fn write_prefix(f: &mut impl fmt::Write, segments: &[Segment]) -> fmt::Result {
    for (position, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Key(key) if is_plain_key(key) => {
                if position > 0 {
                    f.write_char('.')?;
                }
                f.write_str(key)?;
            }
            Segment::Key(key) => write!(f, "[{key:?}]")?,
            Segment::Index(i) => write!(f, "[{i}]")?,
            Segment::Wildcard => f.write_str("[*]")?,
        }
    }
    Ok(())
}

fn prefix_text(segments: &[Segment]) -> String {
    let mut text = String::new();
    let _ = write_prefix(&mut text, segments);
    if text.is_empty() {
        text.push_str("(root)");
    }
    text
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '@' || c == '$')
}

/// A path that could not be parsed, with the byte offset of the problem inside the path text.
#[derive(Debug, Clone, PartialEq)]
pub struct PathError {
    pub message: String,
    pub offset: usize,
}

impl DottedPath {
    /// Parses `a.b[2].c`, `a["odd.key"]`, `a."odd key"`, `list[-1]` and `list[*].x`.
    pub fn parse(text: &str) -> Result<DottedPath, PathError> {
        let bytes = text.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        let error = |message: &str, offset: usize| PathError {
            message: message.to_string(),
            offset,
        };
        if text.is_empty() {
            return Ok(DottedPath { segments });
        }
        let mut expect_key = true;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    if expect_key {
                        return Err(error("empty key in path", i));
                    }
                    expect_key = true;
                    i += 1;
                    if i == bytes.len() {
                        return Err(error("path ends with `.`", i - 1));
                    }
                }
                b'[' => {
                    let close = text[i..]
                        .find(']')
                        .map(|p| p + i)
                        .ok_or_else(|| error("`[` without `]`", i))?;
                    let inner = text[i + 1..close].trim();
                    let segment = if inner == "*" {
                        Segment::Wildcard
                    } else if let Some(quoted) = unquote(inner) {
                        Segment::Key(quoted)
                    } else {
                        Segment::Index(inner.parse::<i64>().map_err(|_| {
                            error(
                                "an index must be a whole number, `*` or a quoted key",
                                i + 1,
                            )
                        })?)
                    };
                    segments.push(segment);
                    i = close + 1;
                    expect_key = false;
                }
                b'"' | b'\'' => {
                    let quote = bytes[i];
                    let close = text[i + 1..]
                        .find(quote as char)
                        .map(|p| p + i + 1)
                        .ok_or_else(|| error("unclosed quoted key", i))?;
                    segments.push(Segment::Key(text[i + 1..close].to_string()));
                    i = close + 1;
                    expect_key = false;
                }
                _ => {
                    if !expect_key {
                        return Err(error("expected `.` or `[` between keys", i));
                    }
                    let end = text[i..]
                        .find(['.', '['])
                        .map(|p| p + i)
                        .unwrap_or(text.len());
                    segments.push(Segment::Key(text[i..end].to_string()));
                    i = end;
                    expect_key = false;
                }
            }
        }
        Ok(DottedPath { segments })
    }

    /// Follows the path through a JSON tree; a wildcard maps the rest of the path over a list.
    pub fn select(&self, root: &serde_json::Value) -> Result<Value, EvalErrorKind> {
        select_from(root, &self.segments, 0)
    }
}

fn unquote(inner: &str) -> Option<String> {
    let first = inner.chars().next()?;
    if (first == '"' || first == '\'') && inner.len() >= 2 && inner.ends_with(first) {
        Some(inner[1..inner.len() - 1].to_string())
    } else {
        None
    }
}

fn json_type(node: &serde_json::Value) -> &'static str {
    match node {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "text",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn select_from(
    node: &serde_json::Value,
    segments: &[Segment],
    depth: usize,
) -> Result<Value, EvalErrorKind> {
    let Some(segment) = segments.get(depth) else {
        return Ok(Value::from_json(node));
    };
    let here = || prefix_text(&segments[..depth]);
    match (segment, node) {
        (Segment::Key(key), serde_json::Value::Object(map)) => match map.get(key) {
            Some(child) => select_from(child, segments, depth + 1),
            None => Err(EvalErrorKind::MissingKey {
                path: here(),
                key: key.clone(),
            }),
        },
        (Segment::Index(index), serde_json::Value::Array(items)) => {
            let len = items.len();
            let position = if *index < 0 {
                len as i64 + index
            } else {
                *index
            };
            match usize::try_from(position).ok().and_then(|p| items.get(p)) {
                Some(child) => select_from(child, segments, depth + 1),
                None => Err(EvalErrorKind::IndexOutOfRange {
                    path: here(),
                    index: *index,
                    len,
                }),
            }
        }
        (Segment::Wildcard, serde_json::Value::Array(items)) => {
            let selected = items
                .iter()
                .map(|child| select_from(child, segments, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::list(selected))
        }
        (Segment::Wildcard, serde_json::Value::Object(map)) => {
            let selected = map
                .values()
                .map(|child| select_from(child, segments, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::list(selected))
        }
        (Segment::Key(_), other) => Err(EvalErrorKind::WrongJsonShape {
            path: here(),
            expected: "an object",
            found: json_type(other),
        }),
        (_, other) => Err(EvalErrorKind::WrongJsonShape {
            path: here(),
            expected: "a list",
            found: json_type(other),
        }),
    }
}

/// A trie node's children, looked up by a linear scan.
#[derive(Debug, Clone)]
struct Children<K>(Vec<(K, PathTrie)>);

impl<K> Default for Children<K> {
    fn default() -> Self {
        Children(Vec::new())
    }
}

impl<K: PartialEq + Clone> Children<K> {
    fn get<Q>(&self, key: &Q) -> Option<&PathTrie>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0
            .iter()
            .find(|(k, _)| k.borrow() == key)
            .map(|(_, child)| child)
    }

    fn entry(&mut self, key: K) -> &mut PathTrie {
        let position = match self.0.iter().position(|(k, _)| *k == key) {
            Some(position) => position,
            None => {
                self.0.push((key, PathTrie::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[position].1
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &PathTrie)> {
        self.0.iter().map(|(k, child)| (k, child))
    }
}

/// The union of the dotted paths a set of expressions reads from `input`, as a tree.
/// Extraction through it parses a body once and keeps only what those paths reach.
#[derive(Debug, Default, Clone)]
pub struct PathTrie {
    /// The whole subtree below this node is needed.
    whole: bool,
    // Small vectors beat hashing here: a trie node rarely has more than a dozen children.
    keys: Children<String>,
    indexes: Children<usize>,
    /// Applies to every element; merged with `indexes` entries on extraction.
    every: Option<Box<PathTrie>>,
}

impl PathTrie {
    pub fn insert(&mut self, path: &DottedPath) {
        let mut node = self;
        for segment in &path.segments {
            if node.whole {
                return;
            }
            node = match segment {
                Segment::Key(key) => node.keys.entry(key.clone()),
                Segment::Index(i) if *i >= 0 => node.indexes.entry(*i as usize),
                // Negative indexes need the list's length: keep the whole list.
                Segment::Index(_) => {
                    node.mark_whole();
                    return;
                }
                Segment::Wildcard => node.every.get_or_insert_with(Default::default),
            };
        }
        node.mark_whole();
    }

    fn mark_whole(&mut self) {
        self.whole = true;
        self.keys.clear();
        self.indexes.clear();
        self.every = None;
    }

    /// Whether extraction through this trie keeps everything `path` reaches.
    pub fn covers(&self, path: &DottedPath) -> bool {
        let mut node = self;
        for segment in &path.segments {
            if node.whole {
                return true;
            }
            let next = match segment {
                Segment::Key(key) => node.keys.get(key.as_str()),
                Segment::Index(i) if *i >= 0 => {
                    node.indexes.get(&(*i as usize)).or(node.every.as_deref())
                }
                Segment::Index(_) => None,
                Segment::Wildcard => node.every.as_deref(),
            };
            match next {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.whole
    }

    pub fn is_empty(&self) -> bool {
        !self.whole && self.keys.is_empty() && self.indexes.is_empty() && self.every.is_none()
    }

    /// Parses `text` once, keeping only the parts this trie reaches. Skipped list elements
    /// become `null` so positions stay right.
    pub fn extract(&self, text: &str) -> Result<serde_json::Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = self.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    fn element(&self, position: usize) -> Option<Cow<'_, PathTrie>> {
        match (self.indexes.get(&position), self.every.as_deref()) {
            (Some(specific), Some(every)) => {
                let mut merged = every.clone();
                merged.merge(specific);
                Some(Cow::Owned(merged))
            }
            (Some(specific), None) => Some(Cow::Borrowed(specific)),
            (None, Some(every)) => Some(Cow::Borrowed(every)),
            (None, None) => None,
        }
    }

    fn merge(&mut self, other: &PathTrie) {
        if self.whole || other.whole {
            self.mark_whole();
            return;
        }
        for (key, child) in other.keys.iter() {
            self.keys.entry(key.clone()).merge(child);
        }
        for (index, child) in other.indexes.iter() {
            self.indexes.entry(*index).merge(child);
        }
        if let Some(every) = &other.every {
            self.every.get_or_insert_with(Default::default).merge(every);
        }
    }
}

impl<'de> DeserializeSeed<'de> for &PathTrie {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        if self.whole {
            return serde::Deserialize::deserialize(deserializer);
        }
        deserializer.deserialize_any(SparseVisitor(self))
    }
}

struct SparseVisitor<'t>(&'t PathTrie);

struct KeySeed<'t>(&'t PathTrie);

impl<'de, 't> DeserializeSeed<'de> for KeySeed<'t> {
    type Value = Option<(String, &'t PathTrie)>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 't> Visitor<'de> for KeySeed<'t> {
    type Value = Option<(String, &'t PathTrie)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let trie = self.0;
        let wanted = trie.keys.get(key).or(trie.every.as_deref());
        Ok(wanted.map(|child| (key.to_string(), child)))
    }
}

macro_rules! keep_scalar {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method<E: serde::de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            Ok(serde_json::Value::from(v))
        })*
    };
}

impl<'de> Visitor<'de> for SparseVisitor<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    keep_scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_str: &str);

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(wanted) = map.next_key_seed(KeySeed(self.0))? {
            match wanted {
                Some((key, child)) => {
                    let value = map.next_value_seed(child)?;
                    kept.insert(key, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(serde_json::Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let trie = self.0;
        let last_wanted = trie.indexes.iter().map(|(i, _)| *i).max();
        let mut kept = Vec::new();
        let mut position = 0usize;
        loop {
            let child = trie.element(position);
            let next = match &child {
                Some(child) => seq.next_element_seed(child.as_ref())?,
                None => seq
                    .next_element::<IgnoredAny>()?
                    .map(|_| serde_json::Value::Null),
            };
            let Some(value) = next else { break };
            // Trailing elements nobody asked for are skipped without placeholders.
            if trie.every.is_some() || last_wanted.is_some_and(|last| position <= last) {
                kept.push(value);
            }
            position += 1;
        }
        Ok(serde_json::Value::Array(kept))
    }
}

/// A shared, immutable extraction plan: the trie plus whether some expression needs the whole
/// tree, and the slots that answer literal paths without the tree (made by `shared`).
#[derive(Debug, Default, Clone)]
pub struct ExtractionPlan {
    pub trie: PathTrie,
    pub needs_whole_tree: bool,
    /// The dotted paths planned, as the expressions hold them.
    paths: Vec<Arc<DottedPath>>,
    pub(super) slots: Option<super::slots::Slots>,
}

impl ExtractionPlan {
    /// Plans a dotted path an expression reads from `input`.
    pub fn insert(&mut self, path: &Arc<DottedPath>) {
        self.trie.insert(path);
        self.paths.push(path.clone());
    }

    pub fn shared(mut self) -> Arc<ExtractionPlan> {
        self.slots = if self.needs_whole_tree {
            None
        } else {
            super::slots::Slots::plan(&self.paths)
        };
        Arc::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> DottedPath {
        DottedPath::parse(text).unwrap_or_else(|e| panic!("{text}: {}", e.message))
    }

    #[test]
    fn parses_every_segment_form() {
        assert_eq!(
            path(r#"a.b[2]["odd key"].'x.y'[*][-1]"#).segments,
            vec![
                Segment::Key("a".into()),
                Segment::Key("b".into()),
                Segment::Index(2),
                Segment::Key("odd key".into()),
                Segment::Key("x.y".into()),
                Segment::Wildcard,
                Segment::Index(-1),
            ]
        );
    }

    #[test]
    fn rejects_broken_paths_with_offsets() {
        assert_eq!(DottedPath::parse("a..b").map_err(|e| e.offset), Err(2));
        assert_eq!(DottedPath::parse("a[x]").map_err(|e| e.offset), Err(2));
        assert_eq!(DottedPath::parse("a[1").map_err(|e| e.offset), Err(1));
    }

    #[test]
    fn selection_names_the_missing_key() {
        let doc = json!({"user": {"name": "ann"}});
        let error = path("user.email").select(&doc).err();
        assert_eq!(
            error,
            Some(EvalErrorKind::MissingKey {
                path: "user".into(),
                key: "email".into()
            })
        );
    }

    #[test]
    fn sparse_extraction_keeps_only_needed_parts() {
        let mut trie = PathTrie::default();
        trie.insert(&path("user.email"));
        trie.insert(&path("rooms[*].temp"));
        trie.insert(&path("list[2]"));
        let body = r#"{"user":{"email":"a@b","big":[1,2,3]},"rooms":[{"temp":20,"x":1},{"temp":21}],
                      "list":[0,1,2,3,4],"noise":{"deep":[{"a":1}]}}"#;
        let sparse = trie.extract(body).unwrap_or_default();
        assert_eq!(
            sparse,
            json!({"user":{"email":"a@b"},"rooms":[{"temp":20},{"temp":21}],"list":[null,null,2]})
        );
        let full: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        for p in ["user.email", "rooms[*].temp", "list[2]"] {
            assert!(trie.covers(&path(p)));
            assert_eq!(path(p).select(&sparse), path(p).select(&full), "{p}");
        }
        assert!(!trie.covers(&path("user.big")));
    }

    #[test]
    fn sparse_extraction_rejects_invalid_json_anywhere() {
        let mut trie = PathTrie::default();
        trie.insert(&path("a"));
        assert!(trie.extract(r#"{"a":1,"b":[1,2"#).is_err());
        assert!(trie.extract(r#"{"a":1} trailing"#).is_err());
    }
}
