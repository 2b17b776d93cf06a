//! Pick mode (contract §1, §4 instruction long-poll, §5 destinations, §6,
//! §7 screening) from the outside: destinations hear of a call on their live
//! stream (SSE) or webhook, accept or decline it by token or capability URL,
//! the phone long-polls its instruction, and the forwarded call dials the
//! destination that accepted. Across two instances on one Redis where it
//! matters.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::helpers::Element;
use crate::helpers::{
    ADMIN_TOKEN, Backend, PUBLIC_BASE_URL, Registered, TestApp, assert_error, local_path,
    spawn_app, spawn_app_with,
};
use crate::receiver::{Behaviour, WebhookReceiver};

const ALICE: &str = "+12025550199";
const BOB: &str = "+12025550198";
const FORWARDING_NUMBER: &str = "+12025550100";
const BOB_FORWARDING_NUMBER: &str = "+12025550101";
const CALLER: &str = "+12025550302";
const ALICE_DESK: &str = "+12025550201";
const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";

// ---------------------------------------------------------------------------
// Subscribers

/// Alice in pick mode: a desk phone, a softphone and a SIP phone, in that
/// order. With a receiver, each destination's webhook reaches it at
/// `/desk`, `/laptop` and `/pbx`.
fn alice_pick(receiver: Option<&WebhookReceiver>) -> Value {
    let hook = |path: &str| receiver.map(|r| r.url(path));
    json!({
        "forwarding_number": FORWARDING_NUMBER,
        "mode": "pick",
        // The longest allowed, so that it never ends a long-poll that an
        // accept or decline should have ended (the timeout's own test sets 3).
        "pick_timeout_secs": 60,
        "destinations": [
            {"id": "desk", "kind": "phone", "address": ALICE_DESK, "webhook_url": hook("/desk")},
            {"id": "laptop", "kind": "client", "address": "alice", "webhook_url": hook("/laptop")},
            {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com", "webhook_url": hook("/pbx")}
        ]
    })
}

fn bob_pick() -> Value {
    json!({
        "forwarding_number": BOB_FORWARDING_NUMBER,
        "mode": "pick",
        "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550202"}]
    })
}

fn token<'a>(registered: &'a Registered, destination: &str) -> &'a str {
    registered
        .destination_tokens
        .get(destination)
        .unwrap_or_else(|| panic!("no token for {destination}"))
}

// ---------------------------------------------------------------------------
// The phone's side

/// A ring report in pick mode, answered `wait`; the session's id.
async fn ring_pick(app: &TestApp, registered: &Registered) -> String {
    let response = app
        .ring(&registered.device_token, &json!({"caller": CALLER}))
        .await;
    assert_eq!(response.status(), 201, "ring report");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instruction"], "wait", "pick mode waits: {body}");
    let id = body["session_id"].as_str().unwrap().to_owned();
    assert_eq!(
        body["instruction_url"],
        format!("/v1/sessions/{id}/instruction")
    );
    id
}

/// `GET /v1/sessions/{id}/instruction?wait=N` as a device would send it.
async fn instruction_request(
    app: &TestApp,
    device_token: Option<&str>,
    id: &str,
    wait: u64,
) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url(&format!("/v1/sessions/{id}/instruction?wait={wait}")));
    if let Some(token) = device_token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The instruction the long-poll answers, asserting a 200.
async fn instruction(app: &TestApp, device_token: &str, id: &str, wait: u64) -> String {
    read_instruction(instruction_request(app, Some(device_token), id, wait).await).await
}

async fn read_instruction(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200, "instruction");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    body["instruction"]
        .as_str()
        .unwrap_or_else(|| panic!("no instruction in {body}"))
        .to_owned()
}

/// The `wait` of long-polls left running: the longest allowed.
const LONG_POLL_WAIT: u64 = 30;

/// A long-poll (`wait=30`) left running while the test goes on.
fn spawn_long_poll(app: &TestApp, device_token: &str, id: &str) -> JoinHandle<String> {
    let client = app.client.clone();
    let url = app.url(&format!(
        "/v1/sessions/{id}/instruction?wait={LONG_POLL_WAIT}"
    ));
    let token = device_token.to_owned();
    tokio::spawn(async move {
        read_instruction(client.get(url).bearer_auth(token).send().await.unwrap()).await
    })
}

/// What a running long-poll answered once its instruction stopped being
/// `wait`. A long-poll woken by the change answers at once; one that missed
/// it reads the session again only when its 30 s wait ends, and would answer
/// the same. The 10 s bound tells the two apart without measuring anything
/// finer (it is the harness's usual "it arrives" bound).
async fn long_poll_result(handle: JoinHandle<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the long-poll answers when its instruction changes, not when its 30 s wait ends")
        .expect("the long-poll task did not panic")
}

