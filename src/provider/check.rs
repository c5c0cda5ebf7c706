//! The checks a profile must pass beyond its syntax: every field it names can be read where the
//! profile says it lives, and the call it describes can be sent. A field that could never be read
//! would otherwise show as a silent blank on every attempt.

use super::{
    AuthStyle, BodyKind, EscalationStep, Field, FieldSource, Placement, Profile, ScrapeMethod,
};

/// A profile whose fields cannot be read where it says, or whose call cannot be sent as described.
/// Each message starts with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "response.{field}: \"{source_text}\" reads the HTTP status, which only target_status and provider_status can be"
    )]
    StatusSource {
        field: &'static str,
        source_text: String,
    },
    #[error(
        "response.content: \"{0}\" cannot be read when response.body = \"raw\" (the whole body is the content); remove it"
    )]
    RawContent(String),
    #[error(
        "{field}: \"{source_text}\" cannot be read there: that answer is read as a JSON body, so only \"json:/pointer\" sources apply"
    )]
    JsonOnly {
        field: &'static str,
        source_text: String,
    },
    #[error(
        "usage.balance is empty and cannot be derived from usage.quota_limit alone: add usage.quota_used (remaining = limit - used)"
    )]
    LimitWithoutUsed,
    #[error(
        "request.placement = \"json\" with endpoints.method = \"get\": a GET carries no body; set request.placement = \"query\""
    )]
    GetWithBody,
    #[error(
        "{field} = {value:?}: a pointer names a nested JSON field, but request.placement = \"query\" sends flat parameters"
    )]
    PointerInQuery { field: &'static str, value: String },
    #[error("{0}: a query parameter must be a string, number or boolean")]
    QueryValue(String),
    #[error("request.mode_params.{0}: {0:?} is not listed in request.modes")]
    ModeNotListed(String),
    #[error("escalations: step \"mode={0}\" names a mode request.modes does not list")]
    StepMode(String),
    #[error("usage_auth is set but endpoints.usage is not")]
    UsageAuthWithoutUsage,
    #[error("usage_auth.name is required for header and query auth")]
    UsageAuthName,
    #[error(
        "{field} = {name:?} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    )]
    HeaderName { field: &'static str, name: String },
    #[error(
        "{second} = {second_value:?} writes where {first} = {first_value:?} does: each part of the request needs a place of its own"
    )]
    Collision {
        first: String,
        first_value: String,
        second: String,
        second_value: String,
    },
    #[error("{field} = {value:?} is not a well-formed JSON pointer: {problem}")]
    Pointer {
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error(
        "response.job_id is read but there is no [jobs] table: an accepted job could never be polled"
    )]
    JobIdWithoutJobs,
    #[error("[jobs] is set but response.job_id is empty: no job id could ever be read")]
    JobsWithoutJobId,
    #[error(
        "[jobs] needs endpoints.job_poll (with {{job_id}}) or response.poll_path: nothing says where to poll"
    )]
    JobsWithoutPoll,
    #[error("endpoints.job_poll = {0:?} has no {{job_id}} for the job id")]
    PollWithoutJobId(String),
    #[error("[usage] is set but endpoints.usage is not: its fields would never be read")]
    UsageWithoutEndpoint,
    #[error("endpoints.usage is set but there is no [usage] table to read its answer")]
    EndpointWithoutUsage,
}

/// A place in a profile's TOML: its keys from the top, an array entry as its index.
pub(super) type KeyPath = Vec<String>;

fn dotted(path: &str) -> KeyPath {
    path.split('.').map(str::to_owned).collect()
}

