//! `POST /v1/destinations/{id}/voice-token` (docs/api.md): softphone
//! credentials for `client` destinations. Twilio's and Plivo's are decoded
//! and checked claim by claim and by signature; Telnyx's and SignalWire's
//! are minted by a local fake of their API, which checks what it is sent.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use ringrelay_testkit::fake_api::{Answer, FakeApi};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Backend, PLIVO_AUTH_TOKEN, Registered, TestApp, assert_error, example_subscriber,
    spawn_app_with,
};

const ALICE: &str = "+12025550199";
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const API_KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
const API_KEY_SECRET: &str = "test-api-key-secret-0123456789";
const TWIML_APP_SID: &str = "AP0123456789abcdef0123456789abcdef";
const PLIVO_AUTH_ID: &str = "MAXXXXXXXXXXXXXXXXXX";

async fn voice_token(app: &TestApp, destination: &str, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/destinations/{destination}/voice-token")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn issued(app: &TestApp, registered: &Registered) -> Value {
    let response = voice_token(app, "laptop", &registered.destination_tokens["laptop"]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// A JWT's header and claims, once its HS256 signature checks out with `key`.
fn verified_jwt(token: &str, key: &[u8]) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        .expect("the token is signed with the key");
    let json = |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    (json(parts[0]), json(parts[1]))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].000Z"
        ))
        .unwrap()
}

#[tokio::test]
async fn twilio_access_token_carries_the_contracts_claims_and_is_signed_with_the_api_key_secret() {
    let app = spawn_app_with(
        Backend::Memory,
        &[
            ("VOICE_TOKEN_PROVIDER", "twilio"),
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
            ("TWILIO_API_KEY_SID", API_KEY_SID),
            ("TWILIO_API_KEY_SECRET", API_KEY_SECRET),
            ("TWILIO_TWIML_APP_SID", TWIML_APP_SID),
            ("VOICE_TOKEN_TTL_SECS", "600"),
        ],
    )
    .await;
    let alice = app.register(ALICE, &example_subscriber()).await;
    let before = unix_now();
    let answer = issued(&app, &alice).await;
    assert_eq!(answer["provider"], "twilio");
    assert_eq!(answer["identity"], "alice");

    let (header, claims) =
        verified_jwt(answer["token"].as_str().unwrap(), API_KEY_SECRET.as_bytes());
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["cty"], "twilio-fpa;v=1");
    assert_eq!(claims["iss"], API_KEY_SID);
    assert_eq!(claims["sub"], ACCOUNT_SID);
    let nbf = claims["nbf"].as_i64().unwrap();
    assert!((before..=unix_now()).contains(&nbf), "{claims}");
    assert_eq!(claims["jti"], format!("{API_KEY_SID}-{nbf}"));
    assert_eq!(claims["exp"].as_i64().unwrap(), nbf + 600);
    assert_eq!(
        claims["grants"],
        json!({
            "identity": "alice",
            "voice": {
                "incoming": {"allow": true},
                "outgoing": {"application_sid": TWIML_APP_SID}
            }
        })
    );
    assert_eq!(answer["expires_at"], rfc3339(nbf + 600));
    assert_eq!(answer.as_object().unwrap().len(), 4, "{answer}");
}

#[tokio::test]
async fn plivo_endpoint_token_is_signed_with_the_auth_token_for_incoming_calls_only() {
    let app = spawn_app_with(
        Backend::Memory,
        &[
            ("VOICE_TOKEN_PROVIDER", "plivo"),
            ("PLIVO_AUTH_ID", PLIVO_AUTH_ID),
        ],
    )
    .await;
    let alice = app.register(ALICE, &example_subscriber()).await;
    let answer = issued(&app, &alice).await;
    assert_eq!(answer["provider"], "plivo");
    assert_eq!(answer["identity"], "alice");
    let (header, claims) = verified_jwt(
        answer["token"].as_str().unwrap(),
        PLIVO_AUTH_TOKEN.as_bytes(),
    );
    assert_eq!(
        header,
        json!({"alg": "HS256", "cty": "plivo;v=1", "typ": "JWT"})
    );
    assert_eq!(claims["iss"], PLIVO_AUTH_ID);
    assert_eq!(claims["sub"], "alice");
    let nbf = claims["nbf"].as_i64().unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap(),
        nbf + 3600,
        "the default lifetime"
    );
    assert_eq!(
        claims["grants"],
        json!({"voice": {"incoming_allow": true, "outgoing_allow": false}})
    );
    assert_eq!(answer["expires_at"], rfc3339(nbf + 3600));
}

/// A JWT as a provider's API would mint it, expiring at `exp`.
fn minted(exp: i64) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        part(json!({"alg": "RS256", "typ": "JWT"})),
        part(json!({"sub": "alice", "exp": exp}))
    )
}

#[tokio::test]
async fn telnyx_token_is_minted_for_the_credential_named_by_the_client_address() {
    let exp = unix_now() + 86_400;
    let telnyx = FakeApi::start(Answer::text(201, &minted(exp))).await;
    let app = spawn_app_with(
        Backend::Memory,
        &[
            ("VOICE_TOKEN_PROVIDER", "telnyx"),
            ("TELNYX_API_KEY", "KEYtest0123456789"),
            ("TELNYX_API_BASE", telnyx.base()),
        ],
    )
    .await;
    let alice = app.register(ALICE, &example_subscriber()).await;
    let answer = issued(&app, &alice).await;

    let request = telnyx.next().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v2/telephony_credentials/alice/token");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer KEYtest0123456789")
    );
    assert_eq!(answer["provider"], "telnyx");
    assert_eq!(answer["identity"], "alice");
    assert_eq!(answer["token"], minted(exp));
    assert_eq!(answer["expires_at"], rfc3339(exp));
}

