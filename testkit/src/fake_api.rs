//! A real local HTTP server standing in for an outside API (a provider's
//! REST API, a browser's push service): it records every request whole and
//! answers what the test scripted, so that a test checks what the service
//! sent, byte for byte, and how it takes each answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tokio::sync::mpsc;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: Vec::new(),
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(body).unwrap(),
        }
    }
}

struct Shared {
    /// Answers for every request to a path, whatever comes before it.
    by_path: Mutex<BTreeMap<String, Answer>>,
    /// Answers for the next requests, in order; then `usual`.
    scripted: Mutex<VecDeque<Answer>>,
    usual: Mutex<Answer>,
    requests: mpsc::UnboundedSender<Recorded>,
}

pub struct FakeApi {
    address: String,
    requests: tokio::sync::Mutex<mpsc::UnboundedReceiver<Recorded>>,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl FakeApi {
    /// A fake that answers `usual` to every request not scripted otherwise.
    pub async fn start(usual: Answer) -> Self {
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            by_path: Mutex::new(BTreeMap::new()),
            scripted: Mutex::new(VecDeque::new()),
            usual: Mutex::new(usual),
            requests: requests_tx,
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
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
            requests: tokio::sync::Mutex::new(requests_rx),
            shared,
            server: handle,
        }
    }

    /// Its base URL (no trailing slash).
    pub fn base(&self) -> &str {
        &self.address
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The next request gets `answer` (after those scripted before).
    pub fn then_answer(&self, answer: Answer) {
        self.shared.scripted.lock().unwrap().push_back(answer);
    }

    /// Every request to `path` gets `answer` from now on, whatever else is
    /// scripted: for requests that go out at once, in no set order.
    pub fn answer_at(&self, path: &str, answer: Answer) {
        self.shared
            .by_path
            .lock()
            .unwrap()
            .insert(path.to_owned(), answer);
    }

    /// Every request not scripted gets `answer` from now on.
    pub fn always_answer(&self, answer: Answer) {
        *self.shared.usual.lock().unwrap() = answer;
    }

    /// The next request; fails the test if none arrives within 10 s.
    pub async fn next(&self) -> Recorded {
        tokio::time::timeout(Duration::from_secs(10), self.requests.lock().await.recv())
            .await
            .expect("a request arrives within 10 s")
            .expect("the fake is running")
    }

    /// Requests that already arrived, without waiting.
    pub async fn arrived_so_far(&self) -> Vec<Recorded> {
        let mut requests = self.requests.lock().await;
        let mut out = Vec::new();
        while let Ok(r) = requests.try_recv() {
            out.push(r);
        }
        out
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        let handle = self.server.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

async fn answer(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let recorded = Recorded {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned()),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    // Decided before the request is announced, so that a test that scripts
    // the next answer once it sees this request affects only later ones.
    let at_path = shared.by_path.lock().unwrap().get(&recorded.path).cloned();
    let answer = at_path.unwrap_or_else(|| {
        shared
            .scripted
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| shared.usual.lock().unwrap().clone())
    });
    let _ = shared.requests.send(recorded);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answer.status).unwrap())
        .content_type(answer.content_type)
        .body(answer.body)
}
