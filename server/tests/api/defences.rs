//! Defences that never lose a call: the failed-credential limiter refuses
//! only what fails, never a CPaaS webhook nor a verified token nor the
//! operational routes; behind a proxy it counts the address the router saw;
//! credentials rotate without a dropped call; a Twilio form with the
//! parameters it adds after signing still verifies.
//!
//! Every attack here comes from the same address as the real traffic
//! (loopback), as it does in production from a provider's shared pool or a
//! carrier's NAT.

use base64::Engine as _;
use ringrelay_server::providers;
use serde_json::{Value, json};

use crate::cpaas::{ALICE, CALLER, SHARED, alice, assert_refused, nouns, only_dial, ring};
use crate::helpers::CpaasTest as _;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Cpaas, PUBLIC_BASE_URL, TestApp, assert_error, form_body, post_form,
    spawn_app, spawn_app_with, unix_now,
};
use crate::receiver::{Behaviour, WebhookReceiver};

/// One past the failures an address may make in a minute.
const PAST_THE_LIMIT: usize = 60;

crate::for_each_provider! {
    on_both_backends: [
        a_signed_webhook_gets_its_dial_after_sixty_forged_ones_from_the_same_address,
    ],
    once: [
        a_signed_webhook_gets_its_dial_behind_a_proxy_after_forged_ones_naming_the_providers_address,
        either_value_of_a_rotating_credential_verifies_and_a_third_is_refused,
    ],
}

// ---------------------------------------------------------------------------
// Signing with any credential

/// A credential a test signs with as the provider would.
#[derive(Clone, Copy)]
enum Key<'a> {
    /// Twilio's and Plivo's auth token, SignalWire's signing key.
    Token(&'a str),
    /// The seed of a Telnyx Ed25519 key pair.
    Telnyx([u8; 32]),
}

impl Key<'_> {
    /// The value the service is configured with for it.
    fn configured(&self) -> String {
        match self {
            Self::Token(token) => (*token).to_owned(),
            Self::Telnyx(seed) => base64::engine::general_purpose::STANDARD.encode(
                ed25519_dalek::SigningKey::from_bytes(seed)
                    .verifying_key()
                    .as_bytes(),
            ),
        }
    }
}

/// Three credentials of the shape `cpaas` uses: the current, the next, and
/// one the service was never given.
fn three_keys(cpaas: Cpaas) -> [Key<'static>; 3] {
    match cpaas {
        Cpaas::Telnyx => [
            Key::Telnyx([1; 32]),
            Key::Telnyx([2; 32]),
            Key::Telnyx([3; 32]),
        ],
        _ => [
            Key::Token("current-auth-token-0001"),
            Key::Token("next-auth-token-0002"),
            Key::Token("never-configured-0003"),
        ],
    }
}

/// The headers `cpaas` signs a POST of `params` to `path` with, by `key`.
fn signed_by(
    cpaas: Cpaas,
    key: Key<'_>,
    path: &str,
    params: &[(String, String)],
) -> Vec<(&'static str, String)> {
    let url = format!("{PUBLIC_BASE_URL}{path}");
    match (cpaas, key) {
        (Cpaas::Twilio | Cpaas::SignalWire, Key::Token(token)) => vec![(
            cpaas.signature_header(),
            providers::twilio::signature::sign(token.as_bytes(), &url, params),
        )],
        (Cpaas::Plivo, Key::Token(token)) => {
            let nonce = format!("{:020}", unix_now());
            let signature = providers::plivo::signature::sign_v3(
                token.as_bytes(),
                providers::plivo::signature::Method::Post,
                &url,
                params,
                &nonce,
            );
            vec![
                ("X-Plivo-Signature-V3", signature),
                ("X-Plivo-Signature-V3-Nonce", nonce),
            ]
        }
        (Cpaas::Telnyx, Key::Telnyx(seed)) => {
            let timestamp = unix_now().to_string();
            let signature = providers::telnyx::signature::sign(
                &ed25519_dalek::SigningKey::from_bytes(&seed),
                &timestamp,
                form_body(params).as_bytes(),
            );
            vec![
                ("telnyx-signature-ed25519", signature),
                ("telnyx-timestamp", timestamp),
            ]
        }
        _ => panic!("{} does not sign with that kind of key", cpaas.name()),
    }
}