impl ShapeError {
    /// The keys the error is about, most telling first: where a user's file set them is where
    /// the message points.
    pub(super) fn at(&self) -> Vec<KeyPath> {
        match self {
            Self::StatusSource { field, .. } => vec![vec!["response".into(), (*field).into()]],
            Self::RawContent(_) => vec![dotted("response.content"), dotted("response.body")],
            Self::JsonOnly { field, .. }
            | Self::PointerInQuery { field, .. }
            | Self::HeaderName { field, .. }
            | Self::Pointer { field, .. } => vec![dotted(field)],
            Self::LimitWithoutUsed => vec![dotted("usage.quota_limit"), dotted("usage")],
            Self::GetWithBody => vec![dotted("endpoints.method"), dotted("request.placement")],
            Self::QueryValue(field) => vec![dotted(field)],
            Self::ModeNotListed(mode) => vec![
                vec!["request".into(), "mode_params".into(), mode.clone()],
                dotted("request.modes"),
            ],
            Self::StepMode(_) => vec![dotted("escalations"), dotted("request.modes")],
            Self::UsageAuthWithoutUsage => vec![dotted("usage_auth"), dotted("endpoints")],
            Self::UsageAuthName => vec![dotted("usage_auth")],
            Self::Collision { first, second, .. } => vec![dotted(second), dotted(first)],
            Self::JobIdWithoutJobs => vec![dotted("response.job_id")],
            Self::JobsWithoutJobId => vec![dotted("jobs"), dotted("response.job_id")],
            Self::JobsWithoutPoll => vec![dotted("jobs"), dotted("endpoints")],
            Self::PollWithoutJobId(_) => vec![dotted("endpoints.job_poll")],
            Self::UsageWithoutEndpoint => vec![dotted("usage"), dotted("endpoints")],
            Self::EndpointWithoutUsage => vec![dotted("endpoints.usage")],
        }
    }
}

/// Every field can be read where the profile says it lives.
pub(super) fn readable(profile: &Profile) -> Result<(), ShapeError> {
    let response = &profile.response;
    let status_allowed = |name: &str| matches!(name, "target_status" | "provider_status");
    for (name, fields) in [
        ("success", &response.success),
        ("provider_status", &response.provider_status),
        ("error_code", &response.error_code),
        ("message", &response.message),
        ("target_status", &response.target_status),
        ("content", &response.content),
        ("request_id", &response.request_id),
        ("charged", &response.charged),
        ("refunded", &response.refunded),
        ("job_id", &response.job_id),
        ("poll_path", &response.poll_path),
        ("elapsed_seconds", &response.elapsed_seconds),
        ("solver_used", &response.solver_used),
    ] {
        if !status_allowed(name)
            && let Some(field) = fields.iter().find(|field| is_status(field))
        {
            return Err(ShapeError::StatusSource {
                field: name,
                source_text: field.to_string(),
            });
        }
    }
    if response.body == BodyKind::Raw
        && let Some(field) = response.content.first()
    {
        return Err(ShapeError::RawContent(field.to_string()));
    }
    // The usage and job-poll answers are read as JSON bodies only.
    let json_only = profile
        .usage
        .iter()
        .flat_map(|usage| {
            [
                ("usage.balance", &usage.balance),
                ("usage.plan", &usage.plan),
                ("usage.quota_used", &usage.quota_used),
                ("usage.quota_limit", &usage.quota_limit),
            ]
        })
        .chain(profile.jobs.iter().flat_map(|jobs| {
            [
                ("jobs.status", &jobs.status),
                ("jobs.result", &jobs.result),
                ("jobs.error", &jobs.error),
            ]
        }));
    for (name, fields) in json_only {
        if let Some(field) = fields
            .iter()
            .find(|field| !matches!(field.0, FieldSource::Json(_)))
        {
            return Err(ShapeError::JsonOnly {
                field: name,
                source_text: field.to_string(),
            });
        }
    }
    if let Some(usage) = &profile.usage
        && usage.balance.is_empty()
        && !usage.quota_limit.is_empty()
        && usage.quota_used.is_empty()
    {
        return Err(ShapeError::LimitWithoutUsed);
    }
    answers_fetched(profile)
}

