//! Where a problem in a profile was written. A profile is merged from layers (the built-in file,
//! then the user's files over it), so the value at fault may come from any of them: the message
//! names the user's file and line when a user's file set it, the built-in file otherwise.

use std::fmt;

use toml::de::{DeTable, DeValue};

use super::check::KeyPath;

/// One file that went into a profile: its name for messages and its text.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub origin: String,
    pub text: String,
}

/// A file, and the line in it when it is known: `…/providers/omniscrape.toml, line 4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        Ok(())
    }
}

/// The place that set the first of `paths` some layer sets, trying the last layer (the user's
/// latest file) first. Tables merge key by key, so a layer sets a path only when it has every key
/// of it; an array or value replaces the earlier one whole, so a layer that has one on the way
/// set everything under it. With no layer setting any path, the last layer is named, lineless.
pub(super) fn locate(layers: &[Layer], paths: &[KeyPath]) -> Place {
    for layer in layers.iter().rev() {
        // Every layer parsed once already; a layer that no longer parses sets nothing.
        let Ok(document) = DeTable::parse(&layer.text) else {
            continue;
        };
        for path in paths {
            if let Some(offset) = offset_in(document.get_ref(), path) {
                return Place {
                    file: layer.origin.clone(),
                    line: Some(line_of(&layer.text, offset)),
                };
            }
        }
    }
    Place {
        file: layers
            .last()
            .map(|layer| layer.origin.clone())
            .unwrap_or_default(),
        line: None,
    }
}

/// Where `path` is written in `table` (its deepest key or array entry that this layer set), or
/// `None` when the layer leaves it to an earlier one.
fn offset_in(table: &DeTable<'_>, path: &[String]) -> Option<usize> {
    let Some((first, rest)) = path.split_first() else {
        // The whole table: a profile's top is set by every layer; name its first line.
        return Some(0);
    };
    let (key, value) = table.iter().find(|(key, _)| key.get_ref() == first)?;
    let here = key.span().start;
    match value.get_ref() {
        DeValue::Table(inner) if !rest.is_empty() => offset_in(inner, rest),
        DeValue::Array(items) => Some(offset_in_owned(items, rest).unwrap_or(here)),
        _ => Some(here),
    }
}

/// Inside an array the layer owns everything: the deepest entry or key of `path` it has.
fn offset_in_owned(items: &[toml::Spanned<DeValue<'_>>], path: &[String]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let item = items.get(first.parse::<usize>().ok()?)?;
    let deeper = match item.get_ref() {
        DeValue::Table(table) => rest.split_first().and_then(|(key, rest)| {
            let (found, value) = table.iter().find(|(found, _)| found.get_ref() == key)?;
            let nested = match value.get_ref() {
                DeValue::Array(inner) => offset_in_owned(inner, rest),
                DeValue::Table(inner) => offset_in(inner, rest),
                _ => None,
            };
            Some(nested.unwrap_or(found.span().start))
        }),
        DeValue::Array(inner) => offset_in_owned(inner, rest),
        _ => None,
    };
    Some(deeper.unwrap_or(item.span().start))
}

/// The line (from 1) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

/// A serde path (`statuses[3].retry`, `request.mode`) as a [`KeyPath`].
pub(super) fn key_path(path: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => Some(key.clone()),
            Segment::Unknown => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<Layer> {
        vec![
            Layer {
                origin: "(built-in) omniscrape.toml".into(),
                text: "name = \"omniscrape\"\n[request]\nurl = \"url\"\nmode = \"mode\"\n\n[[statuses]]\nstatus = 200\n[[statuses]]\nstatus = 400\n".into(),
            },
            Layer {
                origin: "/home/u/omniscrape.toml".into(),
                text: "# mine\n[request]\nmode = 5\n\n[[escalations]]\nstatus = 500\nsteps = [\"mode=js\"]\n".into(),
            },
        ]
    }

    fn path(text: &str) -> KeyPath {
        text.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn the_last_layer_that_set_a_key_is_named_with_its_line() {
        let layers = layers();
        let place = locate(&layers, &[path("request.mode")]);
        assert_eq!(place.to_string(), "/home/u/omniscrape.toml, line 3");
        let place = locate(&layers, &[path("request.url")]);
        assert_eq!(place.to_string(), "(built-in) omniscrape.toml, line 3");
        let place = locate(&layers, &[path("statuses.1.status")]);
        assert_eq!(place.to_string(), "(built-in) omniscrape.toml, line 9");
        let place = locate(&layers, &[path("escalations.0.steps.0")]);
        assert_eq!(place.to_string(), "/home/u/omniscrape.toml, line 7");
    }

    #[test]
    fn a_key_nobody_set_names_the_latest_file_and_a_missing_one_its_table() {
        let layers = layers();
        // An unknown key the user wrote is found where they wrote it; a missing one at its table.
        let place = locate(&layers, &[path("request.modee"), path("request")]);
        assert_eq!(place.to_string(), "/home/u/omniscrape.toml, line 2");
        let place = locate(&layers, &[path("nowhere.at_all")]);
        assert_eq!(place.to_string(), "/home/u/omniscrape.toml");
    }
}