#[tokio::test]
async fn signalwire_token_is_minted_for_the_client_address_as_resource() {
    let exp = unix_now() + 600;
    let signalwire = FakeApi::start(Answer::json(
        200,
        &json!({"jwt_token": minted(exp), "refresh_token": "refresh"}),
    ))
    .await;
    let app = spawn_app_with(
        Backend::Memory,
        &[
            ("VOICE_TOKEN_PROVIDER", "signalwire"),
            ("SIGNALWIRE_PROJECT_ID", "project-id"),
            ("SIGNALWIRE_API_TOKEN", "PTsecret"),
            ("SIGNALWIRE_API_BASE", signalwire.base()),
            ("VOICE_TOKEN_TTL_SECS", "600"),
        ],
    )
    .await;
    let alice = app.register(ALICE, &example_subscriber()).await;
    let answer = issued(&app, &alice).await;

    let request = signalwire.next().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/relay/rest/jwt");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {}", STANDARD.encode("project-id:PTsecret")).as_str())
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, json!({"resource": "alice", "expires_in": 10}));
    assert_eq!(answer["provider"], "signalwire");
    assert_eq!(answer["token"], minted(exp));
    assert_eq!(answer["expires_at"], rfc3339(exp));
}

#[tokio::test]
async fn a_provider_api_that_keeps_failing_is_503_with_nothing_of_its_answer() {
    let telnyx = FakeApi::start(Answer::text(500, "internal details")).await;
    let app = spawn_app_with(
        Backend::Memory,
        &[
            ("VOICE_TOKEN_PROVIDER", "telnyx"),
            ("TELNYX_API_KEY", "KEYtest0123456789"),
            ("TELNYX_API_BASE", telnyx.base()),
        ],
    )
    .await;
    let alice = app.register(ALICE, &example_subscriber()).await;
    let body = assert_error(
        voice_token(&app, "laptop", &alice.destination_tokens["laptop"]).await,
        503,
        "provider_unavailable",
    )
    .await;
    assert!(!body.to_string().contains("internal details"), "{body}");
    // Retried as webhooks are: three attempts in all.
    assert_eq!(telnyx.arrived_so_far().await.len(), 3);
}

#[tokio::test]
async fn the_route_refuses_other_destinations_non_clients_and_missing_configuration() {
    // The tests configure all four providers: which one must be said.
    let app = spawn_app_with(Backend::Memory, &[]).await;
    let alice = app.register(ALICE, &example_subscriber()).await;
    let laptop = &alice.destination_tokens["laptop"];
    let body = assert_error(
        voice_token(&app, "laptop", laptop).await,
        503,
        "not_configured",
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("VOICE_TOKEN_PROVIDER"),
        "{body}"
    );

    assert_error(voice_token(&app, "desk", laptop).await, 403, "forbidden").await;
    assert_error(
        voice_token(&app, "desk", &alice.destination_tokens["desk"]).await,
        409,
        "not_a_client",
    )
    .await;
    assert_error(
        voice_token(&app, "laptop", &alice.device_token).await,
        401,
        "unauthorized",
    )
    .await;

    let twilio = spawn_app_with(
        Backend::Memory,
        &[
            ("VOICE_TOKEN_PROVIDER", "twilio"),
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ],
    )
    .await;
    let alice = twilio.register(ALICE, &example_subscriber()).await;
    let body = assert_error(
        voice_token(&twilio, "laptop", &alice.destination_tokens["laptop"]).await,
        503,
        "not_configured",
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("TWILIO_API_KEY_SID"),
        "{body}"
    );
}

#[tokio::test]
async fn a_new_client_address_takes_letters_digits_and_underscores_only() {
    let app = spawn_app_with(Backend::Memory, &[]).await;
    let mut body = example_subscriber();
    body["destinations"][1]["address"] = json!("alice.smith");
    let response = app.put_subscriber(ALICE, &body).await;
    let error = assert_error(response, 422, "invalid_field").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("destinations[1].address:"),
        "{error}"
    );
    body["destinations"][1]["address"] = json!("Alice_Smith_2");
    assert_eq!(app.put_subscriber(ALICE, &body).await.status(), 201);
}

#[tokio::test]
async fn a_softphone_page_on_another_origin_may_ask_for_its_token() {
    let app = spawn_app_with(
        Backend::Memory,
        &[
            ("VOICE_TOKEN_PROVIDER", "plivo"),
            ("PLIVO_AUTH_ID", PLIVO_AUTH_ID),
        ],
    )
    .await;
    let alice = app.register(ALICE, &example_subscriber()).await;
    let url = app.url("/v1/destinations/laptop/voice-token");
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://softphone.example.org")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-methods").as_deref(),
        Some("POST")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-headers").as_deref(),
        Some("Authorization")
    );
    let issued = voice_token(&app, "laptop", &alice.destination_tokens["laptop"]).await;
    assert_eq!(
        header(&issued, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let refused = voice_token(&app, "laptop", "rrt_wrong").await;
    assert_eq!(
        header(&refused, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_error(refused, 401, "unauthorized").await;
}
