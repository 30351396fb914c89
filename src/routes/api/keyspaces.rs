//! `/v1/keyspaces`: groups of keys with their own prefix and defaults.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::keys::ScopeName;
use super::{PageQuery, created_at, double_option};
use crate::domain::commands::{
    Environment, ForField, Invalid, KeyspaceChanges, NewKeyspace, default_ttl, optional, patch,
};
use crate::domain::ids::KeyspaceId;
use crate::domain::inputs::{RateLimit, parse_name};
use crate::domain::key::KeyPrefix;
use crate::domain::scope::Scopes;
use crate::domain::token::TokenAudience;
use crate::error::{ApiError, ProblemDoc};
use crate::manage::keyspaces;
use crate::manage::{PageRequest, parse_path_id};
use crate::routes::api::keys::DeleteQuery;
use crate::routes::api::views::{KeyspaceView, Page};
use crate::routes::extractor::{
    Authorized, KeyspacesCreate, KeyspacesDelete, KeyspacesRead, KeyspacesUpdate,
};
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/keyspaces").post(create).get(list))
        .service(
            web::resource("/keyspaces/{id}")
                .get(get)
                .patch(update)
                .delete(delete),
        );
}

/// Create a keyspace
///
/// A keyspace groups keys under one prefix (`acme_live_…`) with defaults (TTL, scopes, rate limit)
/// and an OAuth audience. Needs `keyspaces:create`.
#[utoipa::path(post, path = "/v1/keyspaces", tag = "keyspaces", operation_id = "keyspaces.create", request_body = CreateKeyspace,
    responses(
        (status = 201, description = "Created", body = KeyspaceView,
            headers(("Location" = String, description = "The new keyspace: `/v1/keyspaces/{id}`"))),
        (status = 409, description = "The prefix is taken (`prefix_taken`)", body = ProblemDoc),
        (status = 422, description = "Invalid field (`validation_failed`)", body = ProblemDoc),
    ),
    security(("root_key" = ["keyspaces:create"])))]
pub async fn create(
    auth: Authorized<KeyspacesCreate>,
    state: web::Data<AppState>,
    body: crate::routes::input::Json<CreateKeyspace>,
) -> Result<HttpResponse, ApiError> {
    let new = NewKeyspace::try_from(body.into_inner())?;
    let row = keyspaces::create(&state.manage(), &auth.audit, &auth.tenant, new).await?;
    Ok(created_at(&format!("/v1/keyspaces/{}", row.id)).json(KeyspaceView::from(row)))
}

/// List keyspaces
///
/// The tenant's keyspaces, newest first, one page at a time. Needs `keyspaces:read`.
#[utoipa::path(get, path = "/v1/keyspaces", tag = "keyspaces", operation_id = "keyspaces.list", params(PageQuery),
    responses((status = 200, description = "One page", body = Page<KeyspaceView>)),
    security(("root_key" = ["keyspaces:read"])))]
pub async fn list(
    auth: Authorized<KeyspacesRead>,
    state: web::Data<AppState>,
    query: crate::routes::input::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let listed = keyspaces::list(&state.manage(), &auth.tenant, page).await?;
    Ok(HttpResponse::Ok().json(Page::<KeyspaceView>::from(listed)))
}

/// Read a keyspace
///
/// Needs `keyspaces:read`.
#[utoipa::path(get, path = "/v1/keyspaces/{id}", tag = "keyspaces", operation_id = "keyspaces.get",
    params(("id" = String, Path, format = Uuid, description = "Keyspace id")),
    responses(
        (status = 200, description = "The keyspace", body = KeyspaceView),
        (status = 404, description = "No such keyspace in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["keyspaces:read"])))]
pub async fn get(
    auth: Authorized<KeyspacesRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyspaceId>(&path, "keyspace")?;
    let row = keyspaces::get(&state.manage(), &auth.tenant, &id).await?;
    Ok(HttpResponse::Ok().json(KeyspaceView::from(row)))
}

/// Change a keyspace
///
/// Changes its name or defaults; only the fields given change, `null` clears one. Keys created
/// earlier keep their own settings. Needs `keyspaces:update`.
#[utoipa::path(patch, path = "/v1/keyspaces/{id}", tag = "keyspaces", operation_id = "keyspaces.update", request_body = UpdateKeyspace,
    params(("id" = String, Path, format = Uuid, description = "Keyspace id")),
    responses(
        (status = 200, description = "The updated keyspace", body = KeyspaceView),
        (status = 404, description = "No such keyspace in this tenant", body = ProblemDoc),
        (status = 422, description = "Invalid field", body = ProblemDoc),
    ),
    security(("root_key" = ["keyspaces:update"])))]
