//! Request logging: a root span per request that names its route, never its raw URL, and the
//! request id, returned as `X-Request-Id` and readable below the edge through `telemetry`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use crate::telemetry;

/// The root span of each request. It names the matched route pattern, never the raw path or
/// query string, so a key a client put in a URL cannot reach the log.
pub struct SafeRootSpan;

impl RootSpanBuilder for SafeRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            route = tracing::field::Empty,
            request_id = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        // Finding the route pattern matches the path against the routes a second time: only
        // pay for it when the span is logged.
        if !span.is_disabled() {
            let route = request.match_pattern();
            span.record("route", route.as_deref().unwrap_or("unmatched"));
            if let Some(id) = request.extensions().get::<tracing_actix_web::RequestId>() {
                span.record("request_id", tracing::field::display(id));
            }
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status().as_u16(),
            Err(error) => error.as_response_error().status_code().as_u16(),
        };
        span.record("status", status);
    }
}

/// Makes the request id (assigned by `TracingLogger`) visible to handlers' error bodies and
/// returns it to the client as `X-Request-Id`.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(ToString::to_string)
        .unwrap_or_else(crate::domain::ids::new_id);
    let started = Instant::now();
    let mut response = telemetry::with_request_id(id.clone(), next.call(req)).await?;
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    if status >= 500 {
        tracing::warn!(status, latency_us, "request served");
    } else {
        tracing::info!(status, latency_us, "request served");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}
