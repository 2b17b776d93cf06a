//! Voicemail transcription: the voicemail's `<Record>` asks each
//! provider for its transcription in its own words, the signed callback
//! sends `call.voicemail_transcribed` once (a retried callback, also at
//! another instance, sends nothing), and the session keeps the text.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
        a_transcribed_voicemail_reaches_the_destinations_once_and_stays_in_the_session,
    ],
    once: [
        a_voicemail_is_transcribed_only_when_the_subscriber_asks,
        a_failed_transcription_is_announced_without_text,
        a_transcription_posted_to_two_instances_at_once_is_announced_once,
    ],
}

const TEXT: &str = "Hi, it's Jane. Call me back about Friday.";

/// Alice, transcribing her voicemails, with her desk's webhooks at
/// `receiver`.
fn transcribing_alice(receiver: &WebhookReceiver) -> Value {
    let mut alice = alice_desk_only(Some(receiver.url("/desk")));
    alice["transcribe_voicemail"] = json!(true);
    alice
}

/// A forwarded call of Alice's hunted to her voicemail, the message left:
/// the session, the voicemail's recording, and where its transcription
/// goes.
async fn a_voicemail(
    app: &TestApp,
    cpaas: Cpaas,
    alice_reg: &Registered,
) -> (String, String, String) {
    let alices = ring(app, alice_reg, Some(CALLER)).await;
    let first = forwarded(app, cpaas, CALLER, SHARED).await;
    let second = dial_ended(app, cpaas, only_dial(&first), DialEnd::Busy).await;
    let record = assert_voicemail(cpaas, &second);
    let callback = cpaas
        .transcription_callback(record)
        .expect("the voicemail is transcribed")
        .to_owned();
    assert!(
        callback.starts_with(&format!(
            "{PUBLIC_BASE_URL}{}?",
            cpaas.routes().transcription
        )),
        "{callback}"
    );
    let (after, recording) = recording_ended(app, cpaas, record).await;
    assert_hangup(&after);
    (alices, recording, callback)
}

/// The provider posting its transcription of `recording` (`text`, or a
/// failure) to `callback`, signed as it signs it: its answer.
async fn transcribed(
    app: &TestApp,
    cpaas: Cpaas,
    callback: &str,
    recording: &str,
    text: Option<&str>,
) -> reqwest::Response {
    let params = cpaas.transcription_params(&cpaas.new_call_id(), recording, text);
    cpaas
        .sign_and_post(app, &local_path(callback), &params)
        .await
}

async fn a_transcribed_voicemail_reaches_the_destinations_once_and_stays_in_the_session(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &transcribing_alice(&receiver)).await;
    let (alices, recording, callback) = a_voicemail(&app, cpaas, &alice_reg).await;
    next_event(&receiver, "call.voicemail").await;

    // The provider retries its callback: the second changes nothing.
    for _ in 0..2 {
        let response = transcribed(&app, cpaas, &callback, &recording, Some(TEXT)).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.text().await.unwrap().contains("Response"),
            "an empty document"
        );
    }

    let event = next_event(&receiver, "call.voicemail_transcribed").await;
    assert!(event.signature_valid, "{event:?}");
    let data = &event.body["data"];
    assert_eq!(data["session_id"], alices.as_str(), "{data}");
    assert_eq!(data["caller"], CALLER);
    assert_eq!(data["text"], TEXT);
    assert_eq!(data["status"], "completed");
    assert_eq!(data["recording_url"], recording.as_str(), "{data}");
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "voicemail", "{s}");
    assert_eq!(
        s["voicemail_transcription"],
        json!({"status": "completed", "text": TEXT}),
        "{s}"
    );
    assert_no_more_transcriptions(&receiver, &[&app]).await;
}

/// Once every instance delivered what it had to, the receiver got no
/// second `call.voicemail_transcribed`.
async fn assert_no_more_transcriptions(receiver: &WebhookReceiver, apps: &[&TestApp]) {
    for app in apps {
        app.deliveries_settled().await;
    }
    let again: Vec<_> = receiver
        .arrived_so_far()
        .await
        .into_iter()
        .filter(|r| r.kind() == "call.voicemail_transcribed")
        .collect();
    assert!(again.is_empty(), "announced once: {again:?}");
}

async fn a_voicemail_is_transcribed_only_when_the_subscriber_asks(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice_desk_only(None)).await;
    let stored: Value = app.get_subscriber(ALICE).await.json().await.unwrap();
    assert_eq!(stored["transcribe_voicemail"], false, "the default, echoed");
    ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Busy).await;
    let record = assert_voicemail(cpaas, &second);
    assert_eq!(cpaas.transcription_callback(record), None, "{record:?}");
    for attribute in [
        "transcribe",
        "transcribeCallback",
        "transcription",
        "transcriptionCallback",
        "transcriptionType",
        "transcriptionUrl",
    ] {
        assert_eq!(record.attr(attribute), None, "{record:?}");
    }
}

async fn a_failed_transcription_is_announced_without_text(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &transcribing_alice(&receiver)).await;
    let (alices, recording, callback) = a_voicemail(&app, cpaas, &alice_reg).await;

    transcribed(&app, cpaas, &callback, &recording, None).await;

    let event = next_event(&receiver, "call.voicemail_transcribed").await;
    let data = &event.body["data"];
    assert_eq!(
        (&data["status"], &data["text"]),
        (&json!("failed"), &Value::Null)
    );
    // Plivo's callback names no recording: the session's voicemail.
    assert_eq!(data["recording_url"], recording.as_str(), "{data}");
    let s = session(&app, &alices).await;
    assert_eq!(s["voicemail_transcription"]["status"], "failed", "{s}");
}

async fn a_transcription_posted_to_two_instances_at_once_is_announced_once(cpaas: Cpaas) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let (a, b) = two_instances().await;
    let alice_reg = a.register(ALICE, &transcribing_alice(&receiver)).await;
    let (alices, recording, callback) = a_voicemail(&a, cpaas, &alice_reg).await;

    let (first, second) = tokio::join!(
        transcribed(&a, cpaas, &callback, &recording, Some(TEXT)),
        transcribed(&b, cpaas, &callback, &recording, Some(TEXT)),
    );

    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    next_event(&receiver, "call.voicemail_transcribed").await;
    assert_no_more_transcriptions(&receiver, &[&a, &b]).await;
    assert_eq!(
        session(&b, &alices).await["voicemail_transcription"]["text"],
        TEXT
    );
}
