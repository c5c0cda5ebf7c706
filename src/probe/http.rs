//! The network edge: one shared client, requests built from a profile, bodies read through a cap,
//! reqwest's errors mapped onto [`Transport`].

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::outcome::{RequestOptions, Transport};
use crate::provider::{self, Auth, AuthStyle, Placement, Profile};

/// The one client every probe shares: rustls, explicit timeouts, redirects off (a redirect would
/// carry the key header to another host). `timeout` bounds the whole exchange, body included, so
/// no separate read timeout is set: it could never fire first, and each one costs a timer per
/// request. reqwest's default retry stays on: it only resends what an HTTP/2 server refused
/// without processing (REFUSED_STREAM, GOAWAY), which was never billed and is not a failed scrape.
///
/// # Errors
/// The TLS backend cannot start.
pub fn build_client(connect_timeout: Duration, timeout: Duration) -> reqwest::Result<Client> {
    Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("omniscope/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The scrape request's JSON body, with the field names the profile gives.
#[must_use]
pub fn request_body(profile: &Profile, target: &str, options: &RequestOptions) -> Value {
    let shape = &profile.request;
    let mut body = Map::new();
    insert_at(&mut body, &shape.url, Value::String(target.to_owned()));
    let mut put = |field: &Option<String>, value: &Option<String>| {
        if let (Some(field), Some(value)) = (field, value) {
            insert_at(&mut body, field, Value::String(value.clone()));
        }
    };
    if mode_params(profile, options).is_none() {
        put(&shape.mode, &options.mode);
    }
    put(&shape.proxy_country, &options.proxy_country);
    put(&shape.tier, &options.tier);
    if let (Some(field), Some(seconds)) = (&shape.timeout, options.timeout_s) {
        insert_at(
            &mut body,
            field,
            Value::from(shape.timeout_unit.count(seconds)),
        );
    }
    for (name, value) in shape
        .params
        .iter()
        .chain(mode_params(profile, options).into_iter().flatten())
        .chain(queue_params(profile, options).into_iter().flatten())
    {
        if let Ok(value) = serde_json::to_value(value) {
            body.insert(name.clone(), value);
        }
    }
    Value::Object(body)
}

/// The parameters that ask for the async queue, when the probe asks for it and the provider has
/// no separate submit path (AlterLab's `sync = false`).
fn queue_params<'p>(profile: &'p Profile, options: &RequestOptions) -> Option<&'p toml::Table> {
    (options.use_async && profile.endpoints.async_submit.is_none())
        .then_some(&profile.request.async_params)
}

/// The parameters the requested mode stands for, when the profile spells modes that way.
fn mode_params<'p>(profile: &'p Profile, options: &RequestOptions) -> Option<&'p toml::Table> {
    profile.request.mode_params.get(options.mode.as_deref()?)
}

/// The scrape request's query parameters, for profiles whose target travels in the query
/// (`url=…&render=true&country_code=de`): the profile's fixed parameters first, then the
/// mode's, then the target and the options, so a request's own value is the last said.
#[must_use]
pub fn request_query(
    profile: &Profile,
    target: &str,
    options: &RequestOptions,
) -> Vec<(String, String)> {
    let shape = &profile.request;
    let mut query: Vec<(String, String)> = shape
        .params
        .iter()
        .chain(mode_params(profile, options).into_iter().flatten())
        .chain(queue_params(profile, options).into_iter().flatten())
        .filter_map(|(name, value)| Some((name.clone(), provider::query_text(value)?)))
        .collect();
    query.push((shape.url.clone(), target.to_owned()));
    let mut put = |field: &Option<String>, value: Option<String>| {
        if let (Some(field), Some(value)) = (field, value) {
            query.push((field.clone(), value));
        }
    };
    if mode_params(profile, options).is_none() {
        put(&shape.mode, options.mode.clone());
    }
    put(&shape.proxy_country, options.proxy_country.clone());
    put(&shape.tier, options.tier.clone());
    put(
        &shape.timeout,
        options
            .timeout_s
            .map(|seconds| shape.timeout_unit.count(seconds).to_string()),
    );
    query
}