async fn device_event(app: &TestApp, device_token: &str, id: &str, event: &str) {
    let response = app
        .client
        .post(app.url(&format!("/v1/sessions/{id}/events")))
        .bearer_auth(device_token)
        .json(&json!({ "event": event }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "device event {event}");
}

// ---------------------------------------------------------------------------
// The destinations' side

/// `POST /v1/sessions/{id}/{action}` with a destination's bearer token.
async fn answer_offer(app: &TestApp, token: &str, id: &str, action: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/sessions/{id}/{action}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn accept(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    answer_offer(app, token, id, "accept").await
}

async fn decline(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    answer_offer(app, token, id, "decline").await
}

/// A plain `POST` to a capability URL (`accept_url`, `decline_url`), no header.
async fn post_capability(app: &TestApp, absolute_url: &str) -> reqwest::Response {
    app.client
        .post(app.url(&local_path(absolute_url)))
        .send()
        .await
        .unwrap()
}

/// Asserts an answered offer: 200 `{"state": state}`.
async fn assert_answered(response: reqwest::Response, state: &str) {
    assert_eq!(response.status(), 200, "offer answered");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "state": state }));
}

/// The session as the admin API shows it.
async fn session(app: &TestApp, id: &str) -> Value {
    let response = app.get_session(ADMIN_TOKEN, id).await;
    assert_eq!(response.status(), 200, "session {id}");
    response.json().await.unwrap()
}