/// Every answer the profile reads is one it asks for, and every answer it asks for can be read: a
/// job needs its id, its status table and a place to poll; a usage table needs its endpoint.
fn answers_fetched(profile: &Profile) -> Result<(), ShapeError> {
    let endpoints = &profile.endpoints;
    let response = &profile.response;
    if let Some(template) = &endpoints.job_poll
        && !template.contains("{job_id}")
    {
        return Err(ShapeError::PollWithoutJobId(template.clone()));
    }
    match &profile.jobs {
        None if !response.job_id.is_empty() => return Err(ShapeError::JobIdWithoutJobs),
        Some(_) if response.job_id.is_empty() => return Err(ShapeError::JobsWithoutJobId),
        Some(_) if endpoints.job_poll.is_none() && response.poll_path.is_empty() => {
            return Err(ShapeError::JobsWithoutPoll);
        }
        _ => {}
    }
    match (&profile.usage, &endpoints.usage) {
        (Some(_), None) => Err(ShapeError::UsageWithoutEndpoint),
        (None, Some(_)) => Err(ShapeError::EndpointWithoutUsage),
        _ => Ok(()),
    }
}

/// Every header name the profile sends or reads is one HTTP allows: a bad auth header would fail
/// every attempt locally, a bad response header would never be found.
pub(super) fn header_names(profile: &Profile) -> Result<(), ShapeError> {
    let auth_header = |auth: &Option<&super::Auth>| {
        auth.filter(|auth| auth.style == AuthStyle::Header)
            .and_then(|auth| auth.name.clone())
    };
    let limits = &profile.rate_limit;
    let concurrency = &profile.concurrency;
    let names = [
        ("auth.name", auth_header(&Some(&profile.auth))),
        ("usage_auth.name", auth_header(&profile.usage_auth.as_ref())),
        ("rate_limit.limit", limits.limit.clone()),
        ("rate_limit.remaining", limits.remaining.clone()),
        ("rate_limit.reset", limits.reset.clone()),
        ("rate_limit.retry_after", limits.retry_after.clone()),
        ("concurrency.limit", concurrency.limit.clone()),
        ("concurrency.current", concurrency.current.clone()),
        ("concurrency.remaining", concurrency.remaining.clone()),
    ];
    for (field, name) in names {
        if let Some(name) = name
            && reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(ShapeError::HeaderName { field, name });
        }
    }
    Ok(())
}

/// Each part of the scrape request has a place of its own: no two fields, fixed parameters or a
/// query-parameter key write the same key, or one inside the other (`request.mode = "url"` would
/// overwrite the target; `tier = "/a/b"` under `timeout = "a"` would replace one by the other).
/// A mode's parameters may restate the fixed ones: the mode's value is meant to win.
pub(super) fn distinct_places(profile: &Profile) -> Result<(), ShapeError> {
    let request = &profile.request;
    let fields = [
        ("request.url", Some(&request.url)),
        ("request.mode", request.mode.as_ref()),
        ("request.proxy_country", request.proxy_country.as_ref()),
        ("request.tier", request.tier.as_ref()),
        ("request.timeout", request.timeout.as_ref()),
    ];
    // (the key that says it, what it says, the keys it writes)
    let mut places: Vec<(String, String, Vec<String>)> = Vec::new();
    for (field, value) in fields {
        let Some(value) = value else { continue };
        if value.starts_with('/') {
            let problem = super::field::pointer_problem(value).or_else(|| {
                super::request_field_path(value)
                    .iter()
                    .any(String::is_empty)
                    .then_some("an empty key (\"//\" or a '/' at the end) names no field")
            });
            if let Some(problem) = problem {
                return Err(ShapeError::Pointer {
                    field,
                    value: value.clone(),
                    problem,
                });
            }
        }
        places.push((
            field.to_owned(),
            value.clone(),
            super::request_field_path(value),
        ));
    }
    for key in request.params.keys() {
        places.push((
            format!("request.params.{key}"),
            key.clone(),
            vec![key.clone()],
        ));
    }
    let mode_keys: std::collections::BTreeMap<&String, &String> = request
        .mode_params
        .iter()
        .flat_map(|(mode, params)| params.keys().map(move |key| (key, mode)))
        .collect();
    for (key, mode) in mode_keys {
        if !request.params.contains_key(key) {
            places.push((
                format!("request.mode_params.{mode}.{key}"),
                key.clone(),
                vec![key.clone()],
            ));
        }
    }
    if request.placement == Placement::Query
        && profile.auth.style == AuthStyle::Query
        && let Some(name) = &profile.auth.name
    {
        places.push(("auth.name".to_owned(), name.clone(), vec![name.clone()]));
    }
    for (index, (second, second_value, written)) in places.iter().enumerate() {
        let clash = places[..index].iter().find(|(_, _, other)| {
            let shorter = other.len().min(written.len());
            other[..shorter] == written[..shorter]
        });
        if let Some((first, first_value, _)) = clash {
            return Err(ShapeError::Collision {
                first: first.clone(),
                first_value: first_value.clone(),
                second: second.clone(),
                second_value: second_value.clone(),
            });
        }
    }
    Ok(())
}

