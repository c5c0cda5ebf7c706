//! The engine against purpose-made loopback servers. Time assertions are lower bounds only (a wait
//! that was honoured), never "fast enough".

use crate::support::scripted;

use std::time::Duration;

use omniscope::clock::Clock;
use omniscope::config::{self, EngineConfig, Overrides, Schedule};
use omniscope::event::{Event, Fact, Notice};
use omniscope::outcome::{Outcome, Transport};
use omniscope::probe::{Engine, EngineCommand, Scope};
use omniscope::provider::builtin_profiles;
use omniscope::stats::SessionStats;
use scripted::{Reply, Server, alter_fail, alter_ok, omni_fail, omni_ok};
use serde_json::json;
use tokio::sync::mpsc;

const SECRET: &str = "sk_test_SECRET_never_shown_42";

/// Fast retries for tests unless the config text says otherwise.
const FAST_RETRY: &str = "[retry]\nbase_delay = \"20ms\"\nmax_delay = \"200ms\"\njitter = 0.0\n";

fn engine_config(
    toml: &str,
    provider: &str,
    base: &str,
    targets: &[&str],
    once: bool,
) -> EngineConfig {
    let overrides = Overrides {
        provider: Some(provider.to_owned()),
        endpoint: Some(base.to_owned()),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        once,
        ..Overrides::default()
    };
    resolved(toml, &overrides)
}

/// What `toml` resolves to under `overrides`, with the built-in profiles and the test key.
fn resolved(toml: &str, overrides: &Overrides) -> EngineConfig {
    let file = config::parse(toml).unwrap();
    config::resolve(&file, "test", overrides, &builtin_profiles(), |_| {
        Some(SECRET.to_owned())
    })
    .unwrap()
}

/// Run to the end, collecting every event.
async fn run_all(config: EngineConfig) -> Vec<Event> {
    run_all_on(config, Clock::real()).await
}

/// [`run_all`] on `clock` (a server's, when the test compares wall-clock instants with it).
async fn run_all_on(config: EngineConfig, clock: Clock) -> Vec<Event> {
    let (tx, mut rx) = mpsc::channel(16);
    let handle = Engine::spawn_with_clock(config, &builtin_profiles(), tx, clock).unwrap();
    let mut events = Vec::new();
    let collect = async {
        while let Some(event) = rx.recv().await {
            events.push(event);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("the engine ends");
    handle.join().await;
    events
}

fn outcomes(events: &[Event]) -> Vec<Outcome> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Fact(Fact::Attempt { outcome, .. }) => Some((**outcome).clone()),
            _ => None,
        })
        .collect()
}

fn gap(seen: &[scripted::Seen], from: usize) -> Duration {
    seen[from + 1].at - seen[from].at
}

