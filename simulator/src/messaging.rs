//! The CPaaS's REST API, the part the service sends texts through: a local
//! HTTP server standing in for the scenario's provider, which reads every
//! message as that provider's API reads it (the kit's
//! [`Cpaas::read_text`]) and takes it, or keeps why it would refuse it.

use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret as _, SecretString};

use super::cpaas::kit::{ApiRequest, Cpaas, SentText};
use super::receiver::serve_locally;

struct Shared {
    provider: Cpaas,
    /// Twilio's or Plivo's auth token: their API's password.
    auth_token: SecretString,
    /// Every message, read, or why the API would refuse it.
    texts: Mutex<Vec<Result<SentText, String>>>,
}

pub struct MessagingApi {
    address: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl MessagingApi {
    pub async fn start(provider: Cpaas, auth_token: SecretString) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            provider,
            auth_token,
            texts: Mutex::default(),
        });
        let (address, handle) = serve_locally(
            web::Data::from(shared.clone()),
            |routes| {
                routes.default_service(web::to(receive));
            },
            "the provider's API",
        )?;
        Ok(Self {
            address,
            shared,
            server: handle,
        })
    }

    /// Its base URL, for the provider's `…_API_BASE`.
    pub fn base(&self) -> &str {
        &self.address
    }

    /// The messages so far, in order.
    pub fn texts(&self) -> Vec<Result<SentText, String>> {
        self.shared.texts.lock().expect("texts lock").clone()
    }
}

impl Drop for MessagingApi {
    fn drop(&mut self) {
        let handle = self.server.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let request = ApiRequest {
        method: req.method().as_str(),
        path: &path,
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: &body,
    };
    let text = shared
        .provider
        .read_text(&request, shared.auth_token.expose_secret());
    let answer = match &text {
        Ok(_) => {
            let (status, body) = shared.provider.text_taken();
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
                .json(body)
        }
        Err(why) => HttpResponse::BadRequest().json(serde_json::json!({"error": why})),
    };
    shared.texts.lock().expect("texts lock").push(text);
    answer
}
