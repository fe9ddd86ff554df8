//! Direct extraction: when every path a plan reads is literal keys and positions
//! (`user.address.city`, `rooms[1].temp`), one parse of a body puts each path's value straight
//! into a slot of its own, as the expression value it reads as: no tree in between, no copy of
//! the keys on the way. Anything this cannot answer alike — a path that is missing or meets the
//! wrong shape, a key that repeats, text that is not JSON — says "not here", and the caller
//! takes the sparse tree's way, which gives the answer or the error it always gave.

use std::sync::Arc;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::json_path::{DottedPath, Segment};
use super::value::Value;

/// Where each planned path's value goes, and the tree of keys and positions leading there.
#[derive(Debug, Default, Clone)]
pub struct Slots {
    /// Each planned path (the expression's own, compared by pointer) and its slot.
    paths: Vec<(Arc<DottedPath>, usize)>,
    root: SlotNode,
    count: usize,
}

#[derive(Debug, Default, Clone)]
struct SlotNode {
    /// The slot of the path that ends here.
    slot: Option<usize>,
    keys: Vec<(String, SlotNode)>,
    positions: Vec<(usize, SlotNode)>,
}

impl SlotNode {
    fn child(&mut self, segment: &Segment) -> Option<&mut SlotNode> {
        match segment {
            Segment::Key(key) => {
                let at = match self.keys.iter().position(|(k, _)| k == key) {
                    Some(at) => at,
                    None => {
                        self.keys.push((key.clone(), SlotNode::default()));
                        self.keys.len() - 1
                    }
                };
                Some(&mut self.keys[at].1)
            }
            Segment::Index(index) => {
                let index = usize::try_from(*index).ok()?;
                let at = match self.positions.iter().position(|(p, _)| *p == index) {
                    Some(at) => at,
                    None => {
                        self.positions.push((index, SlotNode::default()));
                        self.positions.len() - 1
                    }
                };
                Some(&mut self.positions[at].1)
            }
            Segment::Wildcard => None,
        }
    }

    fn is_leaf(&self) -> bool {
        self.keys.is_empty() && self.positions.is_empty()
    }
}

impl Slots {
    /// Slots for `paths`, if every one is literal keys and non-negative positions and none
    /// runs through another's end (that one's value would be a whole subtree).
    pub fn plan(paths: &[Arc<DottedPath>]) -> Option<Slots> {
        let mut slots = Slots::default();
        for path in paths {
            let mut node = &mut slots.root;
            for segment in &path.segments {
                if node.slot.is_some() {
                    return None;
                }
                node = node.child(segment)?;
            }
            if !node.is_leaf() {
                return None;
            }
            let slot = match node.slot {
                Some(slot) => slot,
                None => {
                    let slot = slots.count;
                    slots.count += 1;
                    node.slot = Some(slot);
                    slot
                }
            };
            slots.paths.push((path.clone(), slot));
        }
        (slots.count > 0).then_some(slots)
    }

    /// The slot of a planned path (the same path object the plan was made from).
    pub fn slot_of(&self, path: &Arc<DottedPath>) -> Option<usize> {
        self.paths
            .iter()
            .find(|(planned, _)| Arc::ptr_eq(planned, path))
            .map(|(_, slot)| *slot)
    }

    /// Parses `text` once and fills every slot a path reaches. `None` when the answer might
    /// differ from the tree's: the text is not JSON, or a key it reads repeats in an object.
    pub fn fill(&self, text: &str) -> Option<Vec<Option<Value>>> {
        let mut values = vec![None; self.count];
        let mut repeated = false;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let seed = SlotSeed {
            node: &self.root,
            values: &mut values,
            repeated: &mut repeated,
        };
        seed.deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        (!repeated).then_some(values)
    }
}

struct SlotSeed<'a> {
    node: &'a SlotNode,
    values: &'a mut Vec<Option<Value>>,
    repeated: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for SlotSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.node.slot {
            Some(slot) => {
                let value = deserializer.deserialize_any(DirectValue)?;
                if let Some(place) = self.values.get_mut(slot) {
                    *place = Some(value);
                }
                Ok(())
            }
            None => deserializer.deserialize_any(self),
        }
    }
}

