//! The OpenAPI 3.1 description of the REST API, generated from the handlers, at `/openapi.json`.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, keys, keyspaces, leaks, root_keys, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latchkey",
        description = "Multi-tenant API key management. Authenticate every call with \
            `Authorization: Bearer <root key>`; errors are `application/problem+json` with a stable `code`."
    ),
    paths(
        keyspaces::create, keyspaces::list, keyspaces::get, keyspaces::update,
        keys::create, keys::list, keys::get, keys::update, keys::rotate, keys::revoke,
        keys::revoke_bulk, keys::verify_key, keys::usage,
        root_keys::create, root_keys::list, root_keys::revoke,
        audit::list,
        leaks::report,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate_secret, webhooks::send_test, webhooks::deliveries, webhooks::redeliver,
    ),
    modifiers(&RootKeyAuth),
    tags(
        (name = "keyspaces", description = "Groups of keys with a prefix and defaults"),
        (name = "keys", description = "The key lifecycle"),
        (name = "verify", description = "The hot path: is this key valid?"),
        (name = "root keys", description = "Management credentials"),
        (name = "audit", description = "Who did what"),
        (name = "leaks", description = "Secret-scanner reports that revoke leaked keys"),
        (name = "webhooks", description = "Signed event deliveries to the tenant's endpoints"),
    )
)]
pub struct ApiDoc;

struct RootKeyAuth;

impl Modify for RootKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "root_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A root key (`lk_root_…`) with the scope the operation names",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let document = ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serializes");
    cfg.route(
        "/openapi.json",
        web::get().to(move || {
            let document = document.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(document)
            }
        }),
    );
}
