//! The OpenAPI 3.1 description of the API, generated from the handlers, at `/openapi.json`.
//!
//! Each handler's annotation names its operation (`resource.action`), its own answers and the
//! scope it needs; [`StandardAnswers`] adds what every operation of a kind shares (401, 403,
//! 404 on an id, 400/413/415/422 on a body, 429, 503, the rate-limit headers), once, so that
//! no operation can forget one.

use actix_web::{HttpResponse, web};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ArrayItems, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Server};
use utoipa::{Modify, OpenApi};

use super::{audit, described, key_roles, keys, keyspaces, leaks, root_keys, webhooks};
use crate::routes::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latchkey",
        description = "Multi-tenant API key management. Authenticate every `/v1` call with \
            `Authorization: Bearer <root key>`; errors are `application/problem+json` (RFC 9457) \
            with a stable `code`, each documented at the problem's `type` URI.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
        contact(name = "latchkey maintainers", url = "https://latchkey.example/support"),
    ),
    paths(
        keyspaces::create, keyspaces::list, keyspaces::get, keyspaces::update, keyspaces::delete,
        keys::create, keys::list, keys::get, keys::update, keys::rotate, keys::revoke,
        keys::revoke_bulk, keys::verify_key, keys::usage, keys::import, keys::delete,
        root_keys::create, root_keys::list, root_keys::revoke,
        audit::list,
        leaks::report,
        described::token, described::token_alias,
        described::introspect, described::introspect_alias,
        described::revoke, described::revoke_alias,
        described::jwks, described::metadata, described::metadata_well_known,
        described::healthz, described::readyz, described::metrics, described::openapi,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate_secret, webhooks::send_test, webhooks::deliveries, webhooks::redeliver,
        key_roles::create, key_roles::list, key_roles::get, key_roles::update, key_roles::delete,
    ),
    modifiers(&RootKeyAuth, &StandardAnswers),
    tags(
        (name = "keyspaces", description = "Groups of keys with a prefix and defaults"),
        (name = "keys", description = "The key lifecycle"),
        (name = "verify", description = "The hot path: is this key valid?"),
        (name = "rootKeys", description = "Management credentials"),
        (name = "auditEvents", description = "Who did what"),
        (name = "leaks", description = "Secret-scanner reports that revoke leaked keys"),
        (name = "oauth", description = "OAuth 2.0: client credentials (RFC 6749 §4.4), \
            introspection (RFC 7662), revocation (RFC 7009), JWKS (RFC 7517) and metadata \
            (RFC 8414), per tenant below `/oauth/{tenant_id}`, with deployment-wide aliases"),
        (name = "operations", description = "Probes, metrics and this description"),
        (name = "webhookEndpoints", description = "Signed event deliveries to the tenant's endpoints"),
        (name = "roles", description = "Key roles: named bundles of scopes that keys hold besides their own"),
    )
)]
pub struct ApiDoc;

/// The description as `/openapi.json` serves it, with `public_url` as its one server. The same
/// input gives the same bytes: paths, schemas and properties are kept in sorted maps.
pub fn document(public_url: &str) -> String {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(public_url)]);
    doc.to_pretty_json()
        .expect("the OpenAPI document serializes")
}

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
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`LATCHKEY_METRICS_TOKEN`, when it is set"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "root_key_client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A root key with `keys:verify` as OAuth client credentials (RFC 6749 \
                         §2.3.1): the root key's id as `client_id`, the root key as \
                         `client_secret`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "OAuth client authentication (RFC 6749 §2.3.1): the key id as \
                         `client_id`, the API key as `client_secret`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The media type of every error of the REST API.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The answers operations share, as reusable components, each added to the operations it
/// applies to unless the operation documents that status itself.
struct StandardAnswers;

