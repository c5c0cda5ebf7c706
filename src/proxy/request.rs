//! What the proxy reads from a client's request, purely: the key (to redact it and to tell
//! accounts apart, never to keep), which endpoint of the provider it is, and the scrape's target
//! URL and options from the start of its body.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::LazyLock;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use secrecy::SecretString;
use serde_json::Value;

use crate::outcome::RequestOptions;
use crate::provider::{AuthStyle, Profile};

/// Which of the provider's endpoints a request calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The scrape call, or the async submit: an attempt.
    Scrape,
    /// A job-status poll for this job id: joined to the job's attempt.
    JobPoll { job_id: String },
    /// The usage / balance endpoint: a reading, not an attempt.
    Usage,
    /// Anything else the provider serves (sessions, webhooks…): forwarded and audited, not counted
    /// as an attempt.
    Other,
}

/// The endpoint `path` (without the query) calls, by the profile's paths.
#[must_use]
pub fn endpoint(profile: &Profile, path: &str) -> Endpoint {
    let endpoints = &profile.endpoints;
    if path == endpoints.scrape || endpoints.async_submit.as_deref() == Some(path) {
        return Endpoint::Scrape;
    }
    if endpoints.usage.as_deref() == Some(path) {
        return Endpoint::Usage;
    }
    if let Some((prefix, suffix)) = endpoints
        .job_poll
        .as_deref()
        .and_then(|template| template.split_once("{job_id}"))
        && let Some(job_id) = path
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        && !job_id.is_empty()
        && !job_id.contains('/')
    {
        return Endpoint::JobPoll {
            job_id: job_id.to_owned(),
        };
    }
    Endpoint::Other
}

/// The API key the client sent, the profile's way. Held only while its exchange is classified (to
/// redact it from what the provider echoed) and never written anywhere.
#[must_use]
pub fn client_key(
    profile: &Profile,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<SecretString> {
    let text = match (profile.auth.style, profile.auth.name.as_deref()) {
        (AuthStyle::Header, Some(name)) => headers.get(name)?.to_str().ok()?.trim().to_owned(),
        (AuthStyle::Query, Some(name)) => url::form_urlencoded::parse(query?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())?,
        (AuthStyle::Bearer, _) => {
            let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())?
        }
        (AuthStyle::Basic, _) => {
            let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
            let (scheme, encoded) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            // Basic carries `key:` (an empty password): the key is the user part.
            text.split_once(':')
                .map_or(text.clone(), |(user, _)| user.to_owned())
        }
        (AuthStyle::Header | AuthStyle::Query, None) => return None,
    };
    (!text.is_empty()).then(|| SecretString::from(text))
}

/// Hashes the proxy keeps instead of the key or the request: seeded at random per process, so they
/// identify an account or a repeated request within this run and reveal nothing outside it.
static SEED: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(std::collections::hash_map::RandomState::new);

/// Tells the accounts behind one provider apart (limits and account errors are per key). `0` is
/// the request without a key.
#[must_use]
pub fn account_of(key: Option<&SecretString>) -> u64 {
    use secrecy::ExposeSecret as _;
    key.map_or(0, |key| SEED.hash_one(key.expose_secret()))
}

/// The same request sent again has the same fingerprint: method, path, query and the start of the
/// body (the part the proxy reads before forwarding; scrape bodies are far smaller).
#[must_use]
pub fn fingerprint(method: &http::Method, rest: &str, body_start: &[u8]) -> u64 {
    let mut hasher = SEED.build_hasher();
    method.as_str().hash(&mut hasher);
    rest.hash(&mut hasher);
    body_start.hash(&mut hasher);
    hasher.finish()
}

