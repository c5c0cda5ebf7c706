//! Which requests the proxy forwards, and where: pure functions of the request line and headers.
//!
//! Only origin-form targets (`/<provider>/rest?query`) are accepted. An absolute-form target
//! (`GET http://other.host/ HTTP/1.1`), `CONNECT`, the asterisk form and any provider not loaded are
//! refused before anything is sent; a `Host` header never chooses the upstream. The upstream URL is
//! the provider's base URL with the rest of the path appended, and is checked to stay on that base
//! URL's scheme, host and port.

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, StatusCode, Uri};

/// Why a request is not forwarded. Each refusal is answered locally; nothing goes upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("CONNECT is not supported: omniscope proxy is not an open proxy")]
    Connect,
    #[error(
        "absolute-form request targets are refused: omniscope proxy only forwards /<provider>/… to that provider's configured base URL"
    )]
    AbsoluteForm,
    #[error("the path must start with /<provider>/ (known providers: {known})")]
    NoProvider { known: String },
    #[error("unknown provider {name:?} (known providers: {known})")]
    UnknownProvider { name: String, known: String },
    #[error("the request path does not stay on the provider's base URL")]
    LeavesBaseUrl,
    #[error("protocol upgrades are not forwarded")]
    Upgrade,
    #[error("the request body is larger than the proxy's {limit_bytes}-byte limit")]
    RequestTooLarge { limit_bytes: u64 },
}

impl Refusal {
    /// The status the client gets.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Connect => StatusCode::METHOD_NOT_ALLOWED,
            Self::AbsoluteForm | Self::LeavesBaseUrl | Self::Upgrade => StatusCode::BAD_REQUEST,
            Self::NoProvider { .. } | Self::UnknownProvider { .. } => StatusCode::NOT_FOUND,
            Self::RequestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// A stable machine-readable code for the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Connect => "OMNISCOPE_PROXY_CONNECT_REFUSED",
            Self::AbsoluteForm => "OMNISCOPE_PROXY_ABSOLUTE_FORM_REFUSED",
            Self::NoProvider { .. } | Self::UnknownProvider { .. } => {
                "OMNISCOPE_PROXY_UNKNOWN_PROVIDER"
            }
            Self::LeavesBaseUrl => "OMNISCOPE_PROXY_PATH_REFUSED",
            Self::Upgrade => "OMNISCOPE_PROXY_UPGRADE_REFUSED",
            Self::RequestTooLarge { .. } => "OMNISCOPE_PROXY_REQUEST_TOO_LARGE",
        }
    }
}

/// A request the proxy will forward: the provider and the path and query to append to its base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'k> {
    pub provider: &'k str,
    /// Starts with `/`; the query (if any) included.
    pub rest: String,
}

/// Route one request line. `known` lists the providers the proxy forwards to.
///
/// # Errors
/// The request is refused; see [`Refusal`].
pub fn route<'k>(
    method: &Method,
    uri: &Uri,
    known: &'k [impl AsRef<str>],
) -> Result<Route<'k>, Refusal> {
    if method == Method::CONNECT {
        return Err(Refusal::Connect);
    }
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(Refusal::AbsoluteForm);
    }
    let path = uri.path();
    let known_list = || {
        known
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<&str>>()
            .join(", ")
    };
    let Some(after_slash) = path.strip_prefix('/') else {
        // The asterisk form (`OPTIONS *`).
        return Err(Refusal::NoProvider {
            known: known_list(),
        });
    };
    let (name, rest_path) = after_slash
        .split_once('/')
        .map_or((after_slash, ""), |(name, rest)| (name, rest));
    if name.is_empty() {
        return Err(Refusal::NoProvider {
            known: known_list(),
        });
    }
    let Some(provider) = known.iter().map(AsRef::as_ref).find(|known| *known == name) else {
        return Err(Refusal::UnknownProvider {
            name: name.chars().take(64).collect(),
            known: known_list(),
        });
    };
    let mut rest = String::with_capacity(rest_path.len() + 1 + uri.query().map_or(0, str::len) + 1);
    rest.push('/');
    rest.push_str(rest_path);
    if let Some(query) = uri.query() {
        rest.push('?');
        rest.push_str(query);
    }
    Ok(Route { provider, rest })
}

