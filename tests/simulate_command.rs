//! `ringrelay simulate` as its users run it: the binary refusing bad
//! scenarios, and driving a separately started deployment on Redis with
//! `--target`. (The simulator's library API has its tests in
//! simulator/tests/.)

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ringrelay_testkit::WEBHOOK_SECRET;
use ringrelay_testkit::servers::TestRedis;
use serde_json::{Value, json};

fn scenario_file(name: &str) -> String {
    format!(
        "{}/fixtures/scenarios/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

// ---------------------------------------------------------------------------
// Bad scenarios

const MINIMAL: &str = r#"
[subscriber]
forwarding_number = "+12025550100"
destinations = [{id = "desk", kind = "phone", address = "+12025550201"}]
"#;

#[test]
fn the_binary_exits_2_with_one_line_for_a_bad_scenario() {
    let file = std::env::temp_dir().join(format!("bad-scenario-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        format!("{MINIMAL}\n[destinations.desk]\nanswer = \"sometimes\"\n"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ringrelay"))
        .arg("simulate")
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            r#"{}: destinations.desk.answer: expected "after Ns", "busy", "no-answer", "fails", "voicemail" or "unreachable""#,
            file.display()
        )
    );
}

#[test]
fn the_binary_exits_2_before_any_request_for_a_scenario_with_a_clock_and_a_target() {
    // A deployment keeps its own time.
    let deployment = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", deployment.local_addr().unwrap());
    let output = Command::new(env!("CARGO_BIN_EXE_ringrelay"))
        .args(["simulate", &scenario_file("after-hours"), "--target", &url])
        .env_clear()
        .envs(DEPLOYMENT_SECRETS)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("{}: clock: ", scenario_file("after-hours"))),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    deployment.set_nonblocking(true).unwrap();
    assert_eq!(
        deployment.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the deployment was not contacted"
    );
}

// ---------------------------------------------------------------------------
// --target: the binary driving a separately started deployment on Redis

/// The `ringrelay` binary serving until dropped.
struct Deployment {
    child: Child,
    url: String,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Blocks until the process says `marker` on `output` (its readiness, not a
/// guess at timing), then keeps draining it so it never blocks on a pipe.
fn wait_for_line(output: impl std::io::Read + Send + 'static, marker: &'static str) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if line.contains(marker) {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no {marker:?} within 30 s"));
}

const DEPLOYMENT_SECRETS: [(&str, &str); 3] = [
    ("ADMIN_TOKEN", "target-admin-token-0123456789"),
    ("TWILIO_AUTH_TOKEN", "target-twilio-auth-token"),
    ("WEBHOOK_SECRET", WEBHOOK_SECRET),
];

fn start_deployment(redis: &TestRedis) -> Deployment {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringrelay"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(DEPLOYMENT_SECRETS)
        .envs([
            ("HOST", "127.0.0.1"),
            ("PORT", &port.to_string()),
            ("PUBLIC_BASE_URL", &url),
            ("REDIS_URL", &redis.url()),
            ("ALLOW_PRIVATE_WEBHOOKS", "true"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_line(child.stdout.take().unwrap(), "ringrelay listening");
    Deployment { child, url }
}

#[tokio::test]
async fn with_target_the_binary_drives_a_deployment_and_removes_its_subscriber() {
    let redis = TestRedis::start();
    let deployment = start_deployment(&redis);
    let scenario = scenario_file("sequential-hunt");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ringrelay"))
        .args(["simulate", &scenario, "--json", "--target", &deployment.url])
        .env_clear()
        .envs(DEPLOYMENT_SECRETS)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["outcome"], "connected", "{report}");
    assert_eq!(report["connected_to"], "laptop");
    assert_eq!(report["session"]["state"], "connected");
    assert_eq!(report["session"]["selected_destination"], "laptop");
    assert!(
        report["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["verified"] == true)
    );
    for secret in DEPLOYMENT_SECRETS.map(|(_, v)| v) {
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains(secret),
            "no secret printed"
        );
    }

    let left = reqwest::Client::new()
        .get(format!("{}/v1/subscribers/+12025550199", deployment.url))
        .bearer_auth(DEPLOYMENT_SECRETS[0].1)
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 404, "the simulator removed its subscriber");

    // A subscriber of the deployment's own is never taken over (nor deleted).
    let subscriber = format!("{}/v1/subscribers/+12025550199", deployment.url);
    let admin = reqwest::Client::new();
    let put = admin
        .put(&subscriber)
        .bearer_auth(DEPLOYMENT_SECRETS[0].1)
        .json(&json!({"forwarding_number": "+12025550100",
                      "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_ringrelay"))
        .args(["simulate", &scenario, "--target", &deployment.url])
        .env_clear()
        .envs(DEPLOYMENT_SECRETS)
        .output()
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .starts_with(&format!("{scenario}: subscriber.number: ")),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let kept = admin
        .get(&subscriber)
        .bearer_auth(DEPLOYMENT_SECRETS[0].1)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 200, "the real subscriber is still there");
}
