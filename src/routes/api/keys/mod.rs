//! `/v1/keys`: create, list, read, update, rotate, revoke and verify API keys.

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{IpAddress, OptionalJson, created_at};
use crate::domain::scope::Scope;
use crate::error::{ApiError, ProblemDoc};
mod body;
mod query;

pub use body::{BulkRevoke, CreateKey, ImportKey, ImportKeys, UpdateKey};
pub use query::{DeleteQuery, ListQuery, UsageQuery};

use crate::domain::commands::{KeyChanges, NewKey};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::KeyId;
use crate::manage::keys::{self, Idempotency};
use crate::manage::parse_path_id;
use crate::routes::api::views::{
    BulkRevoked, CreatedKey, ImportedKeys, KeyUsage, KeyView, Page, RotatedKey, VerifyOutcomeBody,
};
use crate::routes::extractor::{
    Authorized, KeysCreate, KeysRead, KeysRevoke, KeysRotate, KeysUpdate, KeysVerify,
    RequiredScope, RootKeysRevoke,
};
use crate::routes::no_store;
use crate::routes::state::AppState;
use crate::verify::{MAX_COST, VerifyInput};

/// One resource per path, so that a known path asked with another method is a 405 (and
/// `/keys/verify` and `/keys/revoke`, first, are never taken for a key id).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/keys/verify").post(verify_key))
        .service(web::resource("/keys").post(create).get(list))
        .service(web::resource("/keys/revoke").post(revoke_bulk))
        .service(web::resource("/keys/import").post(import))
        .service(
            web::resource("/keys/{id}")
                .get(get)
                .patch(update)
                .delete(delete),
        )
        .service(web::resource("/keys/{id}/usage").get(usage))
        .service(web::resource("/keys/{id}/rotate").post(rotate))
        .service(web::resource("/keys/{id}/revoke").post(revoke));
}