/// Asserts a `call.ringing` payload (`data`) for `destination` of Alice's
/// session `id`.
fn assert_ringing(data: &Value, id: &str, destination: &str) {
    assert_eq!(data["session_id"], id, "{data}");
    assert_eq!(data["subscriber"], ALICE, "{data}");
    assert_eq!(data["caller"], CALLER, "{data}");
    assert_eq!(data["destination_id"], destination, "{data}");
    for (field, action) in [("accept_url", "accept"), ("decline_url", "decline")] {
        let url = data[field].as_str().unwrap_or_else(|| panic!("{data}"));
        let prefix = format!("{PUBLIC_BASE_URL}/v1/sessions/{id}/{action}?");
        assert!(url.starts_with(&prefix), "{url}");
        assert!(
            query_of(url)
                .get("capability")
                .is_some_and(|c| !c.is_empty()),
            "{url}"
        );
    }
    assert!(
        data["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{data}"
    );
}

// ---------------------------------------------------------------------------
// A Server-Sent Events client

/// `GET /v1/destinations/{destination}/events` with the given bearer token.
async fn stream_request(
    app: &TestApp,
    destination: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url(&format!("/v1/destinations/{destination}/events")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// A live stream (a destination's, or the admin's), read event by event.
pub(crate) struct EventStream {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl EventStream {
    /// Opens the stream. The server subscribes before it answers, so once
    /// this returns every later event reaches the stream.
    async fn open(app: &TestApp, destination: &str, token: &str) -> Self {
        let response = stream_request(app, destination, Some(token)).await;
        assert_eq!(response.status(), 200, "live stream of {destination}");
        Self::from_response(response)
    }

    /// Reads an open stream's answer.
    pub(crate) fn from_response(response: reqwest::Response) -> Self {
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                .boxed(),
            buffer: Vec::new(),
        }
    }

    /// The next event, as (`event:` name, parsed `data:`); keep-alive
    /// comments are skipped. Fails the test if none arrives within 10 s.
    pub(crate) async fn next_event(&mut self) -> (String, Value) {
        self.next_event_or_end()
            .await
            .expect("the live stream stays open")
    }

    /// The next event, or `None` when the server ends the stream. Fails the
    /// test if neither happens within 10 s.
    async fn next_event_or_end(&mut self) -> Option<(String, Value)> {
        tokio::time::timeout(Duration::from_secs(10), self.read_event())
            .await
            .expect("an event, or the end, arrives on the live stream within 10 s")
    }

    async fn read_event(&mut self) -> Option<(String, Value)> {
        let mut kind: Option<String> = None;
        let mut data: Vec<String> = Vec::new();
        loop {
            let line = self.next_line().await?;
            if line.is_empty() {
                if !data.is_empty() {
                    let data = data.join("\n");
                    let value = serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("data is not JSON ({e}): {data}"));
                    return Some((kind.unwrap_or_else(|| "message".into()), value));
                }
                kind = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => kind = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                _ => {}
            }
        }
    }

    async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(String::from_utf8(line).expect("the stream is UTF-8"));
            }
            // An error here is the server cutting the stream short: an end too.
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(_)) | None => return None,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Twilio's side

/// The voice webhook's parameters for a call from `CALLER` forwarded to
/// Alice's forwarding number.
fn voice_params(sid: &str) -> Vec<(&str, &str)> {
    vec![
        ("CallSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", CALLER),
        ("Caller", CALLER),
        ("To", FORWARDING_NUMBER),
        ("Called", FORWARDING_NUMBER),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("ApiVersion", "2010-04-01"),
    ]
}

/// The parameters Twilio posts for the callee's leg of a `<Dial>` (the
/// whisper URL and its Gather action).
fn leg_params(digits: Option<&str>) -> Vec<(&str, &str)> {
    let mut params = vec![
        ("CallSid", "CA00000000000000000000000000000leg"),
        ("ParentCallSid", "CA0000000000000000000000000000parent"),
        ("AccountSid", ACCOUNT_SID),
        ("From", CALLER),
        ("To", ALICE_DESK),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-dial"),
    ];
    if let Some(digits) = digits {
        params.push(("Digits", digits));
    }
    params
}

/// What a `<Dial>` rings, as (noun, address) pairs.
fn nouns(dial: &Element) -> Vec<(&str, &str)> {
    dial.children
        .iter()
        .map(|n| (n.name.as_str(), n.text.as_str()))
        .collect()
}

/// The query of an absolute URL.
fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url} is not an absolute URL: {e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

fn first_dial(response: &Element) -> &Element {
    assert_eq!(response.child_names(), ["Dial"], "{response:?}");
    &response.children[0]
}

// ---------------------------------------------------------------------------
// 1. The whole pick flow across two instances

#[tokio::test]
async fn forwarded_call_dials_the_accepting_destination_first_when_stream_ring_accept_and_long_poll_are_on_two_instances()
 {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    let alice = a.register(ALICE, &alice_pick(None)).await;
    // The second destination's stream: a stream that got every destination's
    // ringing would show the desk's first.
    let mut laptop_stream = EventStream::open(&a, "laptop", token(&alice, "laptop")).await;
    let mut pbx_stream = EventStream::open(&b, "pbx", token(&alice, "pbx")).await;

    let id = ring_pick(&b, &alice).await;

    let (kind, event) = laptop_stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_eq!(event["type"], "call.ringing", "{event}");
    assert!(event["timestamp"].is_string(), "{event}");
    assert_ringing(&event["data"], &id, "laptop");
    let (kind, pbx_event) = pbx_stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_ringing(&pbx_event["data"], &id, "pbx");
    assert_ne!(
        pbx_event["data"]["accept_url"], event["data"]["accept_url"],
        "each destination has its own capability"
    );

    let long_poll = spawn_long_poll(&a, &alice.device_token, &id);
    // Nothing accepted yet: the instruction is still `wait`, so the long-poll
    // cannot have answered.
    assert!(
        !long_poll.is_finished(),
        "the long-poll waits for an accept"
    );
    assert_eq!(session(&b, &id).await["state"], "notified");

    assert_answered(accept(&b, token(&alice, "laptop"), &id).await, "instructed").await;
    assert_eq!(long_poll_result(long_poll).await, "reject");
    assert_eq!(instruction(&b, &alice.device_token, &id, 0).await, "reject");

    let sid = "CA0000000000000000000000000000pick";
    let response = a.twiml("/twilio/voice", &voice_params(sid)).await;
    let dial = first_dial(&response);
    assert_eq!(nouns(dial), [("Client", "alice")], "{dial:?}");
    assert_eq!(query_of(dial.attr("action").unwrap())["session"], id);

    let s = session(&b, &id).await;
    assert_eq!(s["selected_destination"], "laptop", "{s}");
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["call_sid"], sid, "{s}");
    assert_eq!(s["mode"], "pick", "{s}");
    assert!(s["timeline"]["instructed_at"].is_string(), "{s}");
    // The destination itself may read the session it took.
    let as_laptop = a.get_session(token(&alice, "laptop"), &id).await;
    assert_eq!(as_laptop.status(), 200);
    let as_laptop: Value = as_laptop.json().await.unwrap();
    assert_eq!(as_laptop["selected_destination"], "laptop");
}

// ---------------------------------------------------------------------------
// 2. Capability URLs