/// The scrape call and the escalations can be sent as described.
pub(super) fn sendable(profile: &Profile) -> Result<(), ShapeError> {
    let request = &profile.request;
    if profile.endpoints.method == ScrapeMethod::Get && request.placement == Placement::Json {
        return Err(ShapeError::GetWithBody);
    }
    if request.placement == Placement::Query {
        for (name, value) in [
            ("request.url", Some(&request.url)),
            ("request.mode", request.mode.as_ref()),
            ("request.proxy_country", request.proxy_country.as_ref()),
            ("request.tier", request.tier.as_ref()),
            ("request.timeout", request.timeout.as_ref()),
        ] {
            if let Some(field) = value.filter(|field| field.starts_with('/')) {
                return Err(ShapeError::PointerInQuery {
                    field: name,
                    value: field.clone(),
                });
            }
        }
        for (mode, params) in &request.mode_params {
            if let Some((key, _)) = params.iter().find(|(_, value)| query_text(value).is_none()) {
                return Err(ShapeError::QueryValue(format!(
                    "request.mode_params.{mode}.{key}"
                )));
            }
        }
        if let Some((key, _)) = request
            .params
            .iter()
            .find(|(_, value)| query_text(value).is_none())
        {
            return Err(ShapeError::QueryValue(format!("request.params.{key}")));
        }
    }
    if let Some(mode) = request
        .mode_params
        .keys()
        .find(|mode| !request.modes.contains(mode))
    {
        return Err(ShapeError::ModeNotListed(mode.clone()));
    }
    for rule in &profile.escalations {
        for step in &rule.steps {
            if let EscalationStep::Mode(mode) = step
                && !request.mode_params.is_empty()
                && !request.modes.contains(mode)
            {
                return Err(ShapeError::StepMode(mode.clone()));
            }
        }
    }
    if let Some(auth) = &profile.usage_auth {
        if profile.endpoints.usage.is_none() {
            return Err(ShapeError::UsageAuthWithoutUsage);
        }
        if matches!(auth.style, AuthStyle::Header | AuthStyle::Query)
            && auth.name.as_deref().is_none_or(str::is_empty)
        {
            return Err(ShapeError::UsageAuthName);
        }
    }
    Ok(())
}

fn is_status(field: &Field) -> bool {
    matches!(field.0, FieldSource::Status(_))
}

