//! Every request's body is read within [`BODY_DEADLINE`] (docs/operations.md): a
//! client that sends a `Content-Length` and then trickles or stops would
//! otherwise hold a connection, and a file descriptor, for as long as it
//! likes. Past the deadline the body ends with an error and the answer is
//! 408, whatever the handler made of the truncated body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;

use super::error::ApiError;

/// How long a client has to send its whole body.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

pub async fn read_body_within_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let payload = req.take_payload();
    let bounded = DeadlinePayload {
        inner: payload,
        deadline: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
        timed_out: timed_out.clone(),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(bounded),
    });
    let response = next.call(req).await?;
    if timed_out.load(Ordering::Relaxed) {
        let (request, _) = response.into_parts();
        let timeout = actix_web::ResponseError::error_response(&ApiError::RequestTimeout);
        return Ok(ServiceResponse::new(request, timeout).map_into_right_body());
    }
    Ok(response.map_into_left_body())
}

struct DeadlinePayload {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(chunk) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(chunk);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        Poll::Pending
    }
}
