//! Parsing a response body into only the JSON values a profile reads.
//!
//! classify reads a dozen small fields; a scrape response is mostly one large `content` string.
//! Building a whole `serde_json::Value` allocates and copies every key and string only to drop them.
//! Here the keys on the way to a wanted value are followed, the wanted values are built as `Value`s,
//! and everything else is checked and dropped on the spot.
//!
//! Acceptance is exactly `serde_json::from_slice::<Value>`'s: every value goes through the same
//! `deserialize_any` of the same deserializer (skipped strings are still checked as UTF-8, skipped
//! numbers still parsed, the nesting limit still applies), only the visitor differs. Lookups along
//! the wanted pointers find what they would find in the whole `Value`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Most pointers one parse follows; a profile wanting more gets the whole `Value` instead.
const MAX_PATHS: usize = 64;

/// Parse `body`, keeping the values at `paths` (unescaped pointer tokens) and the objects on the way
/// to them. `None` exactly when `serde_json::from_slice::<Value>(body)` fails.
pub(crate) fn parse(body: &[u8], paths: &[&[String]]) -> Option<Value> {
    if paths.len() > MAX_PATHS || paths.iter().any(|tokens| tokens.is_empty()) {
        // An empty pointer wants the whole document.
        return serde_json::from_slice(body).ok();
    }
    let wanted = if paths.len() == MAX_PATHS {
        u64::MAX
    } else {
        (1u64 << paths.len()) - 1
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Wanted {
        paths,
        wanted,
        depth: 0,
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// A value some paths pass through: `wanted` has a bit for each path in `paths` that continues
/// below this value, whose token at `depth` names the next step.
#[derive(Clone, Copy)]
struct Wanted<'p> {
    paths: &'p [&'p [String]],
    wanted: u64,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Wanted<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.wanted == 0 {
            deserializer.deserialize_any(Skip)?;
            return Ok(Value::Null);
        }
        deserializer.deserialize_any(self)
    }
}

impl Wanted<'_> {
    /// The paths that continue through `key`, and whether one of them ends there.
    fn through(&self, key: &str) -> (u64, bool) {
        let mut through = 0;
        let mut ends = false;
        let mut rest = self.wanted;
        while rest != 0 {
            let index = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let tokens = self.paths[index];
            if tokens.get(self.depth).is_some_and(|token| token == key) {
                through |= 1 << index;
                ends |= tokens.len() == self.depth + 1;
            }
        }
        (through, ends)
    }
}

impl<'de> Visitor<'de> for Wanted<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let (through, ends) = self.through(&key);
            if through == 0 {
                map.next_value_seed(Skip)?;
                continue;
            }
            let value = if ends {
                // A wanted value: whole, whatever it holds.
                map.next_value::<Value>()?
            } else {
                map.next_value_seed(Wanted {
                    wanted: through,
                    depth: self.depth + 1,
                    ..self
                })?
            };
            // A repeated key replaces the earlier one, as in a whole `Value`.
            kept.insert(key.into_owned(), value);
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // A pointer may index an array; arrays on a wanted path are rare, so they are kept whole.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    // A pointer cannot step into a scalar, so what it holds does not matter.
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// An object key, borrowed from the body when it has no escapes. Read with `deserialize_str`, as
/// `Value` reads its keys.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