/// Create a key
///
/// Creates a key in a keyspace, with the keyspace's defaults for what is not given. The plaintext
/// `key` is in this response only; `Idempotency-Key` makes a retry return the same key (without
/// the plaintext). Needs `keys:create`.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", operation_id = "keys.create", request_body = CreateKey,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Retrying the same request with the same value returns the same key id instead of a second key")),
    responses(
        (status = 201, description = "Created; `key` is the plaintext, shown once", body = CreatedKey,
            headers(("Location" = String, description = "The new key: `/v1/keys/{id}`"))),
        (status = 200, description = "Idempotent replay: the key created earlier, without plaintext", body = CreatedKey),
        (status = 422, description = "Invalid field (`invalid_field`), or an Idempotency-Key already used with a different body (`idempotency_key_reused`)", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:create"])))]
pub async fn create(
    auth: Authorized<KeysCreate>,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: crate::routes::input::Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let idempotency = match req.headers().get("idempotency-key") {
        Some(value) => {
            let key = value.to_str().map_err(|_| {
                ApiError::bad_request(
                    ErrorCode::InvalidIdempotencyKey,
                    "Idempotency-Key must be printable ASCII",
                )
            })?;
            Some(Idempotency::new(key.to_owned(), body.fingerprint())?)
        }
        None => None,
    };
    let created = keys::create(
        &state.manage(),
        &auth.audit,
        &auth.tenant,
        NewKey::try_from(body)?,
        idempotency,
    )
    .await?;
    let created = CreatedKey::from(created);
    let status = if created.key.is_some() {
        created_at(&format!("/v1/keys/{}", created.view.id))
    } else {
        HttpResponse::Ok()
    };
    Ok(no_store(status).json(created))
}

/// Import keys
///
/// Brings in up to 1,000 keys made by another system, so their holders need not rotate: each
/// by its plaintext (digested on arrival, never stored) or by the SHA-256 digest that system
/// kept (`sha256_hex` or `sha256_base64`), with the fields of a create. Keys in another format
/// verify as they are; one imported by digest is stored under latchkey's digest from its first
/// successful verification on. Each item is answered `imported`, `duplicate` (its
/// `external_ref` was imported before: a retry is safe) or `invalid` (naming the field). Needs
/// `keys:create`.
#[utoipa::path(post, path = "/v1/keys/import", tag = "keys", operation_id = "keys.import", request_body = ImportKeys,
    responses(
        (status = 200, description = "One result per item, in order", body = ImportedKeys),
        (status = 409, description = "A concurrent import wrote some of the same keys (`import_conflict`); nothing was imported, retry", body = ProblemDoc),
        (status = 422, description = "Not 1 to 1,000 keys, or a malformed body; nothing was imported", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:create"])))]
pub async fn import(
    auth: Authorized<KeysCreate>,
    state: web::Data<AppState>,
    body: crate::routes::input::Json<ImportKeys>,
) -> Result<HttpResponse, ApiError> {
    let items = body.into_inner().into_items()?;
    let outcomes = keys::import(&state.manage(), &auth.audit, &auth.tenant, items).await?;
    Ok(no_store(HttpResponse::Ok()).json(ImportedKeys::from(outcomes)))
}

/// List keys
///
/// The tenant's keys, newest first, filtered by keyspace, owner, status and a name search. Needs
/// `keys:read`.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", operation_id = "keys.list", params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<KeyView>),
        (status = 422, description = "Invalid limit or cursor", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:read"])))]
pub async fn list(
    auth: Authorized<KeysRead>,
    state: web::Data<AppState>,
    query: crate::routes::input::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().try_into()?;
    let listed = keys::list(&state.manage(), &auth.tenant, filter, page).await?;
    Ok(HttpResponse::Ok().json(Page::<KeyView>::from(listed)))
}

/// Read a key
///
/// Everything about a key except its secret and digest. Needs `keys:read`.
#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys", operation_id = "keys.get",
    params(("id" = String, Path, format = Uuid, description = "Key id")),
    responses(
        (status = 200, description = "The key", body = KeyView),
        (status = 404, description = "No such key in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:read"])))]
pub async fn get(
    auth: Authorized<KeysRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let key = keys::get(&state.manage(), &auth.tenant, &id).await?;
    Ok(HttpResponse::Ok().json(KeyView::from(key)))
}

/// Delete a key
///
/// A revoked or expired key, for good: what stays is a tombstone of its digest (so it never
/// verifies and cannot be imported again) and its audit trail; its usage goes with it. A live
/// key (active or disabled) is refused unless `force=true`, which revokes it first. Needs
/// `keys:revoke`.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", operation_id = "keys.delete",
    params(("id" = String, Path, format = Uuid, description = "Key id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such key in this tenant", body = ProblemDoc),
        (status = 409, description = "The key is live and `force` was not given (`key_active`)", body = ProblemDoc),
        (status = 422, description = "Invalid query", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:revoke"])))]
pub async fn delete(
    auth: Authorized<KeysRevoke>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: crate::routes::input::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let force = query.into_inner().force.unwrap_or(false);
    keys::delete(&state.manage(), &auth.audit, &auth.tenant, &id, force).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Read a key's usage
///
/// Hourly verification counts of a key by outcome code over a period (default the last 24 hours,
/// at most 31 days), flushed from every node every 5 s. Needs `keys:read`.
#[utoipa::path(get, path = "/v1/keys/{id}/usage", tag = "keys", operation_id = "keys.usage",
    params(("id" = String, Path, format = Uuid, description = "Key id"), UsageQuery),
    responses(
        (status = 200, description = "Usage by hour and outcome", body = KeyUsage),
        (status = 404, description = "No such key in this tenant", body = ProblemDoc),
        (status = 422, description = "Invalid period", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:read"])))]
pub async fn usage(
    auth: Authorized<KeysRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: crate::routes::input::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let period = query.into_inner().into();
    let usage = keys::usage(&state.manage(), &auth.tenant, &id, period).await?;
    Ok(HttpResponse::Ok().json(KeyUsage::from(usage)))
}

/// Change a key
///
/// Only the fields given change; `null` clears one. `enabled: false` disables the key reversibly.
/// Needs `keys:update`.
#[utoipa::path(patch, path = "/v1/keys/{id}", tag = "keys", operation_id = "keys.update", request_body = UpdateKey,
    params(("id" = String, Path, format = Uuid, description = "Key id")),
    responses(
        (status = 200, description = "The updated key", body = KeyView),
        (status = 404, description = "No such key in this tenant", body = ProblemDoc),
        (status = 409, description = "The key is revoked (`key_revoked`)", body = ProblemDoc),
        (status = 422, description = "Invalid field", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:update"])))]
pub async fn update(
    auth: Authorized<KeysUpdate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: crate::routes::input::Json<UpdateKey>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let changes = KeyChanges::try_from(body.into_inner())?;
    let key = keys::update(&state.manage(), &auth.audit, &auth.tenant, &id, changes).await?;
    Ok(HttpResponse::Ok().json(KeyView::from(key)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_period_seconds": 86400}))]
pub struct RotateBody {
    /// How long the old key keeps working, 0 (at once, the default) to 2,592,000 (30 days).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_period_seconds: Option<i64>,
}

/// Rotate a key
///
/// A new key with the same configuration; the old one keeps working for the grace period, then
/// expires. The new plaintext is in this response only. Needs `keys:rotate`.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", operation_id = "keys.rotate",
    params(("id" = String, Path, format = Uuid, description = "Key id")),
    request_body(content = Option<RotateBody>, description = "Optional: without a body the old key stops working at once"),
    responses(
        (status = 201, description = "The new key (plaintext once) and the old key's expiry", body = RotatedKey,
            headers(("Location" = String, description = "The new key: `/v1/keys/{id}`"))),
        (status = 404, description = "No such key in this tenant", body = ProblemDoc),
        (status = 409, description = "Revoked (`key_revoked_reuse_detected`: the family was revoked), expired (`key_expired`) or already rotated (`key_already_rotated`)", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:rotate"])))]
pub async fn rotate(
    auth: Authorized<KeysRotate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: OptionalJson<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let grace = body.0.and_then(|b| b.grace_period_seconds).unwrap_or(0);
    let rotated = RotatedKey::from(
        keys::rotate(&state.manage(), &auth.audit, &auth.tenant, &id, grace).await?,
    );
    let location = format!("/v1/keys/{}", rotated.view.id);
    Ok(no_store(created_at(&location)).json(rotated))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "customer reported it leaked"}))]
pub struct RevokeBody {
    /// Why (at most 500 characters, no control characters); kept on the key and in the audit log.
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub reason: Option<String>,
}

/// Revoke a key
///
/// Permanently; it fails verification at once on every node. Needs `keys:revoke`.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys", operation_id = "keys.revoke",
    params(("id" = String, Path, format = Uuid, description = "Key id")),
    request_body(content = Option<RevokeBody>, description = "Optional: without a body the key is revoked with no reason"),
    responses(
        (status = 200, description = "The revoked key", body = KeyView),
        (status = 404, description = "No such key in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:revoke"])))]
pub async fn revoke(
    auth: Authorized<KeysRevoke>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: OptionalJson<RevokeBody>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let reason = body.0.and_then(|b| b.reason);
    let done = keys::revoke(&state.manage(), &auth.audit, &auth.tenant, &id, reason).await?;
    Ok(HttpResponse::Ok().json(KeyView::from(done.key)))
}

/// Revoke many keys
///
/// By ids, owner, keyspace, or raw key values (exactly one selector). Raw values that are this
/// tenant's root keys are revoked too when the caller holds `root_keys:revoke` (even the last
/// `root_keys:*` key: its value is out), and counted as left alone otherwise. Needs `keys:revoke`.
#[utoipa::path(post, path = "/v1/keys/revoke", tag = "keys", operation_id = "keys.revokeMany", request_body = BulkRevoke,
    responses(
        (status = 200, description = "How many of this tenant's keys (and root keys) were revoked", body = BulkRevoked),
        (status = 400, description = "Not exactly one selector (`invalid_selector`)", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:revoke"])))]
pub async fn revoke_bulk(
    auth: Authorized<KeysRevoke>,
    state: web::Data<AppState>,
    body: crate::routes::input::Json<BulkRevoke>,
) -> Result<HttpResponse, ApiError> {
    let (selection, reason) = body.into_inner().into_command()?;
    let cx = state.manage();
    let root_keys_allowed = auth.scopes.grants(RootKeysRevoke::scope());
    let done = keys::revoke_bulk(
        &cx,
        &auth.audit,
        &auth.tenant,
        selection,
        reason,
        root_keys_allowed,
    )
    .await?;
    Ok(HttpResponse::Ok().json(BulkRevoked::from(done)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({"key": "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x",
        "scopes": ["documents:read"], "ip": "203.0.113.7", "cost": 1}),
    json!({"key": "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x",
        "scope_query": "orders:read AND (billing:read OR admin:*)"})))]
pub struct VerifyBody {
    /// The key the service received, or an access token minted by `/oauth/token`.
    pub key: String,
    /// Only accept keys of this keyspace.
    pub keyspace_id: Option<String>,
    /// Scopes the request needs; all must be granted (by the key's own scopes or its roles').
    #[serde(default)]
    #[schema(value_type = Vec<ScopeName>)]
    pub scopes: Vec<String>,
    /// Instead of `scopes`: a permission query over required scopes, `AND` binding tighter than
    /// `OR`, with parentheses, e.g. `orders:read AND (billing:read OR admin:*)`. At most 1,000
    /// characters and 20 levels of parentheses. A wildcard term asks for that wildcard, which
    /// only a held wildcard grants (as in `scopes`).
    #[schema(
        max_length = 1000,
        example = "orders:read AND (billing:read OR admin:*)"
    )]
    pub scope_query: Option<String>,
    /// The client's IP, checked against the key's allowlist.
    #[schema(value_type = Option<IpAddress>)]
    pub ip: Option<String>,
    /// Credits this request costs, 0 to 1,000,000 (default 1).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub cost: Option<i64>,
}

/// A scope: `resource:action`, each part `*` or 1 to 64 of `[a-z0-9_.-]`.
#[derive(ToSchema)]
#[schema(
    as = Scope,
    pattern = "^(\\*|[a-z0-9_.-]{1,64}):(\\*|[a-z0-9_.-]{1,64})$",
    example = "documents:read"
)]
#[allow(dead_code)] // named by the schema only
pub struct ScopeName(String);

/// Verify a key
///
/// The hot path: HTTP 200 whenever verification ran, with `valid` and `code` saying the outcome
/// and, for a valid key, what a service needs (owner, scopes, meta, limits). Takes API keys and
/// access tokens minted by `/oauth/token`. Needs `keys:verify`.
#[utoipa::path(post, path = "/v1/keys/verify", tag = "verify", operation_id = "keys.verify", request_body = VerifyBody,
    responses(
        (status = 200, description = "The outcome: `VALID`, `NOT_FOUND`, `REVOKED`, `DISABLED`, `EXPIRED`, `IP_NOT_ALLOWED`, `INSUFFICIENT_SCOPE`, `RATE_LIMITED` or `USAGE_EXCEEDED`", body = VerifyOutcomeBody),
        (status = 401, description = "The caller's root key is missing or invalid", body = ProblemDoc),
        (status = 403, description = "The caller's root key lacks keys:verify", body = ProblemDoc),
        (status = 422, description = "Invalid field", body = ProblemDoc),
    ),
    security(("root_key" = ["keys:verify"])))]
pub async fn verify_key(
    auth: Authorized<KeysVerify>,
    state: web::Data<AppState>,
    body: crate::routes::input::Json<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let scopes = body
        .scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid_field("scopes", e.to_string()))?;
    let scope_query = match body.scope_query.as_deref() {
        Some(_) if !scopes.is_empty() => {
            return Err(ApiError::invalid_field(
                "scope_query",
                "give scopes or scope_query, not both",
            ));
        }
        Some(text) => Some(
            state
                .verifier
                .scope_query(text)
                .await
                .map_err(|e| ApiError::invalid_field("scope_query", e.to_string()))?,
        ),
        None => None,
    };
    let ip = body
        .ip
        .as_deref()
        .map(str::parse::<IpAddr>)
        .transpose()
        .map_err(|_| ApiError::invalid_field("ip", "is not an IP address"))?;
    let cost = body.cost.unwrap_or(1);
    if !(0..=MAX_COST).contains(&cost) {
        return Err(ApiError::invalid_field(
            "cost",
            format!("must be between 0 and {MAX_COST}"),
        ));
    }
    let keyspace_id = body.keyspace_id.filter(|s| !s.is_empty());
    let input = VerifyInput {
        key: body.key,
        keyspace_id,
        scopes,
        scope_query,
        ip,
        cost,
    };
    let outcome = state.verifier.verify(&auth.tenant, input).await?;
    Ok(no_store(HttpResponse::Ok()).json(VerifyOutcomeBody::from(&outcome)))
}
