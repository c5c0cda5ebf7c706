//! The seven providers of issue 17 (ScraperAPI, ScrapingBee, ZenRows, ScrapFly, Zyte API, Crawlbase,
//! Bright Data): their documented responses walked through `classify`, their usage answers through
//! `parse_usage`, and their requests as omniscope builds them.
//!
//! Bodies, headers and expected readings are transcribed from `../shared/contracts/more-providers.md`
//! (and the official SDKs it cites), never read back from the profiles: a mistake in a profile makes
//! a case here fail.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use serde_json::json;

use omniscope::outcome::{
    BillingUnit, Fault, LimitKind, Outcome, RefundAudit, RequestOptions, Retryable, Transport,
};
use omniscope::probe::http;
use omniscope::provider::{
    AttemptMeta, DEFAULT_BODY_CAP, Exchange, Profile, builtin_profiles, classify, parse_usage,
};

fn profile(name: &str) -> Profile {
    builtin_profiles()
        .get(name)
        .unwrap_or_else(|| panic!("no built-in profile {name}"))
        .clone()
}

fn outcome(name: &str, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Outcome {
    let mut map = HeaderMap::new();
    for (header, value) in headers {
        map.append(
            HeaderName::from_bytes(header.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    classify(
        &profile(name),
        &AttemptMeta {
            target_url: "https://example.com/".to_owned(),
            started_at: at,
            ..AttemptMeta::default()
        },
        &Exchange {
            transport: &Transport::Ok,
            status: Some(status),
            headers: &map,
            body,
            received_at: at,
            latency: Duration::from_millis(800),
            body_cap: DEFAULT_BODY_CAP,
        },
    )
}

fn json_outcome(
    name: &str,
    status: u16,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> Outcome {
    outcome(name, status, headers, &serde_json::to_vec(body).unwrap())
}

const PAGE: &[u8] = b"<!doctype html><html><body>Example</body></html>";

fn mode(name: &str) -> RequestOptions {
    RequestOptions {
        mode: Some(name.to_owned()),
        ..RequestOptions::default()
    }
}

fn pairs(query: &[(String, String)]) -> Vec<(&str, &str)> {
    query
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

#[test]
fn every_provider_of_the_issue_is_listed_by_its_contract_name() {
    let names = builtin_profiles();
    for name in [
        "scraperapi",
        "scrapingbee",
        "zenrows",
        "scrapfly",
        "zyte",
        "crawlbase",
        "brightdata",
    ] {
        assert!(names.get(name).is_some(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// ScraperAPI: raw body, the target's 200/404 passed through as the HTTP status, only those billed.

#[test]
fn scraperapi_passes_the_target_status_through_and_bills_only_200_and_404() {
    let ok = outcome("scraperapi", 200, &[("sa-credit-cost", "10")], PAGE);
    assert!(ok.succeeded(), "{ok:?}");
    assert_eq!(ok.target_status, Some(200));
    assert_eq!(ok.billing.charged, Some(10.0));
    assert_eq!(ok.billing.unit, BillingUnit::Credits);

    let not_found = outcome("scraperapi", 404, &[], b"Not Found");
    assert_eq!(not_found.target_status, Some(404));
    assert_eq!(not_found.class.fault, Fault::Target);
    assert_eq!(not_found.class.retryable, Retryable::No);
    assert!(!not_found.class.refund_expected, "404 is charged");

    let failed = outcome("scraperapi", 500, &[], b"Request failed");
    assert_eq!(
        failed.target_status, None,
        "a 500 is ScraperAPI's, not the target's"
    );
    assert_eq!(failed.class.retryable, Retryable::Yes);
    assert!(
        failed.class.refund_expected,
        "not charged after 70 s of retries"
    );

    let max_cost = outcome(
        "scraperapi",
        403,
        &[],
        b"This request exceeds your max_cost. You can view the cost per request in your response header or in the API Playground on the dashboard.",
    );
    assert_eq!(max_cost.class.retryable, Retryable::No);
    assert!(
        max_cost
            .message
            .as_deref()
            .is_some_and(|message| message.starts_with("This request exceeds your max_cost")),
        "{:?}",
        max_cost.message
    );

    let busy = outcome("scraperapi", 429, &[], b"");
    assert_eq!(busy.class.fault, Fault::RateLimit);
    assert!(busy.class.retryable.allows_plain_retry());
    let bad_key = outcome("scraperapi", 401, &[], b"Unauthorized");
    assert!(bad_key.class.account_stop);
}

#[test]
fn scraperapi_sends_a_get_with_key_target_and_mode_as_query_parameters() {
    let profile = profile("scraperapi");
    let options = RequestOptions {
        proxy_country: Some("de".to_owned()),
        ..mode("ultra_premium_render")
    };
    let query = http::request_query(&profile, "https://example.com/a?b=1", &options);
    let sent = pairs(&query);
    assert!(
        sent.contains(&("url", "https://example.com/a?b=1")),
        "{sent:?}"
    );
    assert!(sent.contains(&("ultra_premium", "true")), "{sent:?}");
    assert!(sent.contains(&("render", "true")), "{sent:?}");
    assert!(sent.contains(&("country_code", "de")), "{sent:?}");
    assert!(!sent.iter().any(|(name, _)| *name == "mode"), "{sent:?}");

    let client = http::build_client(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let key = SecretString::from("sa_test_key_123".to_owned());
    let request = http::with_target(
        http::authorized(
            &client,
            profile.endpoints.method.as_http(),
            &profile,
            "http://127.0.0.1:9/scraperapi",
            &profile.endpoints.scrape,
            &key,
        ),
        &profile,
        "https://example.com/",
        &mode("render"),
    )
    .build()
    .unwrap();
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.url().path(), "/scraperapi/");
    let query: Vec<(String, String)> = request.url().query_pairs().into_owned().collect();
    assert!(query.contains(&("api_key".to_owned(), "sa_test_key_123".to_owned())));
    assert!(query.contains(&("url".to_owned(), "https://example.com/".to_owned())));
    assert!(query.contains(&("render".to_owned(), "true".to_owned())));
    assert!(request.body().is_none(), "a GET carries no body");
}

#[test]
fn scraperapi_remaining_credit_is_the_limit_minus_the_count() {
    // SA-NODE AccountInfo fields.
    let body = json!({"burst": 0, "concurrencyLimit": 5, "concurrentRequests": 1, "failedRequestCount": 3,
        "requestCount": 1200, "requestLimit": 5000, "subscriptionDate": "2026-11-01T00:00:00.000Z"});
    let usage = parse_usage(&profile("scraperapi"), &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(usage.balance, Some(3800.0));
    assert_eq!(usage.used, Some(1200.0));
    assert_eq!(usage.unit, BillingUnit::Credits);
}

// ---------------------------------------------------------------------------------------------
// ScrapingBee: raw body, the target's status and the cost in Spb- headers.

#[test]
fn scrapingbee_reads_the_initial_status_and_the_cost_from_headers() {
    // SB-HELP's documented success headers.
    let ok = outcome(
        "scrapingbee",
        200,
        &[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Spb-cost", "5"),
            ("Spb-initial-status-code", "200"),
            ("Spb-resolved-url", "https://www.website.com/"),
        ],
        PAGE,
    );
    assert!(ok.succeeded(), "{ok:?}");
    assert_eq!(ok.target_status, Some(200));
    assert_eq!(ok.billing.charged, Some(5.0));

    // A JSON page from the target is the target's: its `message` is not ScrapingBee's.
    let json_page = outcome(
        "scrapingbee",
        200,
        &[("Spb-initial-status-code", "200")],
        br#"{"message": "hello", "error": "none", "success": false}"#,
    );
    assert!(json_page.succeeded(), "{json_page:?}");
    assert_eq!(json_page.message, None);

    let blocked = outcome(
        "scrapingbee",
        200,
        &[("Spb-initial-status-code", "403"), ("Spb-cost", "1")],
        b"<html>Access denied</html>",
    );
    assert!(!blocked.succeeded());
    assert_eq!(blocked.target_status, Some(403));
    assert_eq!(blocked.class.fault, Fault::Target);

    let failed = outcome("scrapingbee", 500, &[], br#"{"message": "Error"}"#);
    assert!(failed.class.refund_expected, "a 500 is not charged");
    assert_eq!(failed.class.retryable, Retryable::Yes);
    let busy = outcome("scrapingbee", 429, &[], b"");
    assert_eq!(busy.class.fault, Fault::RateLimit);
    assert!(outcome("scrapingbee", 401, &[], b"").class.account_stop);
}

#[test]
fn scrapingbee_sends_a_bearer_key_and_its_mode_as_parameters() {
    let profile = profile("scrapingbee");
    let client = http::build_client(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let key = SecretString::from("spb_test_key_1".to_owned());
    let request = http::with_target(
        http::authorized(
            &client,
            profile.endpoints.method.as_http(),
            &profile,
            "http://127.0.0.1:9/scrapingbee",
            &profile.endpoints.scrape,
            &key,
        ),
        &profile,
        "https://example.com/",
        &mode("stealth"),
    )
    .build()
    .unwrap();
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.url().path(), "/scrapingbee/api/v1/");
    let auth = request.headers().get("authorization").unwrap();
    assert_eq!(auth.to_str().unwrap(), "Bearer spb_test_key_1");
    assert!(auth.is_sensitive());
    let query: Vec<(String, String)> = request.url().query_pairs().into_owned().collect();
    assert!(
        query.contains(&("stealth_proxy".to_owned(), "true".to_owned())),
        "{query:?}"
    );
    assert!(
        !query.iter().any(|(name, _)| name == "api_key"),
        "the key is not in the URL"
    );
}

#[test]
fn scrapingbee_remaining_credit_is_max_minus_used() {
    // The SDK README's example.
    let body = json!({"max_api_credit": 8_000_000, "used_api_credit": 1_000_023, "max_concurrency": 200,
        "current_concurrency": 1, "renewal_subscription_date": "2026-09-01T04:57:13.580067"});
    let usage = parse_usage(&profile("scrapingbee"), &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(usage.balance, Some(6_999_977.0));
}

// ---------------------------------------------------------------------------------------------
// ZenRows: raw body, problem+json errors, cost in USD, concurrency as limit and remaining.

#[test]
fn zenrows_reads_cost_in_dollars_and_concurrency_from_limit_and_remaining() {
    let ok = outcome(
        "zenrows",
        200,
        &[
            ("x-request-cost", "0.0018125"),
            ("x-request-credits", "5"),
            ("Concurrency-Limit", "10"),
            ("Concurrency-Remaining", "3"),
        ],
        PAGE,
    );
    assert!(ok.succeeded(), "{ok:?}");
    assert_eq!(ok.billing.charged, Some(0.001_812_5));
    assert_eq!(ok.billing.unit, BillingUnit::Usd);
    assert_eq!(ok.concurrency.limit, Some(10));
    assert_eq!(ok.concurrency.current, Some(7));
}

#[test]
fn zenrows_problem_json_errors_carry_their_code() {
    // ZR-CLI tests/http.test.ts: "The exact shape Zenrows returns when an account is out of credits".
    let out_of_credits = json_outcome(
        "zenrows",
        402,
        &[("Content-Type", "application/problem+json")],
        &json!({"code": "AUTH004", "detail": "This account has reached its usage limit. Purchase a new subscription to continue using the service.",
            "instance": "/v1", "status": 402, "title": "Usage exceeded (AUTH004)",
            "type": "https://docs.zenrows.com/api-error-codes#AUTH004"}),
    );
    assert_eq!(out_of_credits.error_code.as_deref(), Some("AUTH004"));
    assert!(out_of_credits.class.account_stop);
    assert_eq!(out_of_credits.class.retryable, Retryable::No);
    assert!(
        out_of_credits
            .message
            .as_deref()
            .is_some_and(|message| message.contains("usage limit"))
    );

    let not_found = json_outcome(
        "zenrows",
        422,
        &[],
        &json!({"code": "RESP002", "status": 422, "title": "Target 404"}),
    );
    assert_eq!(not_found.class.fault, Fault::Target);
    assert_eq!(not_found.class.retryable, Retryable::No);

    let failed = json_outcome(
        "zenrows",
        422,
        &[],
        &json!({"status": 422, "title": "Could not get content"}),
    );
    assert!(
        failed.class.retryable.allows_plain_retry(),
        "a 422 is retried by the SDK"
    );
    assert!(
        failed.class.refund_expected,
        "only successful requests are charged"
    );
}

#[test]
fn zenrows_usage_call_takes_the_key_as_a_header_not_the_query_parameter() {
    let profile = profile("zenrows");
    let client = http::build_client(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let key = SecretString::from("zr_test_key_1".to_owned());
    let usage = http::authorized_as(
        &client,
        Method::GET,
        profile.usage_auth(),
        "http://127.0.0.1:9/zenrows",
        profile.endpoints.usage.as_deref().unwrap(),
        &key,
    )
    .build()
    .unwrap();
    assert_eq!(usage.url().path(), "/zenrows/v1/subscriptions/self/details");
    assert_eq!(usage.url().query(), None);
    assert_eq!(usage.headers().get("x-api-key").unwrap(), "zr_test_key_1");
    let scrape = http::authorized(
        &client,
        Method::GET,
        &profile,
        "http://127.0.0.1:9/zenrows",
        &profile.endpoints.scrape,
        &key,
    )
    .build()
    .unwrap();
    assert_eq!(scrape.url().query(), Some("apikey=zr_test_key_1"));
    assert!(scrape.headers().get("x-api-key").is_none());
}

// ---------------------------------------------------------------------------------------------
// ScrapFly: a JSON envelope, result.error, reject headers, account concurrency headers.

#[test]
fn scrapfly_reads_the_envelope_and_derives_the_concurrency_limit() {
    let ok = json_outcome(
        "scrapfly",
        200,
        &[
            ("X-Scrapfly-Api-Cost", "6"),
            ("X-Scrapfly-Account-Concurrent-Usage", "2"),
            ("X-Scrapfly-Account-Remaining-Concurrent-Usage", "3"),
        ],
        &json!({"config": {"url": "https://example.com/"}, "context": {"cost": {"total": 6}},
            "result": {"status_code": 200, "success": true, "format": "text", "content": "<html></html>", "log_url": "https://scrapfly.io/dashboard/monitoring/log/1"}}),
    );
    assert!(ok.succeeded(), "{ok:?}");
    assert_eq!(ok.target_status, Some(200));
    assert_eq!(ok.billing.charged, Some(6.0));
    assert_eq!(ok.concurrency.current, Some(2));
    assert_eq!(ok.concurrency.limit, Some(5), "usage + remaining");
}

#[test]
fn scrapfly_upstream_errors_are_the_targets_and_free() {
    let upstream = json_outcome(
        "scrapfly",
        200,
        &[],
        &json!({"config": {}, "context": {}, "result": {"status": "DONE", "success": false, "status_code": 404,
            "error": {"code": "ERR::SCRAPE::BAD_UPSTREAM_RESPONSE", "http_code": 404, "message": "Target responded 404", "retryable": false}}}),
    );
    assert!(!upstream.succeeded());
    assert_eq!(
        upstream.error_code.as_deref(),
        Some("ERR::SCRAPE::BAD_UPSTREAM_RESPONSE")
    );
    assert_eq!(upstream.target_status, Some(404));
    assert_eq!(upstream.class.fault, Fault::Target);
    assert!(
        upstream.class.refund_expected,
        "upstream errors are not charged"
    );
}

#[test]
fn scrapfly_throttling_is_a_concurrency_limit_with_retry_after() {
    // SF-ERR's documented error envelope.
    let throttled = json_outcome(
        "scrapfly",
        429,
        &[
            ("X-Scrapfly-Reject-Retryable", "true"),
            ("Retry-After", "5"),
        ],
        &json!({"config": {}, "context": {}, "result": {"status": "DONE", "success": false, "reason": null,
            "error": {"http_code": 429, "code": "ERR::THROTTLE::MAX_CONCURRENT_REQUEST_EXCEEDED", "description": "...",
                "error_id": "9993a546-b3b8-4d3e-9b2a-1c2f0e5d6a7b", "message": "Useful hint with details about your error",
                "scrape_id": "7c61352c-0000-0000-0000-000000000000", "retryable": true,
                "doc_url": "https://scrapfly.io/docs/scrape-api/error/ERR::THROTTLE::MAX_CONCURRENT_REQUEST_EXCEEDED"}}}),
    );
    assert_eq!(throttled.class.fault, Fault::RateLimit);
    assert_eq!(throttled.class.limit, Some(LimitKind::Concurrency));
    assert_eq!(
        throttled.rate_limit.retry_after,
        Some(Duration::from_secs(5))
    );
    assert_eq!(
        throttled.request_id.as_deref(),
        Some("9993a546-b3b8-4d3e-9b2a-1c2f0e5d6a7b")
    );

    // SF-ERR's generic (non-scrape) error.
    let bad_key = json_outcome(
        "scrapfly",
        401,
        &[],
        &json!({"status": "error", "http_code": 401, "reason": "Unauthorized", "error_id": "301e2d9e-0000", "message": "Invalid API key"}),
    );
    assert!(bad_key.class.account_stop);
    assert_eq!(bad_key.message.as_deref(), Some("Invalid API key"));

    // proxified_response: the failure only in X-Scrapfly-Reject-* headers.
    let proxified = outcome(
        "scrapfly",
        422,
        &[
            (
                "X-Scrapfly-Reject-Code",
                "ERR::ASP::SHIELD_PROTECTION_FAILED",
            ),
            ("X-Scrapfly-Reject-Description", "The ASP shield failed"),
        ],
        b"<html>blocked</html>",
    );
    assert_eq!(
        proxified.error_code.as_deref(),
        Some("ERR::ASP::SHIELD_PROTECTION_FAILED")
    );
    assert_eq!(proxified.message.as_deref(), Some("The ASP shield failed"));
}

#[test]
fn scrapfly_usage_reads_the_scrape_subscription() {
    // SF-GO result_account.go field names.
    let body = json!({"account": {"account_id": "a", "suspended": false},
        "subscription": {"plan_name": "PRO", "max_concurrency": 50,
            "usage": {"scrape": {"current": 1000, "remaining": 199_000, "limit": 200_000, "extra": 0,
                "concurrent_limit": 50, "concurrent_usage": 1, "concurrent_remaining": 49}}}});
    let usage = parse_usage(&profile("scrapfly"), &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(usage.balance, Some(199_000.0));
    assert_eq!(usage.plan.as_deref(), Some("PRO"));
}

// ---------------------------------------------------------------------------------------------
// Zyte API: POST JSON with Basic auth, statusCode, problem+json with `type`.

#[test]
fn zyte_reads_the_website_status_and_problem_types() {
    // ZY-ERR: a 404 page is HTTP 200 from Zyte with statusCode 404.
    let not_found = json_outcome(
        "zyte",
        200,
        &[("request-id", "abc-1")],
        &json!({"url": "https://toscrape.com/missing", "statusCode": 404, "httpResponseBody": "PGh0bWw+"}),
    );
    assert!(not_found.api_success);
    assert_eq!(not_found.target_status, Some(404));
    assert_eq!(not_found.class.fault, Fault::Target);
    assert_eq!(not_found.request_id.as_deref(), Some("abc-1"));

    // ZY-REPO mockserver bodies.
    let limited = json_outcome(
        "zyte",
        429,
        &[],
        &json!({"status": 429, "type": "/limits/over-user-limit"}),
    );
    assert_eq!(limited.class.fault, Fault::RateLimit);
    assert!(limited.class.retryable.allows_plain_retry());
    assert!(
        limited.class.refund_expected,
        "rate limiting is not charged"
    );
    let bad_key = json_outcome(
        "zyte",
        401,
        &[],
        &json!({"status": 401, "type": "/auth/key-not-found", "title": "Authentication Key Not Found",
            "detail": "The authentication key is not valid or can't be matched."}),
    );
    assert!(bad_key.class.account_stop);
    assert_eq!(
        bad_key.message.as_deref(),
        Some("The authentication key is not valid or can't be matched.")
    );
    let ban = json_outcome(
        "zyte",
        520,
        &[],
        &json!({"status": 520, "type": "/download/temporary-error"}),
    );
    assert_eq!(ban.class.retryable, Retryable::Yes);
}

#[test]
fn zyte_modes_are_the_fields_it_asks_for() {
    let profile = profile("zyte");
    let http_mode = http::request_body(&profile, "https://toscrape.com", &mode("http"));
    assert_eq!(
        http_mode,
        json!({"url": "https://toscrape.com", "httpResponseBody": true})
    );
    let browser = http::request_body(
        &profile,
        "https://toscrape.com",
        &RequestOptions {
            proxy_country: Some("DE".to_owned()),
            ..mode("browser")
        },
    );
    assert_eq!(
        browser,
        json!({"url": "https://toscrape.com", "browserHtml": true, "geolocation": "DE"})
    );
    let client = http::build_client(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let request = http::authorized(
        &client,
        profile.endpoints.method.as_http(),
        &profile,
        "http://127.0.0.1:9/zyte",
        &profile.endpoints.scrape,
        &SecretString::from("zyte_key".to_owned()),
    )
    .build()
    .unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.url().path(), "/zyte/v1/extract");
    // base64("zyte_key:")
    assert_eq!(
        request.headers().get("authorization").unwrap(),
        "Basic enl0ZV9rZXk6"
    );
}

// ---------------------------------------------------------------------------------------------
// Crawlbase: three layers (HTTP, cb_status/pc_status, original_status).

#[test]
fn crawlbase_reads_three_layers() {
    // CB-RESP's documented success.
    let ok = outcome(
        "crawlbase",
        200,
        &[
            ("url", "https://github.com/crawlbase?tab=repositories"),
            ("original_status", "200"),
            ("pc_status", "200"),
            ("X-Domain-Complexity", "standard"),
        ],
        PAGE,
    );
    assert!(ok.succeeded(), "{ok:?}");
    assert_eq!(ok.target_status, Some(200));

    let target_404 = outcome(
        "crawlbase",
        200,
        &[("original_status", "404"), ("cb_status", "200")],
        b"<html>404</html>",
    );
    assert!(target_404.api_success);
    assert_eq!(target_404.target_status, Some(404));
    assert_eq!(target_404.class.fault, Fault::Target);

    let challenge = outcome(
        "crawlbase",
        200,
        &[("original_status", "403"), ("pc_status", "525")],
        b"",
    );
    assert!(
        !challenge.api_success,
        "cb_status 525 is a failed crawl inside a 200"
    );
    assert_eq!(challenge.error_code.as_deref(), Some("525"));
    assert_eq!(challenge.class.retryable, Retryable::Yes);
    assert!(
        challenge.class.refund_expected,
        "cb_status other than 200 is not charged"
    );

    // cb_status wins over the deprecated pc_status.
    let both = outcome(
        "crawlbase",
        200,
        &[
            ("original_status", "200"),
            ("cb_status", "200"),
            ("pc_status", "522"),
        ],
        PAGE,
    );
    assert!(both.succeeded(), "{both:?}");
}

#[test]
fn crawlbase_bills_one_credit_only_for_the_statuses_it_charges() {
    let charged = |headers: &[(&str, &str)]| {
        let outcome = outcome("crawlbase", 200, headers, PAGE);
        assert_eq!(
            outcome.billing.audit,
            RefundAudit::Consistent,
            "{outcome:?}"
        );
        outcome.billing.charged
    };
    // "only charges … original_status 200, 201, 204, 301, 302, 404, 410 … when pc_status is 200".
    assert_eq!(
        charged(&[("original_status", "200"), ("pc_status", "200")]),
        Some(1.0)
    );
    assert_eq!(
        charged(&[("original_status", "404"), ("cb_status", "200")]),
        Some(1.0)
    );
    // The target's 403 is a crawl Crawlbase does not bill.
    assert_eq!(
        charged(&[("original_status", "403"), ("cb_status", "200")]),
        Some(0.0)
    );
    // Nor a crawl whose cb_status is not 200.
    assert_eq!(
        charged(&[("original_status", "200"), ("cb_status", "525")]),
        Some(0.0)
    );
    // An HTTP error is not billed either.
    let refused = json_outcome(
        "crawlbase",
        429,
        &[],
        &json!({"error": "Concurrency limit reached"}),
    );
    assert_eq!(refused.billing.charged, Some(0.0));
}

#[test]
fn crawlbase_429_honours_retry_after_and_names_the_concurrency() {
    // CB-RL's documented 429.
    let busy = json_outcome(
        "crawlbase",
        429,
        &[("Retry-After", "1"), ("X-Crawlbase-Concurrency", "20")],
        &json!({"error": "Concurrency limit reached", "limit": 20}),
    );
    assert_eq!(busy.class.fault, Fault::RateLimit);
    assert_eq!(busy.rate_limit.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(busy.concurrency.limit, Some(20));
    assert_eq!(busy.message.as_deref(), Some("Concurrency limit reached"));
    assert!(outcome("crawlbase", 402, &[], b"").class.account_stop);
}

#[test]
fn crawlbase_usage_asks_for_the_crawling_api_product_with_the_token() {
    let profile = profile("crawlbase");
    let client = http::build_client(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    let request = http::authorized_as(
        &client,
        Method::GET,
        profile.usage_auth(),
        "http://127.0.0.1:9/crawlbase",
        profile.endpoints.usage.as_deref().unwrap(),
        &SecretString::from("cb_token_1".to_owned()),
    )
    .build()
    .unwrap();
    assert_eq!(request.url().path(), "/crawlbase/account");
    let query: Vec<(String, String)> = request.url().query_pairs().into_owned().collect();
    assert!(query.contains(&("product".to_owned(), "crawling-api".to_owned())));
    assert!(query.contains(&("token".to_owned(), "cb_token_1".to_owned())));

    let body = json!({"totalSuccess": 10, "totalFailed": 1, "totalDue": 0.03, "remainingCredits": 990,
        "domainStats": []});
    let usage = parse_usage(&profile, &serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(usage.balance, Some(990.0));
}

// ---------------------------------------------------------------------------------------------
// Bright Data Web Unlocker: outer 200, x-brd-status-code, x-brd-error*.

#[test]
fn brightdata_reads_the_result_status_and_errors_from_headers() {
    let ok = outcome("brightdata", 200, &[("x-brd-status-code", "200")], PAGE);
    assert!(ok.succeeded(), "{ok:?}");
    assert_eq!(ok.target_status, Some(200));

    // No x-brd-error: the target's own 404, as is.
    let target = outcome(
        "brightdata",
        200,
        &[("x-brd-status-code", "404")],
        b"<html>404</html>",
    );
    assert!(target.api_success);
    assert_eq!(target.target_status, Some(404));

    let blocked = outcome(
        "brightdata",
        200,
        &[
            ("x-brd-status-code", "502"),
            ("x-brd-error-code", "reject_block"),
            ("x-brd-error", "Request blocked by the target"),
        ],
        b"",
    );
    assert!(!blocked.api_success);
    assert_eq!(blocked.error_code.as_deref(), Some("reject_block"));
    assert_eq!(
        blocked.message.as_deref(),
        Some("Request blocked by the target")
    );
    assert_eq!(
        blocked.class.retryable,
        Retryable::Yes,
        "each retry uses a different peer"
    );
    assert!(
        blocked.class.refund_expected,
        "you pay only for successful requests"
    );

    let limited = outcome(
        "brightdata",
        200,
        &[
            ("x-brd-status-code", "429"),
            ("x-brd-error-code", "sr_rate_limit"),
        ],
        b"",
    );
    assert_eq!(limited.class.fault, Fault::RateLimit);

    let bad_key = outcome("brightdata", 401, &[], b"Invalid API key");
    assert!(bad_key.class.account_stop);
    assert_eq!(bad_key.message.as_deref(), Some("Invalid API key"));
}

#[test]
fn brightdata_sends_its_zone_and_format_in_the_json_body() {
    let body = http::request_body(
        &profile("brightdata"),
        "https://example.com/",
        &RequestOptions {
            proxy_country: Some("us".to_owned()),
            ..RequestOptions::default()
        },
    );
    assert_eq!(
        body,
        json!({"zone": "web_unlocker1", "url": "https://example.com/", "format": "raw", "country": "us"})
    );
}

#[test]
fn the_readme_example_profile_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("# ~/.config/omniscope/providers/acme.toml")
        .expect("README keeps its example profile");
    let example = &readme[start..];
    let example = &example[..example.find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acme.toml"), example).unwrap();
    let profiles = omniscope::provider::load_profiles(Some(dir.path())).unwrap();
    let acme = profiles.get("acme").unwrap();
    let query = http::request_query(acme, "https://example.com/", &mode("browser"));
    assert!(pairs(&query).contains(&("js", "true")), "{query:?}");
    let usage = parse_usage(acme, br#"{"plan": {"credits": 100, "used": 40}}"#).unwrap();
    assert_eq!(usage.balance, Some(60.0));
}
