//! Parsing a response body into only the JSON values a profile reads.
//!
//! classify reads a dozen small fields; a scrape response is mostly one large `content` string.
//! Building a whole `serde_json::Value` allocates and copies every key and string only to drop them.
//! Here the keys on the way to a wanted value are followed without building anything, the wanted
//! values are built as `Value`s, and everything else is checked and dropped on the spot.
//!
//! Acceptance is `serde_json::from_slice::<Value>`'s: every value goes through the same
//! `deserialize_any` of the same deserializer (skipped strings are still checked as UTF-8, skipped
//! numbers still parsed, the nesting limit still applies), only the visitor differs. Lookups along
//! the wanted pointers find what they would find in the whole `Value`. One exception, on purpose:
//! with serde_json's `raw_value` feature on (axum turns it on for the whole build), a `Value` parse
//! treats an object whose first key is serde_json's private `$serde_json::private::RawValue` marker
//! specially; here it is an ordinary key, as a provider's JSON means it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::field::json_at;

/// Most pointers one parse follows; a profile wanting more gets the whole `Value` instead.
const MAX_PATHS: usize = 64;

/// Parse `body` and return the value at each of `paths` (unescaped pointer tokens), in order: what
/// `Value::pointer` would find in the whole `Value`. `None` exactly when
/// `serde_json::from_slice::<Value>(body)` fails.
pub(crate) fn parse(body: &[u8], paths: &[&[String]]) -> Option<Vec<Option<Value>>> {
    if paths.len() > MAX_PATHS || paths.iter().any(|tokens| tokens.is_empty()) {
        // An empty pointer wants the whole document.
        let whole = serde_json::from_slice::<Value>(body).ok()?;
        return Some(
            paths
                .iter()
                .map(|tokens| json_at(&whole, tokens).cloned())
                .collect(),
        );
    }
    let mut values = vec![None; paths.len()];
    let wanted = if paths.len() == MAX_PATHS {
        u64::MAX
    } else {
        (1u64 << paths.len()) - 1
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    Wanted {
        paths,
        values: &mut values,
        wanted,
        depth: 0,
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some(values)
}

/// The scalar `visit_*` methods of a visitor whose value is `()`: the deserializer has parsed and
/// checked the scalar; it is dropped.
macro_rules! drop_scalars {
    () => {
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
    };
}

/// A value some paths pass through: `wanted` has a bit for each path in `paths` that continues
/// below this value, whose token at `depth` names the next step. What they find goes to `values`.
struct Wanted<'p, 'v> {
    paths: &'p [&'p [String]],
    values: &'v mut [Option<Value>],
    wanted: u64,
    depth: usize,
}

/// The indices of the set bits.
fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let index = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        Some(index)
    })
}

impl<'de> DeserializeSeed<'de> for Wanted<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.wanted == 0 {
            return deserializer.deserialize_any(Skip);
        }
        deserializer.deserialize_any(self)
    }
}

impl Wanted<'_, '_> {
    /// The paths that continue through `key`, and whether one of them ends there.
    fn through(&self, key: &str) -> (u64, bool) {
        let mut through = 0;
        let mut ends = false;
        for index in bits(self.wanted) {
            let tokens = self.paths[index];
            if tokens.get(self.depth).is_some_and(|token| token == key) {
                through |= 1 << index;
                ends |= tokens.len() == self.depth + 1;
            }
        }
        (through, ends)
    }

    /// Hand each path in `mask` what it finds in `value`, which sits at `depth`.
    fn found_in(&mut self, mask: u64, depth: usize, value: Value) {
        if mask.count_ones() == 1 && self.paths[mask.trailing_zeros() as usize].len() == depth {
            // The common case: one path ends here and takes the value itself.
            self.values[mask.trailing_zeros() as usize] = Some(value);
            return;
        }
        for index in bits(mask) {
            self.values[index] = json_at(&value, &self.paths[index][depth..]).cloned();
        }
    }
}

impl<'de> Visitor<'de> for Wanted<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key)? {
            let (through, ends) = self.through(&key);
            if through == 0 {
                map.next_value_seed(Skip)?;
                continue;
            }
            // A repeated key replaces the earlier value whole, as in a `Value`.
            for index in bits(through) {
                self.values[index] = None;
            }
            if ends {
                // A wanted value: whole, whatever it holds.
                let value = map.next_value::<Value>()?;
                self.found_in(through, self.depth + 1, value);
            } else {
                map.next_value_seed(Wanted {
                    paths: self.paths,
                    values: &mut *self.values,
                    wanted: through,
                    depth: self.depth + 1,
                })?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        // A pointer may index an array; arrays on a wanted path are rare, so they are kept whole.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        self.found_in(self.wanted, self.depth, Value::Array(items));
        Ok(())
    }

    // A pointer cannot step into a scalar: the paths through it find nothing.
    drop_scalars!();
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

    drop_scalars!();
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::provider::field::pointer_tokens as tokens;

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
            for (pointer, found) in pointers.iter().zip(&subset) {
                assert_eq!(
                    whole.pointer(pointer),
                    found.as_ref(),
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
        "/data",
        "/success",
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
            Some(vec![Some(json!(1500.0))])
        );
    }

    #[test]
    fn serde_jsons_private_raw_value_marker_is_an_ordinary_key_here() {
        // The documented exception: a `Value` parse with `raw_value` on rejects the first body and
        // reads the second's string as JSON; a provider means neither.
        let marker = "$serde_json::private::RawValue";
        let body = format!("{{\"{marker}\": 1, \"success\": true}}");
        assert_eq!(
            parse(body.as_bytes(), &[&tokens("/success")]),
            Some(vec![Some(json!(true))])
        );
        let body = format!("{{\"{marker}\": \"{{}}\"}}");
        assert_eq!(
            parse(body.as_bytes(), &[&tokens("/success")]),
            Some(vec![None])
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
        let whole = parse(b"{\"a\": [1]}", &[&[], &tokens("/a/0")]);
        assert_eq!(whole, Some(vec![Some(json!({"a": [1]})), Some(json!(1))]));
    }
}