/// `headers` plus one more.
fn and(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    headers.push((name, value.to_owned()));
    headers
}

/// The value of the metric line starting with `prefix` (labels included),
/// 0 when absent.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// The limiter never refuses a CPaaS webhook

/// A forged webhook to the voice route, as an attacker sharing the
/// provider's address pool would send, from the test's own address.
async fn forged_voice_webhook(
    app: &TestApp,
    cpaas: Cpaas,
    n: usize,
    extra: &[(&'static str, &str)],
) {
    let request = cpaas.inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None);
    // Half unsigned, half signed by another account of the provider.
    let attackers_key = match cpaas {
        Cpaas::Telnyx => Key::Telnyx([9; 32]),
        _ => Key::Token("attackers-own-account-token"),
    };
    let mut headers = if n.is_multiple_of(2) {
        Vec::new()
    } else {
        signed_by(cpaas, attackers_key, &request.path, &request.params)
    };
    for (name, value) in extra {
        headers.push((name, (*value).to_owned()));
    }
    assert_refused(post_form(app, &request.path, &request.params, &headers).await).await;
}

async fn a_signed_webhook_gets_its_dial_after_sixty_forged_ones_from_the_same_address(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    for n in 0..PAST_THE_LIMIT {
        forged_voice_webhook(&app, cpaas, n, &[]).await;
    }
    // The real call, from the same address: its Dial.
    ring(&app, &alice_reg, Some(CALLER)).await;
    let dial = only_dial(
        &cpaas
            .inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None)
            .markup(&app)
            .await,
    )
    .clone();
    assert_eq!(nouns(&dial).len(), 1, "{dial:?}");
    // Health answers too, and the refusals are counted, by reason.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = app.metrics().await;
    let provider = cpaas.name();
    let refused = |reason: &str| {
        metric(
            &metrics,
            &format!(
                r#"ringrelay_webhooks_refused_total{{provider="{provider}",reason="{reason}"}}"#
            ),
        )
    };
    assert_eq!(refused("missing_signature"), 30.0, "{metrics}");
    assert_eq!(refused("bad_signature"), 30.0, "{metrics}");
    assert_eq!(
        metric(
            &metrics,
            &format!(r#"ringrelay_signature_matches_total{{provider="{provider}",key="current"}}"#)
        ),
        1.0,
        "{metrics}"
    );
}

async fn a_signed_webhook_gets_its_dial_behind_a_proxy_after_forged_ones_naming_the_providers_address(
    cpaas: Cpaas,
) {
    let app = spawn_app_with(Backend::Memory, &[("TRUST_PROXY", "true")]).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    // The provider's egress address, as its router writes it last; the
    // attacker spoofs it as the first entry, and shares it as well.
    let provider_address = "54.172.60.1";
    let spoofed = format!("{provider_address}, 203.0.113.66");
    for n in 0..PAST_THE_LIMIT {
        let forwarded_for = if n.is_multiple_of(2) {
            spoofed.as_str()
        } else {
            provider_address
        };
        forged_voice_webhook(&app, cpaas, n, &[("x-forwarded-for", forwarded_for)]).await;
    }
    ring(&app, &alice_reg, Some(CALLER)).await;
    let request = cpaas.inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None);
    let headers = and(
        cpaas.signature_headers(
            &format!("{PUBLIC_BASE_URL}{}", request.path),
            &request.params,
        ),
        "x-forwarded-for",
        provider_address,
    );
    let response = post_form(&app, &request.path, &request.params, &headers).await;
    let dial = only_dial(&cpaas.read_markup(&request.path, response).await).clone();
    assert_eq!(nouns(&dial).len(), 1, "{dial:?}");
}

// ---------------------------------------------------------------------------
// Rotation

