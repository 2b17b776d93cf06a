//! The web console (docs/console.md) in a real headless Chromium, driven over
//! WebDriver: a destination takes a call, a call cancelled on the phone goes
//! away, the admin creates a subscriber and sees a 422 at its field.

#[path = "console/harness.rs"]
mod harness;

use fantoccini::Locator;
use harness::{
    ADMIN_TOKEN, TestApp, button, click, deliver_push, devtools, failed_requests, field,
    in_service_worker, sign_in, spawn_app, wait_until, with_browser,
};
use ringrelay_testkit::receiver::{Behaviour, WebhookReceiver};
use serde_json::{Value, json};

const SUBSCRIBER: &str = "+12025550199";
const FORWARDING: &str = "+12025550100";
const CALLER: &str = "+12025550302";

/// A pick-mode subscriber: the phone waits until a destination accepts.
async fn pick_subscriber(app: &TestApp) -> Value {
    app.register(
        SUBSCRIBER,
        &json!({
            "forwarding_number": FORWARDING,
            "mode": "pick",
            "destinations": [
                {"id": "desk", "kind": "phone", "address": "+12025550201"},
                {"id": "laptop", "kind": "client", "address": "alice"},
            ],
        }),
    )
    .await
}

/// Signs in as `desk` and waits for its live stream to be open.
async fn sign_in_as_desk(client: &fantoccini::Client, app: &TestApp, registered: &Value) {
    let token = registered["destination_tokens"]["desk"].as_str().unwrap();
    sign_in(client, app, token).await;
    wait_until(
        client,
        "the destination's stream is open",
        "document.getElementById('stream-status').textContent === 'Live: connected.'",
    )
    .await;
}

async fn ring(app: &TestApp, registered: &Value) -> String {
    let device = registered["device_token"].as_str().unwrap();
    let response = app
        .post_json("/v1/ring", device, &json!({"caller": CALLER}))
        .await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["instruction"], "wait");
    answer["session_id"].as_str().unwrap().to_owned()
}

const A_CALL_SHOWS: &str = "[...document.querySelectorAll('#calls .call')].some(li => \
     li.querySelector('.caller').textContent === '+12025550302' \
     && li.textContent.includes('+12025550199'))";

