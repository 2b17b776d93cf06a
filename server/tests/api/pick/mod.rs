//! Pick mode (docs/api.md: the instruction long-poll, destinations, sessions,
//! screening) from the outside: destinations hear of a call on their live
//! stream (SSE) or webhook, accept or decline it by token or capability URL,
//! the phone long-polls its instruction, and the forwarded call dials the
//! destination that accepted. Across two instances on one Redis where it
//! matters.

mod instruction;
mod offers;
mod outcomes;
mod resume;
mod screening;
mod streams;

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
    let instruction = body["instruction"]
        .as_str()
        .unwrap_or_else(|| panic!("no instruction in {body}"));
    // `ignore` says why; nothing else carries anything more.
    match (instruction, &body["reason"]) {
        ("ignore", Value::String(reason)) => {
            assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
            format!("ignore: {reason}")
        }
        (_, Value::Null) => {
            assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
            instruction.to_owned()
        }
        _ => panic!("a reason goes with ignore only: {body}"),
    }
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
    /// The `id:` of the last event read (what a reconnect sends as
    /// `Last-Event-ID`), as a browser's `EventSource` keeps it.
    pub(crate) last_id: Option<String>,
}

impl EventStream {
    /// Opens the stream. The server subscribes before it answers, so once
    /// this returns every later event reaches the stream.
    async fn open(app: &TestApp, destination: &str, token: &str) -> Self {
        let response = stream_request(app, destination, Some(token)).await;
        assert_eq!(response.status(), 200, "live stream of {destination}");
        Self::from_response(response)
    }

    /// Opens the stream again after an event (`Last-Event-ID`): what it
    /// missed comes first.
    async fn resume(app: &TestApp, destination: &str, token: &str, last_id: &str) -> Self {
        let response = app
            .client
            .get(app.url(&format!("/v1/destinations/{destination}/events")))
            .bearer_auth(token)
            .header("Last-Event-ID", last_id)
            .send()
            .await
            .unwrap();
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
            last_id: None,
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
        let mut id: Option<String> = None;
        loop {
            let line = self.next_line().await?;
            if line.is_empty() {
                // As a browser does: the id counts, empty data dispatches
                // nothing (the stream's opening position).
                if id.is_some() {
                    self.last_id = id.take();
                }
                if !data.is_empty() && data != [""] {
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
                "id" => id = Some(value.to_owned()),
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
