//! Running it in production: metrics, limits on every route, and the rate
//! limit across instances (docs/api.md).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Backend, Cpaas, TestApp, assert_error, local_path, spawn_app, spawn_app_with,
};

/// `name{labels}` → value, from Prometheus / OpenMetrics text; fails the
/// test on a line that is neither a comment nor a sample.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

async fn metrics(app: &TestApp) -> HashMap<String, f64> {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    parse_metrics(&text)
}

fn subscriber() -> Value {
    json!({
        "forwarding_number": "+12025550100",
        "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
    })
}

#[tokio::test]
async fn metrics_parse_and_move_when_a_call_goes_through() {
    let app = spawn_app(Backend::Memory).await;
    let before = metrics(&app).await;
    assert_eq!(
        before.get(r#"ringrelay_sessions_ended_total{outcome="connected"}"#),
        None
    );

    let tokens = app.register("+12025550199", &subscriber()).await;
    let ring = app
        .ring(&tokens.device_token, &json!({"caller": "+12025550302"}))
        .await;
    assert_eq!(ring.status(), 201);
    let voice = app
        .twiml(
            "/twilio/voice",
            &[
                ("CallSid", "CA1"),
                ("From", "+12025550302"),
                ("To", "+12025550100"),
            ],
        )
        .await;
    let action = local_path(voice.child("Dial").unwrap().attr("action").unwrap());
    app.twiml(
        &action,
        &[("CallSid", "CA1"), ("DialCallStatus", "completed")],
    )
    .await;

    let after = metrics(&app).await;
    assert_eq!(
        after[r#"ringrelay_http_requests_total{method="POST",route="/v1/ring",status="201"}"#],
        1.0
    );
    assert_eq!(
        after[r#"ringrelay_http_requests_total{method="POST",route="/twilio/voice",status="200"}"#],
        1.0
    );
    assert_eq!(
        after[r#"ringrelay_http_request_duration_seconds_count{route="/twilio/voice"}"#],
        1.0
    );
    assert_eq!(
        after[r#"ringrelay_sessions_ended_total{outcome="connected"}"#],
        1.0
    );
    assert_eq!(after["ringrelay_forward_delay_seconds_count"], 1.0);
    assert!(
        after.keys().all(|k| !k.contains("+1202")),
        "raw paths (phone numbers) never become labels"
    );
}

#[tokio::test]
async fn store_errors_are_counted() {
    let app = spawn_app(Backend::redis()).await;
    app.backend.test_redis().stop();
    assert_eq!(app.get_subscriber("+12025550199").await.status(), 503);
    let after = metrics(&app).await;
    assert!(
        after
            .iter()
            .any(|(k, v)| k.starts_with("ringrelay_store_errors_total") && *v >= 1.0),
        "{after:?}"
    );
}

#[tokio::test]
async fn every_route_that_takes_a_body_refuses_one_over_64_kib() {
    let app = spawn_app(Backend::Memory).await;
    let big = "x".repeat(64 * 1024 + 1);
    let routes = [
        ("PUT", "/v1/subscribers/+12025550199"),
        ("POST", "/v1/ring"),
        ("POST", "/v1/sessions/ses_AAAAAAAAAAAAAAAAAAAAAA/events"),
        ("POST", "/v1/sessions/ses_AAAAAAAAAAAAAAAAAAAAAA/accept"),
        ("POST", "/twilio/voice"),
        ("POST", "/twilio/dial-status"),
        ("POST", "/plivo/answer"),
    ];
    for (method, path) in routes {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        // Routes that authenticate first may refuse the caller before the
        // body (an unsigned webhook: 403); none may accept the body.
        assert!(
            matches!(status, 413 | 401 | 403 | 503),
            "{method} {path}: {status}"
        );
        if status == 413 {
            assert_error(response, 413, "payload_too_large").await;
        }
    }
    // With credentials that pass, the body limit is what answers.
    let tokens = app.register("+12025550199", &subscriber()).await;
    let response = app
        .client
        .post(app.url("/v1/ring"))
        .bearer_auth(&tokens.device_token)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
    // A signature, even a wrong one, gets the body read: too large, on
    // every provider's voice route.
    for cpaas in Cpaas::ALL {
        let response = app
            .client
            .post(app.url(cpaas.routes().answer))
            .header(cpaas.signature_header(), "c2lnbmVk")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{}", cpaas.name());
        assert_error(response, 413, "payload_too_large").await;
    }
}

#[tokio::test]
async fn the_ring_rate_limit_holds_across_instances() {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    let tokens = a.register("+12025550199", &subscriber()).await;
    for i in 0..30 {
        let app = if i % 2 == 0 { &a } else { &b };
        let response = app
            .ring(&tokens.device_token, &json!({"caller": "+12025550302"}))
            .await;
        assert_eq!(response.status(), 201, "report {i}");
    }
    for app in [&a, &b] {
        let response = app
            .ring(&tokens.device_token, &json!({"caller": "+12025550302"}))
            .await;
        assert!(response.headers().contains_key("retry-after"));
        assert_error(response, 429, "rate_limited").await;
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_and_lists_the_api() {
    let app = spawn_app(Backend::Memory).await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let document: Value = response.json().await.unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        document["openapi"]
    );
    for (path, method) in [
        ("/v1/subscribers/{number}", "put"),
        ("/v1/subscribers/{number}", "get"),
        ("/v1/subscribers/{number}", "delete"),
        ("/v1/ring", "post"),
        ("/v1/sessions/{id}", "get"),
        ("/v1/sessions/{id}/instruction", "get"),
        ("/v1/sessions/{id}/events", "post"),
        ("/v1/sessions/{id}/accept", "post"),
        ("/v1/sessions/{id}/decline", "post"),
        ("/v1/destinations/{id}/events", "get"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is described"
        );
    }
}

/// Sends the head of a request whose body is announced but never comes,
/// and returns the status line of the answer.
async fn send_with_a_stalled_body(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.address.strip_prefix("http://").unwrap();
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\nCallSid=CA1&From=");
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), socket.read(&mut answer))
        .await
        .expect("an answer within the deadline and a margin")
        .unwrap();
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_unsigned_webhook_is_refused_before_its_body_arrives() {
    let app = spawn_app(Backend::Memory).await;

    for cpaas in Cpaas::ALL {
        let status = send_with_a_stalled_body(&app, "POST", cpaas.routes().answer, &[]).await;

        assert!(
            status.starts_with("HTTP/1.1 403"),
            "{}: {status}",
            cpaas.name()
        );
    }
}

#[tokio::test]
async fn a_body_that_does_not_arrive_within_10_s_is_408() {
    let app = spawn_app(Backend::Memory).await;

    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let signature = [("X-Twilio-Signature", "c2lnbmVk")];
    let authorization = [("Authorization", bearer.as_str())];
    let (signed, admin) = tokio::join!(
        send_with_a_stalled_body(&app, "POST", "/twilio/voice", &signature),
        send_with_a_stalled_body(&app, "PUT", "/v1/subscribers/+12025550199", &authorization),
    );

    assert!(signed.starts_with("HTTP/1.1 408"), "{signed}");
    assert!(admin.starts_with("HTTP/1.1 408"), "{admin}");
    assert_error(app.get_subscriber("+12025550199").await, 404, "not_found").await;
}

#[tokio::test]
async fn a_known_route_with_another_method_is_405_with_allow() {
    let app = spawn_app(Backend::Memory).await;
    for (method, path, allowed) in [
        ("GET", "/v1/ring", "POST"),
        ("DELETE", "/healthz", "GET"),
        ("GET", "/twilio/voice", "POST"),
        ("PUT", "/plivo/hangup", "POST"),
        ("POST", "/v1/sessions/ses_AAAAAAAAAAAAAAAAAAAAAA", "GET"),
        ("PATCH", "/v1/subscribers/+12025550199", "PUT"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(allow.contains(allowed), "{method} {path}: Allow {allow:?}");
        assert_error(response, 405, "method_not_allowed").await;
    }
    assert_error(
        app.client.get(app.url("/v1/nothing")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
}