/// `(component name, status, description)` of the shared problem answers.
const BAD_REQUEST: (&str, &str, &str) = (
    "BadRequest",
    "400",
    "The body is not JSON (`invalid_json`) or could not be read (`invalid_body`)",
);
const UNAUTHORIZED: (&str, &str, &str) = (
    "Unauthorized",
    "401",
    "No root key, or one that is not valid (`unauthorized`); `WWW-Authenticate` says why",
);
const FORBIDDEN: (&str, &str, &str) = (
    "Forbidden",
    "403",
    "The root key lacks the operation's scope (`forbidden`); `WWW-Authenticate` names it",
);
const NOT_FOUND: (&str, &str, &str) = (
    "NotFound",
    "404",
    "No such resource in this tenant (`not_found`)",
);
const TOO_LARGE: (&str, &str, &str) = (
    "PayloadTooLarge",
    "413",
    "The body is over `LATCHKEY_MAX_BODY_BYTES` (`payload_too_large`)",
);
const UNSUPPORTED: (&str, &str, &str) = (
    "UnsupportedMediaType",
    "415",
    "The body is not sent as `application/json` (`unsupported_media_type`)",
);
const INVALID: (&str, &str, &str) = (
    "UnprocessableContent",
    "422",
    "A field or parameter is invalid (`validation_failed`, `invalid_body`); `errors` names it",
);
const THROTTLED: (&str, &str, &str) = (
    "TooManyRequests",
    "429",
    "This root key's management rate limit is spent (`rate_limited`); retry after `Retry-After` seconds",
);
const UNAVAILABLE: (&str, &str, &str) = (
    "ServiceUnavailable",
    "503",
    "The key store is unavailable (`store_unavailable`); retry after `Retry-After` seconds",
);

/// Headers of every management answer (draft-ietf-httpapi-ratelimit-headers).
const RATE_LIMIT_HEADERS: [&str; 2] = ["RateLimit-Policy", "RateLimit"];

impl StandardAnswers {
    fn header_components() -> Vec<(&'static str, utoipa::openapi::header::Header)> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        vec![
            (
                "RateLimit-Policy",
                HeaderBuilder::new()
                    .schema(string())
                    .description(Some(
                        "The root key's management quota (draft-ietf-httpapi-ratelimit-headers), \
                         e.g. `\"management\";q=600;w=60`",
                    ))
                    .build(),
            ),
            (
                "RateLimit",
                HeaderBuilder::new()
                    .schema(string())
                    .description(Some(
                        "What is left of that quota and when it is whole again, e.g. \
                         `\"management\";r=599;t=1`",
                    ))
                    .build(),
            ),
            (
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
                    )
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            ),
            (
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(string())
                    .description(Some(
                        "RFC 6750 §3: `Bearer error=\"invalid_token\"` or \
                         `Bearer error=\"insufficient_scope\", scope=\"…\"`",
                    ))
                    .build(),
            ),
        ]
    }

    fn problem(description: &str, headers: &[&str]) -> Response {
        let mut response = ResponseBuilder::new().description(description).content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        for name in headers {
            response = response.header(*name, header_ref(name));
        }
        response.build()
    }
}

fn header_ref(name: &str) -> utoipa::openapi::header::Header {
    // utoipa has no `$ref` for headers: the description is repeated from the component.
    StandardAnswers::header_components()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, header)| header)
        .expect("a header of header_components")
}

