//! The API key in every form it takes on the wire, found and replaced before anything is kept.
//!
//! A provider that echoes what it was sent does not echo it as the user typed it: a JSON body
//! escapes `/` as `\/`, a query-parameter profile's URL carries it percent-encoded, Basic auth
//! sends base64 of `key:` (or `user:key`), and a header may be cut or split in two. [`KeyForms`]
//! holds each of those texts, computed once per provider; [`KeyForms::scrub`] replaces them.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What the key is replaced with.
pub const REDACTED: &str = "[redacted]";
/// Shortest key redacted: replacing every "k" of a one-letter test key would garble the text and
/// protect nothing.
pub const MIN_REDACTED_SECRET: usize = 6;

/// `application/x-www-form-urlencoded` (what a URL's query pairs use) leaves these as they are.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The texts the key can appear as.
#[derive(Clone, Default)]
pub struct KeyForms {
    /// The key as is (first) and its encodings, longest first, without repeats.
    forms: Vec<String>,
}

/// Never shows the key or its forms.
impl std::fmt::Debug for KeyForms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyForms")
            .field("forms", &self.forms.len())
            .finish()
    }
}

impl KeyForms {
    /// Every form of `key`; none when it is shorter than [`MIN_REDACTED_SECRET`].
    #[must_use]
    pub fn new(key: &str) -> Self {
        if key.len() < MIN_REDACTED_SECRET {
            return Self::default();
        }
        let mut forms = vec![key.to_owned()];
        // JSON: serde's escaping, and `\/`, which JSON allows and some servers write.
        let json = serde_json::to_string(key).unwrap_or_default();
        let json = json
            .strip_prefix('"')
            .and_then(|text| text.strip_suffix('"'))
            .unwrap_or(key);
        forms.push(json.to_owned());
        forms.push(json.replace('/', "\\/"));
        // Percent-encoded: a query pair's encoding and the encoding of everything but letters
        // and digits, each in upper- and lower-case hex.
        let query = utf8_percent_encode(key, FORM)
            .to_string()
            .replace("%20", "+");
        let full = utf8_percent_encode(key, NON_ALPHANUMERIC).to_string();
        for encoded in [query, full] {
            forms.push(lower_hex(&encoded));
            forms.push(encoded);
        }
        // Base64 (Basic auth sends base64 of `key:` or `user:key`): whatever precedes the key,
        // it starts at one of three offsets in a 3-byte group, and the characters that hold only
        // the key's bits are the same for every prefix at that offset.
        for offset in 0..3 {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(key.as_bytes());
            let first = (8 * offset).div_ceil(6);
            let end = 8 * (offset + key.len()) / 6;
            for engine in [&STANDARD, &URL_SAFE] {
                let encoded = engine.encode(&bytes);
                if let Some(inner) = encoded.get(first..end) {
                    forms.push(inner.to_owned());
                }
            }
        }
        // Header names reach us lower-cased, and a provider may lower-case what it echoes.
        let lowered: Vec<String> = forms.iter().map(|form| form.to_ascii_lowercase()).collect();
        forms.extend(lowered);
        forms.retain(|form| form.len() >= MIN_REDACTED_SECRET);
        forms[1..].sort_by_key(|form| std::cmp::Reverse(form.len()));
        let mut seen = std::collections::HashSet::new();
        forms.retain(|form| seen.insert(form.clone()));
        Self { forms }
    }

    /// Whether there is anything to redact (a key long enough).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// Whether `text` holds the key in any form.
    #[must_use]
    pub fn found_in(&self, text: &str) -> bool {
        self.forms.iter().any(|form| text.contains(form.as_str()))
    }

    /// Replace every form of the key in `text`.
    pub fn scrub(&self, text: &mut String) {
        for form in &self.forms {
            if text.contains(form.as_str()) {
                *text = text.replace(form.as_str(), REDACTED);
            }
        }
    }

    /// [`KeyForms::scrub`], and a start of the key left at the end of a text (before a `…` that
    /// marks a cut): a text cut at a fixed length may end inside the key. Only starts long
    /// enough not to match by chance. `cut` says the text was cut: then a start of any form is
    /// looked for, else (the common case, kept cheap) a start of the key as is.
    pub fn scrub_cut(&self, text: &mut String, cut: bool) {
        self.scrub(text);
        let forms = if cut {
            &self.forms[..]
        } else {
            &self.forms[..self.forms.len().min(1)]
        };
        let body_len = text.strip_suffix('…').map_or(text.len(), str::len);
        let body = &text[..body_len];
        let start = forms.iter().find_map(|form| {
            (MIN_REDACTED_SECRET..form.len())
                .rev()
                .filter_map(|len| form.get(..len))
                .find(|start| body.ends_with(start))
        });
        if let Some(start) = start {
            let tail = text[body_len..].to_owned();
            text.truncate(body_len - start.len());
            text.push_str(REDACTED);
            text.push_str(&tail);
        }
    }

