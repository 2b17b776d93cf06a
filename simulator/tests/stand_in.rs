//! The simulator against a stand-in for the service, which answers each
//! route as a test tells it: a service that breaks one rule at a time, and
//! the rule the simulator names for it (exit status 1); and the providers'
//! semantics as the service sees them (recordings, whispers, Plivo's
//! confirm key), checked on the requests the stand-in received.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
mod common;

use common::fixture;
use ringrelay_server::notify::signing::WebhookSecret;
use ringrelay_simulator::{self as simulate, Error, Options, Outcome, Report, Target};
use serde_json::{Value, json};

/// A stand-in for the service that answers the admin and device routes
/// plausibly and each route of `answers` as told, so that one broken rule
/// at a time can be shown to the simulator. It keeps every CPaaS request,
/// with whether its signature verifies.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct FakeService {
    url: String,
    state: Arc<FakeState>,
    server: actix_web::dev::ServerHandle,
}

/// The (status, markup) answered on a path.
type Answers = HashMap<&'static str, (u16, &'static str)>;
type Route = (&'static str, (u16, &'static str));

const FAKE_AUTH_TOKEN: &str = "fake-auth-token";

struct FakeState {
    answers: Answers,
    forged_webhook: bool,
    requests: std::sync::Mutex<Vec<CpaasRequest>>,
}

/// One request the simulated CPaaS made.
#[derive(Debug, Clone)]
struct CpaasRequest {
    path: String,
    params: Vec<(String, String)>,
    signed: bool,
}

impl CpaasRequest {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl FakeService {
    async fn start(answers: Answers, forged_webhook: bool) -> Self {
        let state = Arc::new(FakeState {
            answers,
            forged_webhook,
            requests: Default::default(),
        });
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let state = state.clone();
                async move { fake_answer(&req, &body, &state).await }
            }))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let url = format!("http://127.0.0.1:{}", server.addrs()[0].port());
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            state,
            server: handle,
        }
    }

    fn target(&self) -> Target {
        Target {
            url: self.url.clone(),
            public_base_url: self.url.clone(),
            admin_token: "fake-admin-token".to_owned().into(),
            provider_token: FAKE_AUTH_TOKEN.to_owned().into(),
            webhook_secret: WebhookSecret::parse(WEBHOOK_SECRET).unwrap(),
        }
    }

    fn requests(&self) -> Vec<CpaasRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests to `path`, in order.
    fn requests_to(&self, path: &str) -> Vec<CpaasRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for FakeService {
    fn drop(&mut self) {
        let handle = self.server.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// Keeps a request to a provider route, checking its signature as the
/// service would.
fn record_cpaas_request(req: &HttpRequest, body: &[u8], state: &FakeState) {
    use ringrelay_server::providers::{plivo, twilio};
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let url = format!("http://{}{}", req.connection_info().host(), req.uri());
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let token = FAKE_AUTH_TOKEN.as_bytes();
    let signed = if req.path().starts_with("/twilio/") {
        twilio::signature::verify(token, &url, &params, header("X-Twilio-Signature")).is_ok()
    } else {
        plivo::signature::verify_v3(
            token,
            plivo::signature::Method::Post,
            &url,
            &params,
            header("X-Plivo-Signature-V3-Nonce"),
            header("X-Plivo-Signature-V3"),
        )
        .is_ok()
    };
    state.requests.lock().unwrap().push(CpaasRequest {
        path: req.path().to_owned(),
        params,
        signed,
    });
}

/// The subscriber as a service stores a PUT body: every field with its
/// default filled in .
fn stored_subscriber(put: &Value) -> Value {
    let destinations: Vec<Value> = put["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let mut d = d.clone();
            for (key, default) in [
                ("screening", json!(false)),
                ("hours", Value::Null),
                ("ring_timeout_secs", Value::Null),
            ] {
                if d.get(key).is_none() {
                    d[key] = default;
                }
            }
            d
        })
        .collect();
    let mut stored = json!({
        "number": "+12025550199",
        "forwarding_number": "+12025550100",
        "mode": "auto",
        "strategy": "sequential",
        "ring_timeout_secs": 20,
        "pick_timeout_secs": 15,
        "fallback": {"kind": "voicemail"},
        "schedule": null,
        "caller_rules": [],
        "record": "none",
        "ring_tone": null,
        "dnd_until": null,
    });
    for (key, value) in put.as_object().unwrap() {
        stored[key] = value.clone();
    }
    stored["destinations"] = Value::Array(destinations);
    stored
}

async fn fake_answer(req: &HttpRequest, body: &[u8], state: &FakeState) -> HttpResponse {
    let path = req.path();
    if path.starts_with("/twilio/") || path.starts_with("/plivo/") {
        record_cpaas_request(req, body, state);
    }
    if let Some((status, body)) = state.answers.get(path) {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap())
            .content_type("text/xml")
            .body(*body);
    }
    match (req.method().as_str(), path) {
        // Do-not-disturb that does not take.
        ("PUT", "/v1/dnd") => HttpResponse::Ok().json(json!({"dnd_until": null})),
        ("PUT", _) => {
            let put: Value = serde_json::from_slice(body).unwrap();
            if state.forged_webhook {
                let url = put["destinations"][0]["webhook_url"].as_str().unwrap();
                let _ = reqwest::Client::new()
                    .post(url)
                    .header("webhook-id", "msg_forged")
                    .header("webhook-timestamp", "1700000000")
                    .header("webhook-signature", "v1,Zm9yZ2Vk")
                    .json(&json!({"type": "call.ringing", "data": {}}))
                    .send()
                    .await;
            }
            HttpResponse::Created().json(json!({
                "subscriber": stored_subscriber(&put),
                "device_token": "rrd_fake",
                "destination_tokens": {},
            }))
        }
        ("DELETE", _) => HttpResponse::NoContent().finish(),
        ("POST", "/v1/ring") => HttpResponse::Created().json(json!({
            "session_id": "ses_fake",
            "instruction": "reject",
            "instruction_url": "/v1/sessions/ses_fake/instruction",
        })),
        ("POST", p) if p.ends_with("/events") || p == "/twilio/status" || p == "/plivo/hangup" => {
            HttpResponse::NoContent().finish()
        }
        ("GET", "/v1/sessions/ses_fake") => HttpResponse::Ok().json(json!({"id": "ses_fake"})),
        _ => HttpResponse::NotFound().finish(),
    }
}