async fn either_value_of_a_rotating_credential_verifies_and_a_third_is_refused(cpaas: Cpaas) {
    let [current, next, stranger] = three_keys(cpaas);
    let both = format!("{},{}", current.configured(), next.configured());
    let app = spawn_app_with(Backend::Memory, &[(cpaas.credential_variable(), &both)]).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    for key in [current, next] {
        ring(&app, &alice_reg, Some(CALLER)).await;
        let request = cpaas.inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None);
        let headers = signed_by(cpaas, key, &request.path, &request.params);
        let response = post_form(&app, &request.path, &request.params, &headers).await;
        only_dial(&cpaas.read_markup(&request.path, response).await);
    }
    let request = cpaas.inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None);
    let headers = signed_by(cpaas, stranger, &request.path, &request.params);
    assert_refused(post_form(&app, &request.path, &request.params, &headers).await).await;

    let metrics = app.metrics().await;
    let provider = cpaas.name();
    for key in ["current", "next"] {
        assert_eq!(
            metric(
                &metrics,
                &format!(
                    r#"ringrelay_signature_matches_total{{provider="{provider}",key="{key}"}}"#
                )
            ),
            1.0,
            "{key}: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_third_value_of_a_credential_stops_the_start_naming_it() {
    for variable in [
        "TWILIO_AUTH_TOKEN",
        "PLIVO_AUTH_TOKEN",
        "SIGNALWIRE_SIGNING_KEY",
        "WEBHOOK_SECRET",
    ] {
        let three = if variable == "WEBHOOK_SECRET" {
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,whsec_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
        } else {
            "one,two,three"
        };
        let err = crate::helpers::test_config(&Backend::Memory, &[(variable, three)]).unwrap_err();
        assert_eq!(err.variable, variable);
        assert!(err.problem.contains("at most two values"), "{err}");
    }
    // A malformed second Telnyx key is named as the second.
    let err = crate::helpers::test_config(
        &Backend::Memory,
        &[(
            "TELNYX_PUBLIC_KEY",
            &format!("{},not-a-key", crate::helpers::telnyx_public_key()),
        )],
    )
    .unwrap_err();
    assert_eq!(err.variable, "TELNYX_PUBLIC_KEY");
    assert!(err.problem.starts_with("the second value"), "{err}");
}

#[tokio::test]
async fn a_notification_signed_while_the_secret_rotates_verifies_with_either_secret() {
    const NEXT_SECRET: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let both = format!("{},{NEXT_SECRET}", crate::helpers::WEBHOOK_SECRET);
    let app = spawn_app_with(Backend::Memory, &[("WEBHOOK_SECRET", &both)]).await;
    // One receiver still on the current secret, one already on the next.
    let on_current = WebhookReceiver::start(Behaviour::Answer).await;
    let on_next = WebhookReceiver::start_with_secret(Behaviour::Answer, NEXT_SECRET).await;
    let registered = app
        .register(
            ALICE,
            &json!({
                "forwarding_number": SHARED,
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": "+12025550201",
                     "webhook_url": on_current.url("/desk")},
                    {"id": "crm", "kind": "phone", "address": "+12025550202",
                     "webhook_url": on_next.url("/crm")},
                ]
            }),
        )
        .await;
    ring(&app, &registered, Some(CALLER)).await;
    for receiver in [&on_current, &on_next] {
        let delivery = receiver.next().await;
        assert_eq!(delivery.kind(), "call.ringing");
        assert!(delivery.signature_valid, "{}", delivery.path);
    }
}

// ---------------------------------------------------------------------------
// Twilio's parameters added after signing

#[tokio::test]
async fn a_twilio_voice_webhook_signed_before_stir_verstat_was_added_gets_its_dial() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    ring(&app, &alice_reg, Some(CALLER)).await;
    let cpaas = Cpaas::Twilio;
    let request = cpaas
        .inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None)
        .without("StirVerstat")
        .without("CallToken");
    let url = format!("{PUBLIC_BASE_URL}{}", request.path);
    // Signed over the form Twilio computed it on; then the parameters came.
    let headers = cpaas.signature_headers(&url, &request.params);
    let received = request
        .clone()
        .with("StirVerstat", "TN-Validation-Passed-A")
        .with("CallToken", "%7B%22parentCallInfoToken%22%3A%22x%22%7D");
    let response = post_form(&app, &received.path, &received.params, &headers).await;
    only_dial(&cpaas.read_markup(&received.path, response).await);
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"ringrelay_signature_variants_total{provider="twilio",variant="without_added_parameters"}"#
        ),
        1.0,
        "{metrics}"
    );

    // The rest stays signed: a From changed on the way is refused.
    let tampered = received.with_parties("+12025550666", SHARED);
    assert_refused(post_form(&app, &tampered.path, &tampered.params, &headers).await).await;
}

