//! `classify` (and `decide` on what it returns) is total: any status, any body bytes, any header
//! value `HeaderValue::from_bytes` accepts, JSON of any type in any field the profiles read. And the
//! outcome keeps its invariants whatever came in.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use omniscope::outcome::{Outcome, Transport};
use omniscope::policy::{Decision, RetryPolicy, RetryState, decide};
use omniscope::provider::{
    AttemptMeta, BODY_EXCERPT_BYTES, Exchange, MAX_WAIT, Profile, builtin_profiles, classify,
    parse_job_poll, parse_usage,
};

static PROFILES: LazyLock<Vec<Profile>> =
    LazyLock::new(|| builtin_profiles().iter().cloned().collect());

/// The headers the profiles read: rate limits, concurrency, Retry-After, request id.
const READ_HEADERS: &[&str] = &[
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-concurrency-limit",
    "x-concurrency-current",
    "x-request-id",
    // The seven providers of issue 17.
    "sa-credit-cost",
    "spb-initial-status-code",
    "spb-cost",
    "spb-auto-cost",
    "x-request-cost",
    "concurrency-limit",
    "concurrency-remaining",
    "x-scrapfly-api-cost",
    "x-scrapfly-reject-code",
    "x-scrapfly-account-concurrent-usage",
    "x-scrapfly-account-remaining-concurrent-usage",
    "request-id",
    "original_status",
    "pc_status",
    "cb_status",
    "x-crawlbase-concurrency",
    "x-brd-status-code",
    "x-brd-error-code",
    "x-brd-error",
];

/// Every JSON place a built-in profile reads, in a sync, job or usage response.
const READ_POINTERS: &[&str] = &[
    "/success",
    "/error",
    "/code",
    "/message",
    "/request_id",
    "/metadata/request_id",
    "/metadata/elapsed_time",
    "/data/status_code",
    "/data/content",
    "/data/billing/charged",
    "/data/job_id",
    "/data/status",
    "/data/result",
    "/data/error",
    "/billing/charged",
    "/billing/refunded",
    "/billing/total_credits",
    "/status_code",
    "/content",
    "/job_id",
    "/poll",
    "/status",
    "/result",
    "/balance_credits",
    "/credits_remaining",
    "/credits_used",
    "/plan",
    // The seven providers of issue 17.
    "/result/success",
    "/result/status_code",
    "/result/error/code",
    "/result/error/message",
    "/statusCode",
    "/type",
    "/detail",
    "/title",
    "/cb_status",
    "/pc_status",
    "/original_status",
    "/requestLimit",
    "/requestCount",
    "/max_api_credit",
    "/used_api_credit",
];

fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn any_profile() -> impl Strategy<Value = &'static Profile> {
    (0..PROFILES.len()).prop_map(|index| &PROFILES[index])
}

fn any_transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        6 => Just(Transport::Ok),
        1 => Just(Transport::Timeout),
        1 => Just(Transport::ConnectionRefused),
        1 => ".{0,20}".prop_map(|detail| Transport::Connect { detail }),
        1 => ".{0,20}".prop_map(|detail| Transport::Tls { detail }),
        1 => any::<u64>().prop_map(|cap_bytes| Transport::BodyOverCap { cap_bytes }),
        1 => ".{0,20}".prop_map(|detail| Transport::BodyIncomplete { detail }),
        1 => ".{0,20}".prop_map(|detail| Transport::Other { detail }),
    ]
}

/// Header values: raw bytes (kept when `HeaderValue::from_bytes` accepts them) and the near-misses
/// a provider or a proxy actually sends.
fn any_header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        "[0-9]{0,25}".prop_map(String::into_bytes),
        "-?[0-9]{1,12}(\\.[0-9]{1,3})?".prop_map(String::into_bytes),
        "[ \\t]{0,2}[0-9]{1,10}[ \\t]{0,2}".prop_map(String::into_bytes),
        Just(b"Wed, 21 Oct 2015 07:28:00 GMT".to_vec()),
        Just(b"Mon, 23 Nov 2026 12:01:30 GMT".to_vec()),
        Just(b"Fri, 31 Dec 9999 23:59:59 GMT".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"1e9".to_vec()),
        Just(b"NaN".to_vec()),
    ]
}

