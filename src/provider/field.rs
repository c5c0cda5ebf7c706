//! Where a response field lives: a JSON pointer, a header, or the HTTP status itself.

use std::fmt;

use reqwest::header::HeaderName;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One place to read a value from, written in profiles as `"json:/data/status_code"`,
/// `"header:Spb-Initial-Status-Code"`, `"status"`, or `"status:200,404"` (the HTTP status only when
/// it is one of those: ScraperAPI passes the target's 200 and 404 through, but its 500 is its own).
///
/// The second part is the same source made ready to read, once, when the profile loads: classify
/// runs for every response, and `Value::pointer` or `HeaderMap::get(&str)` would split, unescape
/// and validate the same text again on every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Field(pub FieldSource, Parsed);

/// A [`FieldSource`] ready to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The pointer's reference tokens, unescaped (RFC 6901 §4); none for the whole document.
    Json(Box<[String]>),
    Header(HeaderName),
    /// The HTTP status; when the list is not empty, only a status in it.
    Status(Box<[u16]>),
}

impl Field {
    pub(crate) fn parsed(&self) -> &Parsed {
        &self.1
    }

    /// The pointer's unescaped tokens, for a JSON field.
    pub(crate) fn json_tokens(&self) -> Option<&[String]> {
        match &self.1 {
            Parsed::Json(tokens) => Some(tokens),
            Parsed::Header(_) | Parsed::Status(_) => None,
        }
    }
}

/// An RFC 6901 pointer's tokens, split and unescaped as `Value::pointer` does it ("~1" before
/// "~0"); the empty pointer has none.
pub(crate) fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Why `pointer` is not a well-formed RFC 6901 pointer (§3: `~` only as `~0` or `~1`), if it is not.
/// `Value::pointer` would read a malformed one as a field nobody sends.
pub(crate) fn pointer_problem(pointer: &str) -> Option<&'static str> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Some("a pointer starts with '/'");
    }
    let mut rest = pointer;
    while let Some(at) = rest.find('~') {
        rest = &rest[at + 1..];
        if !(rest.starts_with('0') || rest.starts_with('1')) {
            return Some("'~' must be followed by 0 or 1 (\"~0\" is '~', \"~1\" is '/')");
        }
    }
    None
}

/// What `Value::pointer` does with one pointer, without splitting and unescaping it on every call.
pub(crate) fn json_at<'v>(mut value: &'v Value, tokens: &[String]) -> Option<&'v Value> {
    for token in tokens {
        value = match value {
            Value::Object(map) => map.get(token.as_str())?,
            Value::Array(list) => list.get(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// An array index as RFC 6901 (and `Value::pointer`) reads one: digits, no sign, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// RFC 6901 pointer into the JSON body.
    Json(String),
    /// A response header (case-insensitive).
    Header(String),
    /// The HTTP status of the response; when the list is not empty, only a status in it.
    Status(Vec<u16>),
}

/// A field source that is not `json:/pointer`, `header:Name`, `status` or `status:LIST`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("JSON pointer {0:?} must start with '/'")]
    Pointer(String),
    #[error("JSON pointer {pointer:?} is not well-formed: {problem}")]
    PointerSyntax {
        pointer: String,
        problem: &'static str,
    },
    #[error("{0:?} is not a valid header name")]
    HeaderName(String),
    #[error(
        "field source {0:?} must be \"json:/pointer\", \"header:Name\", \"status\" or \"status:200,404\""
    )]
    Source(String),
    #[error("{status:?} in {source_text:?} is not an HTTP status (100-999)")]
    Status { status: String, source_text: String },
}

impl TryFrom<String> for Field {
    type Error = FieldError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text == "status" {
            return Ok(Self(
                FieldSource::Status(Vec::new()),
                Parsed::Status(Box::default()),
            ));
        }
        if let Some(list) = text.strip_prefix("status:") {
            let statuses = list
                .split(',')
                .map(|status| {
                    status
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|status| (100..1000).contains(status))
                        .ok_or_else(|| FieldError::Status {
                            status: status.to_owned(),
                            source_text: text.clone(),
                        })
                })
                .collect::<Result<Vec<u16>, FieldError>>()?;
            return Ok(Self(
                FieldSource::Status(statuses.clone()),
                Parsed::Status(statuses.into()),
            ));
        }
        if let Some(pointer) = text.strip_prefix("json:") {
            if let Some(problem) = pointer_problem(pointer).filter(|_| pointer.starts_with('/')) {
                return Err(FieldError::PointerSyntax {
                    pointer: pointer.to_owned(),
                    problem,
                });
            }
            if pointer.is_empty() || pointer.starts_with('/') {
                return Ok(Self(
                    FieldSource::Json(pointer.to_owned()),
                    Parsed::Json(pointer_tokens(pointer).into()),
                ));
            }
            return Err(FieldError::Pointer(pointer.to_owned()));
        }
        if let Some(name) = text.strip_prefix("header:") {
            if let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) {
                return Ok(Self(
                    FieldSource::Header(name.to_ascii_lowercase()),
                    Parsed::Header(parsed),
                ));
            }
            return Err(FieldError::HeaderName(name.to_owned()));
        }
        Err(FieldError::Source(text))
    }
}

impl From<Field> for String {
    fn from(field: Field) -> Self {
        field.to_string()
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            FieldSource::Json(pointer) => write!(f, "json:{pointer}"),
            FieldSource::Header(name) => write!(f, "header:{name}"),
            FieldSource::Status(statuses) if statuses.is_empty() => f.write_str("status"),
            FieldSource::Status(statuses) => {
                f.write_str("status:")?;
                for (index, status) in statuses.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{status}")?;
                }
                Ok(())
            }
        }
    }
}