#[tokio::test]
async fn capability_accept_url_accepts_once_when_posted_without_a_header() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(Some(&receiver))).await;
    let id = ring_pick(&app, &alice).await;
    let mut deliveries = receiver.take(3).await;
    deliveries.sort_by(|x, y| x.path.cmp(&y.path));
    let [desk, laptop, _pbx] = deliveries.as_slice() else {
        panic!("three deliveries");
    };
    assert!(desk.signature_valid);
    assert_eq!(desk.kind(), "call.ringing");
    assert_ringing(&desk.body["data"], &id, "desk");
    let desk_accept = desk.body["data"]["accept_url"].as_str().unwrap();
    let desk_decline = desk.body["data"]["decline_url"].as_str().unwrap();
    let laptop_accept = laptop.body["data"]["accept_url"].as_str().unwrap();

    // A capability that was never issued finds nothing.
    let forged = format!(
        "{PUBLIC_BASE_URL}/v1/sessions/{id}/accept?capability=rrc_{}",
        "A".repeat(43)
    );
    assert_error(post_capability(&app, &forged).await, 404, "not_found").await;
    // The genuine one, on another session's id, finds nothing either.
    let other = ring_pick(&app, &alice).await;
    receiver.take(3).await;
    let elsewhere = desk_accept.replace(&id, &other);
    assert_ne!(elsewhere, desk_accept);
    assert_error(post_capability(&app, &elsewhere).await, 404, "not_found").await;
    assert_eq!(
        session(&app, &other).await["selected_destination"],
        Value::Null
    );

    assert_answered(post_capability(&app, desk_accept).await, "instructed").await;
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 0).await,
        "reject"
    );
    assert_eq!(session(&app, &id).await["selected_destination"], "desk");

    assert_error(
        post_capability(&app, desk_accept).await,
        409,
        "already_answered",
    )
    .await;
    assert_error(
        post_capability(&app, desk_decline).await,
        409,
        "already_answered",
    )
    .await;
    assert_error(
        post_capability(&app, laptop_accept).await,
        409,
        "already_taken",
    )
    .await;
    assert_eq!(session(&app, &id).await["selected_destination"], "desk");
}

// ---------------------------------------------------------------------------
// 3. Concurrent accepts

/// Three destinations accept each of several sessions at once, on `apps`
/// in turn: exactly one wins each session.
async fn exactly_one_accept_wins(apps: [&TestApp; 3]) {
    let alice = apps[0].register(ALICE, &alice_pick(None)).await;
    let destinations = ["desk", "laptop", "pbx"];
    for round in 0..5 {
        let id = ring_pick(apps[round % 3], &alice).await;
        let responses = futures_util::future::join_all(
            destinations
                .iter()
                .zip(apps)
                .map(|(d, app)| accept(app, token(&alice, d), &id)),
        )
        .await;
        let mut winners = Vec::new();
        for (destination, response) in destinations.iter().zip(responses) {
            if response.status() == 200 {
                assert_answered(response, "instructed").await;
                winners.push(*destination);
            } else {
                assert_error(response, 409, "already_taken").await;
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let s = session(apps[2], &id).await;
        assert_eq!(s["selected_destination"], winners[0], "{s}");
        assert_eq!(
            instruction(apps[1], &alice.device_token, &id, 0).await,
            "reject"
        );
    }
}

#[tokio::test]
async fn accept_succeeds_for_exactly_one_destination_when_three_accept_at_once_on_two_instances() {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    exactly_one_accept_wins([&a, &b, &a]).await;
}

#[tokio::test]
async fn accept_succeeds_for_exactly_one_destination_when_three_accept_at_once_on_one_instance() {
    let app = spawn_app(Backend::Memory).await;
    exactly_one_accept_wins([&app, &app, &app]).await;
}

// ---------------------------------------------------------------------------
// 4 and 5. Nobody takes the call: `ignore`

#[tokio::test]
async fn instruction_becomes_ignore_when_every_destination_declines() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let id = ring_pick(&app, &alice).await;
    let long_poll = spawn_long_poll(&app, &alice.device_token, &id);

    assert_answered(decline(&app, token(&alice, "desk"), &id).await, "notified").await;
    assert_answered(decline(&app, token(&alice, "pbx"), &id).await, "notified").await;
    // One destination may still accept: the instruction is still `wait`.
    assert!(!long_poll.is_finished(), "the long-poll waits on");
    assert_eq!(instruction(&app, &alice.device_token, &id, 0).await, "wait");
    assert_error(
        decline(&app, token(&alice, "desk"), &id).await,
        409,
        "already_answered",
    )
    .await;

    assert_answered(
        decline(&app, token(&alice, "laptop"), &id).await,
        "instructed",
    )
    .await;
    assert_eq!(long_poll_result(long_poll).await, "ignore");
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 0).await,
        "ignore"
    );
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "instructed", "{s}");
    assert_eq!(s["selected_destination"], Value::Null, "{s}");
    assert!(s["timeline"]["instructed_at"].is_string(), "{s}");

    assert_error(
        accept(&app, token(&alice, "laptop"), &id).await,
        410,
        "session_over",
    )
    .await;
    assert_error(
        accept(&app, token(&alice, "desk"), &id).await,
        410,
        "session_over",
    )
    .await;
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 0).await,
        "ignore"
    );
}