const ONE_DESK: &str = r#"
phone = "off"

[subscriber]
forwarding_number = "+12025550100"
destinations = [{id = "desk", kind = "phone", address = "+12025550201"}]

[destinations.desk]
answer = "after 2s"
"#;

/// Runs `scenario` against the fake service, and asserts that every
/// request it got was signed as the provider signs.
async fn run_against(fake: &FakeService, scenario: &str) -> Report {
    let report = simulate::run(
        scenario.parse().unwrap(),
        Options {
            target: Some(fake.target()),
        },
    )
    .await
    .unwrap();
    assert!(
        fake.requests().iter().all(|r| r.signed),
        "{:?}",
        fake.requests()
    );
    report
}

async fn broken_rule(scenario: &str, answers: Answers, forged_webhook: bool) -> String {
    let fake = FakeService::start(answers, forged_webhook).await;
    let err = simulate::run(
        scenario.parse().unwrap(),
        Options {
            target: Some(fake.target()),
        },
    )
    .await
    .expect_err("the contract is broken");
    assert_eq!(err.exit_code(), 1, "{err}");
    match err {
        Error::ContractBroken(rule) => rule,
        other => panic!("not a broken contract: {other}"),
    }
}

#[tokio::test]
async fn each_broken_rule_of_the_contract_is_named() {
    let eleven: &'static str = Box::leak(
        format!(
            "<Response><Dial>{}</Dial></Response>",
            "<Number>+12025550201</Number>".repeat(11)
        )
        .into_boxed_str(),
    );
    let cases: &[(&str, &[Route], &str)] = &[
        (
            "a 500 to the voice webhook",
            &[("/twilio/voice", (500, ""))],
            "POST /twilio/voice answered 500",
        ),
        (
            "markup that is not XML",
            &[("/twilio/voice", (200, "<Response><Say>hi</Response>"))],
            "not well-formed XML",
        ),
        (
            "a root that is not <Response>",
            &[("/twilio/voice", (200, "<Reply><Hangup/></Reply>"))],
            "the root element is <Reply>",
        ),
        (
            "a verb Twilio does not know",
            &[("/twilio/voice", (200, "<Response><Dail/></Response>"))],
            "Twilio does not know <Dail> inside <Response>",
        ),
        (
            "an attribute Twilio does not know",
            &[(
                "/twilio/voice",
                (
                    200,
                    r#"<Response><Dial confirmKey="1"><Number>+12025550201</Number></Dial></Response>"#,
                ),
            )],
            "Twilio does not know the attribute confirmKey of <Dial>",
        ),
        (
            "a Dial of eleven nouns",
            &[("/twilio/voice", (200, eleven))],
            "a <Dial> with 11 nouns",
        ),
        (
            "a whisper that dials",
            &[
                (
                    "/twilio/voice",
                    (
                        200,
                        r#"<Response><Dial><Number url="/twilio/screen">+12025550201</Number></Dial></Response>"#,
                    ),
                ),
                (
                    "/twilio/screen",
                    (
                        200,
                        "<Response><Dial><Number>+12025550202</Number></Dial></Response>",
                    ),
                ),
            ],
            "does not know <Dial> inside <Response>",
        ),
    ];
    for (case, answers, expected) in cases {
        let rule = broken_rule(ONE_DESK, answers.iter().copied().collect(), false).await;
        assert!(rule.contains(expected), "{case}: {rule}");
    }
}

