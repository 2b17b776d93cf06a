//! Admin API (docs/api.md) through HTTP.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, assert_error, example_subscriber, spawn_app, spawn_app_with,
};

const NUMBER: &str = "+12025550199";

both_backends! {
    put_creates_then_get_returns_the_stored_subscriber => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let response = app.put_subscriber(NUMBER, &example_subscriber()).await;
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();

        let mut expected = example_subscriber();
        expected["number"] = json!(NUMBER);
        for d in expected["destinations"].as_array_mut().unwrap() {
            d.as_object_mut().unwrap().entry("webhook_url").or_insert(Value::Null);
            d.as_object_mut().unwrap().entry("screening").or_insert(json!(false));
            d.as_object_mut().unwrap().entry("hours").or_insert(Value::Null);
            d.as_object_mut().unwrap().entry("ring_timeout_secs").or_insert(json!(20));
        }
        for (field, default) in [
            ("schedule", Value::Null),
            ("caller_rules", json!([])),
            ("record", json!("none")),
            ("ring_tone", Value::Null),
            ("dnd_until", Value::Null),
            ("transcribe_voicemail", json!(false)),
            ("missed_call_text", Value::Null),
        ] {
            expected.as_object_mut().unwrap().entry(field).or_insert(default);
        }
        assert_eq!(created["subscriber"], expected);
        assert!(created["device_token"].as_str().unwrap().starts_with("rrd_"));
        let tokens = created["destination_tokens"].as_object().unwrap();
        assert_eq!(tokens.keys().collect::<Vec<_>>(), ["desk", "laptop", "pbx"]);
        assert_eq!(created["forwarding_codes"]["gsm"]["busy"]["activate"], "**67*+12025550100#");
        assert_eq!(created["forwarding_codes"]["cdma"]["busy_no_answer"]["activate"], "*712025550100");

        let response = app.get_subscriber(NUMBER).await;
        assert_eq!(response.status(), 200);
        let fetched: Value = response.json().await.unwrap();
        assert_eq!(fetched, expected, "GET shows what PUT stored, with no secrets");
    };

    get_fills_in_every_default => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let minimal = json!({
            "forwarding_number": "(202) 555-0100",
            "destinations": [{"id": "desk", "kind": "phone", "address": "202.555.0201"}]
        });
        assert_eq!(app.put_subscriber("2025550199", &minimal).await.status(), 201);
        let fetched: Value = app.get_subscriber("(202) 555-0199").await.json().await.unwrap();
        assert_eq!(fetched, json!({
            "number": NUMBER,
            "forwarding_number": "+12025550100",
            "mode": "auto",
            "strategy": "sequential",
            "ring_timeout_secs": 20,
            "pick_timeout_secs": 15,
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201",
                              "webhook_url": null, "screening": false,
                              "hours": null, "ring_timeout_secs": 20}],
            "fallback": {"kind": "voicemail"},
            "schedule": null,
            "caller_rules": [],
            "record": "none",
            "ring_tone": null,
            "dnd_until": null,
            "transcribe_voicemail": false,
            "missed_call_text": null
        }));
    };

    a_replace_is_200_and_shows_only_new_tokens => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        app.put_subscriber(NUMBER, &example_subscriber()).await;
        let mut changed = example_subscriber();
        changed["mode"] = json!("pick");
        changed["destinations"].as_array_mut().unwrap().push(json!({"id": "tablet", "kind": "client", "address": "alice_tablet"}));
        let response = app.put_subscriber(NUMBER, &changed).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["device_token"], Value::Null);
        assert_eq!(body["destination_tokens"], json!({"tablet": body["destination_tokens"]["tablet"].clone()}));
        assert!(body["destination_tokens"]["tablet"].as_str().unwrap().starts_with("rrt_"));
        assert_eq!(body["subscriber"]["mode"], "pick");
        let fetched: Value = app.get_subscriber(NUMBER).await.json().await.unwrap();
        assert_eq!(fetched["destinations"].as_array().unwrap().len(), 4);
    };

    rotate_tokens_shows_fresh_tokens => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let first: Value = app.put_subscriber(NUMBER, &example_subscriber()).await.json().await.unwrap();
        let response = app
            .client
            .put(app.url(&format!("/v1/subscribers/{NUMBER}?rotate_tokens=true")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&example_subscriber())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let rotated: Value = response.json().await.unwrap();
        assert!(rotated["device_token"].is_string());
        assert_ne!(rotated["device_token"], first["device_token"]);
        for id in ["desk", "laptop", "pbx"] {
            assert!(rotated["destination_tokens"][id].is_string());
            assert_ne!(rotated["destination_tokens"][id], first["destination_tokens"][id]);
        }
    };

    delete_removes_the_subscriber => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        app.put_subscriber(NUMBER, &example_subscriber()).await;
        let response = app.delete_subscriber(NUMBER).await;
        assert_eq!(response.status(), 204);
        assert_error(app.get_subscriber(NUMBER).await, 404, "not_found").await;
        assert_error(app.delete_subscriber(NUMBER).await, 404, "not_found").await;
    };
}

