//! `/v1/keyspaces`: groups of keys with their own prefix and defaults.

use actix_web::{HttpResponse, web};

use super::PageQuery;
use crate::error::{ApiError, ProblemDoc};
use crate::manage::keyspaces::{self, CreateKeyspace, KeyspaceView, UpdateKeyspace};
use crate::manage::{Page, PageRequest, parse_path_id};
use crate::routes::extractor::{Authorized, KeyspacesCreate, KeyspacesRead, KeyspacesUpdate};
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keyspaces", web::post().to(create))
        .route("/keyspaces", web::get().to(list))
        .route("/keyspaces/{id}", web::get().to(get))
        .route("/keyspaces/{id}", web::patch().to(update));
}

/// Create a keyspace.
#[utoipa::path(post, path = "/v1/keyspaces", tag = "keyspaces", request_body = CreateKeyspace,
    responses(
        (status = 201, description = "Created", body = KeyspaceView),
        (status = 409, description = "The prefix is taken (`prefix_taken`)", body = ProblemDoc),
        (status = 422, description = "Invalid field (`validation_failed`)", body = ProblemDoc),
    ),
    security(("root_key" = ["keyspaces:create"])))]
pub async fn create(
    auth: Authorized<KeyspacesCreate>,
    state: web::Data<AppState>,
    body: web::Json<CreateKeyspace>,
) -> Result<HttpResponse, ApiError> {
    let view = keyspaces::create(
        &state.manage(),
        &auth.audit,
        &auth.tenant,
        body.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// List keyspaces, newest first.
#[utoipa::path(get, path = "/v1/keyspaces", tag = "keyspaces", params(PageQuery),
    responses((status = 200, description = "One page", body = Page<KeyspaceView>)),
    security(("root_key" = ["keyspaces:read"])))]
pub async fn list(
    auth: Authorized<KeyspacesRead>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    Ok(HttpResponse::Ok().json(keyspaces::list(&state.manage(), &auth.tenant, page).await?))
}

/// Read a keyspace.
#[utoipa::path(get, path = "/v1/keyspaces/{id}", tag = "keyspaces",
    params(("id" = String, Path, description = "Keyspace id")),
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
    let id = parse_path_id(&path, "keyspace")?;
    Ok(HttpResponse::Ok().json(keyspaces::get(&state.manage(), &auth.tenant, id).await?))
}

/// Change a keyspace's name or defaults (only the fields given).
#[utoipa::path(patch, path = "/v1/keyspaces/{id}", tag = "keyspaces", request_body = UpdateKeyspace,
    params(("id" = String, Path, description = "Keyspace id")),
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
    body: web::Json<UpdateKeyspace>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_path_id(&path, "keyspace")?;
    let view = keyspaces::update(
        &state.manage(),
        &auth.audit,
        &auth.tenant,
        id,
        body.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
