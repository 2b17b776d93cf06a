//! `GET /v1/me` (docs/api.md): every kind of token says who it is, and
//! nothing else does.

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Backend, assert_error, example_subscriber, spawn_app, spawn_app_with,
};

async fn me(app: &crate::helpers::TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/v1/me"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn me_json(app: &crate::helpers::TestApp, token: &str) -> Value {
    let response = me(app, Some(token)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

crate::both_backends! {
    each_kind_of_token_says_who_it_is => |backend| async move {
        let app = spawn_app(backend).await;
        let registered = app.register("+12025550199", &example_subscriber()).await;

        assert_eq!(
            me_json(&app, ADMIN_TOKEN).await,
            json!({"role": "admin", "subscriber": null, "destination_id": null})
        );
        assert_eq!(
            me_json(&app, &registered.device_token).await,
            json!({"role": "device", "subscriber": "+12025550199", "destination_id": null})
        );
        assert_eq!(
            me_json(&app, &registered.destination_tokens["laptop"]).await,
            json!({"role": "destination", "subscriber": "+12025550199", "destination_id": "laptop"})
        );
    };
}

#[tokio::test]
async fn me_is_unauthorized_for_a_missing_wrong_or_rotated_token() {
    let app = spawn_app(Backend::Memory).await;
    let registered = app.register("+12025550199", &example_subscriber()).await;
    let rotated = app
        .client
        .put(app.url("/v1/subscribers/+12025550199?rotate_tokens=true"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&example_subscriber())
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);

    for token in [
        None,
        Some("rrt_not-a-real-token"),
        Some(registered.device_token.as_str()),
        Some(registered.destination_tokens["desk"].as_str()),
    ] {
        let response = me(&app, token).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer",
            "{token:?}"
        );
        assert_error(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn without_an_admin_token_configured_no_token_is_the_admin() {
    let app = spawn_app_with(Backend::Memory, &[("ADMIN_TOKEN", "")]).await;
    assert_error(me(&app, Some(ADMIN_TOKEN)).await, 401, "unauthorized").await;
}