#[tokio::test]
async fn instruction_becomes_ignore_when_the_pick_timeout_passes_without_an_accept() {
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["pick_timeout_secs"] = json!(3);
    let alice = app.register(ALICE, &body).await;
    // Reported first, so its wait ends no later than the polled one's.
    let unpolled = ring_pick(&app, &alice).await;
    let polled = ring_pick(&app, &alice).await;

    // The product's own 3 s timeout passes inside the long-poll's wait.
    let long_poll = spawn_long_poll(&app, &alice.device_token, &polled);
    app.clock.advance(Duration::from_secs(4));
    assert_eq!(long_poll_result(long_poll).await, "ignore");
    let s = session(&app, &polled).await;
    assert_eq!(s["state"], "instructed", "{s}");
    assert_error(
        accept(&app, token(&alice, "desk"), &polled).await,
        410,
        "session_over",
    )
    .await;

    // Nobody polled this one: the late accept itself finds the wait over.
    assert_error(
        accept(&app, token(&alice, "laptop"), &unpolled).await,
        410,
        "session_over",
    )
    .await;
    assert_eq!(
        instruction(&app, &alice.device_token, &unpolled, 0).await,
        "ignore"
    );
    assert_eq!(
        session(&app, &unpolled).await["selected_destination"],
        Value::Null
    );
}

// ---------------------------------------------------------------------------
// 6. The long-poll's own rules

#[tokio::test]
async fn instruction_long_poll_answers_wait_when_nothing_happens_within_wait() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let id = ring_pick(&app, &alice).await;
    assert_eq!(instruction(&app, &alice.device_token, &id, 1).await, "wait");
    assert_eq!(instruction(&app, &alice.device_token, &id, 0).await, "wait");
    let response = app
        .client
        .get(app.url(&format!("/v1/sessions/{id}/instruction")))
        .bearer_auth(&alice.device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(read_instruction(response).await, "wait");
}

#[tokio::test]
async fn instruction_long_poll_is_refused_when_wait_is_over_30_or_the_token_is_not_the_phones() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let bob = app.register(BOB, &bob_pick()).await;
    let id = ring_pick(&app, &alice).await;

    let body = assert_error(
        instruction_request(&app, Some(&alice.device_token), &id, 31).await,
        422,
        "invalid_field",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("wait"), "{body}");
    // 30 itself is allowed (answered at once, the instruction being settled).
    assert_answered(accept(&app, token(&alice, "desk"), &id).await, "instructed").await;
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 30).await,
        "reject"
    );

    assert_error(
        instruction_request(&app, Some(&bob.device_token), &id, 0).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        instruction_request(&app, None, &id, 0).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        instruction_request(&app, Some("rrd_not-a-token"), &id, 0).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        instruction_request(&app, Some(token(&alice, "desk")), &id, 0).await,
        401,
        "unauthorized",
    )
    .await;
}

// ---------------------------------------------------------------------------
// 7. Cancellation reaches streams and webhooks

#[tokio::test]
async fn stream_and_webhook_receive_call_cancelled_when_the_phone_answers() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["destinations"][0]["webhook_url"] = json!(receiver.url("/desk"));
    let alice = app.register(ALICE, &body).await;
    let mut stream = EventStream::open(&app, "laptop", token(&alice, "laptop")).await;
    let id = ring_pick(&app, &alice).await;
    let (kind, ringing) = stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_ringing(&ringing["data"], &id, "laptop");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.ringing");
    let desk_accept = hooked.body["data"]["accept_url"]
        .as_str()
        .unwrap()
        .to_owned();

    device_event(&app, &alice.device_token, &id, "answered").await;

    let (kind, cancelled) = stream.next_event().await;
    assert_eq!(kind, "call.cancelled", "{cancelled}");
    assert_eq!(cancelled["type"], "call.cancelled");
    assert_eq!(cancelled["data"]["session_id"], id);
    assert_eq!(cancelled["data"]["reason"], "answered_on_phone");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.cancelled", "{:?}", hooked.body);
    assert!(hooked.signature_valid);
    assert_eq!(hooked.body["data"]["session_id"], id);
    assert_eq!(hooked.body["data"]["reason"], "answered_on_phone");
    assert_eq!(session(&app, &id).await["state"], "cancelled");

    assert_error(
        accept(&app, token(&alice, "laptop"), &id).await,
        410,
        "session_over",
    )
    .await;
    assert_error(
        post_capability(&app, &desk_accept).await,
        410,
        "session_over",
    )
    .await;
}