/// The upstream URL for `rest` under `base_url`, checked to keep the base URL's scheme, host and
/// port (a path cannot move a request to another host, but the check costs little and says so).
///
/// # Errors
/// The joined URL does not parse or leaves the base URL's origin.
pub fn upstream_url(base_url: &reqwest::Url, rest: &str) -> Result<reqwest::Url, Refusal> {
    let base = base_url.as_str().trim_end_matches('/');
    let joined =
        reqwest::Url::parse(&format!("{base}{rest}")).map_err(|_| Refusal::LeavesBaseUrl)?;
    let same_origin = joined.scheme() == base_url.scheme()
        && joined.host_str() == base_url.host_str()
        && joined.port_or_known_default() == base_url.port_or_known_default()
        && joined.username().is_empty()
        && joined.password().is_none();
    if same_origin {
        Ok(joined)
    } else {
        Err(Refusal::LeavesBaseUrl)
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `Host` (the
/// upstream's comes from its URL), `Expect` (answered by the proxy's own server) and the
/// proxy-authentication pair. Never forwarded in either direction.
const HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

/// Remove the hop-by-hop headers, and every header the `Connection` header names, in place.
/// `Host` goes too when `drop_host` (requests: the upstream's comes from its URL).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, drop_host: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if drop_host {
        headers.remove(header::HOST);
    }
}

/// Whether the request asks to switch protocols (WebSocket and the like): not forwarded.
#[must_use]
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const KNOWN: [&str; 2] = ["alterlab", "omniscrape"];

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn origin_form_paths_route_to_their_provider_with_the_query() {
        let target = uri("/alterlab/api/v1/scrape?x=1&y=2");
        let route = route(&Method::POST, &target, &KNOWN).unwrap();
        assert_eq!(route.provider, "alterlab");
        assert_eq!(route.rest, "/api/v1/scrape?x=1&y=2");
        let bare = uri("/omniscrape");
        assert_eq!(route_of(&bare).unwrap().rest, "/");
    }

    fn route_of(target: &Uri) -> Result<Route<'static>, Refusal> {
        route(&Method::GET, target, &KNOWN)
    }

    #[test]
    fn open_proxy_forms_are_refused() {
        assert_eq!(
            route(&Method::CONNECT, &uri("api.alterlab.io:443"), &KNOWN),
            Err(Refusal::Connect)
        );
        assert_eq!(
            route_of(&uri("http://evil.example/alterlab/api/v1/scrape")),
            Err(Refusal::AbsoluteForm)
        );
        assert_eq!(
            route_of(&uri("https://api.alterlab.io/api/v1/scrape")),
            Err(Refusal::AbsoluteForm)
        );
        assert!(matches!(
            route_of(&uri("*")),
            Err(Refusal::NoProvider { .. })
        ));
        assert!(matches!(
            route_of(&uri("/")),
            Err(Refusal::NoProvider { .. })
        ));
        assert!(matches!(
            route_of(&uri("/evil.example/x")),
            Err(Refusal::UnknownProvider { .. })
        ));
        assert!(matches!(
            route_of(&uri("//evil.example/x")),
            Err(Refusal::NoProvider { .. })
        ));
    }

    #[test]
    fn the_upstream_url_stays_on_the_base_urls_origin() {
        let base = reqwest::Url::parse("https://api.alterlab.io").unwrap();
        assert_eq!(
            upstream_url(&base, "/api/v1/scrape?a=1").unwrap().as_str(),
            "https://api.alterlab.io/api/v1/scrape?a=1"
        );
        // Dot segments and doubled slashes resolve on the same host.
        for rest in [
            "/../../x",
            "//evil.example/x",
            "/@evil.example/",
            "/%2e%2e/x",
        ] {
            let url = upstream_url(&base, rest).unwrap();
            assert_eq!(url.host_str(), Some("api.alterlab.io"), "{rest}");
        }
        let prefixed = reqwest::Url::parse("http://127.0.0.1:8787/prefix/").unwrap();
        assert_eq!(
            upstream_url(&prefixed, "/v1/scrape").unwrap().as_str(),
            "http://127.0.0.1:8787/prefix/v1/scrape"
        );
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("host", "evil.example"),
            ("x-api-key", "sk_test_x"),
            ("content-type", "application/json"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers, true);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-api-key", "content-type"]);
    }
}
