//! A real local HTTP server standing in for destinations' webhook URLs. It
//! checks each delivery's Standard Webhooks signature, records it, and can
//! hold its answer until the test releases it (to observe ordering without
//! timing) or answer with a chosen status.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use ringrelay_server::notify::signing;
use ringrelay_server::notify::signing::WebhookSecret;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::WEBHOOK_SECRET;

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub body: Value,
    /// Whether the Standard Webhooks signature checked out.
    pub signature_valid: bool,
}

impl Received {
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer 204 at once.
    Answer,
    /// Answer only once `release()` is called.
    HoldUntilReleased,
    /// Never answer.
    Hang,
    /// Answer this status.
    Status(u16),
}

struct Shared {
    /// The `whsec_` secret deliveries are checked with.
    secret: WebhookSecret,
    behaviour: Mutex<Behaviour>,
    arrivals: mpsc::UnboundedSender<Received>,
    released: watch::Receiver<bool>,
}

pub struct WebhookReceiver {
    address: String,
    arrivals: tokio::sync::Mutex<mpsc::UnboundedReceiver<Received>>,
    release: watch::Sender<bool>,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl WebhookReceiver {
    /// A receiver holding the tests' `WEBHOOK_SECRET`.
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_with_secret(behaviour, WEBHOOK_SECRET).await
    }

    /// A receiver that checks signatures with `secret` (`whsec_…`).
    pub async fn start_with_secret(behaviour: Behaviour, secret: &str) -> Self {
        let (arrivals_tx, arrivals_rx) = mpsc::unbounded_channel();
        let (release_tx, release_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            secret: WebhookSecret::parse(secret).expect("a whsec_ secret"),
            behaviour: Mutex::new(behaviour),
            arrivals: arrivals_tx,
            released: release_rx,
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let address = format!("http://127.0.0.1:{}", server.addrs()[0].port());
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            address,
            arrivals: tokio::sync::Mutex::new(arrivals_rx),
            release: release_tx,
            shared,
            server: handle,
        }
    }

    /// The URL of one of its paths (one per destination, to tell them apart).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Lets held requests answer.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }

    /// The next delivery; fails the test if none arrives within 10 s.
    pub async fn next(&self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.arrivals.lock().await.recv())
            .await
            .expect("a webhook arrives within 10 s")
            .expect("the receiver is running")
    }

    /// The next `n` deliveries, in arrival order.
    pub async fn take(&self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Deliveries that already arrived, without waiting.
    pub async fn arrived_so_far(&self) -> Vec<Received> {
        let mut arrivals = self.arrivals.lock().await;
        let mut out = Vec::new();
        while let Ok(r) = arrivals.try_recv() {
            out.push(r);
        }
        out
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.release.send(true);
        let handle = self.server.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature_valid = signing::verify(
        &shared.secret,
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        now,
        300,
    )
    .is_ok();
    let received = Received {
        path: req.path().to_owned(),
        webhook_id: header("webhook-id"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        signature_valid,
    };
    // Decide the answer before announcing the arrival, so that a test that
    // changes the behaviour once it sees this delivery affects only later ones.
    let behaviour = *shared.behaviour.lock().unwrap();
    let _ = shared.arrivals.send(received);
    match behaviour {
        Behaviour::Answer => HttpResponse::NoContent().finish(),
        Behaviour::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
        }
        Behaviour::HoldUntilReleased => {
            let mut released = shared.released.clone();
            let _ = released.wait_for(|r| *r).await;
            HttpResponse::NoContent().finish()
        }
        Behaviour::Hang => {
            std::future::pending::<()>().await;
            HttpResponse::NoContent().finish()
        }
    }
}
