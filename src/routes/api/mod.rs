//! The REST API under `/v1`, one file per resource, and its OpenAPI description.

pub mod audit;
pub mod keys;
pub mod keyspaces;
pub mod openapi;
pub mod root_keys;

use actix_web::web;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .configure(keyspaces::configure)
            .configure(keys::configure)
            .configure(root_keys::configure)
            .configure(audit::configure),
    )
    .configure(openapi::configure);
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
