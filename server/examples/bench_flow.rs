//! The full-flow load of `scripts/bench`: each client reports a ring, then
//! posts the signed forwarded-call webhook that claims it, in a loop; with
//! `whole`, the rest of the call too: the Dial's action (the first
//! destination took the call: `completed`, bridged) and the call's final
//! status (`completed`), as Twilio posts them.
//!
//! usage: bench_flow BASE_URL TWILIO_TOKEN CLIENTS SECONDS [zipf:S] [whole] < subscribers.tsv
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
    let usage = || -> ! {
        eprintln!(
            "usage: bench_flow BASE_URL TWILIO_TOKEN CLIENTS SECONDS [zipf:S] [whole] < subscribers.tsv"
        );
        std::process::exit(2);
    };
    let [_, base, token, clients, seconds, options @ ..] = args.as_slice() else {
        usage()
    };
    let mut zipf = None;
    let mut whole = false;
    for option in options {
        match option.strip_prefix("zipf:") {
            Some(exponent) => zipf = Some(exponent.parse::<f64>().unwrap_or_else(|_| usage())),
            None if option == "whole" => whole = true,
            None => usage(),
        }
    }
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
    // CallSids of their own for each run: a CallSid an earlier run used is a
    // retried webhook of that run's call, answered as that call was.
    let run = std::process::id();

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
                    // Callers of an area code of their own: one of the
                    // destinations' numbers calling would be dialed nowhere.
                    let caller = format!("+1312555{:04}", n % 10_000);
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
                        other => {
                            failed(&errors, format_args!("ring report: {other:?}"));
                            continue;
                        }
                    }
                    let params = vec![
                        (
                            "CallSid".to_owned(),
                            format!("CA{run:08x}{client:04}{n:012}"),
                        ),
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
                    let body = match voice {
                        Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
                        other => {
                            failed(&errors, format_args!("voice webhook: {other:?}"));
                            continue;
                        }
                    };
                    // A claimed ring report carries its session in the Dial action.
                    if body.contains("session=ses_") {
                        claimed.fetch_add(1, Ordering::Relaxed);
                    }
                    if whole {
                        // CallSid, From, To: as Twilio names the call in its callbacks.
                        if let Err(why) =
                            rest_of_the_call(&http, &base, &token, &params[..3], &body).await
                        {
                            failed(&errors, format_args!("{why}"));
                            continue;
                        }
                    }
                    latencies.push(loop_started.elapsed());
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

/// Counts a failed loop, and says why on stderr for the first few.
fn failed(errors: &AtomicU64, why: std::fmt::Arguments<'_>) {
    if errors.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("bench_flow: a loop failed: {why}");
    }
}

/// The Dial's action (the first destination took the call) and the call's
/// final status, signed as Twilio signs them, each with the `call`'s
/// parameters (CallSid, From, To); why not, when either was not answered.
async fn rest_of_the_call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    call: &[(String, String)],
    twiml: &str,
) -> Result<(), String> {
    let Some(action) = twiml
        .split_once("action=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(url, _)| url.replace("&amp;", "&"))
    else {
        return Err(format!("no Dial action in {twiml}"));
    };
    let post = |what: &'static str, url: String, params: Vec<(String, String)>| async move {
        let signature =
            ringrelay_server::providers::twilio::signature::sign(token.as_bytes(), &url, &params);
        match http
            .post(&url)
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            other => Err(format!("{what}: {other:?}")),
        }
    };
    let with = |extra: &[(&str, &str)]| {
        let mut params = call.to_vec();
        params.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        params
    };
    post(
        "dial-status",
        action,
        with(&[
            ("CallStatus", "in-progress"),
            ("DialCallStatus", "completed"),
            ("DialBridged", "true"),
            ("DialCallDuration", "30"),
        ]),
    )
    .await?;
    post(
        "final status",
        format!("{base}/twilio/status"),
        with(&[("CallStatus", "completed"), ("CallDuration", "35")]),
    )
    .await
}