#[tokio::test(start_paused = true)]
async fn client_and_account_errors_are_never_retried() {
    for status in [400u16, 401, 402, 404, 409, 413, 415] {
        let server = Server::new();
        server.default_reply(
            "/api/v1/scrape",
            Reply::json(status, json!({"message": "no"})),
        );
        let base = server.start().await;
        let config = engine_config(FAST_RETRY, "alterlab", &base, &["https://a.example/"], true);
        let events = run_all(config).await;
        assert_eq!(
            server.seen_at("/api/v1/scrape").len(),
            1,
            "HTTP {status} must not be retried"
        );
        assert_eq!(outcomes(&events).len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_between_retries() {
    let server = Server::new();
    server.queue(
        "/v1/scrape",
        vec![
            omni_fail(500, None),
            omni_fail(500, None),
            omni_fail(503, None),
        ],
    );
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let toml = "[retry]\nbase_delay = \"100ms\"\nmax_delay = \"10s\"\njitter = 0.0\n";
    let config = engine_config(toml, "omniscrape", &base, &["https://a.example/"], true);
    let events = run_all(config).await;
    let seen = server.seen_at("/v1/scrape");
    assert_eq!(seen.len(), 4);
    assert!(gap(&seen, 0) >= Duration::from_millis(100));
    assert!(gap(&seen, 1) >= Duration::from_millis(200));
    assert!(gap(&seen, 2) >= Duration::from_millis(400));
    let all = outcomes(&events);
    assert!(all.last().unwrap().succeeded());
    assert_eq!(all[3].retry_of, Some(all[2].attempt_id));
    assert_eq!(all[3].attempt, 4);
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_the_provider() {
    let server = Server::new();
    server.queue(
        "/v1/scrape",
        vec![omni_fail(429, Some("CONCURRENCY_LIMIT")).header("Retry-After", "1")],
    );
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let config = engine_config(
        FAST_RETRY,
        "omniscrape",
        &base,
        &["https://a.example/"],
        true,
    );
    let events = run_all(config).await;
    let seen = server.seen_at("/v1/scrape");
    assert_eq!(seen.len(), 2);
    assert!(
        gap(&seen, 0) >= Duration::from_secs(1),
        "Retry-After: 1 honoured, not the 20 ms back-off"
    );
    assert!(events.iter().any(
        |event| matches!(event, Event::Notice(Notice::Hold { provider, .. }) if provider == "omniscrape")
    ));
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_reset_is_honoured() {
    let server = Server::new();
    let reset = server.clock().now().timestamp() + 2;
    server.queue(
        "/api/v1/scrape",
        vec![
            alter_fail(429, "RATE_LIMIT_EXCEEDED")
                .header("X-RateLimit-Limit", "30")
                .header("X-RateLimit-Remaining", "0")
                .header("X-RateLimit-Reset", reset.to_string()),
        ],
    );
    server.default_reply("/api/v1/scrape", alter_ok(200));
    let base = server.start().await;
    let config = engine_config(
        &format!("{FAST_RETRY}[providers.alterlab]\nrate = \"unlimited\"\n"),
        "alterlab",
        &base,
        &["https://a.example/"],
        true,
    );
    run_all_on(config, server.clock()).await;
    let seen = server.seen_at("/api/v1/scrape");
    assert_eq!(seen.len(), 2);
    // Not a duration (the reset is whole seconds, so the wait can be anything up to 2 s): the
    // retry must not arrive before the instant the provider named.
    assert!(
        seen[1].wall.timestamp() >= reset,
        "retry at {} before the reset {reset}",
        seen[1].wall
    );
}

#[tokio::test(start_paused = true)]
async fn a_persistent_502_escalates_to_js_rendering_then_another_country() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_fail(502, None));
    let base = server.start().await;
    let config = engine_config(
        FAST_RETRY,
        "omniscrape",
        &base,
        &["https://a.example/"],
        true,
    );
    let events = run_all(config).await;
    let bodies: Vec<_> = server
        .seen_at("/v1/scrape")
        .into_iter()
        .map(|seen| seen.body)
        .collect();
    assert_eq!(bodies.len(), 4, "max_attempts is 4");
    assert_eq!(bodies[0]["mode"], "auto");
    assert_eq!(bodies[1]["mode"], "auto", "one 502 is retried plainly");
    assert_eq!(
        bodies[2]["mode"], "js_rendering",
        "a stubborn 502 escalates the mode"
    );
    assert!(bodies[2].get("country").is_none());
    assert_eq!(bodies[3]["mode"], "js_rendering");
    assert_eq!(bodies[3]["country"], "us", "then switches proxy country");
    assert!(events.iter().any(|event| matches!(
        event,
        Event::Notice(Notice::RetryScheduled { escalation: Some(change), .. }) if change.contains("js_rendering")
    )));
}

#[tokio::test(start_paused = true)]
async fn an_async_job_is_polled_until_done_and_counts_once() {
    let server = Server::new();
    server.default_reply(
        "/v1/scrape/async",
        Reply::json(
            202,
            json!({"success": true, "job_id": "job-1", "status": "queued", "poll": "/v1/jobs/job-1"}),
        ),
    );
    server.queue(
        "/v1/jobs/job-1",
        vec![Reply::json(
            200,
            json!({"success": true, "data": {"job_id": "job-1", "status": "processing"}}),
        )],
    );
    server.default_reply(
        "/v1/jobs/job-1",
        Reply::json(
            200,
            json!({"success": true, "data": {"job_id": "job-1", "status": "completed", "result": {
                "success": true, "data": {"status_code": 200, "content": "done"}, "billing": {"charged": 0.0035}
            }}}),
        ),
    );
    let base = server.start().await;
    let toml = format!(
        "{FAST_RETRY}[run]\njob_poll_interval = \"1s\"\n[[probes]]\nprovider = \"omniscrape\"\nendpoint = \"{base}\"\ntargets = [\"https://slow.example/\"]\nasync = true\n"
    );
    let overrides = Overrides {
        once: true,
        ..Overrides::default()
    };
    let config = resolved(&toml, &overrides);
    let events = run_all(config).await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1, "polls are not attempts");
    let outcome = &all[0];
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.job.as_ref().unwrap().id, "job-1");
    assert_eq!(outcome.billing.charged, Some(0.0035));
    let polls = server.seen_at("/v1/jobs/job-1");
    assert_eq!(polls.len(), 2);
    assert!(
        gap(&polls, 0) >= Duration::from_secs(1),
        "never faster than once a second"
    );
    assert_eq!(server.seen_at("/v1/scrape/async").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_account_error_pauses_the_provider_and_nothing_is_sent_after() {
    let server = Server::new();
    server.default_reply("/api/v1/scrape", alter_fail(401, "INVALID_API_KEY"));
    let base = server.start().await;
    let targets = [
        "https://a.example/",
        "https://b.example/",
        "https://c.example/",
    ];
    let toml = format!("{FAST_RETRY}[providers.alterlab]\nconcurrency = 1\nrate = \"unlimited\"\n");
    let config = engine_config(&toml, "alterlab", &base, &targets, true);
    let events = run_all(config).await;
    assert_eq!(server.seen_at("/api/v1/scrape").len(), 1);
    let reason = events
        .iter()
        .find_map(|event| match event {
            Event::Fact(Fact::Paused { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .expect("paused");
    assert!(reason.starts_with("INVALID_API_KEY"), "{reason}");
    let skipped = events
        .iter()
        .filter(
            |event| matches!(event, Event::Fact(Fact::Skipped { reason: r, .. }) if *r == reason),
        )
        .count();
    assert_eq!(skipped, 2);

    let mut stats = SessionStats::new(chrono::Utc::now());
    stats.register("alterlab", omniscope::outcome::BillingUnit::Credits);
    for event in events {
        if let Event::Fact(fact) = event {
            stats.apply(fact);
        }
    }
    let provider = stats.provider("alterlab").unwrap();
    assert_eq!((provider.attempts, provider.skipped), (1, 2));
    assert_eq!(provider.paused.as_deref(), Some(reason.as_str()));
}

/// What waits behind an account error is skipped at once, not each after a pacing slot it no
/// longer needs. On paused time the elapsed figure is tokio's, exact, not the machine's.
#[tokio::test(start_paused = true)]
async fn what_waits_behind_an_account_error_is_skipped_without_waiting_for_its_turn() {
    let server = Server::new();
    server.default_reply("/api/v1/scrape", alter_fail(402, "INSUFFICIENT_CREDITS"));
    let base = server.start().await;
    let targets = [
        "https://a.example/",
        "https://b.example/",
        "https://c.example/",
    ];
    let toml = format!("{FAST_RETRY}[providers.alterlab]\nconcurrency = 3\nrate = \"1/min\"\n");
    let config = engine_config(&toml, "alterlab", &base, &targets, true);
    let started = tokio::time::Instant::now();
    let events = run_all(config).await;
    assert_eq!(server.seen_at("/api/v1/scrape").len(), 1);
    let skipped = events
        .iter()
        .filter(|event| matches!(event, Event::Fact(Fact::Skipped { .. })))
        .count();
    assert_eq!(skipped, 2);
    // Each pacing slot is a minute: waiting for them would take two.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the skips waited {:?} for pacing slots",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_loses_nothing() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let targets: Vec<String> = (0..25).map(|i| format!("https://t{i}.example/")).collect();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let toml = "[providers.omniscrape]\nconcurrency = 5\n";
    let config = engine_config(toml, "omniscrape", &base, &targets, true);
    let (tx, mut rx) = mpsc::channel(1);
    let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
    let mut attempts = 0;
    while let Some(event) = rx.recv().await {
        if matches!(event, Event::Fact(Fact::Attempt { .. })) {
            attempts += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.join().await;
    assert_eq!(server.seen_at("/v1/scrape").len(), 25);
    assert_eq!(attempts, 25, "every attempt reached the slow consumer");
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_a_held_engine_promptly() {
    let server = Server::new();
    server.default_reply(
        "/v1/scrape",
        omni_fail(503, None).header("Retry-After", "3600"),
    );
    let base = server.start().await;
    let config = engine_config(
        FAST_RETRY,
        "omniscrape",
        &base,
        &["https://a.example/"],
        false,
    );
    assert!(matches!(
        config.schedule,
        Schedule::Repeat { duration: None }
    ));
    let (tx, mut rx) = mpsc::channel(16);
    let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
    // Wait until the hold is in force, then stop.
    loop {
        match rx.recv().await {
            Some(Event::Notice(Notice::Hold { .. })) => break,
            Some(_) => {}
            None => panic!("ended before the hold"),
        }
    }
    assert!(handle.send(EngineCommand::Shutdown).await);
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(
        drained.is_ok(),
        "the hour-long hold did not keep the engine alive"
    );
    handle.join().await;
    assert_eq!(server.seen_at("/v1/scrape").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_manual_escalated_retry_is_one_linked_attempt() {
    let server = Server::new();
    server.queue(
        "/api/v1/scrape",
        vec![alter_fail(403, "CHALLENGE_DETECTED")],
    );
    server.default_reply("/api/v1/scrape", alter_ok(200));
    let base = server.start().await;
    let toml =
        format!("{FAST_RETRY}[run]\nevery = \"1h\"\n[providers.alterlab]\nrate = \"unlimited\"\n");
    let config = engine_config(&toml, "alterlab", &base, &["https://a.example/"], false);
    let (tx, mut rx) = mpsc::channel(16);
    let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
    let (failed_id, offer) = loop {
        if let Some(Event::Notice(Notice::GaveUp {
            attempt_id, offer, ..
        })) = rx.recv().await
        {
            break (attempt_id, offer);
        }
    };
    assert_eq!(
        offer.as_deref(),
        Some("mode js"),
        "offered, not automatic (costs more)"
    );
    assert_eq!(server.seen_at("/api/v1/scrape").len(), 1);
    handle
        .send(EngineCommand::Retry {
            attempt_id: failed_id,
            escalate: true,
        })
        .await;
    let retried = loop {
        if let Some(Event::Fact(Fact::Attempt { outcome, .. })) = rx.recv().await {
            break outcome;
        }
    };
    assert_eq!(retried.retry_of, Some(failed_id));
    assert!(retried.succeeded());
    assert_eq!(server.seen_at("/api/v1/scrape")[1].body["mode"], "js");

    handle.send(EngineCommand::Pause(Scope::All)).await;
    handle
        .send(EngineCommand::Retry {
            attempt_id: 999_999,
            escalate: false,
        })
        .await;
    let mut saw_pause = false;
    let mut saw_rejection = false;
    while !(saw_pause && saw_rejection) {
        match rx.recv().await {
            Some(Event::Fact(Fact::Paused { reason, .. })) => saw_pause = reason.contains("user"),
            Some(Event::Notice(Notice::CommandRejected { .. })) => saw_rejection = true,
            Some(_) => {}
            None => panic!("engine ended early"),
        }
    }
    handle.shutdown();
    while rx.recv().await.is_some() {}
    handle.join().await;
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_cap_is_cut_and_reported() {
    let server = Server::new();
    let mut huge = omni_ok(200);
    huge.body = vec![b'x'; 200_000];
    server.default_reply("/v1/scrape", huge);
    let base = server.start().await;
    let toml = format!("{FAST_RETRY}[run]\nbody_cap_bytes = 1000\n");
    let config = engine_config(&toml, "omniscrape", &base, &["https://a.example/"], true);
    let events = run_all(config).await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1, "a body over the cap is not retried");
    assert_eq!(all[0].transport, Transport::BodyOverCap { cap_bytes: 1000 });
    assert!(all[0].body_bytes <= 1000);
}

#[tokio::test(start_paused = true)]
async fn usage_is_read_and_the_key_is_sent_but_never_shown() {
    let server = Server::new();
    server.default_reply("/api/v1/scrape", alter_ok(200));
    server.default_reply(
        "/api/v1/usage",
        Reply::json(
            200,
            json!({"balance_credits": 4321, "plan": "starter", "credits_used": 79}),
        ),
    );
    let base = server.start().await;
    let config = engine_config(FAST_RETRY, "alterlab", &base, &["https://a.example/"], true);
    assert!(!format!("{config:?}").contains(SECRET));
    let events = run_all(config).await;
    let balance = events.iter().find_map(|event| match event {
        Event::Fact(Fact::Usage { reading, .. }) => reading.balance,
        _ => None,
    });
    assert_eq!(balance, Some(4321.0));
    let scrape = &server.seen_at("/api/v1/scrape")[0];
    assert_eq!(
        scrape.headers["x-api-key"], SECRET,
        "the key reaches the API"
    );
    let shown = format!("{events:?}");
    assert!(!shown.contains(SECRET));
    for outcome in outcomes(&events) {
        assert!(!serde_json::to_string(&outcome).unwrap().contains(SECRET));
    }
}

#[tokio::test(start_paused = true)]
async fn load_mode_keeps_the_concurrency_in_flight_and_follows_a_new_limit() {
    let server = Server::new();
    server.default_reply(
        "/v1/scrape",
        omni_ok(200).delayed(Duration::from_millis(150)),
    );
    let base = server.start().await;
    let toml = "[run]\nevery = \"0s\"\n[providers.omniscrape]\nconcurrency = 3\n";
    let config = engine_config(toml, "omniscrape", &base, &["https://a.example/"], false);
    let (tx, mut rx) = mpsc::channel(64);
    let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
    let mut max_in_flight = 0;
    let mut attempts = 0;
    while attempts < 12 {
        match rx.recv().await {
            Some(Event::Fact(Fact::InFlight { n: in_flight, .. })) => {
                max_in_flight = max_in_flight.max(in_flight);
            }
            Some(Event::Fact(Fact::Attempt { .. })) => attempts += 1,
            Some(_) => {}
            None => panic!("ended early"),
        }
    }
    assert_eq!(
        max_in_flight, 3,
        "back to back, exactly the limit in flight"
    );

    handle
        .send(EngineCommand::SetConcurrency {
            scope: Scope::Provider("omniscrape".into()),
            limit: 20,
        })
        .await;
    // Above the 16 load workers started at first: more are added to fill the new limit.
    let mut raised = 0;
    while raised < 20 {
        match rx.recv().await {
            Some(Event::Fact(Fact::InFlight { n: in_flight, .. })) => {
                assert!(in_flight <= 20);
                raised = raised.max(in_flight);
            }
            Some(_) => {}
            None => panic!("ended early"),
        }
    }
    handle.shutdown();
    while rx.recv().await.is_some() {}
    handle.join().await;
}

/// Load mode against `server`, collecting until `attempts` attempts: the in-flight counts and the
/// limits in force the engine announced, in order.
async fn in_flight_and_limits(
    server_base: &str,
    toml: &str,
    attempts: usize,
) -> (Vec<u32>, Vec<u32>) {
    let config = engine_config(
        toml,
        "omniscrape",
        server_base,
        &["https://a.example/"],
        false,
    );
    let (tx, mut rx) = mpsc::channel(64);
    let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
    let (mut in_flight, mut limits, mut seen) = (Vec::new(), Vec::new(), 0);
    while seen < attempts {
        match rx.recv().await {
            Some(Event::Fact(Fact::InFlight { n, .. })) => in_flight.push(n),
            Some(Event::Fact(Fact::Limits { concurrency, .. })) => limits.push(concurrency),
            Some(Event::Fact(Fact::Attempt { .. })) => seen += 1,
            Some(_) => {}
            None => panic!("ended early"),
        }
    }
    handle.shutdown();
    while rx.recv().await.is_some() {}
    handle.join().await;
    (in_flight, limits)
}

#[tokio::test(start_paused = true)]
async fn the_in_flight_limit_follows_the_plan_s_advertised_limit() {
    // Issue 15: 4 kept in flight against a one-slot plan for minutes. The provider says 1.
    let server = Server::new();
    server.default_reply(
        "/v1/scrape",
        omni_ok(200)
            .header("X-Concurrency-Limit", "1")
            .delayed(Duration::from_millis(100)),
    );
    let base = server.start().await;
    let toml = "[run]\nevery = \"0s\"\n[providers.omniscrape]\nconcurrency = 4\n";
    let (in_flight, limits) = in_flight_and_limits(&base, toml, 12).await;
    assert_eq!(limits.first(), Some(&4), "the configured limit at start");
    assert_eq!(limits.last(), Some(&1), "then the plan's: {limits:?}");
    // Once the first answers are in, never more than one in flight.
    let later = &in_flight[in_flight.len() / 2..];
    assert!(later.iter().all(|n| *n <= 1), "{in_flight:?}");
}

#[tokio::test(start_paused = true)]
async fn concurrency_refusals_back_off_and_the_limit_climbs_back_slowly() {
    let server = Server::new();
    server.queue(
        "/v1/scrape",
        vec![
            omni_fail(429, Some("CONCURRENCY_LIMIT")),
            omni_fail(429, Some("CONCURRENCY_LIMIT")),
        ],
    );
    server.default_reply(
        "/v1/scrape",
        omni_ok(200).delayed(Duration::from_millis(50)),
    );
    let base = server.start().await;
    let toml =
        format!("{FAST_RETRY}[run]\nevery = \"0s\"\n[providers.omniscrape]\nconcurrency = 4\n");
    let (_, limits) = in_flight_and_limits(&base, &toml, 40).await;
    let lowest = limits.iter().copied().min().unwrap();
    assert!(lowest <= 2, "backed off on refusals: {limits:?}");
    let after_lowest = limits.iter().position(|limit| *limit == lowest).unwrap();
    // Up one place at a time, back to the configured 4.
    let climb = &limits[after_lowest..];
    assert!(
        climb.windows(2).all(|pair| pair[1] <= pair[0] + 1),
        "{limits:?}"
    );
    assert_eq!(limits.last(), Some(&4), "{limits:?}");
}

#[tokio::test(start_paused = true)]
async fn the_client_side_rate_spaces_requests() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let toml = "[providers.omniscrape]\nconcurrency = 4\nrate = \"10/s\"\n";
    let targets = [
        "https://a.example/",
        "https://b.example/",
        "https://c.example/",
        "https://d.example/",
    ];
    let config = engine_config(toml, "omniscrape", &base, &targets, true);
    let events = run_all(config).await;
    assert_eq!(server.seen_at("/v1/scrape").len(), 4);
    // The spacing is read where the engine decides it: the attempts' start stamps on its clock
    // (tokio's paused time here). Arrival times at the server are not a measure of it: under
    // paused time, a loopback read that is not ready yet lets tokio jump to the next timer.
    let mut starts: Vec<_> = outcomes(&events).iter().map(|o| o.started_at).collect();
    starts.sort();
    assert_eq!(starts.len(), 4);
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= chrono::TimeDelta::milliseconds(100), "{gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_rate_from_the_keys_drives_probing_at_once() {
    // Probing every hour; the user asks for 2/s: the next probes come within the second, not
    // after the hour (nor after a cap that only limits what the schedule sends).
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let config = engine_config(
        "[run]\nevery = \"1h\"\n",
        "omniscrape",
        &base,
        &["https://a.example/"],
        false,
    );
    let (tx, mut rx) = mpsc::channel(64);
    let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
    let mut starts = Vec::new();
    let mut limits = None;
    let collect = async {
        while starts.len() < 4 {
            match rx.recv().await {
                Some(Event::Fact(Fact::Attempt { outcome, .. })) => {
                    starts.push(outcome.started_at);
                    if starts.len() == 1 {
                        handle
                            .send(EngineCommand::SetRate {
                                scope: Scope::Provider("omniscrape".into()),
                                rate: omniscope::event::Rate::PerSecond(2.0),
                            })
                            .await;
                    }
                }
                Some(Event::Fact(Fact::Limits { rate, .. })) => limits = rate,
                Some(_) => {}
                None => panic!("ended early"),
            }
        }
    };
    // Paused time jumps to the next timer: without the change, that is this timeout, not a probe.
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("the new rate drives probing within a minute, not the hour");
    assert_eq!(limits, Some(omniscope::event::Rate::PerSecond(2.0)));
    for pair in starts[1..].windows(2) {
        assert!(pair[1] - pair[0] >= chrono::TimeDelta::milliseconds(500));
    }
    handle.shutdown();
    while rx.recv().await.is_some() {}
    handle.join().await;
}

#[tokio::test(start_paused = true)]
async fn a_duration_ends_a_repeating_run() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let overrides = Overrides {
        provider: Some("omniscrape".into()),
        endpoint: Some(base),
        targets: vec!["https://a.example/".into()],
        duration: Some(Duration::from_millis(500)),
        ..Overrides::default()
    };
    let config = resolved("[run]\nevery = \"100ms\"\n", &overrides);
    let events = run_all(config).await;
    assert!(
        outcomes(&events).len() >= 2,
        "it repeated before the duration ended it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_duration_bounds_the_run_and_a_stalled_request_is_abandoned_and_counted() {
    // Issue 15: `--duration 30s` took 56 s against stalled requests. The provider never answers
    // within the 10-minute timeout; the run still ends a short grace after its duration.
    let server = Server::new();
    server.default_reply(
        "/v1/scrape",
        omni_ok(200).delayed(Duration::from_secs(3600)),
    );
    let base = server.start().await;
    let overrides = Overrides {
        provider: Some("omniscrape".into()),
        endpoint: Some(base),
        targets: vec!["https://a.example/".into()],
        duration: Some(Duration::from_secs(1)),
        timeout: Some(Duration::from_secs(600)),
        ..Overrides::default()
    };
    let config = resolved("[run]\nevery = \"10s\"\n", &overrides);
    // `run_all` gives the engine a minute: waiting out the timeout would fail it.
    let events = run_all(config).await;
    let outcomes = outcomes(&events);
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].transport, Transport::Abandoned);
    assert!(outcomes[0].latency >= omniscope::probe::STOP_GRACE);
    let mut stats = SessionStats::new(chrono::Utc::now());
    stats.register("omniscrape", omniscope::outcome::BillingUnit::Usd);
    for event in events {
        if let Event::Fact(fact) = event {
            stats.apply(fact);
        }
    }
    let omniscrape = stats.provider("omniscrape").unwrap();
    assert_eq!(omniscrape.transport_errors.get("abandoned"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn a_key_in_the_query_string_never_reaches_an_outcome() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("queryapi.toml"),
        "name = \"queryapi\"\ndisplay_name = \"Query API\"\nbase_url = \"http://127.0.0.1:9\"\n[endpoints]\nscrape = \"/scrape\"\n[auth]\nstyle = \"query\"\nname = \"api_key\"\n[request]\nurl = \"url\"\n[response]\ntarget_status = [\"status\"]\n[billing]\nunit = \"credits\"\n",
    )
    .unwrap();
    let profiles = omniscope::provider::load_profiles(Some(dir.path())).unwrap();
    // A port nothing listens on: the error reqwest reports would name the URL, key included.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let file = config::parse("[retry]\nmax_attempts = 1\n").unwrap();
    let overrides = Overrides {
        provider: Some("queryapi".into()),
        endpoint: Some(base),
        targets: vec!["https://a.example/".into()],
        once: true,
        ..Overrides::default()
    };
    let config = config::resolve(&file, "test", &overrides, &profiles, |_| {
        Some(SECRET.to_owned())
    })
    .unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let handle = Engine::spawn(config, &profiles, tx).unwrap();
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        events.push(event);
    }
    handle.join().await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1);
    assert_ne!(all[0].transport, Transport::Ok);
    assert!(!format!("{events:?}").contains(SECRET));
    assert!(!serde_json::to_string(&all[0]).unwrap().contains(SECRET));
}

#[tokio::test(start_paused = true)]
async fn the_query_key_reaches_the_api() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("queryapi.toml"),
        "name = \"queryapi\"\ndisplay_name = \"Query API\"\nbase_url = \"http://127.0.0.1:9\"\n[endpoints]\nscrape = \"/scrape\"\n[auth]\nstyle = \"query\"\nname = \"api_key\"\n[request]\nurl = \"url\"\n[response]\ntarget_status = [\"status\"]\n[billing]\nunit = \"credits\"\n",
    )
    .unwrap();
    let profiles = omniscope::provider::load_profiles(Some(dir.path())).unwrap();
    let server = Server::new();
    server.default_reply("/scrape", Reply::json(200, json!({"ok": true})));
    let base = server.start().await;
    let overrides = Overrides {
        provider: Some("queryapi".into()),
        endpoint: Some(base),
        targets: vec!["https://a.example/".into()],
        once: true,
        ..Overrides::default()
    };
    let config = config::resolve(
        &config::parse("").unwrap(),
        "test",
        &overrides,
        &profiles,
        |_| Some(SECRET.to_owned()),
    )
    .unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let handle = Engine::spawn(config, &profiles, tx).unwrap();
    while rx.recv().await.is_some() {}
    handle.join().await;
    let seen = server.seen_at("/scrape");
    assert_eq!(
        seen[0].query.as_deref(),
        Some(format!("api_key={SECRET}").as_str())
    );
}

/// A measurement, not a check of speed: `cargo test --release --test engine -- --ignored --nocapture`
/// prints the engine's attempts per second in load mode against an instant loopback provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand"]
async fn measure_load_mode_throughput() {
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    for concurrency in [1u32, 8, 32] {
        let toml =
            format!("[run]\nevery = \"0s\"\n[providers.omniscrape]\nconcurrency = {concurrency}\n");
        let overrides = Overrides {
            provider: Some("omniscrape".into()),
            endpoint: Some(base.clone()),
            targets: vec!["https://a.example/".into()],
            duration: Some(Duration::from_secs(3)),
            ..Overrides::default()
        };
        let config = resolved(&toml, &overrides);
        let events = run_all(config).await;
        let attempts = outcomes(&events).len();
        assert!(attempts > 0);
        let per_second = attempts as f64 / 3.0;
        println!("concurrency {concurrency:>2}: {attempts} attempts in 3 s = {per_second:.0}/s");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hold_stops_only_its_own_provider() {
    let server = Server::new();
    server.queue(
        "/v1/scrape",
        vec![omni_fail(429, Some("CONCURRENCY_LIMIT")).header("Retry-After", "3")],
    );
    server.default_reply("/v1/scrape", omni_ok(200));
    server.default_reply("/api/v1/scrape", alter_ok(200));
    server.default_reply(
        "/api/v1/usage",
        Reply::json(200, json!({"balance_credits": 10})),
    );
    let base = server.start().await;
    let toml = format!(
        "{FAST_RETRY}[providers.omniscrape]\nendpoint = \"{base}\"\n[providers.alterlab]\nendpoint = \"{base}\"\nrate = \"unlimited\"\n\
         [[probes]]\nprovider = \"omniscrape\"\ntargets = [\"https://a.example/\"]\n\
         [[probes]]\nprovider = \"alterlab\"\ntargets = [\"https://b.example/\", \"https://c.example/\"]\n"
    );
    let overrides = Overrides {
        once: true,
        ..Overrides::default()
    };
    let config = config::resolve(
        &config::parse(&toml).unwrap(),
        "test",
        &overrides,
        &builtin_profiles(),
        |_| Some(SECRET.to_owned()),
    )
    .unwrap();
    run_all(config).await;
    let omni = server.seen_at("/v1/scrape");
    let alter = server.seen_at("/api/v1/scrape");
    assert_eq!((omni.len(), alter.len()), (2, 2));
    assert!(
        alter.iter().all(|seen| seen.at < omni[1].at),
        "AlterLab was not held by OmniScrape's Retry-After"
    );
    assert!(gap(&omni, 0) >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_ends_the_attempt_without_a_retry() {
    let server = Server::new();
    server.default_reply(
        "/api/v1/scrape",
        Reply::json(202, json!({"job_id": "j-9", "status": "queued"})),
    );
    server.default_reply(
        "/api/v1/jobs/j-9",
        Reply::json(
            200,
            json!({"status": "failed", "error": "target unreachable"}),
        ),
    );
    server.default_reply(
        "/api/v1/usage",
        Reply::json(200, json!({"balance_credits": 1})),
    );
    let base = server.start().await;
    let toml = format!(
        "{FAST_RETRY}[run]\njob_poll_interval = \"1s\"\n[providers.alterlab]\nrate = \"unlimited\"\n"
    );
    let config = engine_config(&toml, "alterlab", &base, &["https://a.example/"], true);
    let events = run_all(config).await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1);
    assert!(!all[0].succeeded());
    assert_eq!(all[0].job.as_ref().unwrap().poll_path, "/api/v1/jobs/j-9");
    assert!(
        all[0]
            .message
            .as_deref()
            .unwrap()
            .contains("target unreachable")
    );
    assert_eq!(server.seen_at("/api/v1/scrape").len(), 1);
    assert_eq!(server.seen_at("/api/v1/jobs/j-9").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_echoed_by_the_api_is_redacted_everywhere() {
    // Some APIs quote the key they were sent ("invalid key sk_…"): the message becomes the pause
    // reason, and the message, headers and body excerpt go to the log and the report.
    let server = Server::new();
    server.default_reply(
        "/api/v1/scrape",
        Reply::json(
            401,
            json!({"error": "INVALID_API_KEY", "message": format!("invalid key {SECRET}")}),
        )
        .header("X-Echo-Key", SECRET),
    );
    let base = server.start().await;
    let config = engine_config(FAST_RETRY, "alterlab", &base, &["https://a.example/"], true);
    let events = run_all(config).await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].error_code.as_deref(), Some("INVALID_API_KEY"));
    assert_eq!(all[0].message.as_deref(), Some("invalid key [redacted]"));
    assert!(all[0].class.account_stop, "the pause still happens");
    let shown = format!("{events:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    for outcome in &all {
        assert!(!serde_json::to_string(outcome).unwrap().contains(SECRET));
    }
}

#[tokio::test(start_paused = true)]
async fn a_redirect_is_not_followed_so_the_key_never_reaches_another_host() {
    let elsewhere = Server::new();
    elsewhere.default_reply("/v1/scrape", omni_ok(200));
    let elsewhere_base = elsewhere.start().await;
    let server = Server::new();
    server.default_reply(
        "/v1/scrape",
        Reply::json(302, json!({})).header("Location", format!("{elsewhere_base}/v1/scrape")),
    );
    let base = server.start().await;
    let config = engine_config(
        FAST_RETRY,
        "omniscrape",
        &base,
        &["https://a.example/"],
        true,
    );
    let events = run_all(config).await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1, "an unlisted 3xx is not retried");
    assert_eq!(all[0].api_status, Some(302));
    assert!(!all[0].succeeded());
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect was followed, carrying X-API-Key to another host"
    );
}

/// One async AlterLab probe (job poll interval 1 s) against a server whose scrape queues job
/// `id` and whose polls of it answer `first`, in order, then `then`.
async fn run_job_probe(id: &str, first: Vec<Reply>, then: Reply) -> (Server, Vec<Event>) {
    run_job_probe_with(id, first, then, "").await
}

/// [`run_job_probe`] with more `[run]` settings.
async fn run_job_probe_with(
    id: &str,
    first: Vec<Reply>,
    then: Reply,
    run_settings: &str,
) -> (Server, Vec<Event>) {
    let server = Server::new();
    server.default_reply(
        "/api/v1/scrape",
        Reply::json(202, json!({"job_id": id, "status": "queued"})),
    );
    let poll = format!("/api/v1/jobs/{id}");
    server.queue(&poll, first);
    server.default_reply(&poll, then);
    server.default_reply(
        "/api/v1/usage",
        Reply::json(200, json!({"balance_credits": 1})),
    );
    let base = server.start().await;
    let toml = format!(
        "{FAST_RETRY}[run]\njob_poll_interval = \"1s\"\n{run_settings}[providers.alterlab]\nrate = \"unlimited\"\n"
    );
    let config = engine_config(&toml, "alterlab", &base, &["https://a.example/"], true);
    let events = run_all(config).await;
    (server, events)
}

fn completed_job() -> Reply {
    Reply::json(
        200,
        json!({"status": "completed", "result": {"status_code": 200, "content": "ok", "billing": {"total_credits": 1}}}),
    )
}

#[tokio::test(start_paused = true)]
async fn a_job_poll_refused_for_good_is_not_polled_again() {
    // A 401 on the poll is an account error like any other: one poll, then the provider pauses.
    // A 404 (the job is gone) is not polled again either. Transient poll failures still are.
    for (status, pauses) in [(401u16, true), (404, false)] {
        let (server, events) = run_job_probe(
            "j-1",
            Vec::new(),
            Reply::json(status, json!({"error": "NOPE", "message": "no"})),
        )
        .await;
        let all = outcomes(&events);
        assert_eq!(all.len(), 1, "HTTP {status}");
        assert!(!all[0].succeeded());
        assert_eq!(all[0].api_status, Some(status));
        assert_eq!(
            server.seen_at("/api/v1/jobs/j-1").len(),
            1,
            "a job poll answered {status} was repeated"
        );
        let paused = events
            .iter()
            .any(|event| matches!(event, Event::Fact(Fact::Paused { .. })));
        assert_eq!(paused, pauses, "HTTP {status}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_that_does_not_end_in_time_is_reported_not_submitted_again() {
    // Issue 13, item 2: each submission is a job the provider may bill. One that is still
    // running at job_max_wait is reported (retryable by hand), never re-POSTed.
    let running = Reply::json(200, json!({"status": "processing"}));
    let (server, events) =
        run_job_probe_with("j-slow", Vec::new(), running, "job_max_wait = \"2s\"\n").await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(!all[0].succeeded());
    assert_eq!(all[0].transport, Transport::Timeout);
    assert!(!all[0].class.retryable.allows_plain_retry());
    assert_eq!(
        all[0].job.as_ref().map(|job| job.id.as_str()),
        Some("j-slow")
    );
    assert!(
        all[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("not finished"),
        "{:?}",
        all[0].message
    );
    assert_eq!(
        server.seen_at("/api/v1/scrape").len(),
        1,
        "the job was submitted again"
    );
    assert!(!server.seen_at("/api/v1/jobs/j-slow").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_polls_keep_failing_is_not_submitted_again() {
    // Three transient poll failures give the job up; the scrape itself is not sent again.
    let busy = Reply::json(503, json!({"error": "NETWORK_ERROR", "message": "busy"}));
    let (server, events) = run_job_probe("j-busy", Vec::new(), busy).await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        server.seen_at("/api/v1/scrape").len(),
        1,
        "the job was submitted again"
    );
    assert_eq!(server.seen_at("/api/v1/jobs/j-busy").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_transient_job_poll_failure_is_polled_again() {
    let busy = Reply::json(
        503,
        json!({"error": "SERVICE_UNAVAILABLE", "message": "busy"}),
    );
    let (server, events) = run_job_probe("j-2", vec![busy], completed_job()).await;
    let all = outcomes(&events);
    assert_eq!(all.len(), 1);
    assert!(all[0].succeeded(), "{:?}", all[0]);
    assert_eq!(server.seen_at("/api/v1/jobs/j-2").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_job_poll_answered_429_waits_for_its_retry_after() {
    let limited = alter_fail(429, "RATE_LIMIT_EXCEEDED").header("Retry-After", "3");
    let (server, events) = run_job_probe("j-3", vec![limited], completed_job()).await;
    assert!(outcomes(&events)[0].succeeded());
    let polls = server.seen_at("/api/v1/jobs/j-3");
    assert_eq!(polls.len(), 2);
    // A lower bound only: the next poll may come later on a slow machine, never sooner.
    let gap = polls[1].at - polls[0].at;
    assert!(gap >= Duration::from_secs(3), "polled again after {gap:?}");
}

/// It spans one usage interval (30 s, the shortest the contracts allow), on paused time.
#[tokio::test(start_paused = true)]
async fn a_paused_provider_is_not_sent_usage_polls_either() {
    let server = Server::new();
    server.default_reply("/api/v1/scrape", alter_fail(401, "INVALID_API_KEY"));
    server.default_reply(
        "/api/v1/usage",
        Reply::json(200, json!({"balance_credits": 1})),
    );
    let base = server.start().await;
    let overrides = Overrides {
        provider: Some("alterlab".into()),
        endpoint: Some(base),
        targets: vec!["https://a.example/".into()],
        duration: Some(Duration::from_secs(33)),
        ..Overrides::default()
    };
    let config = resolved(&format!("{FAST_RETRY}[run]\nevery = \"60s\"\n"), &overrides);
    let events = run_all(config).await;
    assert!(
        events
            .iter()
            .any(|event| matches!(event, Event::Fact(Fact::Paused { .. })))
    );
    assert_eq!(server.seen_at("/api/v1/scrape").len(), 1);
    assert!(
        server.seen_at("/api/v1/usage").len() <= 1,
        "the usage endpoint was polled again while the provider was paused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_count_never_reads_above_the_cap() {
    // Back to back on several threads: an attempt leaving and the next one entering must not both
    // be counted at once (the report's max_in_flight would read one above the plan's cap).
    let server = Server::new();
    server.default_reply("/v1/scrape", omni_ok(200));
    let base = server.start().await;
    let toml = "[run]\nevery = \"0s\"\n[providers.omniscrape]\nconcurrency = 2\n";
    let config = engine_config(toml, "omniscrape", &base, &["https://a.example/"], false);
    let (tx, mut rx) = mpsc::channel(256);
    let handle = Engine::spawn(config, &builtin_profiles(), tx).unwrap();
    let mut attempts = 0;
    while attempts < 3000 {
        match rx.recv().await {
            Some(Event::Fact(Fact::InFlight { n: in_flight, .. })) => {
                assert!(in_flight <= 2, "{in_flight} in flight under a cap of 2");
            }
            Some(Event::Fact(Fact::Attempt { .. })) => attempts += 1,
            Some(_) => {}
            None => panic!("ended early"),
        }
    }
    handle.shutdown();
    while rx.recv().await.is_some() {}
    handle.join().await;
}