#[tokio::test]
async fn an_instruction_before_the_notifications_breaks_the_contract() {
    let scenario = ONE_DESK.replace("phone = \"off\"", "phone = \"rejects\"");
    let rule = broken_rule(&scenario, Answers::new(), false).await;
    assert!(
        rule.contains("told reject before desk got call.ringing"),
        "{rule}"
    );
}

#[tokio::test]
async fn a_webhook_with_a_forged_signature_breaks_the_contract() {
    let scenario = ONE_DESK.replace("phone = \"off\"", "phone = \"rejects\"");
    let answers = [("/twilio/voice", (200, "<Response><Hangup/></Response>"))];
    let rule = broken_rule(&scenario, answers.into_iter().collect(), true).await;
    assert!(
        rule.contains("call.ringing webhook to desk failed its Standard Webhooks signature check"),
        "{rule}"
    );
}

#[tokio::test]
async fn an_instruction_or_a_dial_against_the_subscriber_rules_breaks_the_contract() {
    let rule = |action: &str| {
        format!(
            "[subscriber]\ncaller_rules = [{{match = \"+12025550302\", action = \"{action}\"}}]\n"
        )
    };
    // Only the phone rings for this caller, yet the phone is told reject.
    let scenario = ONE_DESK
        .replace("phone = \"off\"", "phone = \"rejects\"")
        .replace("[subscriber]\n", &rule("phone"));
    let broken = broken_rule(&scenario, Answers::new(), false).await;
    assert_eq!(
        broken,
        "the ring report answered reject, but caller_rules[0] matches the caller \
         routes the call to the phone only: it must be ignore"
    );
    // Straight to voicemail for this caller, yet the forwarded call dials
    // the desk.
    let scenario = ONE_DESK.replace("[subscriber]\n", &rule("voicemail"));
    let answers = [(
        "/twilio/voice",
        (
            200,
            "<Response><Dial><Number>+12025550201</Number></Dial></Response>",
        ),
    )];
    let broken = broken_rule(&scenario, answers.into_iter().collect(), false).await;
    assert_eq!(
        broken,
        "the forwarded call dialed desk, but caller_rules[0] matches the caller \
         routes the call to the fallback"
    );
}

#[tokio::test]
async fn a_do_not_disturb_answer_that_is_not_the_contracts_breaks_it() {
    // The fake answers 200 {"dnd_until": null}.
    let scenario = format!("dnd_minutes = 60\n{ONE_DESK}");
    let broken = broken_rule(&scenario, Answers::new(), false).await;
    assert!(
        broken.starts_with("PUT /v1/dnd until 20") && broken.ends_with("answered dnd_until null"),
        "{broken}"
    );
}

#[tokio::test]
async fn a_scenario_with_a_clock_cannot_drive_a_deployment() {
    let fake = FakeService::start(Answers::new(), false).await;
    let err = simulate::run(
        fixture("after-hours").parse().unwrap(),
        Options {
            target: Some(fake.target()),
        },
    )
    .await
    .expect_err("a deployment keeps its own time");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().starts_with("clock: "), "{err}");
    assert!(fake.requests().is_empty());
}

// ---------------------------------------------------------------------------
// The providers' semantics, as the service would see them

