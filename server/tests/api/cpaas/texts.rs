//! The text back to a missed caller (`missed_call_text`): one SMS, from
//! the forwarding number to the caller, through the REST API of the
//! provider that carried the call (a local fake of it, which records every
//! request: method, path, auth, fields), once across instances, its
//! outcome in the session and in `call.missed` / `call.voicemail`; never
//! for a withheld, toll-free or blocked caller, nor for a cancelled or
//! expired session; skipped when the provider has no API credentials.

use ringrelay_simulator::cpaas::kit::ApiRequest;
use ringrelay_testkit::fake_api::{Answer, FakeApi, Recorded};

use super::*;
use crate::helpers::{PLIVO_AUTH_TOKEN, TWILIO_AUTH_TOKEN, spawn_app_with};

crate::for_each_provider! {
    on_both_backends: [
        a_missed_call_texts_the_caller_once_from_the_forwarding_number,
    ],
    once: [
        a_voicemail_texts_the_caller_and_says_so_in_call_voicemail,
        a_call_ended_at_two_instances_at_once_texts_the_caller_once,
        withheld_toll_free_and_blocked_callers_get_no_text,
        a_provider_without_api_credentials_skips_the_text,
        a_text_the_provider_refuses_fails_and_one_it_defers_is_sent_again,
    ],
}

const TOLL_FREE: &str = "+18005551212";
const BODY: &str = "Sorry I missed your call. I'll ring you back. {subscriber}";

/// The app on `backend` (and `extra`) with `cpaas`'s API at `fake`.
async fn app_texting_through(
    cpaas: Cpaas,
    fake: &FakeApi,
    backend: Backend,
    extra: &[(&str, &str)],
) -> TestApp {
    let variables = cpaas.api_variables(fake.base());
    let mut vars: Vec<(&str, &str)> = variables.iter().map(|(n, v)| (*n, v.as_str())).collect();
    vars.extend_from_slice(extra);
    spawn_app_with(backend, &vars).await
}

/// A fake of `cpaas`'s API that takes every message.
async fn taking_api(cpaas: Cpaas) -> FakeApi {
    let (status, body) = cpaas.text_taken();
    FakeApi::start(Answer::json(status, &body)).await
}

/// Alice with her desk's webhooks at `receiver`, texting missed callers,
/// hanging up when nobody answers (`fallback`).
fn texting_alice(receiver: &WebhookReceiver, fallback: &str) -> Value {
    let mut alice = alice_desk_only(Some(receiver.url("/desk")));
    alice["missed_call_text"] = json!({ "body": BODY });
    alice["fallback"] = json!({ "kind": fallback });
    alice
}

/// A call from `caller` that nobody answers, hung up on: the session.
async fn a_missed_call(app: &TestApp, cpaas: Cpaas, alice: &Registered, caller: &str) -> String {
    let id = ring(app, alice, Some(caller)).await;
    let first = forwarded(app, cpaas, caller, SHARED).await;
    let last = dial_ended(app, cpaas, only_dial(&first), DialEnd::NoAnswer).await;
    assert_hangup(&last);
    id
}

/// The message the provider's API was sent, read as that API reads it
/// (method, path, credentials, content type): `(from, to, text)`.
fn sent_text(cpaas: Cpaas, request: &Recorded) -> (String, String, String) {
    let auth_token = match cpaas {
        Cpaas::Plivo => PLIVO_AUTH_TOKEN,
        _ => TWILIO_AUTH_TOKEN,
    };
    let api_request = ApiRequest {
        method: &request.method,
        path: &request.path,
        authorization: request.header("authorization"),
        content_type: request.header("content-type"),
        body: &request.body,
    };
    let text = cpaas
        .read_text(&api_request, auth_token)
        .unwrap_or_else(|e| panic!("{e}: {request:?}"));
    (text.from, text.to, text.body)
}

