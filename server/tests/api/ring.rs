//! Ring reports, notifications, instructions, device events and reading
//! sessions (docs/api.md).

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Cpaas, PUBLIC_BASE_URL, TestApp, assert_error, spawn_app, spawn_app_with,
};
use crate::receiver::{Behaviour, WebhookReceiver};

const ALICE: &str = "+12025550199";
const BOB: &str = "+12025550198";
const CALLER: &str = "+12025550302";

/// Alice, with three destinations whose webhooks reach `receiver` at
/// `/desk`, `/laptop` and `/pbx`.
fn alice(receiver: &WebhookReceiver, mode: &str) -> Value {
    json!({
        "forwarding_number": "+12025550100",
        "mode": mode,
        "destinations": [
            {"id": "desk", "kind": "phone", "address": "+12025550201", "webhook_url": receiver.url("/desk")},
            {"id": "laptop", "kind": "client", "address": "alice", "webhook_url": receiver.url("/laptop")},
            {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com", "webhook_url": receiver.url("/pbx")}
        ]
    })
}

fn without_webhooks() -> Value {
    json!({
        "forwarding_number": "+12025550100",
        "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
    })
}

async fn session(app: &TestApp, id: &str) -> Value {
    let response = app.get_session(ADMIN_TOKEN, id).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

both_backends! {
    a_ring_report_is_answered_reject_after_every_destination_was_notified => |backend: Backend| async move {
        let receiver = WebhookReceiver::start(Behaviour::Answer).await;
        let app = spawn_app(backend).await;
        let alice_tokens = app.register(ALICE, &alice(&receiver, "auto")).await;

        let response = app.ring(&alice_tokens.device_token, &json!({"caller": "(202) 555-0302"})).await;
        assert_eq!(response.status(), 201);
        let ring: Value = response.json().await.unwrap();
        assert_eq!(ring["instruction"], "reject");
        let id = ring["session_id"].as_str().unwrap();
        assert_eq!(ring["instruction_url"], format!("/v1/sessions/{id}/instruction"));

        let mut deliveries = receiver.take(3).await;
        deliveries.sort_by(|a, b| a.path.cmp(&b.path));
        for (delivery, destination) in deliveries.iter().zip(["desk", "laptop", "pbx"]) {
            assert_eq!(delivery.path, format!("/{destination}"));
            assert!(delivery.signature_valid, "Standard Webhooks signature checks out");
            assert!(delivery.webhook_id.starts_with("msg_"));
            assert_eq!(delivery.kind(), "call.ringing");
            let data = &delivery.body["data"];
            assert_eq!(data["session_id"], id);
            assert_eq!(data["subscriber"], ALICE);
            assert_eq!(data["caller"], CALLER);
            assert_eq!(data["destination_id"], destination);
            for url in ["accept_url", "decline_url"] {
                let url = data[url].as_str().unwrap();
                assert!(url.starts_with(&format!("{PUBLIC_BASE_URL}/v1/sessions/{id}/")), "{url}");
                assert!(url.contains("capability=rrc_"), "{url}");
            }
            assert!(data["expires_at"].as_str().unwrap().ends_with('Z'));
        }
        let capabilities: std::collections::HashSet<_> =
            deliveries.iter().map(|d| d.body["data"]["accept_url"].as_str().unwrap().to_owned()).collect();
        assert_eq!(capabilities.len(), 3, "each destination has its own capability");

        let session = session(&app, id).await;
        assert_eq!(session["state"], "instructed");
        let t = &session["timeline"];
        let reported = t["reported_at"].as_str().unwrap();
        let notified = t["notified_at"].as_str().unwrap();
        let instructed = t["instructed_at"].as_str().unwrap();
        // RFC 3339 UTC with milliseconds orders as text.
        assert!(reported <= notified && notified <= instructed, "{t}");
        assert_eq!(t["forwarded_at"], Value::Null);
    };

    a_retried_ring_report_returns_the_same_session => |backend: Backend| async move {
        let receiver = WebhookReceiver::start(Behaviour::Answer).await;
        let app = spawn_app(backend).await;
        let tokens = app.register(ALICE, &alice(&receiver, "auto")).await;
        let body = json!({"caller": CALLER, "device_call_id": "a1b2c3"});
        let first: Value = app.ring(&tokens.device_token, &body).await.json().await.unwrap();
        receiver.take(3).await;
        let response = app.ring(&tokens.device_token, &body).await;
        assert_eq!(response.status(), 201);
        let second: Value = response.json().await.unwrap();
        assert_eq!(second["session_id"], first["session_id"]);
        assert_eq!(second["instruction"], "reject");
        assert!(receiver.arrived_so_far().await.is_empty(), "a retry notifies nobody again");

        let other: Value = app
            .ring(&tokens.device_token, &json!({"caller": CALLER, "device_call_id": "zz9"}))
            .await
            .json()
            .await
            .unwrap();
        assert_ne!(other["session_id"], first["session_id"]);
    };

    ring_reports_past_30_a_minute_are_refused_with_retry_after => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let tokens = app.register(ALICE, &without_webhooks()).await;
        for i in 0..30 {
            let response = app.ring(&tokens.device_token, &json!({"caller": CALLER})).await;
            assert_eq!(response.status(), 201, "report {i}");
        }
        let response = app.ring(&tokens.device_token, &json!({"caller": CALLER})).await;
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_error(response, 429, "rate_limited").await;

        // The limit is per device: Bob still rings.
        let bob = app.register(BOB, &without_webhooks()).await;
        assert_eq!(app.ring(&bob.device_token, &json!({"caller": CALLER})).await.status(), 201);
    };

    answered_on_the_phone_cancels_the_session_and_tells_every_destination => |backend: Backend| async move {
        let receiver = WebhookReceiver::start(Behaviour::Answer).await;
        let app = spawn_app(backend).await;
        let tokens = app.register(ALICE, &alice(&receiver, "auto")).await;
        let ring: Value = app.ring(&tokens.device_token, &json!({"caller": CALLER})).await.json().await.unwrap();
        let id = ring["session_id"].as_str().unwrap();
        receiver.take(3).await;

        let response = app
            .client
            .post(app.url(&format!("/v1/sessions/{id}/events")))
            .bearer_auth(&tokens.device_token)
            .json(&json!({"event": "answered"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let mut cancelled = receiver.take(3).await;
        cancelled.sort_by(|a, b| a.path.cmp(&b.path));
        for delivery in &cancelled {
            assert_eq!(delivery.kind(), "call.cancelled");
            assert!(delivery.signature_valid);
            assert_eq!(delivery.body["data"]["session_id"], id);
            assert_eq!(delivery.body["data"]["reason"], "answered_on_phone");
        }
        let session = session(&app, id).await;
        assert_eq!(session["state"], "cancelled");
        assert!(session["timeline"]["ended_at"].is_string());

        let again = app
            .client
            .post(app.url(&format!("/v1/sessions/{id}/events")))
            .bearer_auth(&tokens.device_token)
            .json(&json!({"event": "ended"}))
            .send()
            .await
            .unwrap();
        assert_error(again, 410, "session_over").await;
    };
}

#[tokio::test]
async fn notifications_go_out_together_and_the_instruction_waits_for_all_of_them() {
    let receiver = WebhookReceiver::start(Behaviour::HoldUntilReleased).await;
    // The longest deadline allowed: only parallel delivery lets all
    // three arrive while each is held.
    let app = spawn_app_with(Backend::Memory, &[("NOTIFY_TIMEOUT_MS", "10000")]).await;
    let tokens = app.register(ALICE, &alice(&receiver, "auto")).await;

    let ring = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/v1/ring");
        let token = tokens.device_token.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"caller": CALLER}))
                .send()
                .await
                .unwrap()
        }
    });
    let held = receiver.take(3).await;
    assert_eq!(held.len(), 3, "all three are in flight at once");
    assert!(
        !ring.is_finished(),
        "no instruction while a notification is unanswered"
    );

    receiver.release();
    let response = ring.await.unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instruction"], "reject");
}