/// A TOML value as query text: strings as they are, numbers and booleans printed. Tables, arrays
/// and dates have no one query spelling.
#[must_use]
pub fn query_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Float(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::builtin_profiles;

    fn field(text: &str) -> Field {
        Field::try_from(text.to_owned()).unwrap()
    }

    fn profile(name: &str) -> Profile {
        builtin_profiles().get(name).unwrap().clone()
    }

    #[test]
    fn every_builtin_profile_passes() {
        for profile in builtin_profiles().iter() {
            assert_eq!(readable(profile), Ok(()), "{}", profile.name);
            assert_eq!(sendable(profile), Ok(()), "{}", profile.name);
            assert_eq!(header_names(profile), Ok(()), "{}", profile.name);
            assert_eq!(distinct_places(profile), Ok(()), "{}", profile.name);
        }
    }

    #[test]
    fn a_field_the_answer_cannot_hold_is_named() {
        let mut charged_by_status = profile("scraperapi");
        charged_by_status.response.charged = vec![field("status")];
        let error = readable(&charged_by_status).unwrap_err().to_string();
        assert!(error.starts_with("response.charged"), "{error}");

        let mut usage_header = profile("scrapingbee");
        if let Some(usage) = &mut usage_header.usage {
            usage.quota_used = vec![field("header:X-Used")];
        }
        let error = readable(&usage_header).unwrap_err().to_string();
        assert!(error.starts_with("usage.quota_used"), "{error}");
        assert!(error.contains("header:x-used"), "{error}");

        let mut raw_content = profile("zenrows");
        raw_content.response.content = vec![field("json:/content")];
        let error = readable(&raw_content).unwrap_err().to_string();
        assert!(error.starts_with("response.content"), "{error}");

        let mut limit_alone = profile("scraperapi");
        if let Some(usage) = &mut limit_alone.usage {
            usage.quota_used.clear();
        }
        let error = readable(&limit_alone).unwrap_err().to_string();
        assert!(error.contains("usage.quota_used"), "{error}");
    }

    #[test]
    fn a_call_that_cannot_be_sent_is_named() {
        let mut get_with_body = profile("zyte");
        get_with_body.endpoints.method = ScrapeMethod::Get;
        let error = sendable(&get_with_body).unwrap_err().to_string();
        assert!(error.contains("placement"), "{error}");

        let mut unknown_mode = profile("scraperapi");
        unknown_mode
            .request
            .mode_params
            .insert("turbo".to_owned(), toml::Table::new());
        let error = sendable(&unknown_mode).unwrap_err().to_string();
        assert!(error.starts_with("request.mode_params.turbo"), "{error}");

        let mut nested_query = profile("scrapfly");
        nested_query.request.tier = Some("/proxy/pool".to_owned());
        let error = sendable(&nested_query).unwrap_err().to_string();
        assert!(error.starts_with("request.tier"), "{error}");

        let mut table_param = profile("crawlbase");
        table_param
            .request
            .params
            .insert("nested".to_owned(), toml::Value::Table(toml::Table::new()));
        let error = sendable(&table_param).unwrap_err().to_string();
        assert!(error.starts_with("request.params.nested"), "{error}");

        let mut ladder = profile("scraperapi");
        ladder.escalations[0].steps = vec![EscalationStep::Mode("warp".to_owned())];
        let error = sendable(&ladder).unwrap_err().to_string();
        assert!(error.contains("mode=warp"), "{error}");

        let mut usage_auth_alone = profile("zenrows");
        usage_auth_alone.endpoints.usage = None;
        assert!(sendable(&usage_auth_alone).is_err());
    }

    #[test]
    fn a_header_name_http_refuses_is_named() {
        let mut auth = profile("omniscrape");
        auth.auth.name = Some("X API Key".to_owned());
        let error = header_names(&auth).unwrap_err();
        assert_eq!(error.at(), [dotted("auth.name")]);
        assert!(error.to_string().contains("\"X API Key\""), "{error}");

        let mut limit = profile("alterlab");
        limit.rate_limit.remaining = Some("Remaining:".to_owned());
        assert!(
            header_names(&limit)
                .unwrap_err()
                .to_string()
                .starts_with("rate_limit.remaining")
        );

        // A query parameter's name is not a header name: spaces are the provider's business.
        let mut query = profile("scraperapi");
        query.auth.name = Some("api key".to_owned());
        assert_eq!(header_names(&query), Ok(()));
    }

    #[test]
    fn two_parts_of_the_request_in_one_place_are_named() {
        let collision = |profile: &Profile| match distinct_places(profile) {
            Err(ShapeError::Collision { first, second, .. }) => (first, second),
            other => panic!("{} not refused: {other:?}", profile.name),
        };
        let mut mode_on_url = profile("omniscrape");
        mode_on_url.request.mode = Some("url".to_owned());
        assert_eq!(
            collision(&mode_on_url),
            ("request.url".to_owned(), "request.mode".to_owned())
        );

        // A pointer under a plain key, and two pointers to one place.
        let mut nested = profile("alterlab");
        nested.request.timeout = Some("cost_controls".to_owned());
        assert_eq!(
            collision(&nested),
            ("request.tier".to_owned(), "request.timeout".to_owned())
        );
        let mut same = profile("alterlab");
        same.request.mode = Some("/cost_controls/max_tier".to_owned());
        assert_eq!(
            collision(&same),
            ("request.mode".to_owned(), "request.tier".to_owned())
        );
        let mut siblings = profile("alterlab");
        siblings.request.mode = Some("/cost_controls/mode".to_owned());
        assert_eq!(
            distinct_places(&siblings),
            Ok(()),
            "siblings are two places"
        );

        // A fixed parameter or a mode's over a field; the key's own query parameter.
        let mut param = profile("brightdata");
        param
            .request
            .params
            .insert("country".to_owned(), toml::Value::from("us"));
        assert_eq!(
            collision(&param),
            (
                "request.proxy_country".to_owned(),
                "request.params.country".to_owned()
            )
        );
        let mut mode_param = profile("scrapingbee");
        if let Some(js) = mode_param.request.mode_params.get_mut("js") {
            js.insert("url".to_owned(), toml::Value::from("x"));
        }
        assert_eq!(collision(&mode_param).1, "request.mode_params.js.url");
        let mut key_param = profile("scraperapi");
        key_param.auth.name = Some("url".to_owned());
        assert_eq!(
            collision(&key_param),
            ("request.url".to_owned(), "auth.name".to_owned())
        );
        // ScraperAPI's modes restate each other's parameters: one mode is sent at a time.
        assert_eq!(distinct_places(&profile("scraperapi")), Ok(()));
    }

    #[test]
    fn a_malformed_pointer_is_named() {
        for pointer in ["/cost~2controls/max_tier", "/cost_controls/", "//max_tier"] {
            let mut bad = profile("alterlab");
            bad.request.tier = Some(pointer.to_owned());
            let error = distinct_places(&bad).unwrap_err();
            assert!(
                matches!(
                    &error,
                    ShapeError::Pointer {
                        field: "request.tier",
                        ..
                    }
                ),
                "{pointer}: {error}"
            );
        }
        let mut escaped = profile("alterlab");
        escaped.request.tier = Some("/cost~1controls/max~0tier".to_owned());
        assert_eq!(distinct_places(&escaped), Ok(()));
        assert!(Field::try_from("json:/data/~2x".to_owned()).is_err());
        assert!(Field::try_from("json:/data/~1x/~0".to_owned()).is_ok());
    }

    #[test]
    fn an_answer_read_but_never_fetched_is_named() {
        let mut no_jobs = profile("omniscrape");
        no_jobs.jobs = None;
        assert_eq!(readable(&no_jobs), Err(ShapeError::JobIdWithoutJobs));

        let mut no_id = profile("alterlab");
        no_id.response.job_id.clear();
        assert_eq!(readable(&no_id), Err(ShapeError::JobsWithoutJobId));

        let mut nowhere = profile("alterlab");
        nowhere.endpoints.job_poll = None;
        assert_eq!(readable(&nowhere), Err(ShapeError::JobsWithoutPoll));

        let mut no_slot = profile("omniscrape");
        no_slot.endpoints.job_poll = Some("/v1/jobs".to_owned());
        assert!(matches!(
            readable(&no_slot),
            Err(ShapeError::PollWithoutJobId(_))
        ));

        let mut unfetched = profile("scrapfly");
        unfetched.endpoints.usage = None;
        unfetched.usage_auth = None;
        assert_eq!(readable(&unfetched), Err(ShapeError::UsageWithoutEndpoint));
        let mut unread = profile("scrapfly");
        unread.usage = None;
        assert_eq!(readable(&unread), Err(ShapeError::EndpointWithoutUsage));
    }
}
