//! A fast webhook receiver for `scripts/bench`: answers 204 to anything.
//!
//! usage: cargo run --release --example bench_receiver -- PORT

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: bench_receiver PORT");
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async { HttpResponse::NoContent().finish() }))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