fn any_headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((0..READ_HEADERS.len(), any_header_value()), 0..10).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (index, bytes) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                map.append(HeaderName::from_static(READ_HEADERS[index]), value);
            }
        }
        map
    })
}

/// Any JSON value, leaning on the near-misses (numbers as strings, negative, fractional, huge).
fn any_json() -> impl Strategy<Value = Value> {
    let codes: Vec<String> = PROFILES
        .iter()
        .flat_map(|profile| profile.errors.iter().map(|rule| rule.code.clone()))
        .collect();
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|number| json!(number)),
        any::<u64>().prop_map(|number| json!(number)),
        any::<f64>().prop_filter_map("finite", |number| {
            serde_json::Number::from_f64(number).map(Value::Number)
        }),
        ".{0,16}".prop_map(Value::String),
        prop::sample::select(codes).prop_map(Value::String),
        prop::sample::select(vec![
            json!("404"),
            json!(" 200 "),
            json!("-1"),
            json!("NaN"),
            json!("inf"),
            json!("true"),
            json!("0.0035"),
            json!(404),
            json!(404.0),
            json!(-3),
            json!(70000),
            json!(0.0035),
            json!("completed"),
            json!("queued"),
            json!("failed"),
            json!("/v1/jobs/x"),
        ]),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Set `value` at an RFC 6901 pointer, creating (or replacing with) objects on the way.
fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    let mut node = root;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (index, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let object = node.as_object_mut().unwrap();
        if index + 1 == parts.len() {
            object.insert((*part).to_owned(), value);
            return;
        }
        node = object
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// A body with the fields the profiles read, each holding any JSON at all.
fn any_shaped_body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0..READ_POINTERS.len(), any_json()), 0..10).prop_map(|fields| {
        let mut root = Value::Object(Map::new());
        for (index, value) in fields {
            set_pointer(&mut root, READ_POINTERS[index], value);
        }
        serde_json::to_vec(&root).unwrap()
    })
}

/// An error body carrying a code one of the profiles knows (perhaps under another status).
fn any_code_body() -> impl Strategy<Value = Vec<u8>> {
    let codes: Vec<String> = PROFILES
        .iter()
        .flat_map(|profile| profile.errors.iter().map(|rule| rule.code.clone()))
        .collect();
    prop::sample::select(codes).prop_map(|code| {
        serde_json::to_vec(&json!({"success": false, "error": code, "code": code, "message": "m"}))
            .unwrap()
    })
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any_code_body(),
        prop::collection::vec(any::<u8>(), 0..600),
        any_shaped_body(),
        // A shaped body cut short.
        (any_shaped_body(), any::<prop::sample::Index>()).prop_map(|(body, cut)| {
            let at = cut.index(body.len().max(1));
            body[..at.min(body.len())].to_vec()
        }),
    ]
}

fn any_status() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![
        1 => Just(None),
        4 => prop::sample::select(vec![
            200u16, 202, 204, 400, 401, 402, 403, 404, 409, 410, 413, 415, 422, 429, 500, 502, 503,
            504, 520,
        ])
        .prop_map(Some),
        1 => any::<u16>().prop_map(Some),
    ]
}

struct Input {
    profile: &'static Profile,
    transport: Transport,
    status: Option<u16>,
    headers: HeaderMap,
    body: Vec<u8>,
    body_cap: usize,
    attempt: u32,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("profile", &self.profile.name)
            .field("transport", &self.transport)
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("body_cap", &self.body_cap)
            .field("attempt", &self.attempt)
            .finish()
    }
}

fn any_input() -> impl Strategy<Value = Input> {
    (
        any_profile(),
        any_transport(),
        any_status(),
        any_headers(),
        any_body(),
        prop_oneof![4 => Just(10 * 1024 * 1024), 1 => 0usize..700],
        0u32..6,
    )
        .prop_map(
            |(profile, transport, status, headers, body, body_cap, attempt)| Input {
                profile,
                transport,
                status,
                headers,
                body,
                body_cap,
                attempt,
            },
        )
}