#[tokio::test]
async fn stream_and_webhook_receive_call_cancelled_when_the_subscriber_is_deleted_while_ringing() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["destinations"][0]["webhook_url"] = json!(receiver.url("/desk"));
    let alice = app.register(ALICE, &body).await;
    let mut stream = EventStream::open(&app, "pbx", token(&alice, "pbx")).await;
    let id = ring_pick(&app, &alice).await;
    let (kind, ringing) = stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_ringing(&ringing["data"], &id, "pbx");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.ringing");
    let desk_accept = hooked.body["data"]["accept_url"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(app.delete_subscriber(ALICE).await.status(), 204);

    let (kind, cancelled) = stream.next_event().await;
    assert_eq!(kind, "call.cancelled", "{cancelled}");
    assert_eq!(cancelled["data"]["session_id"], id);
    assert_eq!(cancelled["data"]["reason"], "subscriber_deleted");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.cancelled", "{:?}", hooked.body);
    assert!(hooked.signature_valid);
    assert_eq!(hooked.body["data"]["session_id"], id);
    assert_eq!(hooked.body["data"]["reason"], "subscriber_deleted");
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "cancelled", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");

    assert_error(
        post_capability(&app, &desk_accept).await,
        410,
        "session_over",
    )
    .await;
}

// Regression: a cancelled pick-mode session was once brought back to
// `instructed` when its pick timeout passed under a long-poll.
#[tokio::test]
async fn cancelled_session_stays_cancelled_when_the_pick_timeout_passes_under_a_long_poll() {
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["pick_timeout_secs"] = json!(3);
    let alice = app.register(ALICE, &body).await;
    let id = ring_pick(&app, &alice).await;
    device_event(&app, &alice.device_token, &id, "answered").await;
    let cancelled = session(&app, &id).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");

    // Whatever the phone is told now, it is never to reject the call.
    let long_poll = spawn_long_poll(&app, &alice.device_token, &id);
    app.clock.advance(Duration::from_secs(4));
    assert_ne!(long_poll_result(long_poll).await, "reject");

    let s = session(&app, &id).await;
    assert_eq!(
        s["state"], "cancelled",
        "an outcome takes no more changes: {s}"
    );
    assert_eq!(s["timeline"]["ended_at"], cancelled["timeline"]["ended_at"]);
    assert_eq!(
        s["timeline"]["instructed_at"], cancelled["timeline"]["instructed_at"],
        "{s}"
    );
}

// ---------------------------------------------------------------------------
// 8. Who may open a stream

#[tokio::test]
async fn event_stream_is_refused_when_the_token_is_missing_wrong_or_not_that_destinations() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;

    assert_error(
        stream_request(&app, "laptop", None).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some("rrt_wrong")).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some(token(&alice, "desk"))).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some(&alice.device_token)).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some(ADMIN_TOKEN)).await,
        401,
        "unauthorized",
    )
    .await;
    // The right token opens it.
    EventStream::open(&app, "laptop", token(&alice, "laptop")).await;
}