/// The scrape request with its target and options where the profile puts them: a JSON body, or
/// the query string (after the key, when the key is a query parameter too).
pub fn with_target(
    request: RequestBuilder,
    profile: &Profile,
    target: &str,
    options: &RequestOptions,
) -> RequestBuilder {
    match profile.request.placement {
        Placement::Json => request.json(&request_body(profile, target, options)),
        Placement::Query => request.query(&request_query(profile, target, options)),
    }
}

/// Put `value` where a profile's request field name says: a key, or a pointer to a nested key
/// (objects on the way are created; a non-object in the way is replaced by one).
fn insert_at(body: &mut Map<String, Value>, name: &str, value: Value) {
    let path = provider::request_field_path(name);
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut map = body;
    for key in parents {
        let slot = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(inner) = slot else {
            return;
        };
        map = inner;
    }
    map.insert(last.clone(), value);
}

/// A request to `base_url + path` carrying the key the profile's way. Header values built here
/// are marked sensitive so no Debug output shows them.
pub fn authorized(
    client: &Client,
    method: Method,
    profile: &Profile,
    base_url: &str,
    path: &str,
    key: &SecretString,
) -> RequestBuilder {
    authorized_as(client, method, &profile.auth, base_url, path, key)
}

/// A request to `base_url + path` carrying the key as `auth` says: the scrape call's auth, or the
/// usage call's own ([`Profile::usage_auth`]).
pub fn authorized_as(
    client: &Client,
    method: Method,
    auth: &Auth,
    base_url: &str,
    path: &str,
    key: &SecretString,
) -> RequestBuilder {
    let secret = key.expose_secret();
    let url = format!("{base_url}{path}");
    let request = match (auth.style, auth.name.as_deref()) {
        (AuthStyle::Query, Some(name)) => match reqwest::Url::parse(&url) {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair(name, secret);
                return client.request(method, url);
            }
            Err(_) => client.request(method, url),
        },
        _ => client.request(method, url),
    };
    match (auth.style, auth.name.as_deref()) {
        (AuthStyle::Header, Some(name)) => match HeaderValue::from_str(secret) {
            Ok(mut value) => {
                value.set_sensitive(true);
                request.header(name, value)
            }
            // Checked when the config was resolved; a request without the key fails as a 401.
            Err(_) => request,
        },
        (AuthStyle::Bearer, _) => request.bearer_auth(secret),
        (AuthStyle::Basic, _) => request.basic_auth(secret, None::<&str>),
        (AuthStyle::Header | AuthStyle::Query, _) => request,
    }
}

/// A request prepared once per provider and endpoint: the URL parsed and the key's header
/// built. Load runs send tens of thousands of attempts a second, and formatting, parsing and
/// encoding the same URL and key for each showed in their profile; a clone of this is cheaper.
/// The key so lives for the session in a sensitive header value (or the URL, for query-parameter
/// auth) rather than only in its `SecretString`: nothing here prints either (Debug shows the
/// method only, and transport errors drop the URL).
pub struct RequestTemplate {
    request: reqwest::Request,
}

impl RequestTemplate {
    /// `None` when the request cannot be built (a base URL that does not parse): callers then use
    /// [`authorized`] per request, whose error reaches the attempt's outcome as before.
    #[must_use]
    pub fn new(
        client: &Client,
        method: Method,
        profile: &Profile,
        base_url: &str,
        path: &str,
        key: &SecretString,
    ) -> Option<Self> {
        let request = authorized(client, method, profile, base_url, path, key)
            .build()
            .ok()?;
        Some(Self { request })
    }