#[tokio::test]
async fn a_recorded_twilio_dial_posts_its_recording_when_the_bridged_leg_ends() {
    let answers = [
        (
            "/twilio/voice",
            (
                200,
                r#"<Response><Dial action="/twilio/dial-status" timeout="20" record="record-from-answer-dual" recordingStatusCallback="/twilio/recording" recordingStatusCallbackEvent="completed" ringTone="uk"><Number>+12025550201</Number></Dial></Response>"#,
            ),
        ),
        ("/twilio/recording", (204, "")),
        (
            "/twilio/dial-status",
            (200, "<Response><Hangup/></Response>"),
        ),
    ];
    let fake = FakeService::start(answers.into_iter().collect(), false).await;
    let report = run_against(&fake, ONE_DESK).await;
    let voice = &fake.requests_to("/twilio/voice")[0];
    let recordings = fake.requests_to("/twilio/recording");
    assert_eq!(recordings.len(), 1);
    let recording = &recordings[0];
    assert_eq!(recording.get("CallSid"), voice.get("CallSid"));
    assert_eq!(recording.get("RecordingStatus"), Some("completed"));
    assert_eq!(recording.get("RecordingDuration"), Some("30"));
    assert!(recording.get("RecordingSid").unwrap().starts_with("RE"));
    assert!(
        recording
            .get("RecordingUrl")
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(report.connected_to.as_deref(), Some("desk"));
    let events: Vec<&str> = report.timeline.iter().map(|e| e.event.as_str()).collect();
    assert!(
        events.contains(&"Dial desk, timeout 20 s, recorded, ring tone uk"),
        "{events:?}"
    );
    assert!(
        events.contains(&"recording of the call with desk ready (30 s): POST /twilio/recording"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_plivo_record_on_dial_answer_posts_its_recording_when_the_bridged_leg_ends() {
    let answers = [
        (
            "/plivo/answer",
            (
                200,
                r#"<Response><Record startOnDialAnswer="true" redirect="false" maxLength="14400" callbackUrl="/plivo/recording"/><Dial action="/plivo/dial-status" timeout="20"><Number>12025550201</Number></Dial></Response>"#,
            ),
        ),
        ("/plivo/recording", (200, "")),
        (
            "/plivo/dial-status",
            (200, "<Response><Hangup/></Response>"),
        ),
    ];
    let fake = FakeService::start(answers.into_iter().collect(), false).await;
    let scenario = format!("provider = \"plivo\"\n{ONE_DESK}");
    let report = run_against(&fake, &scenario).await;
    let answer = &fake.requests_to("/plivo/answer")[0];
    let recordings = fake.requests_to("/plivo/recording");
    assert_eq!(recordings.len(), 1);
    let recording = &recordings[0];
    assert_eq!(recording.get("CallUUID"), answer.get("CallUUID"));
    assert_eq!(recording.get("RecordingDuration"), Some("30"));
    assert!(recording.get("RecordingID").is_some());
    assert!(recording.get("RecordUrl").unwrap().starts_with("https://"));
    assert_eq!(report.connected_to.as_deref(), Some("desk"));
    assert!(
        report
            .timeline
            .iter()
            .any(|e| e.event == "Record the dialed call from answer; Dial desk, timeout 20 s"),
        "{:?}",
        report.timeline
    );
}

#[tokio::test]
async fn a_twilio_whisper_that_hangs_up_ends_the_dial_completed_without_a_bridge() {
    let answers = [
        (
            "/twilio/voice",
            (
                200,
                r#"<Response><Dial action="/twilio/dial-status" timeout="20"><Number url="/twilio/screen">+12025550201</Number><Number statusCallback="/twilio/leg-status" statusCallbackEvent="ringing answered completed">+12025550202</Number></Dial></Response>"#,
            ),
        ),
        ("/twilio/leg-status", (204, "")),
        (
            "/twilio/screen",
            (
                200,
                r#"<Response><Gather numDigits="1" timeout="5" action="/twilio/screen-result"><Say>Press 1</Say></Gather><Hangup/></Response>"#,
            ),
        ),
        (
            "/twilio/dial-status",
            (200, "<Response><Hangup/></Response>"),
        ),
    ];
    let fake = FakeService::start(answers.into_iter().collect(), false).await;
    let scenario = r#"
        phone = "off"
        [subscriber]
        forwarding_number = "+12025550100"
        destinations = [
          {id = "desk", kind = "phone", address = "+12025550201"},
          {id = "mobile", kind = "phone", address = "+12025550202"},
        ]
        [destinations.desk]
        answer = "voicemail"
        [destinations.mobile]
        answer = "after 8s"
    "#;
    let report = run_against(&fake, scenario).await;
    let voice = &fake.requests_to("/twilio/voice")[0];
    let whisper = &fake.requests_to("/twilio/screen")[0];
    assert_eq!(whisper.get("ParentCallSid"), voice.get("CallSid"));
    assert_eq!(whisper.get("Direction"), Some("outbound-dial"));
    assert_eq!(whisper.get("To"), Some("+12025550201"));
    assert!(
        fake.requests_to("/twilio/screen-result").is_empty(),
        "a voicemail presses nothing"
    );
    let dial_status = &fake.requests_to("/twilio/dial-status")[0];
    assert_eq!(dial_status.get("DialCallStatus"), Some("completed"));
    assert_eq!(dial_status.get("DialBridged"), Some("false"));
    assert_eq!(dial_status.get("DialCallSid"), whisper.get("CallSid"));
    let status = &fake.requests_to("/twilio/status")[0];
    assert_eq!(status.get("CallSid"), voice.get("CallSid"));
    // The first pick-up hung up the other number, which never got its turn.
    let mobile: Vec<String> = fake
        .requests_to("/twilio/leg-status")
        .iter()
        .filter_map(|r| r.get("CallStatus").map(str::to_owned))
        .collect();
    assert_eq!(mobile, ["ringing", "canceled"]);
    assert_eq!(report.outcome, Outcome::Missed);
    assert_eq!(report.connected_to, None);
}

#[tokio::test]
async fn plivo_bridges_only_the_leg_that_pressed_the_confirm_key() {
    let answers = [
        (
            "/plivo/answer",
            (
                200,
                r#"<Response><Dial action="/plivo/dial-status" timeout="30" confirmSound="/plivo/screen" confirmKey="1" callbackUrl="/plivo/dial-callback"><Number>12025550201</Number><Number>12025550202</Number></Dial></Response>"#,
            ),
        ),
        (
            "/plivo/screen",
            (200, "<Response><Speak>Press 1</Speak></Response>"),
        ),
        ("/plivo/dial-callback", (200, "")),
        (
            "/plivo/dial-status",
            (200, "<Response><Hangup/></Response>"),
        ),
    ];
    let fake = FakeService::start(answers.into_iter().collect(), false).await;
    let scenario = r#"
        provider = "plivo"
        phone = "off"
        [subscriber]
        forwarding_number = "+12025550100"
        destinations = [
          {id = "desk", kind = "phone", address = "+12025550201"},
          {id = "mobile", kind = "phone", address = "+12025550202"},
        ]
        [destinations.desk]
        answer = "voicemail"
        [destinations.mobile]
        answer = "after 9s"
        press = "1"
    "#;
    let report = run_against(&fake, scenario).await;
    let answer = &fake.requests_to("/plivo/answer")[0];
    assert_eq!(answer.get("From"), Some("12025550302"), "digits without +");
    assert_eq!(answer.get("To"), Some("12025550100"));
    let callbacks = fake.requests_to("/plivo/dial-callback");
    let events: Vec<(&str, &str)> = callbacks
        .iter()
        .map(|r| (r.get("DialAction").unwrap(), r.get("DialBLegTo").unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("answer", "12025550201"),
            ("hangup", "12025550201"),
            ("answer", "12025550202"),
            ("connected", "12025550202"),
            ("hangup", "12025550202"),
        ]
    );
    assert_eq!(
        fake.requests_to("/plivo/screen").len(),
        2,
        "one confirmSound per answering leg"
    );
    let connected = callbacks
        .iter()
        .find(|r| r.get("DialAction") == Some("connected"))
        .unwrap();
    let dial_status = &fake.requests_to("/plivo/dial-status")[0];
    assert_eq!(dial_status.get("DialStatus"), Some("completed"));
    assert_eq!(
        dial_status.get("DialBLegUUID"),
        connected.get("DialBLegUUID")
    );
    assert_eq!(
        fake.requests_to("/plivo/hangup")[0].get("CallStatus"),
        Some("completed")
    );
    assert_eq!(report.connected_to.as_deref(), Some("mobile"));
}