// A replaced token is revoked for every request, open streams included:
// they end, and a client whose token still holds reconnects.
#[tokio::test]
async fn event_stream_ends_when_its_token_is_rotated() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let mut stream = EventStream::open(&app, "laptop", token(&alice, "laptop")).await;

    let response = app
        .client
        .put(app.url(&format!("/v1/subscribers/{ALICE}?rotate_tokens=true")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&alice_pick(None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new_laptop = rotated["destination_tokens"]["laptop"].as_str().unwrap();
    assert_ne!(new_laptop, token(&alice, "laptop"));
    assert_error(
        stream_request(&app, "laptop", Some(token(&alice, "laptop"))).await,
        401,
        "unauthorized",
    )
    .await;
    let device_token = rotated["device_token"].as_str().unwrap();
    let ring = app.ring(device_token, &json!({"caller": CALLER})).await;
    assert_eq!(ring.status(), 201);

    let next = stream.next_event_or_end().await;
    assert!(
        next.is_none(),
        "the old token's stream still hears the call: {next:?}"
    );
}

// ---------------------------------------------------------------------------
// 9. Screening

#[tokio::test]
async fn screen_asks_the_destination_to_press_1_when_the_destination_screens() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app
        .register(
            ALICE,
            &json!({
                "forwarding_number": FORWARDING_NUMBER,
                "mode": "auto",
                "strategy": "simultaneous",
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK, "screening": true},
                    {"id": "laptop", "kind": "client", "address": "alice", "screening": false}
                ]
            }),
        )
        .await;
    let response = app
        .ring(&alice.device_token, &json!({"caller": CALLER}))
        .await;
    assert_eq!(response.status(), 201);

    let voice = app
        .twiml(
            "/twilio/voice",
            &voice_params("CA000000000000000000000000000screen"),
        )
        .await;
    let dial = first_dial(&voice);
    assert_eq!(
        nouns(dial),
        [("Number", ALICE_DESK), ("Client", "alice")],
        "{dial:?}"
    );
    // Every noun tells who answered; only the desk's whisper screens.
    let laptop = &dial.children[1];
    let pickup = laptop.attr("url").expect("the laptop's pickup URL");
    assert!(pickup.contains("destination=laptop"), "{pickup}");
    let desk = &dial.children[0];
    assert_eq!(desk.attr("method"), Some("POST"), "{desk:?}");
    let whisper = desk.attr("url").expect("a whisper URL");
    assert!(
        whisper.starts_with(&format!("{PUBLIC_BASE_URL}/twilio/screen?")),
        "{whisper}"
    );
    let query = query_of(whisper);
    assert_eq!(query.get("subscriber").map(String::as_str), Some(ALICE));
    assert_eq!(query.get("caller").map(String::as_str), Some(CALLER));

    let screen = app.twiml(&local_path(whisper), &leg_params(None)).await;
    assert_eq!(screen.child_names(), ["Gather", "Hangup"], "{screen:?}");
    let gather = screen.child("Gather").unwrap();
    assert_eq!(gather.attr("numDigits"), Some("1"), "{gather:?}");
    assert_eq!(gather.attr("method"), Some("POST"), "{gather:?}");
    let action = gather.attr("action").expect("a Gather action");
    assert!(
        action.starts_with(&format!("{PUBLIC_BASE_URL}/twilio/screen-result?")),
        "{action}"
    );
    let prompt = &gather.child("Say").unwrap().text;
    assert!(prompt.contains("2 0 2 5 5 5 0 3 0 2"), "{prompt}");

    // The press of 1 bridges the call: an empty answer.
    let taken = app.twiml(&local_path(action), &leg_params(Some("1"))).await;
    assert!(taken.children.is_empty(), "{taken:?}");
    for refused in [Some("2"), None] {
        let response = app.twiml(&local_path(action), &leg_params(refused)).await;
        assert_eq!(
            response.child_names(),
            ["Hangup"],
            "{refused:?}: {response:?}"
        );
    }
}

#[tokio::test]
async fn screen_is_refused_when_the_signature_is_missing() {
    let app = spawn_app(Backend::Memory).await;
    let path = "/twilio/screen?subscriber=%2B12025550199&caller=%2B12025550302";
    let response = app
        .client
        .post(app.url(path))
        .form(&leg_params(None))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "invalid_signature").await;
}

// ---------------------------------------------------------------------------
// §9 taken elsewhere

/// On Redis the accept reaches another instance than the ring report and
/// the stream; on memory there is one.
async fn every_other_destination_hears_call_taken_when_one_accepts(backend: Backend) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let a = spawn_app(backend).await;
    let second = match &a.backend {
        Backend::Memory => None,
        _ => Some(
            spawn_app_with(
                a.backend.clone(),
                &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
            )
            .await,
        ),
    };
    let b = second.as_ref().unwrap_or(&a);
    let alice = a.register(ALICE, &alice_pick(Some(&receiver))).await;
    let mut laptop_stream = EventStream::open(b, "laptop", token(&alice, "laptop")).await;
    let id = ring_pick(&a, &alice).await;
    assert_eq!(laptop_stream.next_event().await.0, "call.ringing");
    for _ in 0..3 {
        assert_eq!(receiver.next().await.kind(), "call.ringing");
    }

    assert_answered(accept(b, token(&alice, "desk"), &id).await, "instructed").await;

    // On the other destinations' stream and webhooks, with the winner.
    let (kind, data) = laptop_stream.next_event().await;
    assert_eq!(kind, "call.taken");
    assert_eq!(data["data"]["destination_id"], "desk", "{data}");
    assert_eq!(data["data"]["session_id"], id.as_str(), "{data}");
    let mut told: Vec<String> = Vec::new();
    for _ in 0..2 {
        let taken = receiver.next().await;
        assert_eq!(taken.kind(), "call.taken", "{:?}", taken.body);
        assert!(taken.signature_valid);
        assert_eq!(taken.body["data"]["destination_id"], "desk");
        told.push(taken.path);
    }
    told.sort();
    assert_eq!(told, ["/laptop", "/pbx"], "not the winner");
}

#[tokio::test]
async fn every_other_destination_hears_call_taken_when_one_accepts_on_memory() {
    every_other_destination_hears_call_taken_when_one_accepts(Backend::Memory).await;
}