// ---------------------------------------------------------------------------
// Bearer tokens and capabilities

/// A request with a bearer token nobody holds, from `forwarded_for` when
/// given (behind a proxy).
async fn wrong_token(app: &TestApp, n: usize, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url("/v1/subscribers/+12025550199"))
        .bearer_auth(format!("guess-number-{n}"));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    request.send().await.unwrap()
}

/// Makes the test's address pass its failures: 50 answered 401, then 429.
async fn exhaust(app: &TestApp, forwarded_for: Option<&str>) {
    for n in 0..50 {
        assert_error(
            wrong_token(app, n, forwarded_for).await,
            401,
            "unauthorized",
        )
        .await;
    }
    assert_error(
        wrong_token(app, 50, forwarded_for).await,
        429,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn an_address_past_its_failures_still_gets_every_verified_request_and_only_failures_get_429()
{
    let app = spawn_app(Backend::redis()).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    exhaust(&app, None).await;

    // The phone behind the same NAT: its ring report is answered.
    let report = app
        .ring(&alice_reg.device_token, &json!({"caller": CALLER}))
        .await;
    assert_eq!(report.status(), 201);
    let session: Value = report.json().await.unwrap();
    // The admin, from the same office: served.
    let admin = app
        .client
        .get(app.url(&format!("/v1/subscribers/{ALICE}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    // A destination's capability URL works too.
    let desk_token = &alice_reg.destination_tokens["desk"];
    let read = app
        .get_session(desk_token, session["session_id"].as_str().unwrap())
        .await;
    assert_eq!(read.status(), 200);

    // Failures are still refused, with Retry-After, until the window ends.
    let refused = wrong_token(&app, 51, None).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(refused, 429, "rate_limited").await;
    // And capabilities nobody holds, the same.
    let forged_capability = app
        .client
        .post(app.url(&format!(
            "/v1/sessions/{}/accept?capability=rrc_guessed",
            session["session_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_error(forged_capability, 429, "rate_limited").await;
}

#[tokio::test]
async fn the_operational_routes_answer_an_address_past_its_failures() {
    let app = spawn_app(Backend::Memory).await;
    exhaust(&app, None).await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/console",
        "/console/console.js",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn behind_a_proxy_failures_count_against_the_address_the_router_saw() {
    let app = spawn_app_with(Backend::redis(), &[("TRUST_PROXY", "true")]).await;
    let phone = "198.51.100.7";
    let attacker = "203.0.113.66";
    // The attacker writes the phone's address first; the router appends
    // the attacker's real one.
    exhaust(&app, Some(&format!("{phone}, {attacker}"))).await;
    // The phone's own mistakes are answered as such: it is not blocked.
    assert_error(
        wrong_token(&app, 52, Some(phone)).await,
        401,
        "unauthorized",
    )
    .await;
    // Fly's header names the client over X-Forwarded-For.
    let through_fly = app
        .client
        .get(app.url("/v1/subscribers/+12025550199"))
        .bearer_auth("guess-number-53")
        .header("fly-client-ip", attacker)
        .header("x-forwarded-for", phone)
        .send()
        .await
        .unwrap();
    assert_error(through_fly, 429, "rate_limited").await;
}

#[tokio::test]
async fn without_trust_proxy_forwarded_headers_are_ignored() {
    let app = spawn_app(Backend::Memory).await;
    // Every failure comes from loopback, whatever the header claims.
    for n in 0..50 {
        let forwarded_for = format!("198.51.100.{n}");
        assert_error(
            wrong_token(&app, n, Some(&forwarded_for)).await,
            401,
            "unauthorized",
        )
        .await;
    }
    assert_error(
        wrong_token(&app, 50, Some("192.0.2.200")).await,
        429,
        "rate_limited",
    )
    .await;
}
