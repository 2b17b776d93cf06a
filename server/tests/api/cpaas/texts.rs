//! The text back to a missed caller (`missed_call_text`): one SMS, from
//! the forwarding number to the caller, through the REST API of the
//! provider that carried the call (a local fake of it, which records every
//! request: method, path, auth, fields), once across instances, its
//! outcome in the session and in `call.missed` / `call.voicemail`; never
//! for a withheld, toll-free or blocked caller, nor for a cancelled
//! session; skipped when the provider has no API credentials.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ringrelay_testkit::fake_api::{Answer, FakeApi, Recorded};

use super::*;
use crate::helpers::{TWILIO_AUTH_TOKEN, spawn_app_with};

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

const TWILIO_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const PLIVO_AUTH_ID: &str = "MAXXXXXXXXXXXXXXXXXX";
const TELNYX_API_KEY: &str = "KEY0123456789ABCDEF_test";
const SIGNALWIRE_PROJECT: &str = "8a5d0d0c-0000-4000-8000-000000000001";
const SIGNALWIRE_API_TOKEN: &str = "PTtest0123456789";
const TOLL_FREE: &str = "+18005551212";
const BODY: &str = "Sorry I missed your call. I'll ring you back. {subscriber}";

/// The variables that give `cpaas` its API at `fake`.
fn api_variables(cpaas: Cpaas, fake: &FakeApi) -> Vec<(&'static str, String)> {
    let base = fake.base().to_owned();
    match cpaas {
        Cpaas::Twilio => vec![
            ("TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID.into()),
            ("TWILIO_API_BASE", base),
        ],
        Cpaas::Plivo => vec![
            ("PLIVO_AUTH_ID", PLIVO_AUTH_ID.into()),
            ("PLIVO_API_BASE", base),
        ],
        Cpaas::Telnyx => vec![
            ("TELNYX_API_KEY", TELNYX_API_KEY.into()),
            ("TELNYX_API_BASE", base),
        ],
        Cpaas::SignalWire => vec![
            ("SIGNALWIRE_PROJECT_ID", SIGNALWIRE_PROJECT.into()),
            ("SIGNALWIRE_API_TOKEN", SIGNALWIRE_API_TOKEN.into()),
            ("SIGNALWIRE_API_BASE", base),
        ],
    }
}

/// The app on `backend` (and `extra`) with `cpaas`'s API at `fake`.
async fn app_texting_through(
    cpaas: Cpaas,
    fake: &FakeApi,
    backend: Backend,
    extra: &[(&str, &str)],
) -> TestApp {
    let variables = api_variables(cpaas, fake);
    let mut vars: Vec<(&str, &str)> = variables.iter().map(|(n, v)| (*n, v.as_str())).collect();
    vars.extend_from_slice(extra);
    spawn_app_with(backend, &vars).await
}

/// A fake of the providers' APIs that takes every message.
async fn taking_api() -> FakeApi {
    FakeApi::start(Answer::json(
        201,
        &json!({"sid": "SM1", "message_uuid": ["m1"]}),
    ))
    .await
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

/// The message the provider's API was sent, checked as that API reads it
/// (method, path, credentials, content type): `(from, to, text)`.
fn sent_text(cpaas: Cpaas, request: &Recorded) -> (String, String, String) {
    assert_eq!(request.method, "POST", "{request:?}");
    let basic = |user: &str, password: &str| {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    };
    let form = || -> BTreeMap<String, String> {
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded"),
            "{request:?}"
        );
        url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect()
    };
    let json = || -> Value {
        assert_eq!(
            request.header("content-type"),
            Some("application/json"),
            "{request:?}"
        );
        serde_json::from_slice(&request.body).unwrap()
    };
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    match cpaas {
        Cpaas::Twilio | Cpaas::SignalWire => {
            let (prefix, user, password) = if cpaas == Cpaas::Twilio {
                ("", TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)
            } else {
                ("/api/laml", SIGNALWIRE_PROJECT, SIGNALWIRE_API_TOKEN)
            };
            assert_eq!(
                request.path,
                format!("{prefix}/2010-04-01/Accounts/{user}/Messages.json")
            );
            assert_eq!(
                request.header("authorization"),
                Some(basic(user, password).as_str())
            );
            let form = form();
            (
                form["From"].clone(),
                form["To"].clone(),
                form["Body"].clone(),
            )
        }
        Cpaas::Plivo => {
            assert_eq!(
                request.path,
                format!("/v1/Account/{PLIVO_AUTH_ID}/Message/")
            );
            assert_eq!(
                request.header("authorization"),
                Some(basic(PLIVO_AUTH_ID, crate::helpers::PLIVO_AUTH_TOKEN).as_str())
            );
            let body = json();
            // Plivo writes numbers without the `+`.
            let plus = |n: String| format!("+{n}");
            (
                plus(text(&body, "src")),
                plus(text(&body, "dst")),
                text(&body, "text"),
            )
        }
        Cpaas::Telnyx => {
            assert_eq!(request.path, "/v2/messages");
            let bearer = format!("Bearer {TELNYX_API_KEY}");
            assert_eq!(request.header("authorization"), Some(bearer.as_str()));
            let body = json();
            (text(&body, "from"), text(&body, "to"), text(&body, "text"))
        }
    }
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
    let fake = taking_api().await;
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
}

async fn a_voicemail_texts_the_caller_and_says_so_in_call_voicemail(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let fake = taking_api().await;
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
    let fake = taking_api().await;
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
    let fake = taking_api().await;
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
    let fake = taking_api().await;
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