/// A value nobody reads: parsed and checked like any other (unlike `IgnoredAny`, which does not
/// check a skipped string's UTF-8 or a skipped number's range), then dropped without allocating.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Key)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
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

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::provider::field::json_at;

    fn tokens(pointer: &str) -> Vec<String> {
        pointer
            .split('/')
            .skip(1)
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect()
    }

    /// Every pointer reads the same from the subset as from the whole `Value`.
    fn agrees(body: &[u8], pointers: &[&str]) {
        let owned: Vec<Vec<String>> = pointers.iter().map(|pointer| tokens(pointer)).collect();
        let paths: Vec<&[String]> = owned.iter().map(Vec::as_slice).collect();
        let whole = serde_json::from_slice::<Value>(body).ok();
        let subset = parse(body, &paths);
        assert_eq!(
            whole.is_some(),
            subset.is_some(),
            "{}",
            String::from_utf8_lossy(body)
        );
        if let (Some(whole), Some(subset)) = (whole, subset) {
            for (pointer, tokens) in pointers.iter().zip(&owned) {
                assert_eq!(
                    whole.pointer(pointer),
                    json_at(&subset, tokens),
                    "{pointer} in {}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    const POINTERS: &[&str] = &[
        "/success",
        "/code",
        "/data/status_code",
        "/data/billing/charged",
        "/billing",
        "/billing/charged",
        "/list/1",
        "/list/01",
        "/a~1b",
        "/m~0n",
        "/",
        "/deep/x/y/z",
        "/data/1",
        "/1/data",
        "/data/billing",
    ];

    #[test]
    fn reads_what_the_whole_value_reads() {
        let body = json!({
            "success": true,
            "code": null,
            "data": {"status_code": 404, "content": "<p>big</p>", "billing": {"charged": 0.5}},
            "billing": {"charged": 1, "extra": [1, 2, {"x": "y"}]},
            "list": ["a", {"b": 2}],
            "a/b": "slash",
            "m~n": "tilde",
            "": "empty key",
            "deep": {"x": 3},
        });
        agrees(body.to_string().as_bytes(), POINTERS);
        for body in [
            &b"[1, 2]"[..],
            b"\"text\"",
            b"12",
            b"null",
            b"{}",
            b"{\"data\": [1]}",
            b"{\"data\": \"not an object\"}",
            b"{\"success\": 1, \"success\": 2}",
            b"{\"data\": {\"status_code\": 1}, \"data\": {}}",
            b"{\"d\\u0061ta\": {\"status_code\": 7}}",
        ] {
            agrees(body, POINTERS);
        }
        assert_eq!(
            parse(b"{\"n\": 1.5e3}", &[&tokens("/n")]),
            Some(json!({"n": 1500.0}))
        );
    }

    #[test]
    fn rejects_what_the_whole_value_rejects_even_in_skipped_parts() {
        for body in [
            &b""[..],
            b"{",
            b"{\"success\": true",
            b"{\"success\": true} trailing",
            b"{\"skipped\": \"\xff\"}",
            b"{\"skipped\": \"\\ud800\"}",
            b"{\"skipped\": 1e400}",
            b"{\"skipped\": \"tab\there\"}",
            b"{\"skipped\": tru}",
            b"{\"sk\xffipped\": 1}",
            b"<!DOCTYPE html>",
            b"\xff\xfe",
        ] {
            agrees(body, POINTERS);
        }
        let deep = format!("{{\"skipped\": {}{}}}", "[".repeat(200), "]".repeat(200));
        agrees(deep.as_bytes(), POINTERS);
        let deep = format!("{{\"data\": {}{}}}", "[".repeat(127), "]".repeat(127));
        agrees(deep.as_bytes(), POINTERS);
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("data".to_owned()),
            Just("billing".to_owned()),
            Just("charged".to_owned()),
            Just("status_code".to_owned()),
            Just("success".to_owned()),
            Just("1".to_owned()),
            ".{0,4}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON, cut short or with one byte changed, reads and fails the same both ways.
        #[test]
        fn agrees_with_the_whole_value_on_any_body(
            value in any_json(),
            cut in any::<prop::sample::Index>(),
            flip in any::<Option<(prop::sample::Index, u8)>>(),
        ) {
            let mut body = value.to_string().into_bytes();
            agrees(&body, POINTERS);
            if let Some((at, byte)) = flip {
                let at = at.index(body.len());
                body[at] = byte;
                agrees(&body, POINTERS);
            }
            agrees(&body[..cut.index(body.len() + 1)], POINTERS);
        }
    }

    #[test]
    fn no_paths_or_the_whole_document() {
        agrees(b"{\"a\": 1}", &[]);
        let whole = parse(b"{\"a\": [1]}", &[&[]]);
        assert_eq!(whole, Some(json!({"a": [1]})));
    }
}
