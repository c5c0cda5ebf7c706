//! The least a reqwest client can spend per request: 64 tasks on one thread, each sending the
//! scrape request in a loop and reading the body, counting status codes and nothing more (no
//! classification, no stats, no events). `benches/e2e.sh` runs it beside omniscope and oha, so
//! that the end-to-end gap splits into what reqwest itself costs and what omniscope adds.
//!
//! Usage: reqwest_floor BASE_URL SECONDS   (prints `requests status_2xx elapsed_s`)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;
const BODY: &str = r#"{"url":"https://example.com/"}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().ok_or("usage: reqwest_floor BASE_URL SECONDS")?;
    let seconds: u64 = args.next().ok_or("missing SECONDS")?.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // The same client settings as omniscope's (`probe::http::build_client`).
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        // Built once and cloned per request (URL parsed once, headers encoded once), as
        // omniscope's request templates do.
        let request = client
            .post(format!("{base}/v1/scrape"))
            .header("X-API-Key", "sk_test_bench")
            .header("Content-Type", "application/json")
            .body(BODY)
            .build()?;
        let requests = Arc::new(AtomicU64::new(0));
        let successes = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..CONNECTIONS {
            let client = client.clone();
            let (requests, successes) = (requests.clone(), successes.clone());
            let Some(template) = request.try_clone() else {
                return Err("the request body cannot be cloned".into());
            };
            workers.spawn(async move {
                while Instant::now() < deadline {
                    let Some(request) = template.try_clone() else {
                        break;
                    };
                    let sent = client.execute(request).await;
                    requests.fetch_add(1, Ordering::Relaxed);
                    if let Ok(response) = sent {
                        let ok = response.status().is_success();
                        if response.bytes().await.is_ok() && ok {
                            successes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        while workers.join_next().await.is_some() {}
        println!(
            "{} {} {:.3}",
            requests.load(Ordering::Relaxed),
            successes.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}