#[tokio::test]
async fn admin_api_answers_503_when_admin_token_is_unset() {
    let app = spawn_app_with(Backend::Memory, &[("ADMIN_TOKEN", "")]).await;
    let without_header = app
        .client
        .get(app.url(&format!("/v1/subscribers/{NUMBER}")))
        .send()
        .await
        .unwrap();
    assert_error(without_header, 503, "not_configured").await;
    let body = assert_error(app.get_subscriber(NUMBER).await, 503, "not_configured").await;
    assert!(
        body["message"].as_str().unwrap().contains("ADMIN_TOKEN"),
        "{body}"
    );
}

#[tokio::test]
async fn admin_api_answers_401_without_the_right_bearer() {
    let app = spawn_app(Backend::Memory).await;
    let url = app.url(&format!("/v1/subscribers/{NUMBER}"));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("wrong token", Some("Bearer not-the-admin-token".into())),
        (
            "token prefix",
            Some(format!("Bearer {}", &ADMIN_TOKEN[..5])),
        ),
        ("basic scheme", Some(format!("Basic {ADMIN_TOKEN}"))),
        ("bare token", Some(ADMIN_TOKEN.into())),
        ("empty bearer", Some("Bearer ".into())),
    ];
    for (case, header) in cases {
        let mut request = app.client.put(&url).json(&example_subscriber());
        if let Some(h) = header {
            request = request.header("Authorization", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{case}");
        assert_error(response, 401, "unauthorized").await;
    }
    assert_eq!(
        app.get_subscriber(NUMBER).await.status(),
        404,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let app = spawn_app(Backend::Memory).await;
    for body in [
        "",
        "{",
        "forwarding_number=+12025550100",
        "{\"forwarding_number\": }",
    ] {
        let response = app
            .client
            .put(app.url(&format!("/v1/subscribers/{NUMBER}")))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "malformed_body").await;
    }
}

#[tokio::test]
async fn each_invalid_field_is_422_and_named() {
    let app = spawn_app(Backend::Memory).await;
    let cases: Vec<(&str, Value)> = vec![
        ("forwarding_number", json!({"forwarding_number": "hello"})),
        (
            "forwarding_number",
            json!({"forwarding_number": 12025550100u64}),
        ),
        ("mode", json!({"mode": "manual"})),
        ("strategy", json!({"strategy": "random"})),
        ("ring_timeout_secs", json!({"ring_timeout_secs": 121})),
        ("ring_timeout_secs", json!({"ring_timeout_secs": -1})),
        ("pick_timeout_secs", json!({"pick_timeout_secs": 2})),
        ("destinations", json!({"destinations": []})),
        (
            "destinations[0].kind",
            json!({"destinations": [{"id": "a", "kind": "fax", "address": "x"}]}),
        ),
        (
            "destinations[0].id",
            json!({"destinations": [{"id": "A B", "kind": "client", "address": "x"}]}),
        ),
        (
            "destinations[0].address",
            json!({"destinations": [{"id": "a", "kind": "sip", "address": "alice"}]}),
        ),
        ("fallback.kind", json!({"fallback": {"kind": "fax"}})),
        ("fallback.address", json!({"fallback": {"kind": "phone"}})),
    ];
    for (field, patch) in cases {
        let mut body = example_subscriber();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app.put_subscriber(NUMBER, &body).await;
        let error = assert_error(response, 422, "invalid_field").await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{field}: {message}"
        );
    }
    let error = assert_error(
        app.put_subscriber("call-me-maybe", &example_subscriber())
            .await,
        422,
        "invalid_field",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().starts_with("number: "),
        "{error}"
    );
    assert_error(app.get_subscriber(NUMBER).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_bad_query_is_422() {
    let app = spawn_app(Backend::Memory).await;
    let response = app
        .client
        .put(app.url(&format!("/v1/subscribers/{NUMBER}?rotate_tokens=maybe")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&example_subscriber())
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "invalid_field").await;
}

#[tokio::test]
async fn webhook_destinations_are_refused_without_webhook_secret() {
    let app = spawn_app_with(Backend::Memory, &[("WEBHOOK_SECRET", "")]).await;
    let error = assert_error(
        app.put_subscriber(NUMBER, &example_subscriber()).await,
        422,
        "invalid_field",
    )
    .await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("destinations[0].webhook_url: "),
        "{message}"
    );
    assert!(message.contains("WEBHOOK_SECRET"), "{message}");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app(Backend::Memory).await;
    let mut body = example_subscriber();
    body["padding"] = json!("x".repeat(64 * 1024));
    let response = app.put_subscriber(NUMBER, &body).await;
    assert_error(response, 413, "payload_too_large").await;

    // Without a Content-Length the limit holds all the same.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .put(app.url(&format!("/v1/subscribers/{NUMBER}")))
        .bearer_auth(ADMIN_TOKEN)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
    assert_error(app.get_subscriber(NUMBER).await, 404, "not_found").await;
}

#[tokio::test]
async fn an_unknown_field_is_refused_and_nothing_is_stored() {
    let app = spawn_app(Backend::Memory).await;
    let mut body = example_subscriber();
    body["nickname"] = json!("alice");
    let error = assert_error(
        app.put_subscriber(NUMBER, &body).await,
        422,
        "invalid_field",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("nickname: is not a known field"),
        "{error}"
    );
    assert_eq!(app.get_subscriber(NUMBER).await.status(), 404);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = spawn_app(Backend::Memory).await;
    let response = app.client.get(app.url("/v2/nothing")).send().await.unwrap();
    assert_error(response, 404, "not_found").await;
    let response = app
        .client
        .post(app.url(&format!("/v1/subscribers/{NUMBER}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_store_outage_is_an_opaque_503() {
    let app = spawn_app(Backend::redis()).await;
    app.backend.test_redis().stop();
    for response in [
        app.get_subscriber(NUMBER).await,
        app.put_subscriber(NUMBER, &example_subscriber()).await,
        app.delete_subscriber(NUMBER).await,
    ] {
        let body = assert_error(response, 503, "store_unavailable").await;
        let text = body.to_string().to_lowercase();
        for internal in ["redis", "refused", "127.0.0.1", "io error", "connection"] {
            assert!(!text.contains(internal), "{internal} leaked: {body}");
        }
    }
}

#[tokio::test]
async fn a_webhook_url_to_a_private_host_or_with_userinfo_is_422_and_not_echoed() {
    // The service as deployed: private webhook targets not allowed.
    let app = spawn_app_with(Backend::Memory, &[("ALLOW_PRIVATE_WEBHOOKS", "")]).await;
    for url in [
        "http://127.0.0.1:6379/",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://0.0.0.0/",
        "http://metadata.google.internal/",
        "http://2130706433/",
        "https://user:pa55word@crm.example.com/hooks",
    ] {
        let mut body = example_subscriber();
        body["destinations"][0]["webhook_url"] = json!(url);
        let response = app.put_subscriber(NUMBER, &body).await;
        let error = assert_error(response, 422, "invalid_field").await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with("destinations[0].webhook_url: "),
            "{url}: {message}"
        );
        assert!(!message.contains("pa55word"), "{message}");
    }
    assert_error(app.get_subscriber(NUMBER).await, 404, "not_found").await;
    let mut public = example_subscriber();
    public["destinations"][0]["webhook_url"] = json!("https://crm.example.com/hooks/calls");
    assert_eq!(app.put_subscriber(NUMBER, &public).await.status(), 201);
}

#[tokio::test]
async fn error_bodies_stay_small_echo_little_and_name_no_internal_types() {
    let app = spawn_app(Backend::Memory).await;
    let huge = "9".repeat(60_000);
    let mut body = example_subscriber();
    body["forwarding_number"] = json!(huge);
    let bad_number = app.put_subscriber(NUMBER, &body).await;
    let wrong_shape = app
        .put_subscriber(NUMBER, &json!(["not", "an", "object"]))
        .await;

    for response in [bad_number, wrong_shape] {
        let text = response.text().await.unwrap();
        assert!(text.len() < 1024, "{} bytes: {text}", text.len());
        assert!(!text.contains(&"9".repeat(65)), "{text}");
        assert!(
            !text.contains("SubscriberSpec") && !text.contains("struct"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn guessing_tokens_is_rate_limited_per_client_across_instances() {
    let first = spawn_app(Backend::redis()).await;
    let second = spawn_app_with(
        first.backend.clone(),
        &[("REDIS_KEY_PREFIX", &first.config.redis_key_prefix)],
    )
    .await;
    let guess = |app: &crate::helpers::TestApp, n: usize| {
        app.client
            .get(app.url("/v1/subscribers/+12025550199"))
            .bearer_auth(format!("guess-number-{n}"))
            .send()
    };
    // 50 failures a minute are answered as such, wherever they land…
    for n in 0..50 {
        let app = if n % 2 == 0 { &first } else { &second };
        assert_error(guess(app, n).await.unwrap(), 401, "unauthorized").await;
    }

    // …the next is refused, and so is every failing request from that
    // client for a while, on every instance; a right token still passes.
    let refused = guess(&second, 50).await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(refused, 429, "rate_limited").await;
    let blocked_on_first = guess(&first, 51).await.unwrap();
    assert_error(blocked_on_first, 429, "rate_limited").await;
    let with_the_admin_token = first
        .client
        .get(first.url("/v1/subscribers/+12025550199"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(with_the_admin_token, 404, "not_found").await;
}

#[tokio::test]
async fn a_misspelt_field_in_any_body_is_422_naming_it_with_the_field_it_meant() {
    let app = spawn_app(Backend::Memory).await;
    let registered = app
        .register(
            "+12025550199",
            &json!({
                "forwarding_number": "+12025550100",
                "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
            }),
        )
        .await;
    let subscriber_with = |field: &str, value: Value| {
        let mut body = json!({
            "forwarding_number": "+12025550100",
            "caller_rules": [{"match": "withheld", "action": "block"}],
            "schedule": {"timezone": "Europe/Berlin", "hours": [{"days": ["mon"], "from": "09:00", "to": "17:00"}]},
            "fallback": {"kind": "voicemail"},
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
        });
        let mut at = &mut body;
        let path: Vec<&str> = field.split('.').collect();
        for segment in &path[..path.len() - 1] {
            at = match segment.parse::<usize>() {
                Ok(index) => &mut at[index],
                Err(_) => &mut at[*segment],
            };
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "PUT",
            "/v1/subscribers/+12025550199",
            subscriber_with(
                "caller_rule",
                json!([{"match": "withheld", "action": "block"}]),
            ),
            "caller_rule",
            "did you mean `caller_rules`?",
        ),
        (
            "PUT",
            "/v1/subscribers/+12025550199",
            subscriber_with("stratgy", json!("simultaneous")),
            "stratgy",
            "did you mean `strategy`?",
        ),
        (
            "PUT",
            "/v1/subscribers/+12025550199",
            subscriber_with("destinations.0.screenning", json!(true)),
            "destinations[0].screenning",
            "did you mean `screening`?",
        ),
        (
            "PUT",
            "/v1/subscribers/+12025550199",
            subscriber_with("schedule.outsde", json!("voicemail")),
            "schedule.outsde",
            "did you mean `outside`?",
        ),
        (
            "PUT",
            "/v1/subscribers/+12025550199",
            subscriber_with("fallback.adress", json!("+12025550333")),
            "fallback.adress",
            "did you mean `address`?",
        ),
        (
            "PUT",
            "/v1/subscribers/+12025550199",
            subscriber_with("caller_rules.0.note", json!("spam")),
            "caller_rules[0].note",
            "the fields here are match, action",
        ),
        (
            "POST",
            "/v1/ring",
            json!({"caler": "+12025550302"}),
            "caler",
            "did you mean `caller`?",
        ),
        (
            "PUT",
            "/v1/dnd",
            json!({"until": null, "untill": "2030-01-01T00:00:00Z"}),
            "untill",
            "did you mean `until`?",
        ),
    ];
    for (method, path, body, field, hint) in cases {
        let token = if path.starts_with("/v1/subscribers") {
            ADMIN_TOKEN.to_owned()
        } else {
            registered.device_token.clone()
        };
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 422, "invalid_field").await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{path}: {message}"
        );
        assert!(message.contains(hint), "{path}: {message}");
    }
    // Nothing was changed by the refused bodies: the stored subscriber is
    // still the first one.
    let stored: Value = app
        .get_subscriber("+12025550199")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["caller_rules"], json!([]));
    assert_eq!(stored["dnd_until"], Value::Null);
}