/// A live call's Accept and Decline buttons (XPath: found by their names).
const LIVE_CALL_ACCEPT: &str = "//li[contains(@class,'call')]//button[normalize-space()='Accept']";
const LIVE_CALL_DECLINE: &str =
    "//li[contains(@class,'call')]//button[normalize-space()='Decline']";

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/console.js", "javascript"),
        ("/console/console.css", "text/css"),
        ("/docs", "text/html"),
        ("/console/docs.js", "javascript"),
        ("/console/docs.css", "text/css"),
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(
            header("content-type").contains(kind),
            "{path}: {}",
            header("content-type")
        );
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
    }
    let missing = app
        .http
        .get(app.url("/console/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_api_reference_renders_from_the_binary_under_the_strict_policy() {
    let app = spawn_app().await;
    // A browser that opens the bare address lands on the console.
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 302);
    assert_eq!(root.headers()["location"], "/console");
    with_browser(async |client| {
        client.goto(&app.url("/docs")).await.unwrap();
        wait_until(
            client,
            "the reference is rendered",
            "document.getElementById('docs').getAttribute('aria-busy') === 'false'",
        )
        .await;
        let rendered = client
            .execute(
                "const text = (selector) => [...document.querySelectorAll(selector)].map(e => e.textContent);\
                 return { operations: text('.operation h3'), sections: text('main > section > h2') };",
                vec![],
            )
            .await
            .unwrap();
        let operations: Vec<String> =
            serde_json::from_value(rendered["operations"].clone()).unwrap();
        for expected in ["post/v1/ring", "put/v1/subscribers/{number}", "post/twilio/voice", "getreadyz", "postcall.ringing", "SubscriberSpec", "CallRingingEvent"] {
            assert!(
                operations.iter().any(|o| o.replace(['/', ' '], "").contains(&expected.replace('/', ""))),
                "{expected} is not on the page: {operations:?}"
            );
        }
        let sections = rendered["sections"].to_string();
        for expected in ["admin", "device", "cpaas", "operations", "Events (webhooks and live streams)", "Schemas"] {
            assert!(sections.contains(expected), "{expected}: {sections}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_destination_accepts_a_ringing_call_and_the_forwarded_call_dials_it() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    let device = registered["device_token"].as_str().unwrap().to_owned();
    with_browser(async |client| {
        sign_in_as_desk(client, &app, &registered).await;
        // The token is kept in sessionStorage, never in the URL.
        let url = client.current_url().await.unwrap();
        assert!(url.query().is_none() && url.fragment().is_none(), "{url}");
        // Notifications allowed: a stand-in records what the page shows.
        client
            .execute(
                "window.__notes = []; window.Notification = class { \
                   static permission = 'granted'; \
                   constructor(title, options) { window.__notes.push([title, options.body]); } };",
                vec![],
            )
            .await
            .unwrap();
        let session = ring(&app, &registered).await;
        wait_until(client, "the ringing call shows", A_CALL_SHOWS).await;
        let notes = client
            .execute("return window.__notes;", vec![])
            .await
            .unwrap();
        assert_eq!(
            notes,
            json!([["Incoming call", "+12025550302 → +12025550199"]])
        );

        click(client, Locator::XPath(LIVE_CALL_ACCEPT)).await;
        wait_until(
            client,
            "the outcome shows",
            "document.querySelector('#calls .call .outcome')?.textContent === 'accepted'",
        )
        .await;
        let (status, instruction) = app
            .get_json(
                &format!("/v1/sessions/{session}/instruction?wait=5"),
                &device,
            )
            .await;
        assert_eq!(
            (status, instruction),
            (200, json!({"instruction": "reject"}))
        );

        // The carrier forwards; Twilio asks what to do: dial the desk.
        let response = app
            .twilio(
                "/twilio/voice",
                &[
                    ("CallSid", "CA00000000000000000000000000000001"),
                    ("From", CALLER),
                    ("To", FORWARDING),
                    ("CallStatus", "ringing"),
                ],
            )
            .await;
        assert_eq!(response.status(), 200);
        let twiml = response.text().await.unwrap();
        let dial = twiml.split("<Dial").nth(1).expect("a Dial");
        let first_noun = dial.split("</Dial>").next().unwrap();
        assert!(first_noun.contains(">+12025550201</Number>"), "{twiml}");
        assert!(
            !first_noun.contains("<Client"),
            "only the accepting destination first: {twiml}"
        );

        // The second button press is refused by the page: it works once.
        let disabled = client
            .execute(
                "return document.querySelector('#calls .call button').disabled;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(disabled, json!(true));
    })
    .await;
}

#[tokio::test]
async fn a_call_that_rings_while_the_stream_reconnects_shows_after_it() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    with_browser(async |client| {
        sign_in_as_desk(client, &app, &registered).await;
        // Replacing the subscriber ends its streams; the token still holds,
        // so the console reconnects (after a second), with Last-Event-ID.
        let replaced = app
            .http
            .put(app.url(&format!("/v1/subscribers/{SUBSCRIBER}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({
                "forwarding_number": FORWARDING,
                "mode": "pick",
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": "+12025550201"},
                    {"id": "laptop", "kind": "client", "address": "alice"},
                ],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(replaced.status(), 200);
        const RECONNECTING: &str =
            "document.getElementById('stream-status').textContent === 'Live: reconnecting…'";
        wait_until(client, "the stream dropped", RECONNECTING).await;
        ring(&app, &registered).await;
        let still = client
            .execute(&format!("return {RECONNECTING};"), vec![])
            .await
            .unwrap();
        assert_eq!(still, json!(true), "the call rang while no stream was open");
        wait_until(client, "the call that rang meanwhile shows", A_CALL_SHOWS).await;
    })
    .await;
}

/// Records, in the console's service worker, the notifications it shows
/// and closes. Headless Chromium does not keep a worker's notifications
/// reliably (seen with Chromium 156: `showNotification` resolves, and
/// `getNotifications()` is empty a moment later), so the test stands in for
/// the notification centre, as the worker's own calls see it.
const RECORD_NOTIFICATIONS: &str = "(() => { \
     self.__shown = []; \
     self.registration.showNotification = (title, options) => { \
       for (const n of self.__shown) if (n.tag === options.tag) n.closed = true; \
       self.__shown.push({title, body: options.body, tag: options.tag, data: options.data, \
         actions: (options.actions || []).map(a => a.title), closed: false, \
         close() { this.closed = true; }}); \
       return Promise.resolve(); }; \
     self.registration.getNotifications = (filter) => Promise.resolve(self.__shown.filter( \
       n => !n.closed && (!filter || !filter.tag || n.tag === filter.tag))); \
     return true; })()";

/// The notifications the worker shows, as `{title, body, tag, actions}`.
const SHOWN: &str = "Promise.resolve(self.__shown.filter(n => !n.closed).map(n => \
     ({title: n.title, body: n.body, tag: n.tag, actions: n.actions})))";

/// Waits until what the worker shows satisfies `shows`; that.
async fn worker_shows(client: &fantoccini::Client, shows: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let shown = in_service_worker(client, SHOWN).await;
        if shows(&shown) {
            return shown;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the worker shows {shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The path of `url`, an absolute URL of the service.
fn path_of(url: &str) -> &str {
    url.find("/v1/").map_or(url, |at| &url[at..])
}

#[tokio::test]
async fn with_the_console_closed_a_pushed_call_shows_and_its_accept_action_accepts_it() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app().await;
    let registered = app
        .register(
            SUBSCRIBER,
            &json!({
                "forwarding_number": FORWARDING,
                "mode": "pick",
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": "+12025550201",
                     "webhook_url": receiver.url("/desk")},
                    {"id": "laptop", "kind": "client", "address": "alice"},
                ],
            }),
        )
        .await;
    let device = registered["device_token"].as_str().unwrap().to_owned();
    with_browser(async |client| {
        sign_in_as_desk(client, &app, &registered).await;
        devtools(
            client,
            "Browser.grantPermissions",
            json!({"origin": app.address, "permissions": ["notifications"]}),
        )
        .await;
        button(client, "", "Notify me when the console is closed")
            .await
            .click()
            .await
            .unwrap();
        // The worker registers, under the page's strict policy. (A browser
        // with no network reaches no push service, so the page's own
        // subscription never completes here: the pushes below come through
        // DevTools, as a push service would deliver them.)
        let started = std::time::Instant::now();
        loop {
            let active = client
                .execute_async(
                    "const done = arguments[0]; navigator.serviceWorker.getRegistration('console/') \
                       .then(r => done(r && r.active ? r.active.scriptURL : null));",
                    vec![],
                )
                .await
                .unwrap();
            if active == json!(format!("{}/console/sw.js", app.address)) {
                break;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(15), "{active}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(in_service_worker(client, RECORD_NOTIFICATIONS).await, json!(true));

        // A call rings: the push a browser would get carries the event the
        // desk's webhook got.
        let session = ring(&app, &registered).await;
        let ringing = receiver.next().await;
        assert_eq!(ringing.kind(), "call.ringing");
        deliver_push(client, &app.address, "/console/", &ringing.body.to_string()).await;
        let shown = worker_shows(client, |shown| shown != &json!([])).await;
        assert_eq!(
            shown,
            json!([{"title": "Incoming call", "body": "+12025550302 → +12025550199",
                    "tag": session, "actions": ["Accept", "Decline"]}])
        );

        // Accept, with no tab involved: the worker posts the capability URL
        // and says what came of it in the offer's place.
        let pressed = in_service_worker(
            client,
            &format!(
                "(() => {{ const n = self.__shown.find(n => n.tag === '{session}' && !n.closed); \
                   const click = new Event('notificationclick'); \
                   Object.defineProperties(click, \
                     {{notification: {{value: n}}, action: {{value: 'accept'}}}}); \
                   self.dispatchEvent(click); return n.data.accept_url; }})()"
            ),
        )
        .await;
        assert_eq!(
            path_of(pressed.as_str().unwrap()),
            path_of(ringing.body["data"]["accept_url"].as_str().unwrap())
        );
        let (status, instruction) = app
            .get_json(&format!("/v1/sessions/{session}/instruction?wait=5"), &device)
            .await;
        assert_eq!((status, instruction), (200, json!({"instruction": "reject"})));
        worker_shows(client, |shown| {
            shown == &json!([{"title": "Accepted", "body": "", "tag": session, "actions": []}])
        })
        .await;

        // Another call rings, and is taken on the phone: its end closes it.
        let second = ring(&app, &registered).await;
        let ringing = receiver.next().await;
        deliver_push(client, &app.address, "/console/", &ringing.body.to_string()).await;
        worker_shows(client, |shown| {
            shown.as_array().unwrap().iter().any(|n| n["tag"] == second.as_str())
        })
        .await;
        let response = app
            .post_json(&format!("/v1/sessions/{second}/events"), &device, &json!({"event": "answered"}))
            .await;
        assert_eq!(response.status(), 204);
        let cancelled = loop {
            let hooked = receiver.next().await;
            if hooked.kind() == "call.cancelled" {
                break hooked;
            }
        };
        deliver_push(client, &app.address, "/console/", &cancelled.body.to_string()).await;
        worker_shows(client, |shown| {
            !shown.as_array().unwrap().iter().any(|n| n["tag"] == second.as_str())
        })
        .await;

        // A voicemail's transcription (as call.voicemail_transcribed
        // carries it) shows what the caller said.
        let transcribed = json!({
            "type": "call.voicemail_transcribed",
            "timestamp": "2026-11-26T15:52:10.000Z",
            "data": {"session_id": second, "subscriber": SUBSCRIBER, "caller": "+12025550302",
                     "caller_name": "JANE DOE", "caller_verification": "verified",
                     "recording_url": "https://api.twilio.com/rec/RE1",
                     "text": "Call me back about <b>Friday</b>.", "status": "completed"}
        });
        deliver_push(client, &app.address, "/console/", &transcribed.to_string()).await;
        worker_shows(client, |shown| {
            shown.as_array().unwrap().iter().any(|n| {
                n == &json!({"title": "Voicemail from JANE DOE",
                             "body": "Call me back about <b>Friday</b>.",
                             "tag": second, "actions": []})
            })
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_call_cancelled_on_the_phone_disappears() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    let device = registered["device_token"].as_str().unwrap().to_owned();
    with_browser(async |client| {
        sign_in_as_desk(client, &app, &registered).await;
        let session = ring(&app, &registered).await;
        wait_until(client, "the ringing call shows", A_CALL_SHOWS).await;

        let response = app
            .post_json(
                &format!("/v1/sessions/{session}/events"),
                &device,
                &json!({"event": "answered"}),
            )
            .await;
        assert_eq!(response.status(), 204);
        wait_until(
            client,
            "the call is gone, and listed as cancelled",
            "document.querySelectorAll('#calls .call').length === 0 \
             && document.getElementById('recent').textContent.includes('cancelled')",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_declined_call_shows_its_outcome_among_recent_calls() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    with_browser(async |client| {
        sign_in_as_desk(client, &app, &registered).await;
        ring(&app, &registered).await;
        wait_until(client, "the ringing call shows", A_CALL_SHOWS).await;
        click(client, Locator::XPath(LIVE_CALL_DECLINE)).await;
        wait_until(
            client,
            "the call is listed as declined",
            "document.querySelectorAll('#calls .call').length === 0 \
             && document.getElementById('recent').textContent.includes('declined')",
        )
        .await;
    })
    .await;
}

/// WebDriver's keys: Tab and Enter.
const TAB: &str = "\u{e004}";
const ENTER: &str = "\u{e007}";

#[tokio::test]
async fn the_keyboard_alone_signs_in_and_accepts() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    let token = registered["destination_tokens"]["desk"].as_str().unwrap();
    with_browser(async |client| {
        client.goto(&app.url("/console")).await.unwrap();
        // Token, Enter.
        field(client, "Token").await.click().await.unwrap();
        let typing = client.active_element().await.unwrap();
        typing.send_keys(&format!("{token}{ENTER}")).await.unwrap();
        wait_until(
            client,
            "the destination's stream is open",
            "document.getElementById('stream-status').textContent === 'Live: connected.'",
        )
        .await;
        ring(&app, &registered).await;
        wait_until(client, "the ringing call shows", A_CALL_SHOWS).await;
        // Tab reaches Accept; Enter presses it.
        for _ in 0..10 {
            let focused = client.active_element().await.unwrap();
            if focused.text().await.unwrap() == "Accept" {
                focused.send_keys(ENTER).await.unwrap();
                break;
            }
            focused.send_keys(TAB).await.unwrap();
        }
        wait_until(
            client,
            "the call is accepted",
            "document.querySelector('#calls .call .outcome')?.textContent === 'accepted'",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_at_sign_in() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    with_browser(async |client| {
        sign_in(client, &app, "rrt_not-a-real-token").await;
        wait_until(
            client,
            "the sign-in says why",
            "document.getElementById('signin-error').textContent === 'This token is not valid.'",
        )
        .await;
        // The phone's token has no view here: the sign-in says so.
        let device = registered["device_token"].as_str().unwrap();
        sign_in(client, &app, device).await;
        wait_until(
            client,
            "the sign-in says it is the device token",
            "document.getElementById('signin-error').textContent.startsWith(\"This is the phone's device token\")",
        )
        .await;
        let kept = client
            .execute("return sessionStorage.length;", vec![])
            .await
            .unwrap();
        assert_eq!(kept, json!(0), "a refused token is not kept");
    })
    .await;
}

#[tokio::test]
async fn the_token_alone_signs_in_to_the_right_view_without_a_failed_request() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    with_browser(async |client| {
        let token = registered["destination_tokens"]["laptop"].as_str().unwrap();
        sign_in(client, &app, token).await;
        wait_until(
            client,
            "the destination's view is shown, named by /v1/me",
            "document.getElementById('destination-title').textContent === 'Incoming calls for laptop' \
             && document.getElementById('stream-status').textContent === 'Live: connected.'",
        )
        .await;
        assert_eq!(failed_requests(client).await, json!([]));
        button(client, "", "Sign out").await.click().await.unwrap();

        sign_in(client, &app, ADMIN_TOKEN).await;
        wait_until(
            client,
            "the admin's view is shown",
            "!document.getElementById('admin-view').hidden \
             && document.querySelector('#subscribers tbody tr') !== null",
        )
        .await;
        assert_eq!(failed_requests(client).await, json!([]));
    })
    .await;
}

#[tokio::test]
async fn the_admin_creates_a_subscriber_and_sees_field_errors_at_the_field() {
    let app = spawn_app().await;
    with_browser(async |client| {
        sign_in(client, &app, ADMIN_TOKEN).await;
        wait_until(
            client,
            "the admin view shows",
            "!document.getElementById('admin-view').hidden",
        )
        .await;
        button(client, "", "New subscriber").await.click().await.unwrap();
        field(client, "Number").await.send_keys(SUBSCRIBER).await.unwrap();
        field(client, "Forwarding number")
            .await
            .send_keys(FORWARDING)
            .await
            .unwrap();
        button(client, "", "Save").await.click().await.unwrap();
        wait_until(
            client,
            "the subscriber is created",
            "document.getElementById('form-status').textContent === 'Created +12025550199.'",
        )
        .await;
        let (status, stored) = app
            .get_json(&format!("/v1/subscribers/{SUBSCRIBER}"), ADMIN_TOKEN)
            .await;
        assert_eq!(status, 200);
        assert_eq!(stored["forwarding_number"], FORWARDING);
        assert_eq!(stored["destinations"][0]["id"], "desk");
        // Its forwarding codes, with copy buttons.
        wait_until(
            client,
            "the forwarding codes show",
            "document.getElementById('codes').textContent.includes('**67*+12025550100#')",
        )
        .await;
        client
            .find(Locator::Css("#codes button[aria-label='Copy gsm busy activate code']"))
            .await
            .unwrap();

        let codes_from_the_api = codes_text(client).await;

        // Signed in still after a reload (sessionStorage); Load opens a
        // subscriber by number, and the page's own forwarding codes are the API's.
        client.refresh().await.unwrap();
        wait_until(
            client,
            "the admin view is back",
            "!document.getElementById('admin-view').hidden",
        )
        .await;
        field(client, "Number").await.send_keys(SUBSCRIBER).await.unwrap();
        button(client, "", "Load").await.click().await.unwrap();
        wait_until(
            client,
            "the subscriber is loaded",
            "document.getElementById('form-status').textContent === 'Loaded +12025550199.'",
        )
        .await;
        assert_eq!(codes_text(client).await, codes_from_the_api);
        let shown = field(client, "Forwarding number").await.prop("value").await.unwrap();
        assert_eq!(shown.as_deref(), Some(FORWARDING));

        // A number that is none: 422, shown next to its field.
        let forwarding = field(client, "Forwarding number").await;
        forwarding.clear().await.unwrap();
        forwarding.send_keys("not a number").await.unwrap();
        button(client, "", "Save").await.click().await.unwrap();
        wait_until(
            client,
            "the field error shows next to the field",
            "document.getElementById('err-forwarding_number').textContent.startsWith('forwarding_number')",
        )
        .await;
        let invalid = forwarding.attr("aria-invalid").await.unwrap();
        assert_eq!(invalid.as_deref(), Some("true"));
        // And a nested one, next to the destinations editor.
        let destinations = field(client, "Destinations (JSON)").await;
        destinations.clear().await.unwrap();
        destinations
            .send_keys(r#"[{"id": "pbx", "kind": "sip", "address": "alice@pbx"}]"#)
            .await
            .unwrap();
        let forwarding = field(client, "Forwarding number").await;
        forwarding.clear().await.unwrap();
        forwarding.send_keys(FORWARDING).await.unwrap();
        button(client, "", "Save").await.click().await.unwrap();
        wait_until(
            client,
            "the destination's error shows at the destinations",
            "document.getElementById('err-destinations').textContent.startsWith('destinations[0].address')",
        )
        .await;
        // Delete, once confirmed.
        button(client, "", "Delete").await.click().await.unwrap();
        client.accept_alert().await.unwrap();
        wait_until(
            client,
            "the subscriber is deleted",
            "document.getElementById('form-status').textContent === 'Deleted +12025550199.'",
        )
        .await;
        let (status, _) = app
            .get_json(&format!("/v1/subscribers/{SUBSCRIBER}"), ADMIN_TOKEN)
            .await;
        assert_eq!(status, 404);
        // Readiness is shown.
        wait_until(
            client,
            "readiness shows",
            "document.getElementById('readiness').textContent === 'Readiness: ready'",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn the_admin_lists_subscribers_and_watches_a_call_live() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    with_browser(async |client| {
        sign_in(client, &app, ADMIN_TOKEN).await;
        wait_until(
            client,
            "the subscriber is listed",
            "document.querySelector('#subscribers tbody').textContent.includes('+12025550199')",
        )
        .await;
        wait_until(
            client,
            "the admin stream is open",
            "document.getElementById('sessions-notice').textContent === ''",
        )
        .await;
        click(
            client,
            Locator::Css("button[aria-label='Edit +12025550199']"),
        )
        .await;
        let shown = field(client, "Forwarding number")
            .await
            .prop("value")
            .await
            .unwrap();
        assert_eq!(shown.as_deref(), Some(FORWARDING));

        let session = ring(&app, &registered).await;
        let row = format!("#sessions li[data-session='{session}']");
        wait_until(
            client,
            "the live session shows, ringing for the subscriber",
            &format!("document.querySelector(\"{row}\")?.textContent.includes('+12025550302')"),
        )
        .await;
        click(client, Locator::Css(&format!("{row} button"))).await;
        wait_until(
            client,
            "its timeline shows",
            &format!(
                "!document.querySelector(\"{row} .timeline\").hidden \
                 && document.querySelector(\"{row} .timeline\").textContent.includes('reported_at')"
            ),
        )
        .await;
        let device = registered["device_token"].as_str().unwrap();
        app.post_json(
            &format!("/v1/sessions/{session}/events"),
            device,
            &json!({"event": "ended"}),
        )
        .await;
        wait_until(
            client,
            "the session's state follows",
            &format!("document.querySelector(\"{row} .state\")?.textContent === 'cancelled'"),
        )
        .await;
    })
    .await;
}

async fn codes_text(client: &fantoccini::Client) -> String {
    let text = client
        .execute(
            "return document.getElementById('codes').textContent;",
            vec![],
        )
        .await
        .unwrap();
    text.as_str().unwrap().to_owned()
}

/// Not a test: `scripts/screenshots` runs it to take the README's pictures
/// of both views, from the same browser the tests drive.
#[tokio::test]
#[ignore = "takes the screenshots of docs/; run by scripts/screenshots"]
async fn screenshots() {
    let app = spawn_app().await;
    let registered = pick_subscriber(&app).await;
    let device = registered["device_token"].as_str().unwrap().to_owned();
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&docs).unwrap();
    with_browser(async |client| {
        client.set_window_size(1000, 760).await.unwrap();
        sign_in_as_desk(client, &app, &registered).await;
        // One earlier call, taken on the phone, among recent calls.
        let earlier = ring(&app, &registered).await;
        wait_until(client, "the first call shows", A_CALL_SHOWS).await;
        app.post_json(
            &format!("/v1/sessions/{earlier}/events"),
            &device,
            &json!({"event": "answered"}),
        )
        .await;
        wait_until(
            client,
            "the first call is over",
            "document.querySelectorAll('#calls .call').length === 0",
        )
        .await;
        ring(&app, &registered).await;
        wait_until(client, "the ringing call shows", A_CALL_SHOWS).await;
        let png = client.screenshot().await.unwrap();
        std::fs::write(docs.join("console-destination.png"), png).unwrap();
    })
    .await;
    with_browser(async |client| {
        client.set_window_size(1000, 1900).await.unwrap();
        sign_in(client, &app, ADMIN_TOKEN).await;
        wait_until(
            client,
            "the admin view shows",
            "!document.getElementById('admin-view').hidden \
             && document.getElementById('readiness').textContent === 'Readiness: ready'",
        )
        .await;
        button(client, "", "New subscriber")
            .await
            .click()
            .await
            .unwrap();
        field(client, "Number")
            .await
            .send_keys("+12025550123")
            .await
            .unwrap();
        field(client, "Forwarding number")
            .await
            .send_keys(FORWARDING)
            .await
            .unwrap();
        button(client, "", "Save").await.click().await.unwrap();
        wait_until(
            client,
            "the subscriber is created",
            "document.getElementById('form-status').textContent === 'Created +12025550123.'",
        )
        .await;
        let forwarding = field(client, "Forwarding number").await;
        forwarding.clear().await.unwrap();
        forwarding.send_keys("12345").await.unwrap();
        button(client, "", "Save").await.click().await.unwrap();
        wait_until(
            client,
            "the field error shows",
            "document.getElementById('err-forwarding_number').textContent !== ''",
        )
        .await;
        client
            .execute(
                "window.scrollTo(0, 0); document.activeElement.blur();",
                vec![],
            )
            .await
            .unwrap();
        let png = client.screenshot().await.unwrap();
        std::fs::write(docs.join("console-admin.png"), png).unwrap();
    })
    .await;
}