#[tokio::test]
async fn a_receiver_that_never_answers_holds_the_instruction_only_until_the_deadline() {
    let receiver = WebhookReceiver::start(Behaviour::Hang).await;
    let app = spawn_app_with(Backend::Memory, &[("NOTIFY_TIMEOUT_MS", "200")]).await;
    let tokens = app.register(ALICE, &alice(&receiver, "auto")).await;
    let response = app
        .ring(&tokens.device_token, &json!({"caller": CALLER}))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instruction"], "reject");
    assert_eq!(
        receiver.take(3).await.len(),
        3,
        "every destination was tried"
    );
    let session = session(&app, body["session_id"].as_str().unwrap()).await;
    assert!(session["timeline"]["notified_at"].is_string());
}

#[tokio::test]
async fn failed_notifications_other_than_ringing_are_retried_with_the_same_id() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let mut body = without_webhooks();
    body["destinations"][0]["webhook_url"] = json!(receiver.url("/desk"));
    let tokens = app.register(ALICE, &body).await;
    let ring: Value = app
        .ring(&tokens.device_token, &json!({"caller": CALLER}))
        .await
        .json()
        .await
        .unwrap();
    receiver.next().await;

    receiver.set_behaviour(Behaviour::Status(503));
    let id = ring["session_id"].as_str().unwrap();
    let response = app
        .client
        .post(app.url(&format!("/v1/sessions/{id}/events")))
        .bearer_auth(&tokens.device_token)
        .json(&json!({"event": "ended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let first = receiver.next().await;
    receiver.set_behaviour(Behaviour::Answer);
    let retry = receiver.next().await;
    assert_eq!(first.kind(), "call.cancelled");
    assert_eq!(first.body["data"]["reason"], "caller_hung_up");
    assert_eq!(
        retry.webhook_id, first.webhook_id,
        "a retry keeps the webhook-id"
    );
    assert_eq!(retry.body, first.body);
    assert!(retry.signature_valid);
}

#[tokio::test]
async fn withheld_callers_ring_and_show_as_null() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let tokens = app.register(ALICE, &alice(&receiver, "auto")).await;
    for caller in [
        json!(null),
        json!("anonymous"),
        json!("+266696687"),
        json!(""),
    ] {
        let response = app
            .ring(&tokens.device_token, &json!({"caller": caller}))
            .await;
        assert_eq!(response.status(), 201, "{caller}");
        let ring: Value = response.json().await.unwrap();
        for delivery in receiver.take(3).await {
            assert_eq!(delivery.body["data"]["caller"], Value::Null, "{caller}");
        }
        let session = session(&app, ring["session_id"].as_str().unwrap()).await;
        assert_eq!(session["caller"], Value::Null);
    }
}

#[tokio::test]
async fn the_instruction_is_wait_in_pick_mode_and_ignore_when_no_provider_could_answer() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let tokens = app.register(ALICE, &alice(&receiver, "pick")).await;
    let ring: Value = app
        .ring(&tokens.device_token, &json!({"caller": CALLER}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ring["instruction"], "wait");
    let id = ring["session_id"].as_str().unwrap();
    let instruction: Value = app
        .client
        .get(app.url(&format!("/v1/sessions/{id}/instruction")))
        .bearer_auth(&tokens.device_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(instruction, json!({"instruction": "wait"}));

    // Pick mode waits even with no webhook: a live stream may accept.
    let mut pick_without_webhooks = without_webhooks();
    pick_without_webhooks["mode"] = json!("pick");
    let bob = app.register(BOB, &pick_without_webhooks).await;
    let ring: Value = app
        .ring(&bob.device_token, &json!({"caller": CALLER}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ring["instruction"], "wait");

    // No provider configured: a rejected call would reach an error. Any one
    // of them configured can answer it.
    let instruction_with_only = |configured: Option<Cpaas>| async move {
        let unset: Vec<(&str, &str)> = Cpaas::ALL
            .into_iter()
            .filter(|c| Some(*c) != configured)
            .map(|c| (c.credential_variable(), ""))
            .collect();
        let app = spawn_app_with(Backend::Memory, &unset).await;
        let tokens = app.register(ALICE, &without_webhooks()).await;
        let report = json!({"caller": CALLER, "device_call_id": "call-1"});
        let ring: Value = app
            .ring(&tokens.device_token, &report)
            .await
            .json()
            .await
            .unwrap();
        // A retried report answers the same, reason included.
        let retried: Value = app
            .ring(&tokens.device_token, &report)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(retried, ring);
        match ring["reason"].as_str() {
            Some(reason) => json!(format!(
                "{}: {reason}",
                ring["instruction"].as_str().unwrap()
            )),
            None => ring["instruction"].clone(),
        }
    };
    assert_eq!(
        instruction_with_only(None).await,
        "ignore: no_provider_configured"
    );
    for cpaas in Cpaas::ALL {
        assert_eq!(
            instruction_with_only(Some(cpaas)).await,
            "reject",
            "{}",
            cpaas.name()
        );
    }
}

#[tokio::test]
async fn only_the_phone_may_report_rings_and_events() {
    let app = spawn_app(Backend::Memory).await;
    let tokens = app
        .register(
            ALICE,
            &alice(&WebhookReceiver::start(Behaviour::Answer).await, "auto"),
        )
        .await;
    let destination_token = tokens.destination_tokens["desk"].clone();
    for token in [
        None,
        Some("rrd_guessed"),
        Some(ADMIN_TOKEN),
        Some(destination_token.as_str()),
    ] {
        let mut request = app
            .client
            .post(app.url("/v1/ring"))
            .json(&json!({"caller": CALLER}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_error(request.send().await.unwrap(), 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn bad_ring_and_event_bodies_get_clear_errors() {
    let app = spawn_app(Backend::Memory).await;
    let tokens = app.register(ALICE, &without_webhooks()).await;
    let raw = |body: &'static str| {
        app.client
            .post(app.url("/v1/ring"))
            .bearer_auth(&tokens.device_token)
            .header("content-type", "application/json")
            .body(body)
    };
    assert_error(raw("{").send().await.unwrap(), 400, "malformed_body").await;
    let error = assert_error(
        raw(r#"{"caller": 12}"#).send().await.unwrap(),
        422,
        "invalid_field",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().starts_with("caller: "),
        "{error}"
    );
    let error = assert_error(
        raw(r#"{"device_call_id": ""}"#).send().await.unwrap(),
        422,
        "invalid_field",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("device_call_id: "),
        "{error}"
    );

    let ring: Value = app
        .ring(&tokens.device_token, &json!({"caller": CALLER}))
        .await
        .json()
        .await
        .unwrap();
    let id = ring["session_id"].as_str().unwrap();
    let response = app
        .client
        .post(app.url(&format!("/v1/sessions/{id}/events")))
        .bearer_auth(&tokens.device_token)
        .json(&json!({"event": "exploded"}))
        .send()
        .await
        .unwrap();
    let error = assert_error(response, 422, "invalid_field").await;
    assert!(
        error["message"].as_str().unwrap().starts_with("event: "),
        "{error}"
    );
    let response = app
        .client
        .post(app.url("/v1/sessions/ses_AAAAAAAAAAAAAAAAAAAAAA/events"))
        .bearer_auth(&tokens.device_token)
        .json(&json!({"event": "rejected"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn a_session_is_readable_by_the_admin_its_phone_and_its_destinations_only() {
    let app = spawn_app(Backend::Memory).await;
    let mut body = without_webhooks();
    body["destinations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "laptop", "kind": "client", "address": "alice"}));
    let alice_tokens = app.register(ALICE, &body).await;
    let bob_tokens = app.register(BOB, &without_webhooks()).await;
    let ring: Value = app
        .ring(&alice_tokens.device_token, &json!({"caller": CALLER}))
        .await
        .json()
        .await
        .unwrap();
    let id = ring["session_id"].as_str().unwrap();

    for token in [
        ADMIN_TOKEN,
        &alice_tokens.device_token,
        &alice_tokens.destination_tokens["laptop"],
    ] {
        let response = app.get_session(token, id).await;
        assert_eq!(response.status(), 200);
        let session: Value = response.json().await.unwrap();
        let mut keys: Vec<_> = session.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "call_sid",
                "caller",
                "caller_name",
                "caller_verification",
                "id",
                "legs",
                "missed_call_text",
                "mode",
                "selected_destination",
                "state",
                "subscriber",
                "timeline",
                "voicemail_transcription"
            ]
        );
        assert_eq!(session["id"], id);
        assert_eq!(session["mode"], "auto");
        assert_eq!(session["legs"], json!([]));
        let mut timeline: Vec<_> = session["timeline"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        timeline.sort();
        assert_eq!(
            timeline,
            [
                "connected_at",
                "ended_at",
                "forwarded_at",
                "instructed_at",
                "notified_at",
                "reported_at"
            ]
        );
    }
    assert_error(
        app.get_session(&bob_tokens.device_token, id).await,
        404,
        "not_found",
    )
    .await;
    assert_error(app.get_session("nobody", id).await, 401, "unauthorized").await;
    let response = app
        .client
        .get(app.url(&format!("/v1/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "unauthorized").await;
}
