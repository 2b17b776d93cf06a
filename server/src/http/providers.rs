//! The CPaaS webhooks (docs/providers.md), written once for every
//! [`Provider`]: `SignedForm` hands the whole request to the provider, which
//! checks its signature before any handler runs, and every handler answers
//! markup.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use tracing::Instrument as _;

use super::auth::app_state;
use super::error::ApiError;
use super::state::AppState;
use crate::domain::ids::CallSid;
use crate::domain::session::SessionId;
use crate::domain::time::Timestamp;
use crate::flow::model::{CallScript, StatusReport, Step};
use crate::flow::{CallFlow, CallbackQuery};
use crate::providers::{
    EachProvider, Params, Provider, SignatureError, SignatureVariant, WebhookRequest, each_provider,
};

/// Registers the routes of every provider.
pub(super) fn every_providers_routes(cfg: &mut web::ServiceConfig) {
    struct Register<'a>(&'a mut web::ServiceConfig);
    impl EachProvider for Register<'_> {
        fn visit<P: Provider>(&mut self) {
            provider_routes::<P>(self.0);
        }
    }
    each_provider(&mut Register(cfg));
}

/// The routes of provider `P`.
fn provider_routes<P: Provider>(cfg: &mut web::ServiceConfig) {
    let routes = P::ROUTES;
    // One resource a path, so that another method is 405, not 404.
    cfg.service(web::resource(routes.answer).post(answer::<P>))
        .service(web::resource(routes.dial_status).post(callback::<P, DialStatus>))
        .service(web::resource(routes.voicemail).post(callback::<P, Voicemail>))
        .service(web::resource(routes.screen).post(callback::<P, Screen>))
        .service(web::resource(routes.screen_result).post(callback::<P, ScreenResult>))
        .service(web::resource(routes.status).post(status::<P>))
        .service(web::resource(routes.recording).post(callback::<P, RecordingReady>))
        .service(web::resource(routes.transcription).post(callback::<P, TranscriptionReady>));
}

/// The form of a request whose signature checked out for provider `P`.
pub struct SignedForm<P> {
    pub params: Params,
    provider: PhantomData<P>,
}

impl<P: Provider> FromRequest for SignedForm<P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let state = app_state(&req)?;
            let refused = |reason: &'static str| state.metrics.webhook_refused(P::NAME, reason);
            // Fail closed: without the credential nothing can be checked.
            let Some(config) = state.settings.providers.get::<P>() else {
                refused("not_configured");
                return Err(ApiError::NotConfigured(P::VARIABLES[0]));
            };
            // Unsigned: refused before the body is read, so that unsigned
            // clients cannot hold connections open with slow bodies.
            if !P::SIGNATURE_HEADERS
                .iter()
                .any(|h| req.headers().contains_key(*h))
            {
                refused(SignatureError::Missing.label());
                // Logged once a minute per address by the edge's limiter.
                tracing::debug!(provider = P::NAME, "refused a webhook without a signature");
                return Err(ApiError::InvalidSignature);
            }
            let body = body.await.map_err(|err| {
                if err.as_response_error().status_code()
                    == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
                {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::MalformedBody("the request body could not be read".into())
                }
            })?;
            // The URL the provider called: our public base plus the path and
            // query exactly as received, never rebuilt from proxy headers.
            let path_and_query = req
                .uri()
                .path_and_query()
                .map_or(req.path(), |pq| pq.as_str());
            let url = state.settings.public_base_url.join(path_and_query);
            let request = WebhookRequest {
                url: &url,
                headers: req.headers(),
                body: &body,
                // The system's time, not the flow's clock: a signature's
                // timestamp is the provider's real one.
                received_at: Timestamp::now(),
            };
            let verified = P::verify(config, &request).map_err(|err| {
                refused(err.label());
                // Logged once a minute per address, with the URL it was
                // checked against, by the edge's limiter.
                tracing::debug!(provider = P::NAME, reason = %err, "refused a webhook with a bad signature");
                ApiError::InvalidSignature
            })?;
            let variant =
                (verified.variant != SignatureVariant::AsSent).then(|| verified.variant.label());
            state
                .metrics
                .signature_verified(P::NAME, verified.key.label(), variant);
            Ok(SignedForm {
                params: verified.params,
                provider: PhantomData,
            })
        })
    }
}

/// Markup of provider `P`: only its routes render it, and they answer only
/// once `P` is configured (a [`SignedForm`] was extracted).
fn markup<P: Provider>(state: &AppState, script: &CallScript) -> HttpResponse {
    let body = match state.settings.providers.get::<P>() {
        Some(config) => P::render(config, script),
        None => String::new(),
    };
    HttpResponse::Ok()
        .content_type(P::MARKUP_CONTENT_TYPE)
        .body(body)
}

async fn answer<P: Provider>(state: web::Data<AppState>, form: SignedForm<P>) -> HttpResponse {
    let region = state.settings.default_region;
    let Some(call) = P::inbound_call(&form.params, region) else {
        tracing::warn!(provider = P::NAME, "answer webhook without a call id");
        return markup::<P>(&state, &state.flow.unknown_call());
    };
    let span = tracing::info_span!("forwarded_call", provider = P::NAME, call_sid = %call.call_id);
    let script = state
        .flow
        .answer_forwarded_call(&P::ROUTES, P::NAME, call)
        .instrument(span)
        .await;
    markup::<P>(&state, &script)
}