    /// A builder for one request from the template.
    #[must_use]
    pub fn builder(&self, client: &Client) -> Option<RequestBuilder> {
        let request = self.request.try_clone()?;
        Some(RequestBuilder::from_parts(client.clone(), request))
    }
}

/// The URL may carry the key (query-parameter auth): Debug names the method only.
impl std::fmt::Debug for RequestTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTemplate")
            .field("method", self.request.method())
            .finish_non_exhaustive()
    }
}

/// What the network delivered for one request.
#[derive(Debug)]
pub struct Received {
    pub transport: Transport,
    pub status: Option<u16>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    /// No answer: the session ended while the request was in the air.
    #[must_use]
    pub fn abandoned() -> Self {
        Self {
            transport: Transport::Abandoned,
            status: None,
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }
}

/// Send and read the body through `cap` bytes (reading stops there).
pub async fn send(request: RequestBuilder, cap: usize) -> Received {
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return Received {
                transport: transport_of(error),
                status: None,
                headers: HeaderMap::new(),
                body: Vec::new(),
            };
        }
    };
    let status = Some(response.status().as_u16());
    // Taken, not cloned: the body is read through `chunk`, which no longer looks at them.
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    let transport = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = cap.saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    break Transport::BodyOverCap {
                        cap_bytes: cap as u64,
                    };
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break Transport::Ok,
            Err(error) => {
                break match transport_of(error) {
                    Transport::Timeout => Transport::Timeout,
                    Transport::Other { detail } | Transport::Connect { detail } => {
                        Transport::BodyIncomplete { detail }
                    }
                    other => other,
                };
            }
        }
    };
    Received {
        transport,
        status,
        headers,
        body,
    }
}

/// reqwest's error as a transport result. The URL is dropped first: with query-parameter auth it
/// carries the key.
#[must_use]
pub fn transport_of(error: reqwest::Error) -> Transport {
    let error = error.without_url();
    let detail = chain(&error);
    if error.is_timeout() {
        return Transport::Timeout;
    }
    if error.is_builder() {
        return Transport::Local { detail };
    }
    let lower = detail.to_ascii_lowercase();
    if error.is_connect() {
        if refused(&error) {
            return Transport::ConnectionRefused;
        }
        if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake") {
            return Transport::Tls { detail };
        }
        return Transport::Connect { detail };
    }
    if error.is_body() || error.is_decode() {
        return Transport::BodyIncomplete { detail };
    }
    Transport::Other { detail }
}

