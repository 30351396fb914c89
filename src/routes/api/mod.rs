//! The REST API under `/v1`, one file per resource, and its OpenAPI description.

pub mod audit;
mod described;
pub mod key_roles;
pub mod keys;
pub mod keyspaces;
pub mod leaks;
pub mod openapi;
pub mod root_keys;
mod schemas;

use schemas::IpAddress;
pub mod views;
pub mod webhooks;

use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        // Routes are tried in order: keys (verification, the hot path) first.
        web::scope("/v1")
            .configure(keys::configure)
            .configure(keyspaces::configure)
            .configure(root_keys::configure)
            .configure(audit::configure)
            .configure(leaks::configure)
            .configure(webhooks::configure)
            .configure(key_roles::configure),
    )
    .configure(openapi::configure);
}

/// A 201 whose `Location` names the new resource (RFC 9110 §15.3.2), as a path below the
/// public URL (a relative reference, §10.2.2).
pub fn created_at(path: &str) -> actix_web::HttpResponseBuilder {
    let mut builder = actix_web::HttpResponse::Created();
    builder.insert_header((actix_web::http::header::LOCATION, path));
    builder
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// For PATCH bodies: tells "absent" (`None`) from "explicitly null" (`Some(None)`).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// A JSON body that may be left out entirely. A request without a body gives `None`; a body that
/// is sent must be valid, exactly as with [`Json`](crate::routes::input::Json) (same limits and
/// problem answers).
/// (`Option<web::Json<T>>` would instead turn a malformed or oversized body into `None` and act on
/// it as if none was sent.)
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        // HTTP/1.1 (RFC 9112 §6.3): a request has a body only with Transfer-Encoding or a
        // non-zero Content-Length.
        let headers = req.headers();
        let has_body = headers.contains_key(TRANSFER_ENCODING)
            || headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        if !has_body {
            return Box::pin(async { Ok(Self(None)) });
        }
        let json = crate::routes::input::Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(Self(Some(json.await?.into_inner()))) })
    }
}