#[tokio::test]
async fn every_other_destination_hears_call_taken_when_one_accepts_across_two_instances() {
    every_other_destination_hears_call_taken_when_one_accepts(Backend::redis()).await;
}

// ---------------------------------------------------------------------------
// §9 every session reaches an outcome

/// Nobody accepts, the phone is told to let it ring and never says how the
/// call ended: at the end of its lifetime the session ends `expired` and the
/// destinations' offers are withdrawn (`call.cancelled`, `expired`), once,
/// whichever instance sweeps.
async fn a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl(
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let short = [("FORWARD_TIMEOUT_SECS", "1"), ("SESSION_TTL_SECS", "5")];
    let a = spawn_app_with(backend, &short).await;
    let b = match &a.backend {
        Backend::Memory => None,
        _ => {
            let prefix = [("REDIS_KEY_PREFIX", a.config.redis_key_prefix.as_str())];
            Some(spawn_app_with(a.backend.clone(), &[short.as_slice(), &prefix].concat()).await)
        }
    };
    let mut body = alice_pick(Some(&receiver));
    body["pick_timeout_secs"] = json!(3);
    let alice = a.register(ALICE, &body).await;
    let id = ring_pick(&a, &alice).await;
    for _ in 0..3 {
        assert_eq!(receiver.next().await.kind(), "call.ringing");
    }

    let mut withdrawn: Vec<String> = Vec::new();
    for _ in 0..3 {
        let cancelled = receiver.next().await;
        assert_eq!(cancelled.kind(), "call.cancelled", "{:?}", cancelled.body);
        assert_eq!(
            cancelled.body["data"]["reason"], "expired",
            "{:?}",
            cancelled.body
        );
        assert_eq!(cancelled.body["data"]["session_id"], id.as_str());
        withdrawn.push(cancelled.path);
    }
    withdrawn.sort();
    assert_eq!(withdrawn, ["/desk", "/laptop", "/pbx"], "once each");
    let reader = b.as_ref().unwrap_or(&a);
    let s = session(reader, &id).await;
    assert_eq!(s["state"], "expired", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");
    // Counted by whichever instance swept it.
    let mut metrics = String::new();
    for app in std::iter::once(&a).chain(&b) {
        let url = format!("{}/metrics", app.address);
        metrics += &app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    assert_eq!(
        metrics.matches(r#"outcome="expired"} 1"#).count(),
        1,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl_on_memory() {
    a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl(Backend::Memory).await;
}

#[tokio::test]
async fn a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl_across_instances_on_redis()
 {
    a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl(Backend::redis())
        .await;
}

// ---------------------------------------------------------------------------
// §15 stream limits

#[tokio::test]
async fn a_live_stream_past_the_limits_is_429_with_retry_after() {
    let app = spawn_app_with(
        Backend::Memory,
        &[("MAX_STREAMS_PER_DESTINATION", "2"), ("MAX_STREAMS", "3")],
    )
    .await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let _desk = [
        EventStream::open(&app, "desk", token(&alice, "desk")).await,
        EventStream::open(&app, "desk", token(&alice, "desk")).await,
    ];

    let third_for_desk = stream_request(&app, "desk", Some(token(&alice, "desk"))).await;
    assert!(third_for_desk.headers().contains_key("retry-after"));
    assert_error(third_for_desk, 429, "rate_limited").await;

    let _laptop = EventStream::open(&app, "laptop", token(&alice, "laptop")).await;
    let past_the_instance = stream_request(&app, "pbx", Some(token(&alice, "pbx"))).await;
    assert_error(past_the_instance, 429, "rate_limited").await;
}

#[tokio::test]
async fn rotating_the_tokens_revokes_the_capabilities_already_sent() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::redis()).await;
    let alice = app.register(ALICE, &alice_pick(Some(&receiver))).await;
    let id = ring_pick(&app, &alice).await;
    let ringing = receiver.take(3).await;
    let accept_url = ringing[0].body["data"]["accept_url"]
        .as_str()
        .unwrap()
        .to_owned();

    let rotated = app
        .client
        .put(app.url(&format!("/v1/subscribers/{ALICE}?rotate_tokens=true")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&alice_pick(Some(&receiver)))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let fresh: Value = rotated.json().await.unwrap();

    assert_error(post_capability(&app, &accept_url).await, 404, "not_found").await;
    assert_eq!(
        session(&app, &id).await["selected_destination"],
        Value::Null
    );
    // The new destination token still answers the offer.
    let desk_token = fresh["destination_tokens"]["desk"].as_str().unwrap();
    assert_answered(accept(&app, desk_token, &id).await, "instructed").await;
}