fn run(input: &Input) -> Outcome {
    let meta = AttemptMeta {
        attempt: input.attempt,
        started_at: received_at() - TimeDelta::seconds(1),
        ..AttemptMeta::default()
    };
    classify(
        input.profile,
        &meta,
        &Exchange {
            transport: &input.transport,
            status: input.status,
            headers: &input.headers,
            body: &input.body,
            received_at: received_at(),
            latency: Duration::from_millis(1200),
            body_cap: input.body_cap,
        },
    )
}

/// What a strict reader makes of a count header: a plain non-negative integer, or nothing.
fn strict_count(headers: &HeaderMap, name: &str) -> Option<u64> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classify_is_total_and_keeps_its_invariants(input in any_input()) {
        let outcome = run(&input);

        prop_assert_eq!(outcome.body_bytes, input.body.len() as u64);
        prop_assert!(outcome.body_excerpt.chars().count() <= BODY_EXCERPT_BYTES);
        prop_assert!(outcome.headers.len() <= 40);
        prop_assert_eq!(outcome.api_status, input.status);

        let reading = &outcome.rate_limit;
        if let Some(wait) = reading.retry_after {
            prop_assert!(wait <= MAX_WAIT, "{:?}", wait);
        }
        if let Some(reset) = reading.reset_at {
            prop_assert!(reset >= received_at(), "{}", reset);
            prop_assert!(reset <= received_at() + TimeDelta::from_std(MAX_WAIT).unwrap());
        }
        // Garbage and negative values are absent, never zero; a header the profile does not name
        // is never read.
        let named = |name: &Option<String>| {
            name.as_deref().and_then(|name| strict_count(&input.headers, &name.to_ascii_lowercase()))
        };
        let names = &input.profile.rate_limit;
        prop_assert_eq!(reading.limit, named(&names.limit));
        prop_assert_eq!(reading.remaining, named(&names.remaining));
        if named(&names.reset).is_none() {
            prop_assert_eq!(reading.reset_at, None);
        }
        // The limit header, or (ScrapFly, which sends none) the slots in use plus the slots free.
        let names = &input.profile.concurrency;
        let to_u32 = |n: u64| u32::try_from(n).ok();
        let expected_limit = named(&names.limit).and_then(to_u32).or_else(|| {
            named(&names.current)
                .and_then(to_u32)?
                .checked_add(named(&names.remaining).and_then(to_u32)?)
        });
        prop_assert_eq!(outcome.concurrency.limit, expected_limit);

        if let Some(target) = outcome.target_status {
            prop_assert!((100..1000).contains(&target));
        }
        for amount in [outcome.billing.charged, outcome.billing.refunded].into_iter().flatten() {
            prop_assert!(amount.is_finite() && amount >= 0.0, "{}", amount);
        }
        if outcome.succeeded() {
            prop_assert_eq!(&outcome.transport, &Transport::Ok);
            prop_assert!(input.status.is_some_and(|status| (200..300).contains(&status)));
            prop_assert!(!outcome.class.account_stop);
        }

        let over_cap = input.body.len() > input.body_cap;
        if over_cap && input.transport == Transport::Ok {
            prop_assert_eq!(
                &outcome.transport,
                &Transport::BodyOverCap { cap_bytes: input.body_cap as u64 }
            );
        }
        if over_cap || input.transport != Transport::Ok {
            // Nothing was parsed out of the body.
            prop_assert!(!outcome.api_success);
            prop_assert_eq!(&outcome.error_code, &None);
            prop_assert_eq!(outcome.target_status, None);
            prop_assert_eq!(outcome.billing.charged, None);
            prop_assert_eq!(&outcome.job, &None);
        }

        // The decision on any outcome: total too, and within the contracts' rules.
        let policy = RetryPolicy::default();
        for jitter_unit in [0.0, 0.5, 0.999] {
            let decision = decide(
                input.profile,
                &policy,
                &outcome,
                RetryState { consecutive_same_failure: 1, escalation_level: 0 },
                received_at(),
                jitter_unit,
            );
            match &decision {
                Decision::Retry { after, .. } => {
                    prop_assert!(outcome.attempt < policy.max_attempts);
                    prop_assert!(!outcome.class.account_stop);
                    prop_assert!(*after <= MAX_WAIT.max(policy.max_delay.mul_f64(1.25)));
                    if outcome.transport == Transport::Ok {
                        let status = input.status.unwrap_or(0);
                        prop_assert!(
                            ![400, 401, 402, 404, 409, 413, 415].contains(&status),
                            "retried a {}: {:?}", status, outcome.class
                        );
                    }
                }
                Decision::PauseProvider { .. } => prop_assert!(outcome.class.account_stop),
                Decision::Done => prop_assert!(outcome.succeeded()),
                Decision::GiveUp { .. } => {}
            }
        }
    }

    #[test]
    fn job_polls_and_usage_bodies_never_panic(
        profile in any_profile(),
        body in any_body(),
    ) {
        let _ = parse_job_poll(profile, &body);
        if let Some(usage) = parse_usage(profile, &body) {
            for amount in [usage.balance, usage.used].into_iter().flatten() {
                prop_assert!(amount.is_finite() && amount >= 0.0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile answers (issue 13): account stops, accepted jobs, bounded texts, the key.

/// A text of any length up to `max` bytes and beyond, of one repeated character (cheap to make,
/// as long as a hostile provider likes).
fn any_long_text() -> impl Strategy<Value = String> {
    (any::<char>(), 0usize..3000).prop_map(|(c, n)| c.to_string().repeat(n))
}

/// A 401 or 402 answer: any code (listed under any status, or unknown), any body shape.
fn any_account_answer() -> impl Strategy<Value = (&'static Profile, u16, Vec<u8>)> {
    (
        any_profile(),
        prop::sample::select(vec![401u16, 402]),
        prop_oneof![
            any_code_body(),
            any_body(),
            ".{0,12}".prop_map(|code| {
                serde_json::to_vec(&json!({"success": false, "error": code, "code": code})).unwrap()
            })
        ],
    )
}

fn classify_plain(profile: &Profile, status: u16, headers: &HeaderMap, body: &[u8]) -> Outcome {
    classify(
        profile,
        &AttemptMeta {
            attempt: 1,
            ..AttemptMeta::default()
        },
        &Exchange {
            transport: &Transport::Ok,
            status: Some(status),
            headers,
            body,
            received_at: received_at(),
            latency: Duration::from_millis(10),
            body_cap: 10 * 1024 * 1024,
        },
    )
}

/// The key in one of the forms it takes on the wire.
fn encode_key(key: &str, encoding: usize, user: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    match encoding % 8 {
        0 => key.to_owned(),
        1 => key.replace('/', "\\/"),
        2 => utf8_percent_encode(key, NON_ALPHANUMERIC).to_string(),
        3 => utf8_percent_encode(key, NON_ALPHANUMERIC)
            .to_string()
            .to_ascii_lowercase(),
        4 => STANDARD.encode(format!("{key}:")),
        5 => STANDARD.encode(format!("{user}:{key}")),
        6 => URL_SAFE.encode(format!("{user}:{key}")),
        _ => key.to_ascii_lowercase(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_401_or_402_stops_the_provider_unless_its_code_is_that_statuses_own_target_side_row(
        (profile, status, body) in any_account_answer(),
    ) {
        let outcome = classify_plain(profile, status, &HeaderMap::new(), &body);
        let own_row_not_stopping = outcome
            .error_code
            .as_deref()
            .and_then(|code| profile.error_rule(code, Some(status)))
            .is_some_and(|rule| rule.status == status && !rule.account_stop);
        prop_assert_eq!(outcome.class.account_stop, !own_row_not_stopping, "{:?}", outcome.error_code);
        let decision = decide(profile, &RetryPolicy::default(), &outcome, RetryState::default(), received_at(), 0.5);
        if outcome.class.account_stop {
            prop_assert!(matches!(decision, Decision::PauseProvider { .. }), "{:?}", decision);
        }
        prop_assert!(!matches!(decision, Decision::Retry { .. }), "a {} was retried", status);
    }

    #[test]
    fn an_accepted_job_is_never_retried_automatically(input in any_input(), id in "[a-z0-9-]{1,12}") {
        let mut outcome = run(&input);
        outcome.job = Some(omniscope::outcome::JobRef { poll_path: format!("/jobs/{id}"), id });
        let policy = RetryPolicy { automatic_escalation: true, ..RetryPolicy::default() };
        for consecutive in [1, 2, 5] {
            let decision = decide(
                input.profile,
                &policy,
                &outcome,
                RetryState { consecutive_same_failure: consecutive, escalation_level: 0 },
                received_at(),
                0.5,
            );
            prop_assert!(!matches!(decision, Decision::Retry { .. }), "{:?}", decision);
        }
    }

    #[test]
    fn every_kept_provider_text_is_bounded(
        profile in any_profile(),
        status in any_status(),
        texts in prop::collection::vec(any_long_text(), 6),
        header in any_long_text(),
    ) {
        let [code, message, request_id, job_id, plan, job_status] = <[String; 6]>::try_from(texts).unwrap();
        let body = json!({
            "success": status == Some(202), "error": code, "code": code, "message": message,
            "request_id": request_id, "job_id": job_id, "plan": plan, "status": job_status,
            "data": {"status": job_status, "error": message},
        });
        let body = serde_json::to_vec(&body).unwrap();
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&header) {
            headers.append("x-request-id", value.clone());
            headers.append("x-echo", value);
        }
        let outcome = classify_plain(profile, status.unwrap_or(202), &headers, &body);
        let bound = |text: &Option<String>, max: usize| text.as_ref().is_none_or(|text| text.len() <= max);
        prop_assert!(bound(&outcome.error_code, 64));
        prop_assert!(bound(&outcome.message, 1024));
        prop_assert!(bound(&outcome.request_id, 128));
        prop_assert!(outcome.job.as_ref().is_none_or(|job| job.id.len() <= 128 && job.poll_path.len() <= 512));
        for (name, value) in &outcome.headers {
            prop_assert!(name.len() <= 203 && value.len() <= 203);
        }
        if let omniscope::provider::JobPoll::Pending(status) | omniscope::provider::JobPoll::Failed { status, .. } = parse_job_poll(profile, &body) {
            prop_assert!(status.len() <= 64);
        }
        if let Some(usage) = parse_usage(profile, &body) {
            prop_assert!(bound(&usage.plan, 128));
        }
    }

    #[test]
    fn the_key_in_any_encoding_never_reaches_a_kept_text(
        key in "sk_[A-Za-z0-9/+=&%._~-]{8,32}",
        encoding in 0usize..8,
        user in "[a-z]{0,5}",
        place in 0usize..6,
        padding in 0usize..600,
        profile in any_profile(),
    ) {
        let echoed = encode_key(&key, encoding, &user);
        let text = format!("bad key {echoed} here");
        let mut body = json!({"success": false, "error": "BAD", "code": "BAD", "message": "m", "request_id": "r"});
        let mut headers = HeaderMap::new();
        match place {
            0 => body["message"] = json!(text),
            1 => { body["error"] = json!(text); body["code"] = json!(text); }
            2 => body["request_id"] = json!(text),
            3 => {
                if let Ok(value) = HeaderValue::from_str(&text) {
                    headers.append("x-echo", value);
                }
            }
            4 => {
                // Split across two headers of the same name.
                let (head, tail) = echoed.split_at(echoed.len() / 2);
                if let (Ok(head), Ok(tail)) = (HeaderValue::from_str(head), HeaderValue::from_str(tail)) {
                    headers.append("x-split", head);
                    headers.append("x-split", tail);
                }
            }
            _ => {
                // In the body, where the excerpt may cut it.
                body["pad"] = json!("p".repeat(padding));
                body["echo"] = json!(text);
            }
        }
        let body = serde_json::to_vec(&body).unwrap();
        let mut outcome = classify_plain(profile, 400, &headers, &body);
        let forms = omniscope::redact::KeyForms::new(&key);
        outcome.redact_forms(&forms);
        let written = serde_json::to_string(&outcome).unwrap();
        prop_assert!(!forms.found_in(&written), "{}", written);
        for (name, value) in &outcome.headers {
            prop_assert!(!forms.found_in(name) && !forms.found_in(value), "{}: {}", name, value);
        }
    }
}