impl Modify for StandardAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, _, description) in [
            BAD_REQUEST,
            UNAUTHORIZED,
            FORBIDDEN,
            NOT_FOUND,
            TOO_LARGE,
            UNSUPPORTED,
            INVALID,
        ] {
            let headers: &[&str] = match name {
                "Unauthorized" | "Forbidden" => &["WWW-Authenticate"],
                _ => &[],
            };
            components
                .responses
                .insert(name.to_owned(), Self::problem(description, headers).into());
        }
        components.responses.insert(
            THROTTLED.0.to_owned(),
            Self::problem(
                THROTTLED.2,
                &["Retry-After", "RateLimit-Policy", "RateLimit"],
            )
            .into(),
        );
        components.responses.insert(
            UNAVAILABLE.0.to_owned(),
            Self::problem(UNAVAILABLE.2, &["Retry-After"]).into(),
        );

        let mut used = std::collections::BTreeSet::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in operations(item) {
                let security = serde_json::to_string(&operation.security).unwrap_or_default();
                let secured = security.contains("\"root_key\"");
                // Verification (and introspection) is the hot path: never throttled per root
                // key, so it has no quota to tell of.
                let throttled = secured && !security.contains("\"keys:verify\"");
                let is_v1 = path.starts_with("/v1/");
                let mut shared = Vec::new();
                if secured {
                    shared.extend([UNAUTHORIZED, FORBIDDEN]);
                }
                if throttled {
                    shared.push(THROTTLED);
                }
                if is_v1 {
                    if path.contains("{id}") {
                        shared.push(NOT_FOUND);
                    }
                    // The leak report's body is read raw: only its size is checked before it.
                    if path == "/v1/leaks" {
                        shared.push(TOO_LARGE);
                    } else if operation.request_body.is_some() {
                        shared.extend([BAD_REQUEST, TOO_LARGE, UNSUPPORTED, INVALID]);
                    }
                    if operation.parameters.as_ref().is_some_and(|p| {
                        p.iter().any(|p| {
                            matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)
                        })
                    }) {
                        shared.push(INVALID);
                    }
                    shared.push(UNAVAILABLE);
                }
                if let Some(body) = operation.request_body.as_mut() {
                    optional_body(body);
                }
                let responses = &mut operation.responses.responses;
                for (name, status, _) in shared {
                    responses.entry(status.to_owned()).or_insert_with(|| {
                        used.insert(name);
                        RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                    });
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    problem_json(response);
                    // Every 429 and 503, problem or OAuth error, says when to retry.
                    if status == "429" || status == "503" {
                        response
                            .headers
                            .entry("Retry-After".to_owned())
                            .or_insert_with(|| header_ref("Retry-After"));
                    }
                    // Every management answer tells the caller where it stands (once it is
                    // known who calls: not on a 401 or 403).
                    if throttled && status != "401" && status != "403" {
                        for name in RATE_LIMIT_HEADERS {
                            response
                                .headers
                                .entry(name.to_owned())
                                .or_insert_with(|| header_ref(name));
                        }
                    }
                }
            }
        }
        // Only the shared answers some operation refers to.
        if let Some(components) = openapi.components.as_mut() {
            ref_page_items(&mut components.schemas);
            components
                .responses
                .retain(|name, _| used.contains(name.as_str()));
        }
    }
}

/// utoipa inlines a generic's argument: a page (`Page_KeyView`) refers to its item's schema
/// instead, so generated clients have one `KeyView` type, not one per page.
fn ref_page_items(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    let items: Vec<(String, String)> = schemas
        .keys()
        .filter_map(|name| Some((name.clone(), name.strip_prefix("Page_")?.to_owned())))
        .filter(|(_, item)| schemas.contains_key(item))
        .collect();
    for (page, item) in items {
        if let Some(RefOr::T(Schema::Object(page))) = schemas.get_mut(&page)
            && let Some(RefOr::T(Schema::Array(data))) = page.properties.get_mut("data")
        {
            data.items = ArrayItems::RefOrSchema(Box::new(Ref::from_schema_name(item).into()));
        }
    }
}

/// utoipa describes an `Option<T>` body (`OptionalJson`) as `T` or `null`, required. The server
/// takes the body left out, not `null` (`null` is no `T`): the body is `T`, and not required.
fn optional_body(body: &mut utoipa::openapi::request_body::RequestBody) {
    let mut optional = false;
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let null = |s: &RefOr<Schema>| {
            matches!(s, RefOr::T(Schema::Object(o))
                if o.schema_type == utoipa::openapi::schema::SchemaType::Type(Type::Null))
        };
        if let [a, b] = one_of.items.as_slice()
            && null(a) != null(b)
        {
            let kept = if null(a) { b } else { a };
            content.schema = Some(kept.clone());
            optional = true;
        }
    }
    if optional {
        body.required = Some(utoipa::openapi::Required::False);
    }
}

/// An error answer documented with the `Problem` schema is sent as problem+json.
fn problem_json(response: &mut Response) {
    let problem = response.content.iter().any(|(media, content)| {
        media == "application/json"
            && serde_json::to_value(&content.schema)
                .is_ok_and(|schema| schema["$ref"] == "#/components/schemas/Problem")
    });
    if problem && let Some(content) = response.content.shift_remove("application/json") {
        response.content.insert(PROBLEM_JSON.to_owned(), content);
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/openapi.json").get(|state: web::Data<AppState>| async move {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(document(state.tokens.public_url()))
        }),
    );
}