/// The scrape's target URL and request options, from the body's JSON (the profile's request field
/// names), falling back to a query parameter of the same name. Unknown parts stay empty.
#[must_use]
pub fn scrape_request(
    profile: &Profile,
    body_start: &[u8],
    query: Option<&str>,
    use_async: bool,
) -> (String, RequestOptions) {
    let shape = &profile.request;
    let json = serde_json::from_slice::<Value>(body_start).ok();
    let read = |field: Option<&String>| -> Option<String> {
        let field = field?;
        // A request field is a top-level key or, for a nested one, a JSON pointer
        // (AlterLab's SDK sends the tier as `cost_controls.max_tier`: "/cost_controls/max_tier").
        let at = |json: &Value| -> Option<Value> {
            if field.starts_with('/') {
                json.pointer(field).cloned()
            } else {
                json.get(field).cloned()
            }
        };
        let from_body = json.as_ref().and_then(|json| match at(json)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        });
        from_body.or_else(|| {
            url::form_urlencoded::parse(query?.as_bytes())
                .find(|(key, _)| key == field.as_str())
                .map(|(_, value)| value.into_owned())
        })
    };
    let target = read(Some(&shape.url)).unwrap_or_default();
    let options = RequestOptions {
        mode: read(shape.mode.as_ref()),
        proxy_country: read(shape.proxy_country.as_ref()),
        tier: read(shape.tier.as_ref()),
        timeout_s: read(shape.timeout.as_ref())
            .and_then(|text| text.parse().ok())
            .map(|value| shape.timeout_unit.seconds(value)),
        use_async,
    };
    (target, options)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::provider::{Auth, builtin_profiles};

    #[test]
    fn endpoints_are_told_apart_by_the_profiles_paths() {
        let profiles = builtin_profiles();
        let alterlab = profiles.get("alterlab").unwrap();
        assert_eq!(endpoint(alterlab, "/api/v1/scrape"), Endpoint::Scrape);
        assert_eq!(
            endpoint(alterlab, "/api/v1/jobs/job_42"),
            Endpoint::JobPoll {
                job_id: "job_42".to_owned()
            }
        );
        assert_eq!(endpoint(alterlab, "/api/v1/jobs/"), Endpoint::Other);
        assert_eq!(endpoint(alterlab, "/api/v1/jobs/a/b"), Endpoint::Other);
        assert_eq!(endpoint(alterlab, "/api/v1/usage"), Endpoint::Usage);
        assert_eq!(endpoint(alterlab, "/api/v1/sessions"), Endpoint::Other);
        let omniscrape = profiles.get("omniscrape").unwrap();
        assert_eq!(endpoint(omniscrape, "/v1/scrape/async"), Endpoint::Scrape);
    }

    #[test]
    fn the_key_is_read_the_profiles_way() {
        let mut profile = builtin_profiles().get("alterlab").unwrap().clone();
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("sk_test_header"));
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer sk_test_bearer"),
        );
        let key = |profile: &Profile, headers: &HeaderMap, query| {
            client_key(profile, headers, query).map(|key| key.expose_secret().to_owned())
        };
        assert_eq!(
            key(&profile, &headers, None).as_deref(),
            Some("sk_test_header")
        );
        profile.auth = Auth {
            style: AuthStyle::Bearer,
            name: None,
        };
        assert_eq!(
            key(&profile, &headers, None).as_deref(),
            Some("sk_test_bearer")
        );
        profile.auth = Auth {
            style: AuthStyle::Query,
            name: Some("api_key".to_owned()),
        };
        assert_eq!(
            key(&profile, &headers, Some("url=x&api_key=sk%5Fq")).as_deref(),
            Some("sk_q")
        );
        profile.auth.style = AuthStyle::Basic;
        let mut basic = HeaderMap::new();
        // base64("sk_basic:")
        basic.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic c2tfYmFzaWM6"),
        );
        assert_eq!(key(&profile, &basic, None).as_deref(), Some("sk_basic"));
        assert_eq!(key(&profile, &HeaderMap::new(), None), None);
        assert_eq!(account_of(None), 0);
        let one = SecretString::from("sk_one".to_owned());
        let two = SecretString::from("sk_two".to_owned());
        assert_ne!(account_of(Some(&one)), account_of(Some(&two)));
        assert_eq!(account_of(Some(&one)), account_of(Some(&one)));
    }

    #[test]
    fn the_target_and_options_come_from_the_body() {
        let profiles = builtin_profiles();
        let alterlab = profiles.get("alterlab").unwrap();
        let (target, options) = scrape_request(
            alterlab,
            br#"{"url":"https://example.com/","mode":"js","cost_controls":{"max_tier":"3"},"timeout":20}"#,
            None,
            false,
        );
        assert_eq!(target, "https://example.com/");
        assert_eq!(options.mode.as_deref(), Some("js"));
        assert_eq!(options.tier.as_deref(), Some("3"));
        assert_eq!(options.timeout_s, Some(20));
        let (target, _) = scrape_request(
            alterlab,
            b"not json",
            Some("url=https%3A%2F%2Fq.example%2F"),
            false,
        );
        assert_eq!(target, "https://q.example/");
        let (target, _) = scrape_request(alterlab, b"\xff\x00", None, true);
        assert_eq!(target, "");
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let post = http::Method::POST;
        let one = fingerprint(&post, "/api/v1/scrape", b"{\"url\":\"a\"}");
        assert_eq!(
            one,
            fingerprint(&post, "/api/v1/scrape", b"{\"url\":\"a\"}")
        );
        assert_ne!(
            one,
            fingerprint(&post, "/api/v1/scrape", b"{\"url\":\"b\"}")
        );
        assert_ne!(
            one,
            fingerprint(&http::Method::PUT, "/api/v1/scrape", b"{\"url\":\"a\"}")
        );
    }
}