/// The fake got nothing more, once every instance delivered its events.
async fn assert_no_more_texts(fake: &FakeApi, apps: &[&TestApp]) {
    for app in apps {
        app.deliveries_settled().await;
    }
    let more = fake.arrived_so_far().await;
    assert!(more.is_empty(), "one text only: {more:?}");
}

async fn a_missed_call_texts_the_caller_once_from_the_forwarding_number(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let fake = taking_api(cpaas).await;
    let app = app_texting_through(cpaas, &fake, backend, &[]).await;
    let alice = app
        .register(ALICE, &texting_alice(&receiver, "hangup"))
        .await;

    let id = a_missed_call(&app, cpaas, &alice, CALLER).await;

    let request = fake.next().await;
    let expected_body = BODY.replace("{subscriber}", ALICE);
    assert_eq!(
        sent_text(cpaas, &request),
        (SHARED.to_owned(), CALLER.to_owned(), expected_body)
    );
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(
        missed.body["data"]["missed_call_text"], "sent",
        "{:?}",
        missed.body
    );
    assert_eq!(missed.body["data"]["reason"], "nobody_answered");
    assert_eq!(session(&app, &id).await["missed_call_text"], "sent");
    assert_no_more_texts(&fake, &[&app]).await;
    let counted = format!(
        "ringrelay_missed_call_texts_total{{provider=\"{}\",outcome=\"sent\"}} 1",
        cpaas.name()
    );
    let metrics = app.metrics().await;
    assert!(metrics.lines().any(|l| l == counted), "{metrics}");
}

async fn a_voicemail_texts_the_caller_and_says_so_in_call_voicemail(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let fake = taking_api(cpaas).await;
    let app = app_texting_through(cpaas, &fake, Backend::Memory, &[]).await;
    let alice = app
        .register(ALICE, &texting_alice(&receiver, "voicemail"))
        .await;
    let id = ring(&app, &alice, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Busy).await;
    let record = assert_voicemail(cpaas, &second);

    recording_ended(&app, cpaas, record).await;

    let (from, to, _) = sent_text(cpaas, &fake.next().await);
    assert_eq!((from.as_str(), to.as_str()), (SHARED, CALLER));
    let voicemail = next_event(&receiver, "call.voicemail").await;
    assert_eq!(voicemail.body["data"]["missed_call_text"], "sent");
    let s = session(&app, &id).await;
    assert_eq!(
        (&s["state"], &s["missed_call_text"]),
        (&json!("voicemail"), &json!("sent"))
    );
    assert_no_more_texts(&fake, &[&app]).await;
}

async fn a_call_ended_at_two_instances_at_once_texts_the_caller_once(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let fake = taking_api(cpaas).await;
    let a = app_texting_through(cpaas, &fake, Backend::redis(), &[]).await;
    let prefix = a.config.redis_key_prefix.clone();
    let b = app_texting_through(
        cpaas,
        &fake,
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &prefix)],
    )
    .await;
    let alice = a.register(ALICE, &texting_alice(&receiver, "hangup")).await;
    let id = ring(&a, &alice, Some(CALLER)).await;
    let first = forwarded(&a, cpaas, CALLER, SHARED).await;
    let dial = only_dial(&first);

    // The provider retries the Dial's action at another instance while
    // the first is still at it.
    let (at_a, at_b) = tokio::join!(
        dial_ended(&a, cpaas, dial, DialEnd::NoAnswer),
        dial_ended(&b, cpaas, dial, DialEnd::NoAnswer),
    );

    assert_hangup(&at_a);
    assert_hangup(&at_b);
    sent_text(cpaas, &fake.next().await);
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["missed_call_text"], "sent");
    assert_eq!(session(&b, &id).await["missed_call_text"], "sent");
    assert_no_more_texts(&fake, &[&a, &b]).await;
}

