//! The `ringrelay` binary as a user runs it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

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
