//! The full-flow load of `scripts/bench`: each client reports a ring, then
//! posts the signed forwarded-call webhook that claims it, in a loop.
//!
//! usage: bench_flow BASE_URL TWILIO_TOKEN CLIENTS SECONDS [zipf:S] < subscribers.tsv
//! where each stdin line is `device_token<TAB>subscriber<TAB>forwarding_number`.
//! With `zipf:S` every client picks each call's subscriber among all of them
//! by a Zipf distribution of exponent S (the first line the most called);
//! otherwise each client cycles through its own share. Prints one JSON line:
//! loops, loops per second, p50/p99 of a loop in ms, errors, ring reports
//! refused by the per-device rate limit, and how many forwarded calls
//! claimed their ring report.

use std::io::BufRead as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Subscriber {
    device_token: String,
    number: String,
    forwarding: String,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, token, clients, seconds, zipf) = match args.as_slice() {
        [_, base, token, clients, seconds] => (base, token, clients, seconds, None),
        [_, base, token, clients, seconds, zipf] => {
            let exponent: f64 = zipf
                .strip_prefix("zipf:")
                .and_then(|s| s.parse().ok())
                .expect("zipf:S");
            (base, token, clients, seconds, Some(exponent))
        }
        _ => {
            eprintln!(
                "usage: bench_flow BASE_URL TWILIO_TOKEN CLIENTS SECONDS [zipf:S] < subscribers.tsv"
            );
            std::process::exit(2);
        }
    };
    let clients: usize = clients.parse().expect("CLIENTS");
    let duration = Duration::from_secs(seconds.parse().expect("SECONDS"));
    let subscribers: Vec<Subscriber> = std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let mut parts = line.split('\t');
            Some(Subscriber {
                device_token: parts.next()?.to_owned(),
                number: parts.next()?.to_owned(),
                forwarding: parts.next()?.to_owned(),
            })
        })
        .collect();
    assert!(subscribers.len() >= clients, "need a subscriber per client");
    // The cumulative Zipf weights, for picking by binary search.
    let zipf: Option<Arc<Vec<f64>>> = zipf.map(|exponent| {
        let mut total = 0.0;
        let cdf: Vec<f64> = (1..=subscribers.len())
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(exponent);
                total
            })
            .collect();
        Arc::new(cdf.into_iter().map(|c| c / total).collect())
    });
    let rate_limited = Arc::new(AtomicU64::new(0));
    let subscribers = Arc::new(subscribers);
    let http = reqwest::Client::new();
    let errors = Arc::new(AtomicU64::new(0));
    let claimed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();

    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let (subscribers, errors, claimed) =
                (subscribers.clone(), errors.clone(), claimed.clone());
            let (zipf, rate_limited) = (zipf.clone(), rate_limited.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0usize;
                // Each client cycles through its own subscribers, so that the
                // per-device rate limit (30 a minute) is not what is measured.
                let mine: Vec<&Subscriber> =
                    subscribers.iter().skip(client).step_by(clients).collect();
                while Instant::now() < deadline {
                    let subscriber = match &zipf {
                        Some(cdf) => {
                            let x: f64 = rand::random();
                            &subscribers[cdf.partition_point(|c| *c < x).min(cdf.len() - 1)]
                        }
                        None => mine[n % mine.len()],
                    };
                    n += 1;
                    let caller = format!("+1202555{:04}", n % 10_000);
                    let loop_started = Instant::now();
                    let ring = http
                        .post(format!("{base}/v1/ring"))
                        .bearer_auth(&subscriber.device_token)
                        .json(&serde_json::json!({"caller": caller}))
                        .send()
                        .await;
                    match ring.map(|r| r.status().as_u16()) {
                        Ok(201) => {}
                        Ok(429) => {
                            rate_limited.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    let params = vec![
                        ("CallSid".to_owned(), format!("CA{client:04}{n:012}")),
                        ("From".to_owned(), caller),
                        ("To".to_owned(), subscriber.forwarding.clone()),
                        ("ForwardedFrom".to_owned(), subscriber.number.clone()),
                        ("CallStatus".to_owned(), "ringing".to_owned()),
                    ];
                    let url = format!("{base}/twilio/voice");
                    let signature = ringrelay_server::providers::twilio::signature::sign(
                        token.as_bytes(),
                        &url,
                        &params,
                    );
                    let voice = http
                        .post(&url)
                        .header("X-Twilio-Signature", signature)
                        .form(&params)
                        .send()
                        .await;
                    match voice {
                        Ok(r) if r.status() == 200 => {
                            let body = r.text().await.unwrap_or_default();
                            // A claimed ring report carries its session in the Dial action.
                            if body.contains("session=ses_") {
                                claimed.fetch_add(1, Ordering::Relaxed);
                            }
                            latencies.push(loop_started.elapsed());
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "loops": latencies.len(),
            "loops_per_sec": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "errors": errors.load(Ordering::Relaxed),
            "rate_limited": rate_limited.load(Ordering::Relaxed),
            "claimed": claimed.load(Ordering::Relaxed),
        })
    );
}