/// A value read from one of the places a [`Field`] names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Found<'a> {
    Json(&'a Value),
    Text(&'a str),
    Status(u16),
}

impl<'a> Found<'a> {
    fn raw_text(self) -> Option<&'a str> {
        match self {
            Found::Json(Value::String(text)) => Some(text),
            Found::Text(text) => Some(text),
            _ => None,
        }
    }

    /// A string, from a JSON string or a header. Numbers are accepted as text too (request ids).
    pub(crate) fn as_text(self) -> Option<String> {
        match self {
            Found::Json(Value::String(text)) => Some(text.clone()),
            Found::Json(Value::Number(number)) => Some(number.to_string()),
            Found::Text(text) => Some(text.trim().to_owned()),
            Found::Json(_) | Found::Status(_) => None,
        }
    }

    /// [`Found::as_text`], cut to at most `max` bytes on a character boundary.
    pub(crate) fn as_bounded_text(self, max: usize) -> Option<String> {
        let text = match self {
            // Cut before copying: a megabyte of message is never copied whole.
            Found::Json(Value::String(text)) => crate::outcome::bounded_str(text, max),
            Found::Text(text) => crate::outcome::bounded_str(text.trim(), max),
            other => {
                return other
                    .as_text()
                    .map(|text| crate::outcome::bounded(text, max));
            }
        };
        Some(text)
    }

    /// Any number, as written (negative, infinite and NaN included: the caller judges it).
    pub(crate) fn as_number(self) -> Option<f64> {
        match self {
            Found::Json(Value::Number(number)) => number.as_f64(),
            Found::Status(status) => Some(f64::from(status)),
            other => other.raw_text()?.trim().parse().ok(),
        }
    }

    /// A sane amount: finite, non-negative, not absurd ([`crate::outcome::sane_amount`]).
    pub(crate) fn as_amount(self) -> Option<f64> {
        self.as_number()
            .filter(|value| crate::outcome::sane_amount(*value))
    }

    /// An HTTP status (100–999).
    pub(crate) fn as_status(self) -> Option<u16> {
        let status = match self {
            Found::Json(Value::Number(number)) => u16::try_from(number.as_u64()?).ok()?,
            Found::Status(status) => status,
            other => other.raw_text()?.trim().parse().ok()?,
        };
        (100..1000).contains(&status).then_some(status)
    }

    pub(crate) fn as_bool(self) -> Option<bool> {
        match self {
            Found::Json(Value::Bool(flag)) => Some(*flag),
            other => match other.raw_text()?.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_sources_parse_and_print_back() {
        for text in [
            "json:/data/status_code",
            "header:spb-cost",
            "status",
            "status:200,404",
            "status:404",
            "json:",
        ] {
            let field = Field::try_from(text.to_owned()).unwrap();
            assert_eq!(field.to_string(), text);
        }
        assert_eq!(
            Field::try_from("header:X-Request-Id".to_owned()).unwrap().0,
            FieldSource::Header("x-request-id".to_owned())
        );
        for bad in [
            "json:data",
            "header:bad name",
            "body:/x",
            "",
            "status:",
            "status:20",
            "status:200,x",
            "status:1000",
        ] {
            assert!(Field::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn statuses_read_from_numbers_and_strings_only_in_range() {
        let status = |value: serde_json::Value| Found::Json(&value).as_status();
        assert_eq!(status(json!(404)), Some(404));
        assert_eq!(status(json!("404")), Some(404));
        assert_eq!(status(json!(" 200 ")), Some(200));
        for wrong in [
            json!(404.5),
            json!(-1),
            json!(70000),
            json!(99),
            json!("abc"),
            json!(true),
            json!([404]),
            json!({"code": 404}),
        ] {
            assert_eq!(status(wrong.clone()), None, "{wrong}");
        }
        assert_eq!(Found::Status(503).as_status(), Some(503));
        assert_eq!(Found::Text("502").as_status(), Some(502));
    }

    #[test]
    fn amounts_are_finite_and_non_negative() {
        let amount = |value: serde_json::Value| Found::Json(&value).as_amount();
        assert_eq!(amount(json!(0.0035)), Some(0.0035));
        assert_eq!(amount(json!("5")), Some(5.0));
        assert_eq!(amount(json!(0)), Some(0.0));
        for wrong in [
            json!(-0.5),
            json!("-1"),
            json!("NaN"),
            json!("inf"),
            json!(null),
            json!(true),
            json!([1]),
        ] {
            assert_eq!(amount(wrong.clone()), None, "{wrong}");
        }
        assert_eq!(Found::Text(" 0.25 ").as_amount(), Some(0.25));
    }

    #[test]
    fn flags_and_text() {
        let flag = |value: serde_json::Value| Found::Json(&value).as_bool();
        assert_eq!(flag(json!(true)), Some(true));
        assert_eq!(flag(json!("false")), Some(false));
        assert_eq!(flag(json!("YES")), Some(true));
        assert_eq!(flag(json!("maybe")), None);
        assert_eq!(flag(json!({})), None);
        let text = |value: serde_json::Value| Found::Json(&value).as_text();
        assert_eq!(text(json!("req_1")), Some("req_1".to_owned()));
        assert_eq!(text(json!(12345)), Some("12345".to_owned()));
        assert_eq!(text(json!(["x"])), None);
        assert_eq!(text(json!(false)), None);
        assert_eq!(Found::Status(200).as_text(), None);
    }
}