async fn withheld_toll_free_and_blocked_callers_get_no_text(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let fake = taking_api(cpaas).await;
    let app = app_texting_through(cpaas, &fake, Backend::Memory, &[]).await;
    let mut alice_body = texting_alice(&receiver, "hangup");
    alice_body["caller_rules"] = json!([{"match": OTHER_CALLER, "action": "block"}]);
    let alice = app.register(ALICE, &alice_body).await;

    for caller in ["anonymous", TOLL_FREE] {
        let first = forwarded(&app, cpaas, caller, SHARED).await;
        dial_ended(&app, cpaas, only_dial(&first), DialEnd::NoAnswer).await;
        let missed = next_event(&receiver, "call.missed").await;
        assert_eq!(
            missed.body["data"]["missed_call_text"], "skipped",
            "{caller}"
        );
        let id = missed.body["data"]["session_id"].as_str().unwrap();
        assert_eq!(session(&app, id).await["missed_call_text"], "skipped");
    }
    let blocked = ring(&app, &alice, Some(OTHER_CALLER)).await;
    let refused = forwarded(&app, cpaas, OTHER_CALLER, SHARED).await;
    assert_busy(cpaas, &refused);
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["reason"], "blocked");
    assert_eq!(missed.body["data"]["missed_call_text"], "skipped");
    assert_eq!(session(&app, &blocked).await["missed_call_text"], "skipped");
    // Taken on the phone: cancelled, which never texts.
    let taken = ring(&app, &alice, Some(CALLER)).await;
    let status = app
        .phone_event(&alice.device_token, &taken, "answered")
        .await;
    assert!((200..300).contains(&status), "{status}");
    let cancelled = next_event(&receiver, "call.cancelled").await;
    assert!(cancelled.body["data"].get("missed_call_text").is_none());
    assert_eq!(session(&app, &taken).await["missed_call_text"], Value::Null);
    // Never forwarded (the carrier's codes were never dialled): expired,
    // announced as missed, and never texted.
    let expired = ring(&app, &alice, Some(CALLER)).await;
    app.clock.advance(Duration::from_secs(31));
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["reason"], "not_forwarded");
    assert!(missed.body["data"].get("missed_call_text").is_none());
    let s = session(&app, &expired).await;
    assert_eq!(
        (&s["state"], &s["missed_call_text"]),
        (&json!("expired"), &Value::Null)
    );

    assert_no_more_texts(&fake, &[&app]).await;
}

async fn a_provider_without_api_credentials_skips_the_text(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let alice = app
        .register(ALICE, &texting_alice(&receiver, "hangup"))
        .await;

    let id = a_missed_call(&app, cpaas, &alice, CALLER).await;

    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["missed_call_text"], "skipped");
    assert_eq!(session(&app, &id).await["missed_call_text"], "skipped");
}

async fn a_text_the_provider_refuses_fails_and_one_it_defers_is_sent_again(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let fake = taking_api(cpaas).await;
    let app = app_texting_through(cpaas, &fake, Backend::Memory, &[]).await;
    let alice = app
        .register(ALICE, &texting_alice(&receiver, "hangup"))
        .await;

    // Refused: not tried again.
    fake.then_answer(Answer::json(400, &json!({"message": "invalid To"})));
    let refused = a_missed_call(&app, cpaas, &alice, CALLER).await;
    sent_text(cpaas, &fake.next().await);
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["missed_call_text"], "failed");
    assert_eq!(session(&app, &refused).await["missed_call_text"], "failed");
    assert_no_more_texts(&fake, &[&app]).await;

    // Too many requests, come back: the same message again, then sent.
    fake.then_answer(Answer::status(429));
    let deferred = a_missed_call(&app, cpaas, &alice, OTHER_CALLER).await;
    let first = sent_text(cpaas, &fake.next().await);
    let again = sent_text(cpaas, &fake.next().await);
    assert_eq!(first, again);
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["missed_call_text"], "sent");
    assert_eq!(session(&app, &deferred).await["missed_call_text"], "sent");
    assert_no_more_texts(&fake, &[&app]).await;
}