/// Walks a node on the way to slots: scalars there fill nothing (the tree's way then names
/// the wrong shape).
impl<'de> Visitor<'de> for SlotSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Room for every wanted key once: growing it took `realloc`s, a lock on glibc's arena.
        let mut seen: Vec<usize> = Vec::with_capacity(self.node.keys.len());
        while let Some(wanted) = map.next_key_seed(KeyMatch(self.node))? {
            match wanted {
                Some(at) => {
                    if seen.contains(&at) {
                        *self.repeated = true;
                    }
                    seen.push(at);
                    map.next_value_seed(SlotSeed {
                        node: &self.node.keys[at].1,
                        values: &mut *self.values,
                        repeated: &mut *self.repeated,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut position = 0usize;
        loop {
            let child = self
                .node
                .positions
                .iter()
                .find(|(p, _)| *p == position)
                .map(|(_, child)| child);
            let more = match child {
                Some(node) => seq
                    .next_element_seed(SlotSeed {
                        node,
                        values: &mut *self.values,
                        repeated: &mut *self.repeated,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            position += 1;
        }
    }
}

/// An object key: the position of the child it leads to, if a path goes there.
struct KeyMatch<'a>(&'a SlotNode);

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.keys.iter().position(|(k, _)| k == key))
    }
}

/// A JSON value as the expression value `Value::from_json` makes of it, without the
/// `serde_json::Value` in between for text, numbers and the rest of the scalars.
struct DirectValue;

impl<'de> Visitor<'de> for DirectValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        // As `serde_json::Value` keeps it: a number that is not finite is `null`.
        Ok(if n.is_finite() {
            Value::Number(n)
        } else {
            Value::Null
        })
    }

    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::text(text))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    // Lists and objects become the tree `Value::from_json` reads them from.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            items.push(item);
        }
        Ok(Value::from_json(&serde_json::Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            object.insert(key, value);
        }
        Ok(Value::Object(Arc::new(serde_json::Value::Object(object))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(texts: &[&str]) -> Vec<Arc<DottedPath>> {
        texts
            .iter()
            .map(|t| {
                Arc::new(DottedPath::parse(t).unwrap_or_else(|e| panic!("{t}: {}", e.message)))
            })
            .collect()
    }

    #[test]
    fn only_literal_paths_that_end_apart_take_slots() {
        assert!(Slots::plan(&paths(&["a.b", "a.c[2]", "d"])).is_some());
        // The same path twice shares a slot.
        let twice = paths(&["a.b", "a.b"]);
        let slots = Slots::plan(&twice).unwrap_or_default();
        assert_eq!(slots.slot_of(&twice[0]), slots.slot_of(&twice[1]));
        assert_eq!(slots.count, 1);
        for refused in [
            &["a[*].b"][..],
            &["a[-1]"],
            &["a", "a.b"],
            &["a.b", "a"],
            &[],
        ] {
            assert!(Slots::plan(&paths(refused)).is_none(), "{refused:?}");
        }
        // A path the plan was not made from has no slot, even when it reads the same.
        let planned = paths(&["a.b"]);
        let slots = Slots::plan(&planned).unwrap_or_default();
        assert_eq!(slots.slot_of(&paths(&["a.b"])[0]), None);
    }

    #[test]
    fn one_parse_fills_what_the_paths_reach() {
        let planned = paths(&["user.name", "rooms[1].temp", "missing", "user.tags"]);
        let slots = Slots::plan(&planned).unwrap_or_default();
        let body = r#"{"user":{"name":"ann","tags":["x",1]},"rooms":[{"temp":1},{"temp":22.5}],"noise":[{"a":{"b":[1,2]}}]}"#;
        let values = slots.fill(body).unwrap_or_default();
        let at = |n: usize| slots.slot_of(&planned[n]).and_then(|s| values[s].clone());
        assert_eq!(at(0), Some(Value::text("ann")));
        assert_eq!(at(1), Some(Value::Number(22.5)));
        assert_eq!(at(2), None);
        assert_eq!(at(3), Some(Value::from_json(&serde_json::json!(["x", 1]))));
        // Not JSON, or a key read twice: the tree answers instead.
        assert!(slots.fill(r#"{"user":{"name":"ann"}"#).is_none());
        assert!(slots
            .fill(r#"{"user":{"name":"a"},"user":{"name":"b"}}"#)
            .is_none());
        assert!(slots.fill(r#"{"user":{"name":"a"}} x"#).is_none());
    }
}
