//! Web Push (docs/api.md) against a local push service: every event a
//! destination hears also reaches its browsers, encrypted `aes128gcm` for
//! the browser's key (decrypted here as a browser would), with a VAPID
//! token the push service checks, `TTL`, `Urgency` and a `Topic` per
//! session; a push service's 404 or 410 removes the subscription, its 5xx
//! and 429 are retried.

use aes_gcm::aead::Aead as _;
use aes_gcm::{Aes128Gcm, KeyInit as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::{PublicKey, SecretKey};
use ringrelay_testkit::fake_api::{Answer, FakeApi, Recorded};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{ADMIN_TOKEN, Backend, Registered, TestApp, assert_error, spawn_app_with};

/// The service's VAPID key in these tests (RFC 8291's sender key).
const VAPID_PRIVATE_KEY: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const VAPID_PUBLIC_KEY: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const VAPID_SUBJECT: &str = "mailto:ops@relay.example.com";
const ALICE: &str = "+12025550199";
const CALLER: &str = "+12025550302";

async fn push_app(backend: Backend) -> TestApp {
    push_app_with(backend, &[]).await
}

async fn push_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("VAPID_PRIVATE_KEY", VAPID_PRIVATE_KEY),
        ("VAPID_SUBJECT", VAPID_SUBJECT),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(backend, &vars).await
}

/// Alice in pick mode: the laptop and the desk are offered the call.
fn alice() -> Value {
    json!({
        "forwarding_number": "+12025550100",
        "mode": "pick",
        "pick_timeout_secs": 30,
        "destinations": [
            {"id": "laptop", "kind": "client", "address": "alice"},
            {"id": "desk", "kind": "phone", "address": "+12025550201"},
        ],
    })
}

/// A browser: its push subscription's keys, and what it does with a push.
struct Browser {
    key: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        Self {
            key: SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap(),
            auth: rand::random(),
        }
    }

    fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.public_key().to_sec1_bytes())
    }

    /// Its `PushSubscription.toJSON()` for `endpoint`.
    fn subscription(&self, endpoint: &str) -> Value {
        json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {"p256dh": self.p256dh(), "auth": URL_SAFE_NO_PAD.encode(self.auth)},
        })
    }

    /// Decrypts a push body (RFC 8291, one `aes128gcm` record) as the
    /// browser does.
    fn decrypt(&self, body: &[u8]) -> Value {
        let salt = &body[..16];
        let id_len = usize::from(body[20]);
        let sender = PublicKey::from_sec1_bytes(&body[21..21 + id_len]).unwrap();
        let ciphertext = &body[21 + id_len..];
        let shared = p256::ecdh::diffie_hellman(self.key.to_nonzero_scalar(), sender.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.key.public_key().to_sec1_bytes());
        info.extend_from_slice(&body[21..21 + id_len]);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&info, &mut ikm)
            .unwrap();
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .unwrap();
        let mut plain = Aes128Gcm::new_from_slice(&cek)
            .unwrap()
            .decrypt(&nonce.into(), ciphertext)
            .expect("the push decrypts with the browser's key");
        assert_eq!(plain.pop(), Some(2), "one record, the last");
        serde_json::from_slice(&plain).unwrap()
    }
}

/// What a push service checks of a push: its VAPID token (signed by the key
/// the browser subscribed with, for this service's origin, not past 24 h)
/// and its encoding. The event, decrypted by `browser`.
fn check_push(push: &Recorded, service: &FakeApi, browser: &Browser) -> Value {
    assert_eq!(push.method, "POST");
    assert_eq!(push.header("content-encoding"), Some("aes128gcm"));
    let authorization = push.header("authorization").expect("Authorization");
    let (token, key) = authorization
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .unwrap_or_else(|| panic!("{authorization}"));
    assert_eq!(key, VAPID_PUBLIC_KEY);
    let (input, signature) = token.rsplit_once('.').unwrap();
    VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(key).unwrap())
        .unwrap()
        .verify(
            input.as_bytes(),
            &Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap(),
        )
        .expect("the VAPID token is signed by the service's key");
    let part = |i: usize| -> Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(input.split('.').nth(i).unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(part(0), json!({"typ": "JWT", "alg": "ES256"}));
    let claims = part(1);
    assert_eq!(claims["aud"], service.base(), "the push service's origin");
    assert_eq!(claims["sub"], VAPID_SUBJECT);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp > now && exp <= now + 24 * 3600, "{claims}");
    browser.decrypt(&push.body)
}

async fn subscribe(
    app: &TestApp,
    destination: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!(
            "/v1/destinations/{destination}/push-subscriptions"
        )))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn subscribed(
    app: &TestApp,
    registered: &Registered,
    destination: &str,
    body: &Value,
) -> String {
    let response = subscribe(
        app,
        destination,
        &registered.destination_tokens[destination],
        body,
    )
    .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}

