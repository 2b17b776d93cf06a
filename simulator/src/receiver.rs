//! The destinations' webhook endpoint: a local HTTP server with one path per
//! destination id, which checks every Standard Webhooks signature with the
//! `WEBHOOK_SECRET` and keeps what arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use ringrelay_server::notify::signing;
use ringrelay_server::notify::signing::WebhookSecret;

/// How far `webhook-timestamp` may be from now (the standard's default).
const TOLERANCE_SECS: i64 = 300;

/// One delivery, as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub destination_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub verified: bool,
    /// The event's `data`.
    #[serde(skip)]
    pub data: Value,
}

struct Shared {
    secret: WebhookSecret,
    deliveries: Mutex<Vec<Delivery>>,
    arrived: Notify,
}

/// Serves `routes` with `data` on a free port of 127.0.0.1, in the
/// background, one worker: its base URL and the handle that stops it.
pub(crate) fn serve_locally<D: Send + Sync + 'static>(
    data: web::Data<D>,
    routes: fn(&mut web::ServiceConfig),
    what: &str,
) -> anyhow::Result<(String, actix_web::dev::ServerHandle)> {
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .with_context(|| format!("binding {what}"))?;
    let address = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((address, handle))
}

pub struct Receiver {
    address: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start(secret: WebhookSecret) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            secret,
            deliveries: Mutex::default(),
            arrived: Notify::new(),
        });
        let (address, handle) = serve_locally(
            web::Data::from(shared.clone()),
            |routes| {
                routes.route("/{destination}", web::post().to(receive));
            },
            "the webhook receiver",
        )?;
        Ok(Self {
            address,
            shared,
            server: handle,
        })
    }

    /// The `webhook_url` of destination `id`.
    pub fn url(&self, id: &str) -> String {
        format!("{}/{id}", self.address)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .deliveries
            .lock()
            .expect("receiver lock")
            .clone()
    }

    /// The first delivery of `kind` to `id` that arrived so far.
    pub fn delivery(&self, id: &str, kind: &str) -> Option<Delivery> {
        self.deliveries()
            .into_iter()
            .find(|d| d.destination_id == id && d.kind == kind)
    }

    /// Waits up to `limit` until every one of `ids` got a `kind`; whether
    /// they all did.
    pub async fn wait_for(&self, ids: &[&str], kind: &str, limit: Duration) -> bool {
        let all_arrived = || ids.iter().all(|id| self.delivery(id, kind).is_some());
        tokio::time::timeout(limit, async {
            loop {
                // Registered before looking, so an arrival in between wakes it.
                let arrived = self.shared.arrived.notified();
                if all_arrived() {
                    return;
                }
                arrived.await;
            }
        })
        .await
        .is_ok()
    }

    /// Stops after answering the deliveries in flight.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}

async fn receive(
    req: HttpRequest,
    destination: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = signing::verify(
        &shared.secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now,
        TOLERANCE_SECS,
    )
    .is_ok();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let delivery = Delivery {
        destination_id: destination.into_inner(),
        kind: event["type"].as_str().unwrap_or_default().to_owned(),
        verified,
        data: event["data"].clone(),
    };
    // Recorded before answering: the service counts a notification as
    // dispatched once we answered, so by then it must be visible here.
    shared
        .deliveries
        .lock()
        .expect("receiver lock")
        .push(delivery);
    shared.arrived.notify_waiters();
    if verified {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::Unauthorized().finish()
    }
}