pub async fn update(
    auth: Authorized<KeyspacesUpdate>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: crate::routes::input::Json<UpdateKeyspace>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyspaceId>(&path, "keyspace")?;
    let changes = KeyspaceChanges::try_from(body.into_inner())?;
    let row = keyspaces::update(&state.manage(), &auth.audit, &auth.tenant, &id, changes).await?;
    Ok(HttpResponse::Ok().json(KeyspaceView::from(row)))
}

/// Delete a keyspace
///
/// With all its keys, each as `DELETE /v1/keys/{id}` deletes one: refused if one is live
/// (active or disabled) unless `force=true`, which revokes live keys first; each key leaves a
/// tombstone of its digest. Needs `keyspaces:delete`.
#[utoipa::path(delete, path = "/v1/keyspaces/{id}", tag = "keyspaces", operation_id = "keyspaces.delete",
    params(("id" = String, Path, format = Uuid, description = "Keyspace id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted, with its keys"),
        (status = 404, description = "No such keyspace in this tenant", body = ProblemDoc),
        (status = 409, description = "A key of the keyspace is live and `force` was not given (`key_active`)", body = ProblemDoc),
        (status = 422, description = "Invalid query", body = ProblemDoc),
    ),
    security(("root_key" = ["keyspaces:delete"])))]
pub async fn delete(
    auth: Authorized<KeyspacesDelete>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: crate::routes::input::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<KeyspaceId>(&path, "keyspace")?;
    let force = query.into_inner().force.unwrap_or(false);
    keyspaces::delete(&state.manage(), &auth.audit, &auth.tenant, &id, force).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Production", "prefix": "acme_live", "environment": "live",
    "default_ttl_seconds": 7776000, "default_scopes": ["documents:read"],
    "default_ratelimit": {"limit": 100, "window_seconds": 60}}))]
pub struct CreateKeyspace {
    pub name: String,
    /// Start of every key in this keyspace: 2–24 of `[a-z0-9_]`, starting with a letter.
    pub prefix: String,
    #[serde(default)]
    pub environment: Environment,
    pub default_ttl_seconds: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Vec<ScopeName>)]
    pub default_scopes: Vec<String>,
    pub default_ratelimit: Option<RateLimit>,
    /// Whether keys of this keyspace may be exchanged for OAuth access tokens (default true).
    pub token_exchange_enabled: Option<bool>,
    /// The `aud` of those tokens: an absolute URI of the tenant's API. Default
    /// `{issuer}/keyspaces/{id}`.
    pub token_audience: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Production (EU)", "default_ttl_seconds": null}))]
pub struct UpdateKeyspace {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub default_ttl_seconds: Option<Option<i64>>,
    #[schema(value_type = Option<Vec<ScopeName>>)]
    pub default_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateLimit>)]
    pub default_ratelimit: Option<Option<RateLimit>>,
    pub token_exchange_enabled: Option<bool>,
    /// `null` goes back to the default audience.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub token_audience: Option<Option<String>>,
}

impl TryFrom<CreateKeyspace> for NewKeyspace {
    type Error = Invalid;

    fn try_from(body: CreateKeyspace) -> Result<Self, Invalid> {
        Ok(Self {
            name: parse_name(&body.name).for_field("name")?,
            prefix: KeyPrefix::parse(&body.prefix).for_field("prefix")?,
            environment: body.environment,
            default_ttl_seconds: optional(
                "default_ttl_seconds",
                body.default_ttl_seconds,
                default_ttl,
            )?,
            default_scopes: Scopes::parse(&body.default_scopes).for_field("default_scopes")?,
            default_ratelimit: optional(
                "default_ratelimit",
                body.default_ratelimit,
                RateLimit::validate,
            )?,
            token_exchange_enabled: body.token_exchange_enabled.unwrap_or(true),
            token_audience: optional(
                "token_audience",
                body.token_audience.as_deref(),
                TokenAudience::parse,
            )?,
        })
    }
}

impl TryFrom<UpdateKeyspace> for KeyspaceChanges {
    type Error = Invalid;

    fn try_from(body: UpdateKeyspace) -> Result<Self, Invalid> {
        Ok(Self {
            name: optional("name", body.name.as_deref(), parse_name)?,
            default_ttl_seconds: patch(
                "default_ttl_seconds",
                body.default_ttl_seconds,
                default_ttl,
            )?,
            default_scopes: optional(
                "default_scopes",
                body.default_scopes.as_deref(),
                Scopes::parse,
            )?,
            default_ratelimit: patch(
                "default_ratelimit",
                body.default_ratelimit,
                RateLimit::validate,
            )?,
            token_exchange_enabled: body.token_exchange_enabled,
            token_audience: patch("token_audience", body.token_audience, |raw: String| {
                TokenAudience::parse(&raw)
            })?,
        })
    }
}