fn refused(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The error and its causes on one line.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::builtin_profiles;

    #[test]
    fn the_body_uses_the_profiles_field_names() {
        let profiles = builtin_profiles();
        let options = RequestOptions {
            mode: Some("js_rendering".to_owned()),
            proxy_country: Some("de".to_owned()),
            tier: None,
            timeout_s: Some(20),
            use_async: false,
        };
        let omni = request_body(
            profiles.get("omniscrape").unwrap(),
            "https://a.example/",
            &options,
        );
        assert_eq!(
            omni,
            serde_json::json!({"url": "https://a.example/", "mode": "js_rendering", "country": "de"})
        );
        let alter = request_body(
            profiles.get("alterlab").unwrap(),
            "https://a.example/",
            &options,
        );
        assert_eq!(alter["timeout"], 20);
        assert!(alter.get("country").is_none());
        // AlterLab's SDK sends the tier inside cost_controls.
        let alter = request_body(
            profiles.get("alterlab").unwrap(),
            "https://a.example/",
            &RequestOptions {
                tier: Some("3.5".to_owned()),
                mode: Some("js".to_owned()),
                ..options
            },
        );
        assert_eq!(
            alter,
            serde_json::json!({"url": "https://a.example/", "mode": "js", "timeout": 20,
                "cost_controls": {"max_tier": "3.5"}})
        );
    }

    #[test]
    fn timeouts_are_sent_in_the_unit_the_provider_counts() {
        let profiles = builtin_profiles();
        let options = RequestOptions {
            timeout_s: Some(20),
            ..RequestOptions::default()
        };
        // ScrapingBee and ScrapFly count milliseconds (scrapfly-sdk: `timeout  # in milliseconds`).
        for name in ["scrapingbee", "scrapfly"] {
            let query = request_query(profiles.get(name).unwrap(), "https://a.example/", &options);
            assert!(
                query.contains(&("timeout".to_owned(), "20000".to_owned())),
                "{name}: {query:?}"
            );
        }
        let alter = request_body(
            profiles.get("alterlab").unwrap(),
            "https://a.example/",
            &options,
        );
        assert_eq!(alter["timeout"], 20, "AlterLab counts seconds");
    }

    #[test]
    fn an_async_probe_asks_for_the_queue_where_the_profile_says_how() {
        let profiles = builtin_profiles();
        let queued = RequestOptions {
            use_async: true,
            ..RequestOptions::default()
        };
        let alter = profiles.get("alterlab").unwrap();
        // AlterLab's SDK: `sync: false` "always use the async queue".
        let body = request_body(alter, "https://a.example/", &queued);
        assert_eq!(body["sync"], false, "{body}");
        let body = request_body(alter, "https://a.example/", &RequestOptions::default());
        assert!(body.get("sync").is_none(), "{body}");
        // OmniScrape queues through its own path, with the same body.
        let omni = request_body(
            profiles.get("omniscrape").unwrap(),
            "https://a.example/",
            &queued,
        );
        assert!(omni.get("sync").is_none(), "{omni}");
    }

    #[test]
    fn the_key_header_is_sensitive_and_absent_from_debug() {
        let profiles = builtin_profiles();
        let client = build_client(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let key = SecretString::from("sk_test_topsecret".to_owned());
        let request = authorized(
            &client,
            Method::POST,
            profiles.get("omniscrape").unwrap(),
            "http://127.0.0.1:9",
            "/v1/scrape",
            &key,
        )
        .build()
        .unwrap();
        let value = request.headers().get("x-api-key").unwrap();
        assert!(value.is_sensitive());
        assert!(!format!("{request:?}").contains("topsecret"));
    }

    #[test]
    fn a_template_sends_what_authorized_sends_and_hides_the_key() {
        let client = build_client(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let key = SecretString::from("sk_test_topsecret".to_owned());
        let header_auth = builtin_profiles().get("omniscrape").unwrap().clone();
        let mut query_auth = header_auth.clone();
        query_auth.auth = crate::provider::Auth {
            style: AuthStyle::Query,
            name: Some("api_key".to_owned()),
        };
        let mut basic_auth = header_auth.clone();
        basic_auth.auth.style = AuthStyle::Basic;
        for profile in [&header_auth, &query_auth, &basic_auth] {
            let direct = authorized(
                &client,
                Method::POST,
                profile,
                "http://127.0.0.1:9",
                "/v1/scrape",
                &key,
            )
            .build()
            .unwrap();
            let template = RequestTemplate::new(
                &client,
                Method::POST,
                profile,
                "http://127.0.0.1:9",
                "/v1/scrape",
                &key,
            )
            .unwrap();
            for _ in 0..2 {
                let sent = template.builder(&client).unwrap().build().unwrap();
                assert_eq!(sent.url(), direct.url());
                assert_eq!(sent.method(), direct.method());
                assert_eq!(sent.headers(), direct.headers());
                assert!(
                    sent.headers()
                        .values()
                        .all(|v| !v.as_bytes().ends_with(b"topsecret") || v.is_sensitive())
                );
            }
            assert!(!format!("{template:?}").contains("topsecret"));
        }
        assert!(
            RequestTemplate::new(
                &client,
                Method::POST,
                &header_auth,
                "not a url",
                "/v1/scrape",
                &key
            )
            .is_none()
        );
    }
}
