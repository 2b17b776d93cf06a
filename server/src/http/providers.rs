//! The CPaaS webhooks (contract §7, §11), written once for every
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
use crate::flow::CallbackQuery;
use crate::flow::model::{CallScript, Step};
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
        .service(web::resource(routes.dial_status).post(dial_status::<P>))
        .service(web::resource(routes.voicemail).post(voicemail::<P>))
        .service(web::resource(routes.screen).post(screen::<P>))
        .service(web::resource(routes.screen_result).post(screen_result::<P>))
        .service(web::resource(routes.status).post(status::<P>))
        .service(web::resource(routes.recording).post(recording::<P>));
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
                method: req.method(),
                url: &url,
                headers: req.headers(),
                body: &body,
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
        .answer_forwarded_call(&P::ROUTES, call)
        .instrument(span)
        .await;
    markup::<P>(&state, &script)
}

/// Our context from the query of a callback URL, as `web::Query` read it;
/// `None` when it is not ours (the caller still gets markup: a hang-up).
fn callback_query<P: Provider>(query: Option<web::Query<CallbackQuery>>) -> Option<CallbackQuery> {
    if query.is_none() {
        // The query may hold anything: log that it was foreign, not what.
        tracing::warn!(provider = P::NAME, "callback without our context");
    }
    query.map(web::Query::into_inner)
}

fn hangup<P: Provider>(state: &AppState) -> HttpResponse {
    markup::<P>(state, &CallScript(vec![Step::Hangup]))
}

async fn dial_status<P: Provider>(
    query: Option<web::Query<CallbackQuery>>,
    state: web::Data<AppState>,
    form: SignedForm<P>,
) -> HttpResponse {
    let Some(query) = callback_query::<P>(query) else {
        return hangup::<P>(&state);
    };
    let result = P::dial_result(&form.params);
    let span = callback_span::<P>(&form, &query);
    let script = state
        .flow
        .dial_finished(&P::ROUTES, query, result)
        .instrument(span)
        .await;
    markup::<P>(&state, &script)
}

async fn voicemail<P: Provider>(
    query: Option<web::Query<CallbackQuery>>,
    state: web::Data<AppState>,
    form: SignedForm<P>,
) -> HttpResponse {
    let Some(query) = callback_query::<P>(query) else {
        return hangup::<P>(&state);
    };
    let span = callback_span::<P>(&form, &query);
    let script = state
        .flow
        .voicemail_recorded(query, P::recording_url(&form.params))
        .instrument(span)
        .await;
    markup::<P>(&state, &script)
}

async fn screen<P: Provider>(
    query: Option<web::Query<CallbackQuery>>,
    state: web::Data<AppState>,
    form: SignedForm<P>,
) -> HttpResponse {
    let Some(query) = callback_query::<P>(query) else {
        return hangup::<P>(&state);
    };
    let span = callback_span::<P>(&form, &query);
    let script = state
        .flow
        .leg_picked_up(&P::ROUTES, P::SCREENING, query)
        .instrument(span)
        .await;
    markup::<P>(&state, &script)
}

async fn screen_result<P: Provider>(
    query: Option<web::Query<CallbackQuery>>,
    state: web::Data<AppState>,
    form: SignedForm<P>,
) -> HttpResponse {
    let Some(query) = callback_query::<P>(query) else {
        return hangup::<P>(&state);
    };
    let span = callback_span::<P>(&form, &query);
    let script = state
        .flow
        .screen_result(query, P::digits(&form.params))
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
    state.flow.status_reported(query, call_id, report).await;
    HttpResponse::NoContent().finish()
}

/// A recording of a Dial's legs is ready (the Dial's
/// `recordingStatusCallback`, Plivo's Record `callbackUrl`). The provider
/// reads nothing of the answer but its 200: an empty document.
async fn recording<P: Provider>(
    query: Option<web::Query<CallbackQuery>>,
    state: web::Data<AppState>,
    form: SignedForm<P>,
) -> HttpResponse {
    let empty = markup::<P>(&state, &CallScript::default());
    let Some(query) = callback_query::<P>(query) else {
        return empty;
    };
    let Some(recording) = P::finished_recording(&form.params) else {
        // Another recording status (in progress, absent), or no file.
        return empty;
    };
    let span = callback_span::<P>(&form, &query);
    state
        .flow
        .recording_ready(query, recording)
        .instrument(span)
        .await;
    empty
}

fn callback_span<P: Provider>(form: &SignedForm<P>, query: &CallbackQuery) -> tracing::Span {
    tracing::info_span!(
        "call_callback",
        provider = P::NAME,
        call_sid = P::call_id(&form.params).as_ref().map(CallSid::as_str),
        session_id = query.session.as_ref().map(SessionId::as_str),
    )
}
