//! `/healthz` and `/readyz`.

use crate::both_backends;
use crate::helpers::{Backend, assert_error, spawn_app};

both_backends! {
    healthz_and_readyz_answer_ok => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        for path in ["/healthz", "/readyz"] {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(response.text().await.unwrap(), "ok", "{path}");
        }
    };
}

#[tokio::test]
async fn readyz_is_503_and_healthz_still_200_when_redis_is_down() {
    let app = spawn_app(Backend::redis()).await;
    app.backend.test_redis().stop();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_error(response, 503, "store_unavailable").await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}
