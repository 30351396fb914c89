//! `/v1/root-keys`: a tenant's management credentials.

use actix_web::{HttpResponse, web};

use super::PageQuery;
use super::keys::ScopeName;
use crate::error::{ApiError, ProblemDoc};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::commands::{Expiry, ForField, Invalid, NewRootKey};
use crate::domain::ids::RootKeyId;
use crate::domain::inputs::parse_name;
use crate::domain::scope::Scopes;
use crate::manage::root_keys;
use crate::manage::{PageRequest, parse_path_id};
use crate::routes::api::views::{CreatedRootKey, Page, RootKeyView};
use crate::routes::extractor::{Authorized, RootKeysCreate, RootKeysRead, RootKeysRevoke};
use crate::routes::no_store;
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/root-keys").post(create).get(list))
        .service(web::resource("/root-keys/{id}/revoke").post(revoke));
}

/// Create a root key
///
/// A management credential with at most the caller's own scopes. The plaintext `key` is in this
/// response only. Needs `root_keys:create`.
#[utoipa::path(post, path = "/v1/root-keys", tag = "rootKeys", operation_id = "rootKeys.create", request_body = CreateRootKey,
    responses(
        (status = 201, description = "Created; `key` is shown once", body = CreatedRootKey),
        (status = 403, description = "A requested scope exceeds the caller's", body = ProblemDoc),
        (status = 422, description = "Invalid field", body = ProblemDoc),
    ),
    security(("root_key" = ["root_keys:create"])))]
pub async fn create(
    auth: Authorized<RootKeysCreate>,
    state: web::Data<AppState>,
    body: crate::routes::input::Json<CreateRootKey>,
) -> Result<HttpResponse, ApiError> {
    let created = root_keys::create(
        &state.manage(),
        &auth.audit,
        &auth.tenant,
        &auth.scopes,
        NewRootKey::try_from(body.into_inner())?,
    )
    .await?;
    Ok(no_store(HttpResponse::Created()).json(CreatedRootKey::from(created)))
}

/// List root keys
///
/// The tenant's root keys, newest first (never their secrets). Needs `root_keys:read`.
#[utoipa::path(get, path = "/v1/root-keys", tag = "rootKeys", operation_id = "rootKeys.list", params(PageQuery),
    responses((status = 200, description = "One page", body = Page<RootKeyView>)),
    security(("root_key" = ["root_keys:read"])))]
pub async fn list(
    auth: Authorized<RootKeysRead>,
    state: web::Data<AppState>,
    query: crate::routes::input::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let listed = root_keys::list(&state.manage(), &auth.tenant, page).await?;
    Ok(HttpResponse::Ok().json(Page::<RootKeyView>::from(listed)))
}

/// Revoke a root key
///
/// Permanently; it stops authenticating at once on every node. The tenant's last root key with
/// `root_keys:*` cannot be revoked. Needs `root_keys:revoke`.
#[utoipa::path(post, path = "/v1/root-keys/{id}/revoke", tag = "rootKeys", operation_id = "rootKeys.revoke",
    params(("id" = String, Path, format = Uuid, description = "Root key id")),
    responses(
        (status = 200, description = "The revoked root key", body = RootKeyView),
        (status = 404, description = "No such root key in this tenant", body = ProblemDoc),
        (status = 409, description = "The last root key with root_keys:* (`last_root_admin_key`)", body = ProblemDoc),
    ),
    security(("root_key" = ["root_keys:revoke"])))]
pub async fn revoke(
    auth: Authorized<RootKeysRevoke>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id::<RootKeyId>(&path, "root key")?;
    let row = root_keys::revoke(&state.manage(), &auth.audit, &auth.tenant, &id).await?;
    Ok(HttpResponse::Ok().json(RootKeyView::from(row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "billing service", "scopes": ["keys:verify"], "ttl_seconds": 31536000}))]
pub struct CreateRootKey {
    pub name: String,
    /// Must all be held by the calling root key.
    #[schema(value_type = Vec<ScopeName>)]
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ttl_seconds: Option<i64>,
}

impl TryFrom<CreateRootKey> for NewRootKey {
    type Error = Invalid;

    fn try_from(body: CreateRootKey) -> Result<Self, Invalid> {
        let name = parse_name(&body.name).for_field("name")?;
        let scopes = Scopes::parse(&body.scopes).for_field("scopes")?;
        if scopes.is_empty() {
            return Err(Invalid::new("scopes", "give at least one scope"));
        }
        let expiry = Expiry::from_fields(body.expires_at, body.ttl_seconds)?;
        Ok(Self {
            name,
            scopes,
            expiry,
        })
    }
}