async fn ring(app: &TestApp, registered: &Registered) -> String {
    let response = app
        .ring(&registered.device_token, &json!({"caller": CALLER}))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["session_id"].as_str().unwrap().to_owned()
}

async fn device_event(app: &TestApp, registered: &Registered, id: &str, event: &str) {
    let response = app
        .client
        .post(app.url(&format!("/v1/sessions/{id}/events")))
        .bearer_auth(&registered.device_token)
        .json(&json!({ "event": event }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

crate::both_backends! {
    a_ringing_call_and_its_cancellation_reach_the_browser_encrypted_under_one_topic => |backend| async move {
        let service = FakeApi::start(Answer::status(201)).await;
        let app = push_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let browser = Browser::new();
        subscribed(&app, &alice_reg, "laptop", &browser.subscription(&service.url("/push/laptop-1"))).await;

        let id = ring(&app, &alice_reg).await;
        // Pushed before the ring report was answered: it counts among the
        // notifications the instruction waits for.
        let ringing = service.arrived_so_far().await;
        assert_eq!(ringing.len(), 1, "one push, to the laptop's browser only");
        let push = &ringing[0];
        assert_eq!(push.path, "/push/laptop-1");
        let event = check_push(push, &service, &browser);
        assert_eq!(event["type"], "call.ringing");
        assert_eq!(event["data"]["session_id"], id);
        assert_eq!(event["data"]["destination_id"], "laptop");
        assert!(event["data"]["accept_url"].as_str().unwrap().contains("capability=rrc_"));
        assert_eq!(push.header("urgency"), Some("high"));
        assert_eq!(push.header("topic"), Some(id.as_str()));
        let ttl: u64 = push.header("ttl").unwrap().parse().unwrap();
        assert!((25..=30).contains(&ttl), "until the offer expires: {ttl}");

        device_event(&app, &alice_reg, &id, "answered").await;
        let cancelled = service.next().await;
        let event = check_push(&cancelled, &service, &browser);
        assert_eq!(event["type"], "call.cancelled");
        assert_eq!(event["data"]["reason"], "answered_on_phone");
        assert_eq!(cancelled.header("topic"), Some(id.as_str()), "replaces the ringing push");
        assert_eq!(cancelled.header("urgency"), Some("normal"));
        assert_eq!(cancelled.header("ttl"), Some("3600"));
    };

    a_push_service_that_answers_410_loses_the_subscription => |backend| async move {
        let service = FakeApi::start(Answer::status(201)).await;
        let app = push_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let (gone, kept) = (Browser::new(), Browser::new());
        subscribed(&app, &alice_reg, "laptop", &gone.subscription(&service.url("/push/gone"))).await;
        subscribed(&app, &alice_reg, "laptop", &kept.subscription(&service.url("/push/kept"))).await;
        // Both pushes go out at once: the one to /push/gone, whichever
        // arrives first, is told the subscription is gone.
        service.answer_at("/push/gone", Answer::status(410));

        let first = ring(&app, &alice_reg).await;
        assert_eq!(service.arrived_so_far().await.len(), 2);
        device_event(&app, &alice_reg, &first, "ended").await;
        app.deliveries_settled().await;
        let later: Vec<String> = service.arrived_so_far().await.into_iter().map(|r| r.path).collect();
        assert_eq!(later, ["/push/kept"], "the cancellation goes only where the subscription is");
    };
}

#[tokio::test]
async fn a_push_service_that_fails_or_limits_is_retried_as_webhooks_are() {
    let service = FakeApi::start(Answer::status(201)).await;
    let app = push_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let browser = Browser::new();
    subscribed(
        &app,
        &alice_reg,
        "laptop",
        &browser.subscription(&service.url("/push/a")),
    )
    .await;
    let id = ring(&app, &alice_reg).await;
    assert_eq!(service.arrived_so_far().await.len(), 1);

    service.then_answer(Answer::status(503));
    service.then_answer(Answer::status(429));
    device_event(&app, &alice_reg, &id, "ended").await;
    app.deliveries_settled().await;
    let attempts = service.arrived_so_far().await;
    assert_eq!(attempts.len(), 3, "two failures, then delivered");
    for attempt in &attempts {
        assert_eq!(
            check_push(attempt, &service, &browser)["type"],
            "call.cancelled"
        );
    }
}

#[tokio::test]
async fn at_most_five_browsers_per_destination_and_the_oldest_goes() {
    let service = FakeApi::start(Answer::status(201)).await;
    let app = push_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let body = Browser::new().subscription(&service.url(&format!("/push/{i}")));
        ids.push(subscribed(&app, &alice_reg, "laptop", &body).await);
    }
    // The same endpoint again is the same subscription.
    let again = Browser::new().subscription(&service.url("/push/5"));
    assert_eq!(subscribed(&app, &alice_reg, "laptop", &again).await, ids[5]);
    ring(&app, &alice_reg).await;
    let mut paths: Vec<String> = service
        .arrived_so_far()
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/push/1", "/push/2", "/push/3", "/push/4", "/push/5"]
    );
}

#[tokio::test]
async fn a_removed_subscription_or_a_rotated_token_hears_nothing_more() {
    let service = FakeApi::start(Answer::status(201)).await;
    let app = push_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let laptop = &alice_reg.destination_tokens["laptop"];
    let id = subscribed(
        &app,
        &alice_reg,
        "laptop",
        &Browser::new().subscription(&service.url("/push/a")),
    )
    .await;
    subscribed(
        &app,
        &alice_reg,
        "desk",
        &Browser::new().subscription(&service.url("/push/desk")),
    )
    .await;

    let remove = |id: String, token: String| {
        let app = &app;
        async move {
            app.client
                .delete(app.url(&format!("/v1/destinations/laptop/push-subscriptions/{id}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    assert_error(
        remove(id.clone(), alice_reg.destination_tokens["desk"].clone()).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(remove(id.clone(), laptop.clone()).await.status(), 204);
    assert_error(remove(id, laptop.clone()).await, 404, "not_found").await;
    assert_error(
        remove("../x".into(), laptop.clone()).await,
        404,
        "not_found",
    )
    .await;
    ring(&app, &alice_reg).await;
    let paths: Vec<String> = service
        .arrived_so_far()
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/push/desk"]);

    // New tokens: browsers subscribed with the old ones hear nothing more.
    let rotated = app
        .client
        .put(app.url(&format!("/v1/subscribers/{ALICE}?rotate_tokens=true")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&alice())
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let device = rotated["device_token"].as_str().unwrap();
    let response = app.ring(device, &json!({"caller": "+12025550303"})).await;
    assert_eq!(response.status(), 201);
    assert!(service.arrived_so_far().await.is_empty());
}

#[tokio::test]
async fn subscriptions_are_checked_field_by_field() {
    let app = push_app_with(Backend::Memory, &[("ALLOW_PRIVATE_WEBHOOKS", "false")]).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let laptop = &alice_reg.destination_tokens["laptop"];
    let browser = Browser::new();
    let good = browser.subscription("https://push.example.com/abc");
    let with = |path: &str, value: Value| {
        let mut body = good.clone();
        let mut at = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            at = &mut at[*part];
        }
        at[parts[parts.len() - 1]] = value;
        body
    };
    for (body, field) in [
        (with("keys.p256dh", json!("BCVx")), "keys.p256dh"),
        (
            with("keys.p256dh", json!(URL_SAFE_NO_PAD.encode([4u8; 64]))),
            "keys.p256dh",
        ),
        (
            with("keys.auth", json!(URL_SAFE_NO_PAD.encode([1u8; 15]))),
            "keys.auth",
        ),
        (
            with("endpoint", json!("http://push.example.com/abc")),
            "endpoint",
        ),
        (with("endpoint", json!("https://127.0.0.1/abc")), "endpoint"),
        (with("endpoint", json!("https://10.0.0.8/abc")), "endpoint"),
        (with("endpoint", json!("not a url")), "endpoint"),
        (with("keys.extra", json!("x")), "keys.extra"),
    ] {
        let error = assert_error(
            subscribe(&app, "laptop", laptop, &body).await,
            422,
            "invalid_field",
        )
        .await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{field}: {error}"
        );
    }
    assert_eq!(subscribe(&app, "laptop", laptop, &good).await.status(), 201);
    assert_error(
        subscribe(&app, "desk", laptop, &good).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        subscribe(&app, "laptop", "rrt_wrong", &good).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn the_key_is_public_and_without_vapid_every_push_route_names_the_variable() {
    let app = push_app(Backend::Memory).await;
    let key: Value = app
        .client
        .get(app.url("/v1/push/key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key, json!({"public_key": VAPID_PUBLIC_KEY}));

    let off = spawn_app_with(Backend::Memory, &[]).await;
    let alice_reg = off.register(ALICE, &alice()).await;
    let laptop = &alice_reg.destination_tokens["laptop"];
    for response in [
        off.client
            .get(off.url("/v1/push/key"))
            .send()
            .await
            .unwrap(),
        subscribe(
            &off,
            "laptop",
            laptop,
            &Browser::new().subscription("https://push.example.com/a"),
        )
        .await,
        off.client
            .delete(
                off.url("/v1/destinations/laptop/push-subscriptions/psub_AAAAAAAAAAAAAAAAAAAAAA"),
            )
            .bearer_auth(laptop)
            .send()
            .await
            .unwrap(),
    ] {
        let body = assert_error(response, 503, "not_configured").await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("VAPID_PRIVATE_KEY"),
            "{body}"
        );
    }
}