/// One of the callbacks our markup points a provider at (a Dial's action,
/// a whisper, a key press, a voicemail, a recording): what it asks of the
/// flow, answered as markup by [`callback`].
trait Callback: 'static {
    /// What a request without our context in its query is answered: the
    /// caller still gets markup.
    fn foreign() -> CallScript {
        CallScript(vec![Step::Hangup])
    }

    /// The script for a signed request with our context.
    async fn script<P: Provider>(
        flow: &CallFlow,
        query: CallbackQuery,
        params: &Params,
    ) -> CallScript;
}

/// A Dial we returned ended: the hunt goes on, or ends.
struct DialStatus;

impl Callback for DialStatus {
    async fn script<P: Provider>(
        flow: &CallFlow,
        query: CallbackQuery,
        params: &Params,
    ) -> CallScript {
        flow.dial_finished(&P::ROUTES, query, P::dial_result(params))
            .await
    }
}

/// A `<Record>` we returned ended.
struct Voicemail;

impl Callback for Voicemail {
    async fn script<P: Provider>(
        flow: &CallFlow,
        query: CallbackQuery,
        params: &Params,
    ) -> CallScript {
        flow.voicemail_recorded(query, P::recording_url(params))
            .await
    }
}

/// A dialed leg picked up: its whisper.
struct Screen;

impl Callback for Screen {
    async fn script<P: Provider>(
        flow: &CallFlow,
        query: CallbackQuery,
        _params: &Params,
    ) -> CallScript {
        flow.leg_picked_up(&P::ROUTES, P::SCREENING, query).await
    }
}

/// The key a screened callee pressed.
struct ScreenResult;

impl Callback for ScreenResult {
    async fn script<P: Provider>(
        flow: &CallFlow,
        query: CallbackQuery,
        params: &Params,
    ) -> CallScript {
        flow.screen_result(query, P::digits(params)).await
    }
}

/// A recording of a Dial's legs is ready (the Dial's
/// `recordingStatusCallback`, Plivo's Record `callbackUrl`). The provider
/// reads nothing of the answer but its 200: an empty document.
struct RecordingReady;

impl Callback for RecordingReady {
    fn foreign() -> CallScript {
        CallScript::default()
    }

    async fn script<P: Provider>(
        flow: &CallFlow,
        query: CallbackQuery,
        params: &Params,
    ) -> CallScript {
        // Another recording status (in progress, absent), or no file:
        // nothing to announce.
        if let Some(recording) = P::finished_recording(params) {
            flow.recording_ready(query, recording).await;
        }
        CallScript::default()
    }
}

/// The transcription of a voicemail is ready (the voicemail `<Record>`'s
/// transcription callback). As for recordings, the provider reads nothing
/// of the answer but its 200.
struct TranscriptionReady;

impl Callback for TranscriptionReady {
    fn foreign() -> CallScript {
        CallScript::default()
    }

    async fn script<P: Provider>(
        flow: &CallFlow,
        query: CallbackQuery,
        params: &Params,
    ) -> CallScript {
        match P::transcription(params) {
            Some(transcription) => flow.transcription_ready(query, transcription).await,
            None => tracing::warn!(
                provider = P::NAME,
                "a transcription callback without a transcription"
            ),
        }
        CallScript::default()
    }
}

/// Every callback `C` of provider `P`: our context from the query (as
/// `web::Query` read it; a foreign one is logged, not shown, and answered
/// [`Callback::foreign`]), the flow's script in a span naming the call and
/// the session, rendered as `P`'s markup.
async fn callback<P: Provider, C: Callback>(
    query: Option<web::Query<CallbackQuery>>,
    state: web::Data<AppState>,
    form: SignedForm<P>,
) -> HttpResponse {
    let Some(query) = query.map(web::Query::into_inner) else {
        // The query may hold anything: log that it was foreign, not what.
        tracing::warn!(provider = P::NAME, "callback without our context");
        return markup::<P>(&state, &C::foreign());
    };
    let span = callback_span::<P>(&form, &query);
    let script = C::script::<P>(&state.flow, query, &form.params)
        .instrument(span)
        .await;
    markup::<P>(&state, &script)
}

/// The forwarded call's status callback, and (with our query) the leg
/// events of our Dials.
async fn status<P: Provider>(
    query: Option<web::Query<CallbackQuery>>,
    state: web::Data<AppState>,
    form: SignedForm<P>,
) -> HttpResponse {
    let report = P::status_report(&form.params, state.settings.default_region);
    let call_id = P::call_id(&form.params);
    tracing::info!(provider = P::NAME, call_sid = call_id.as_ref().map(CallSid::as_str), report = ?report, "call status");
    // Our own query, when the URL is one of ours; the number's status
    // callback carries none.
    let query = query.map(web::Query::into_inner);
    // The number the call reached, for the store to find its session.
    let called = if report == StatusReport::CallEnded {
        P::inbound_call(&form.params, state.settings.default_region).and_then(|call| call.to)
    } else {
        None
    };
    state
        .flow
        .status_reported(query, call_id, called, report)
        .await;
    HttpResponse::NoContent().finish()
}

fn callback_span<P: Provider>(form: &SignedForm<P>, query: &CallbackQuery) -> tracing::Span {
    tracing::info_span!(
        "call_callback",
        provider = P::NAME,
        call_sid = P::call_id(&form.params).as_ref().map(CallSid::as_str),
        session_id = query.session.as_ref().map(SessionId::as_str),
    )
}
