//! The `ringrelay` binary as a user runs it: serving.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ringrelay_testkit::receiver::{Behaviour, WebhookReceiver};
use ringrelay_testkit::servers::TestRedis;

fn ringrelay(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringrelay"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied());
    command
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ringrelay-bin-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn invalid_configuration_exits_non_zero_with_one_line_naming_the_variable() {
    let dir = temp_dir("badconfig");
    let cases = [
        ("PORT", "http"),
        ("SESSION_TTL_SECS", "0"),
        ("NOTIFY_TIMEOUT_MS", "-1"),
        ("PUBLIC_BASE_URL", "example.com"),
        ("WEBHOOK_SECRET", "secret"),
        ("REDIS_URL", "memcached://localhost"),
        ("LOG_FORMAT", "xml"),
        ("TELNYX_PUBLIC_KEY", "c2hvcnQ="),
    ];
    for (variable, value) in cases {
        let output = ringrelay(&dir, &[(variable, value)]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{variable}: {stderr}");
        assert!(
            stderr.contains(&format!("{variable}: ")),
            "{variable}: {stderr}"
        );
        assert!(
            !stderr.contains(value)
                || variable == "PORT"
                || variable == "PUBLIC_BASE_URL"
                || variable == "LOG_FORMAT"
                || variable == "NOTIFY_TIMEOUT_MS"
                || variable == "SESSION_TTL_SECS",
            "secrets are not echoed: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dot_env_file_is_read() {
    let dir = temp_dir("dotenv");
    std::fs::write(dir.join(".env"), "SESSION_TTL_SECS=forever\n").unwrap();
    let output = ringrelay(&dir, &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("SESSION_TTL_SECS: ")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn with_no_configuration_it_serves_on_the_memory_store() {
    let dir = temp_dir("serve");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = ringrelay(&dir, &[("PORT", &port.to_string())])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Wait for the service to say it listens, then use it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("ringrelay listening") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the service announces it listens");
    assert!(
        line.contains("store=\"memory\"") || line.contains("store=memory"),
        "{line}"
    );
    let body = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    let response = reqwest::get(format!(
        "http://127.0.0.1:{port}/v1/subscribers/+12025550199"
    ))
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        503,
        "the admin API is off without ADMIN_TOKEN"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The binary serving on a free port, its stdout collected line by line.
struct RunningService {
    /// Taken by `exit_status`; killed on drop if a test fails before.
    child: Option<std::process::Child>,
    port: u16,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    exited: std::sync::mpsc::Receiver<()>,
}

impl RunningService {
    fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_open_files(dir, env, None)
    }

    /// [`RunningService::start`], started with its soft limit of open files
    /// lowered to `soft_limit` when given (as `ulimit -Sn` would).
    fn start_with_open_files(
        dir: &std::path::Path,
        env: &[(&str, &str)],
        soft_limit: Option<u64>,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let port_text = port.to_string();
        let base = format!("http://127.0.0.1:{port}");
        let mut all_env = vec![
            ("PORT", port_text.as_str()),
            ("HOST", "127.0.0.1"),
            ("PUBLIC_BASE_URL", base.as_str()),
            // The test receivers listen on 127.0.0.1.
            ("ALLOW_PRIVATE_WEBHOOKS", "true"),
        ];
        all_env.extend_from_slice(env);
        let mut command = ringrelay(dir, &all_env);
        if let Some(limit) = soft_limit {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: between fork and exec this only calls setrlimit, which
            // is async-signal-safe, and allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
                    rlimit::setrlimit(rlimit::Resource::NOFILE, limit, hard)
                });
            }
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (listening_tx, listening_rx) = std::sync::mpsc::channel();
        let (exited_tx, exited) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            let listening_tx = listening_tx.clone();
            let exited_tx = exited_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("ringrelay listening") {
                        let _ = listening_tx.send(());
                    }
                    lines.lock().unwrap().push(line);
                }
                let _ = exited_tx.send(());
            });
        }
        listening_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the service announces it listens");
        Self {
            child: Some(child),
            port,
            lines,
            exited,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Returns once the service has logged a line containing `needle`;
    /// fails the test if that takes over 10 s.
    async fn wait_for_log(&self, needle: &str) {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
        {
            assert!(
                std::time::Instant::now() < give_up,
                "no log line with {needle:?}"
            );
            // Polls the collected output; the requests under test run on
            // this runtime meanwhile.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.as_ref().unwrap().id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit status and output, failing the test if the process
    /// outlives `bound`.
    fn exit_status(mut self, bound: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let mut child = self.child.take().unwrap();
        let pid = child.id();
        let (status_tx, status_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = status_tx.send(child.wait().unwrap());
        });
        let Ok(status) = status_rx.recv_timeout(bound) else {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("still running after {bound:?}");
        };
        // Both output readers finish once the pipes close.
        for _ in 0..2 {
            let _ = self.exited.recv_timeout(Duration::from_secs(5));
        }
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const LOG_ADMIN_TOKEN: &str = "admin-secret-7f3a9c";
const LOG_TWILIO_TOKEN: &str = "twilio-secret-2b8d1e";
const LOG_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn a_first_run_that_can_only_ignore_calls_says_why_at_start() {
    let dir = temp_dir("first-run");
    let bare = RunningService::start(&dir, &[]);
    bare.terminate();
    let (_, lines) = bare.exit_status(Duration::from_secs(15));
    let all = lines.join("\n");
    assert!(all.contains("no CPaaS provider is configured"), "{all}");
    assert!(all.contains("TWILIO_AUTH_TOKEN, PLIVO_AUTH_TOKEN"), "{all}");
    assert!(
        all.contains("no subscriber can be registered: set ADMIN_TOKEN"),
        "{all}"
    );

    let configured = RunningService::start(
        &dir,
        &[
            ("TWILIO_AUTH_TOKEN", LOG_TWILIO_TOKEN),
            ("ADMIN_TOKEN", LOG_ADMIN_TOKEN),
        ],
    );
    configured.terminate();
    let (_, lines) = configured.exit_status(Duration::from_secs(15));
    let all = lines.join("\n");
    assert!(!all.contains("no CPaaS provider"), "{all}");
    assert!(!all.contains("no subscriber can be registered"), "{all}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn json_logs_carry_the_call_sid_and_never_a_secret() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let dir = temp_dir("logs");
    let service = RunningService::start(
        &dir,
        &[
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
            ("ADMIN_TOKEN", LOG_ADMIN_TOKEN),
            ("TWILIO_AUTH_TOKEN", LOG_TWILIO_TOKEN),
            ("WEBHOOK_SECRET", LOG_WEBHOOK_SECRET),
        ],
    );
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .put(service.url("/v1/subscribers/+12025550199"))
        .bearer_auth(LOG_ADMIN_TOKEN)
        .json(&serde_json::json!({
            "forwarding_number": "+12025550100",
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201", "webhook_url": receiver.url("/desk")}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device_token = created["device_token"].as_str().unwrap().to_owned();
    let destination_token = created["destination_tokens"]["desk"]
        .as_str()
        .unwrap()
        .to_owned();
    let ring = client
        .post(service.url("/v1/ring"))
        .bearer_auth(&device_token)
        .json(&serde_json::json!({"caller": "+12025550302"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ring.status(), 201);
    let accept_url = receiver.next().await.body["data"]["accept_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let capability = accept_url.split("capability=").nth(1).unwrap().to_owned();
    assert_eq!(client.post(&accept_url).send().await.unwrap().status(), 200);

    let params = vec![
        ("CallSid".to_owned(), "CAlogtest0001".to_owned()),
        ("From".to_owned(), "+12025550302".to_owned()),
        ("To".to_owned(), "+12025550100".to_owned()),
    ];
    let signature = ringrelay_server::providers::twilio::signature::sign(
        LOG_TWILIO_TOKEN.as_bytes(),
        &service.url("/twilio/voice"),
        &params,
    );
    let voice = client
        .post(service.url("/twilio/voice"))
        .header("X-Twilio-Signature", &signature)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(voice.status(), 200);
    let forged = client
        .post(service.url("/twilio/voice"))
        .header("X-Twilio-Signature", "Zm9yZ2VkLXNpZ25hdHVyZQ==")
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    service.terminate();
    let (status, lines) = service.exit_status(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");

    let mut call_sid_logged = false;
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        call_sid_logged |= parsed.to_string().contains(r#""call_sid":"CAlogtest0001""#);
    }
    assert!(
        call_sid_logged,
        "a line carries the CallSid as a field:\n{}",
        lines.join("\n")
    );
    let all = lines.join("\n");
    for secret in [
        LOG_ADMIN_TOKEN,
        LOG_TWILIO_TOKEN,
        LOG_WEBHOOK_SECRET,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &device_token,
        &destination_token,
        &capability,
        &signature,
        "Zm9yZ2VkLXNpZ25hdHVyZQ==",
    ] {
        assert!(
            !all.contains(secret),
            "a secret ({}…) is in the logs",
            &secret[..6]
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_flood_of_forged_webhooks_and_guessed_tokens_is_logged_once_naming_the_url_checked() {
    let dir = temp_dir("flood-logs");
    let service = RunningService::start(
        &dir,
        &[
            ("LOG_FORMAT", "json"),
            ("ADMIN_TOKEN", LOG_ADMIN_TOKEN),
            ("TWILIO_AUTH_TOKEN", LOG_TWILIO_TOKEN),
        ],
    );
    let client = reqwest::Client::new();
    let params = [
        ("CallSid", "CAflood0001"),
        ("From", "+12025550302"),
        ("To", "+12025550100"),
    ];
    for _ in 0..40 {
        let forged = client
            .post(service.url("/twilio/voice?attempt=1"))
            .header("X-Twilio-Signature", "Zm9yZ2VkLXNpZ25hdHVyZQ==")
            .form(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
        let guessed = client
            .get(service.url("/v1/subscribers/+12025550199"))
            .bearer_auth("guessed-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(guessed.status(), 401);
    }
    let voice_url = service.url("/twilio/voice");
    service.terminate();
    let (status, lines) = service.exit_status(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let warnings: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["level"] == "WARN")
        .collect();
    let webhook_lines: Vec<_> = warnings
        .iter()
        .filter(|w| w["provider"] == "twilio")
        .collect();
    assert_eq!(webhook_lines.len(), 1, "{warnings:#?}");
    // The URL the signature was checked against, without the query.
    assert_eq!(
        webhook_lines[0]["checked_against"], voice_url,
        "{warnings:#?}"
    );
    let token_lines = warnings.iter().filter(|w| w["status"] == 401).count();
    assert_eq!(token_lines, 1, "{warnings:#?}");
    assert_eq!(warnings.len(), 2, "nothing else warns: {warnings:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    ring_report_in_flight_during_sigterm("sigterm", &[], Duration::ZERO).await;
}

/// A ring report whose webhook is held, SIGTERM meanwhile, the webhook
/// answered `webhook_takes` later: the report is answered 201 and the
/// process exits 0.
async fn ring_report_in_flight_during_sigterm(
    name: &str,
    env: &[(&str, &str)],
    webhook_takes: Duration,
) {
    let receiver = WebhookReceiver::start(Behaviour::HoldUntilReleased).await;
    let dir = temp_dir(name);
    let mut all_env = vec![
        ("ADMIN_TOKEN", LOG_ADMIN_TOKEN),
        ("TWILIO_AUTH_TOKEN", LOG_TWILIO_TOKEN),
        ("WEBHOOK_SECRET", LOG_WEBHOOK_SECRET),
    ];
    all_env.extend_from_slice(env);
    let service = RunningService::start(&dir, &all_env);
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .put(service.url("/v1/subscribers/+12025550199"))
        .bearer_auth(LOG_ADMIN_TOKEN)
        .json(&serde_json::json!({
            "forwarding_number": "+12025550100",
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201", "webhook_url": receiver.url("/desk")}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ring = tokio::spawn({
        let request = client
            .post(service.url("/v1/ring"))
            .bearer_auth(created["device_token"].as_str().unwrap())
            .json(&serde_json::json!({"caller": "+12025550302"}));
        async move { request.send().await.unwrap() }
    });
    // The notification arrived and is held: the ring report is in flight.
    receiver.next().await;
    service.terminate();
    // The destination's webhook takes its time: the shutdown goes on
    // meanwhile, and must not take the store away from the ring report.
    tokio::time::sleep(webhook_takes).await;
    receiver.release();
    let response = ring.await.unwrap();
    assert_eq!(response.status(), 201, "the request in flight is answered");
    let (status, _) = service.exit_status(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sigterm_answers_a_waiting_long_poll_with_the_current_instruction() {
    let dir = temp_dir("sigterm-long-poll");
    let service = RunningService::start(
        &dir,
        &[
            ("ADMIN_TOKEN", LOG_ADMIN_TOKEN),
            ("TWILIO_AUTH_TOKEN", LOG_TWILIO_TOKEN),
            ("RUST_LOG", "info,ringrelay=debug"),
        ],
    );
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .put(service.url("/v1/subscribers/+12025550199"))
        .bearer_auth(LOG_ADMIN_TOKEN)
        .json(&serde_json::json!({
            "forwarding_number": "+12025550100", "mode": "pick", "pick_timeout_secs": 60,
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = created["device_token"].as_str().unwrap().to_owned();
    let ring: serde_json::Value = client
        .post(service.url("/v1/ring"))
        .bearer_auth(&device)
        .json(&serde_json::json!({"caller": "+12025550302"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ring["instruction"], "wait");
    let long_poll = tokio::spawn({
        let request = client
            .get(service.url(&format!(
                "{}?wait=30",
                ring["instruction_url"].as_str().unwrap()
            )))
            .bearer_auth(&device);
        async move { request.send().await.unwrap() }
    });
    service.wait_for_log("instruction long-poll waiting").await;

    service.terminate();

    let response = long_poll.await.unwrap();
    assert_eq!(response.status(), 200, "answered, not cut off");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["instruction"], "wait");
    let (status, _) = service.exit_status(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sigterm_lets_a_ring_report_in_flight_finish_on_redis() {
    // The store stays connected until the requests in flight are answered.
    let redis = TestRedis::start();
    let redis_url = redis.url();
    ring_report_in_flight_during_sigterm(
        "sigterm-redis",
        &[("REDIS_URL", &redis_url)],
        Duration::from_millis(1500),
    )
    .await;
}

/// Sends the head of a signed-looking `/twilio/voice` whose announced body
/// never comes, and keeps the connection open.
async fn stall_a_voice_webhook(port: u16) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\
         X-Twilio-Signature: c2xvdw==\r\n\r\nCallSid=CA1&From="
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket
}

/// docs/operations.md: a flood of connections whose bodies never finish, and of
/// live streams on one token, does not stop the instance, even when it was
/// started with a low soft limit of open files (it raises it to the hard
/// limit): `/healthz` and a signed `/twilio/voice` still answer at once.
#[tokio::test]
async fn a_flood_of_slow_bodies_and_streams_leaves_health_and_voice_answering() {
    const SLOW_BODIES: usize = 300;
    const STREAM_ATTEMPTS: usize = 40;
    const SOFT_LIMIT: u64 = 128;
    // The flood is this process's open files too.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert!(
        hard > 1024,
        "this test needs a hard limit of open files above 1024, not {hard}"
    );
    let dir = temp_dir("flood");
    let service = RunningService::start_with_open_files(
        &dir,
        &[
            ("ADMIN_TOKEN", LOG_ADMIN_TOKEN),
            ("TWILIO_AUTH_TOKEN", LOG_TWILIO_TOKEN),
        ],
        Some(SOFT_LIMIT),
    );
    service.wait_for_log(&format!("soft={SOFT_LIMIT}")).await;
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .put(service.url("/v1/subscribers/+12025550199"))
        .bearer_auth(LOG_ADMIN_TOKEN)
        .json(&serde_json::json!({
            "forwarding_number": "+12025550100",
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let desk_token = created["destination_tokens"]["desk"]
        .as_str()
        .unwrap()
        .to_owned();

    // A hang is the defect; the bound leaves room for a loaded machine, and
    // is well inside the 10 s the stalled bodies are held for.
    let bound = Duration::from_secs(3);
    let bounded = || reqwest::Client::builder().timeout(bound).build().unwrap();
    let mut stalled = Vec::with_capacity(SLOW_BODIES);
    for _ in 0..SLOW_BODIES {
        stalled.push(stall_a_voice_webhook(service.port).await);
    }
    let mut streams = Vec::new();
    let mut refused = 0;
    for _ in 0..STREAM_ATTEMPTS {
        // A client of its own each, as many devices would connect.
        let response = bounded()
            .get(service.url("/v1/destinations/desk/events"))
            .bearer_auth(&desk_token)
            .send()
            .await
            .expect("a stream answered while the slow bodies are held");
        match response.status().as_u16() {
            200 => streams.push(response),
            429 => refused += 1,
            other => panic!("a stream got {other}"),
        }
    }
    assert_eq!(streams.len(), 8, "MAX_STREAMS_PER_DESTINATION's default");
    assert_eq!(refused, STREAM_ATTEMPTS - 8);

    let health = bounded()
        .get(service.url("/healthz"))
        .send()
        .await
        .expect("health answered");
    assert_eq!(health.status(), 200);
    let params = vec![
        ("CallSid".to_owned(), "CAflood000001".to_owned()),
        ("From".to_owned(), "+12025550302".to_owned()),
        ("To".to_owned(), "+12025550100".to_owned()),
    ];
    let signature = ringrelay_server::providers::twilio::signature::sign(
        LOG_TWILIO_TOKEN.as_bytes(),
        &service.url("/twilio/voice"),
        &params,
    );
    let voice = bounded()
        .post(service.url("/twilio/voice"))
        .header("X-Twilio-Signature", &signature)
        .form(&params)
        .send()
        .await
        .expect("voice answered");
    assert_eq!(voice.status(), 200);
    assert!(
        voice.text().await.unwrap().contains("<Dial"),
        "the subscriber is dialed"
    );
    drop((stalled, streams));
    std::fs::remove_dir_all(&dir).unwrap();
}
