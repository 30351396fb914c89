//! What every answer carries whatever its route: a known path asked with the wrong method is a
//! problem+json 405 with `Allow`; a management answer tells its caller where it stands against
//! its root key's quota (`RateLimit-Policy`, `RateLimit`); a problem's `type` is the page that
//! documents its code, `{public_url}/docs/errors#{code}`, which is served here too.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};

use crate::domain::error_code::ErrorCode;
use crate::error::ApiError;
use crate::routes::extractor::ManagementQuota;

/// The page of the stable error codes, one anchor per code.
pub const ERRORS_PATH: &str = "/docs/errors";

/// The name of the one quota policy (draft-ietf-httpapi-ratelimit-headers §3).
const POLICY: &str = "management";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(ERRORS_PATH).get(errors_page));
}

/// `docs/ERRORS.md`, as written (`text/markdown`, RFC 7763): each code is a heading with an
/// anchor named after it.
async fn errors_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../docs/ERRORS.md"))
}

/// `{public_url}/docs/errors`, made once per app: a request only clones the `Arc`.
pub struct ErrorPage(Arc<str>);

impl ErrorPage {
    pub fn new(public_url: &str) -> Self {
        Self(format!("{public_url}{ERRORS_PATH}").into())
    }
}

pub async fn answer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let page = req
        .app_data::<web::Data<ErrorPage>>()
        .map(|page| page.0.clone());
    let page_again = page.clone();
    let mut response = match page {
        Some(page) => crate::error::with_error_page(page, next.call(req)).await?,
        None => next.call(req).await?,
    };
    let quota = response
        .request()
        .extensions()
        .get::<ManagementQuota>()
        .copied();
    if let Some(quota) = quota {
        rate_limit_headers(response.headers_mut(), quota);
    }
    // actix's own 405 (a resource none of whose routes takes the method) has `Allow` and no body.
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        let method = response.request().method().clone();
        let problem = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            format!("this path does not take {method}; see Allow"),
        );
        let mut answer = match page_again {
            Some(page) => crate::error::with_error_page_sync(page, || problem.error_response()),
            None => problem.error_response(),
        };
        if let Some(allow) = allow {
            answer.headers_mut().insert(header::ALLOW, allow);
        }
        return Ok(response.into_response(answer).map_into_right_body());
    }
    Ok(response.map_into_left_body())
}

/// `RateLimit-Policy: "management";q=600;w=60` and `RateLimit: "management";r=599;t=1`.
fn rate_limit_headers(headers: &mut header::HeaderMap, quota: ManagementQuota) {
    let ManagementQuota {
        per_minute,
        standing,
    } = quota;
    let values = [
        (
            "ratelimit-policy",
            format!("\"{POLICY}\";q={per_minute};w=60"),
        ),
        (
            "ratelimit",
            format!(
                "\"{POLICY}\";r={};t={}",
                standing.remaining, standing.reset_seconds
            ),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}