    /// Scrub texts that were one on the wire (values of headers sent one after another, a key
    /// split across two of them): each piece is scrubbed, and where a form spans pieces, the
    /// part in each piece is replaced.
    pub fn scrub_across(&self, pieces: &mut [&mut String]) {
        for piece in pieces.iter_mut() {
            let cut = piece.ends_with('…');
            self.scrub_cut(piece, cut);
        }
        if self.forms.is_empty() || pieces.len() < 2 {
            return;
        }
        let joined: String = pieces.iter().map(|piece| piece.as_str()).collect();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for form in &self.forms {
            spans.extend(
                joined
                    .match_indices(form.as_str())
                    .map(|(at, found)| (at, at + found.len())),
            );
        }
        if spans.is_empty() {
            return;
        }
        let mut start = 0;
        for piece in pieces.iter_mut() {
            let end = start + piece.len();
            if spans.iter().any(|&(from, to)| from < end && to > start) {
                **piece = REDACTED.to_owned();
            }
            start = end;
        }
    }
}

fn lower_hex(encoded: &str) -> String {
    let mut text = String::with_capacity(encoded.len());
    let mut after_percent = 0;
    for character in encoded.chars() {
        if character == '%' {
            after_percent = 2;
            text.push(character);
        } else if after_percent > 0 {
            after_percent -= 1;
            text.push(character.to_ascii_lowercase());
        } else {
            text.push(character);
        }
    }
    text
}

/// `url` without the user name and password it may carry (`http://user:pass@host` →
/// `http://host`): for anything written, never for what is sent.
#[must_use]
pub fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            let text = parsed.to_string();
            // Url adds a `/` to an empty path; a base URL is written without one.
            if url.ends_with('/') {
                text
            } else {
                text.strip_suffix('/').map(str::to_owned).unwrap_or(text)
            }
        }
        Ok(_) => url.to_owned(),
        // Not a URL: the part before an `@` in its authority is all that could be credentials.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
            }
            _ => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_test_h0st1le/K3y+with=odd&chars";

    fn scrubbed(text: &str) -> String {
        let mut text = text.to_owned();
        KeyForms::new(KEY).scrub(&mut text);
        text
    }

    #[test]
    fn every_wire_encoding_of_the_key_is_replaced() {
        let json = serde_json::to_string(&serde_json::json!({ "k": KEY })).unwrap();
        let escaped = json.replace('/', "\\/");
        let query = format!(
            "https://a/?api_key={}",
            utf8_percent_encode(KEY, FORM)
                .to_string()
                .replace("%20", "+")
        );
        let full = utf8_percent_encode(KEY, NON_ALPHANUMERIC).to_string();
        let basic_key = STANDARD.encode(format!("{KEY}:"));
        let url_safe = URL_SAFE.encode(format!("{KEY}:"));
        for user in ["", "u", "us", "user"] {
            let basic = STANDARD.encode(format!("{user}:{KEY}"));
            assert!(
                !scrubbed(&format!("Basic {basic}"))
                    .contains(&basic[basic.len() / 2..basic.len() - 4]),
                "{user}"
            );
        }
        for echoed in [
            json,
            escaped,
            query,
            full.clone(),
            lower_hex(&full),
            basic_key,
            url_safe,
        ] {
            let out = scrubbed(&format!("echo: {echoed} end"));
            assert!(out.contains(REDACTED), "{echoed} → {out}");
            assert!(!out.contains("h0st1le"), "{out}");
        }
        assert_eq!(scrubbed("nothing here"), "nothing here");
    }

    #[test]
    fn a_key_split_across_pieces_is_replaced_in_each() {
        let forms = KeyForms::new(KEY);
        let (head, tail) = KEY.split_at(3);
        let mut first = format!("x {head}");
        let mut second = tail.to_owned();
        let mut other = "fine".to_owned();
        forms.scrub_across(&mut [&mut other, &mut first, &mut second]);
        assert_eq!(other, "fine");
        assert!(!first.contains(head) || first == REDACTED, "{first}");
        assert!(!second.contains(&tail[..6]), "{second}");
    }

    #[test]
    fn short_keys_are_left_alone_and_debug_hides_the_forms() {
        assert!(KeyForms::new("k").is_empty());
        assert!(!format!("{:?}", KeyForms::new(KEY)).contains("h0st1le"));
    }

    #[test]
    fn url_credentials_are_stripped() {
        assert_eq!(
            without_credentials("http://user:pass@127.0.0.1:9"),
            "http://127.0.0.1:9"
        );
        assert_eq!(without_credentials("http://user@host/x/"), "http://host/x/");
        assert_eq!(
            without_credentials("https://api.example"),
            "https://api.example"
        );
        assert_eq!(without_credentials("not a url"), "not a url");
        assert!(!without_credentials("weird://a:b@c d").contains("a:b"));
    }
}
