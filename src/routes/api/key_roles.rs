//! `/v1/roles`: key roles, named bundles of scopes that keys hold besides their own (not the
//! dashboard's member roles). Changing or deleting one changes every holder's verification.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{PageQuery, created_at};
use crate::domain::commands::{ForField, Invalid, KeyRoleChanges, NewKeyRole};
use crate::domain::ids::KeyRoleId;
use crate::domain::key_role::KeyRoleName;
use crate::domain::scope::Scopes;
use crate::error::{ApiError, ProblemDoc};
use crate::manage::{PageRequest, key_roles, parse_path_id};
use crate::routes::api::views::{KeyRoleView, Page};
use crate::routes::extractor::{Authorized, RolesRead, RolesWrite};
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/roles").post(create).get(list))
        .service(
            web::resource("/roles/{id}")
                .get(get)
                .patch(update)
                .delete(delete),
        );
}

fn role_id(raw: &str) -> Result<KeyRoleId, ApiError> {
    Ok(parse_path_id::<KeyRoleId>(raw, "role")?)
}

/// Create a role
///
/// A named bundle of scopes. Keys that hold it (`roles` at key create or update) verify with
/// its scopes besides their own. Names are unique per tenant. Needs `roles:write`.
#[utoipa::path(post, path = "/v1/roles", tag = "roles", operation_id = "roles.create",
    request_body = CreateRole,
    responses(
        (status = 201, description = "Created", body = KeyRoleView,
            headers(("Location" = String, description = "The new role: `/v1/roles/{id}`"))),
        (status = 409, description = "The name is taken (`role_name_taken`), or the tenant has the most roles it may (`too_many_roles`)", body = ProblemDoc),
        (status = 422, description = "Invalid field (`name`, `scopes`)", body = ProblemDoc),
    ),
    security(("root_key" = ["roles:write"])))]
pub async fn create(
    auth: Authorized<RolesWrite>,
    state: web::Data<AppState>,
    body: crate::routes::input::Json<CreateRole>,
) -> Result<HttpResponse, ApiError> {
    let new = NewKeyRole::try_from(body.into_inner())?;
    let row = key_roles::create(&state.manage(), &auth.audit, &auth.tenant, new).await?;
    let view = KeyRoleView::from(row);
    let location = format!("/v1/roles/{}", view.id);
    Ok(created_at(&location).json(view))
}

/// List roles
///
/// The tenant's roles, newest first, a page at a time. Needs `roles:read`.
#[utoipa::path(get, path = "/v1/roles", tag = "roles", operation_id = "roles.list", params(PageQuery),
    responses(
        (status = 200, description = "One page", body = Page<KeyRoleView>),
        (status = 422, description = "Invalid limit or cursor", body = ProblemDoc),
    ),
    security(("root_key" = ["roles:read"])))]
pub async fn list(
    auth: Authorized<RolesRead>,
    state: web::Data<AppState>,
    query: crate::routes::input::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let listed = key_roles::list(&state.manage(), &auth.tenant, page).await?;
    Ok(HttpResponse::Ok().json(Page::<KeyRoleView>::from(listed)))
}

/// Read a role
///
/// Its name and scopes. Needs `roles:read`.
#[utoipa::path(get, path = "/v1/roles/{id}", tag = "roles", operation_id = "roles.get",
    params(("id" = String, Path, format = Uuid, description = "Role id")),
    responses(
        (status = 200, description = "The role", body = KeyRoleView),
        (status = 404, description = "No such role in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["roles:read"])))]
pub async fn get(
    auth: Authorized<RolesRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = role_id(&path)?;
    let row = key_roles::get(&state.manage(), &auth.tenant, &id).await?;
    Ok(HttpResponse::Ok().json(KeyRoleView::from(row)))
}

/// Change a role
///
/// Renames it or replaces its scopes. Every key holding it verifies with the new scopes on
/// every node at once, within the bound of a revocation. Needs `roles:write`.
#[utoipa::path(patch, path = "/v1/roles/{id}", tag = "roles", operation_id = "roles.update",
    params(("id" = String, Path, format = Uuid, description = "Role id")),
    request_body = UpdateRole,
    responses(
        (status = 200, description = "The changed role", body = KeyRoleView),
        (status = 404, description = "No such role in this tenant", body = ProblemDoc),
        (status = 409, description = "The new name is taken (`role_name_taken`)", body = ProblemDoc),
        (status = 422, description = "Invalid field", body = ProblemDoc),
    ),
    security(("root_key" = ["roles:write"])))]
pub async fn update(
    auth: Authorized<RolesWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: crate::routes::input::Json<UpdateRole>,
) -> Result<HttpResponse, ApiError> {
    let id = role_id(&path)?;
    let edit = KeyRoleChanges::try_from(body.into_inner())?;
    let row = key_roles::update(&state.manage(), &auth.audit, &auth.tenant, &id, edit).await?;
    Ok(HttpResponse::Ok().json(KeyRoleView::from(row)))
}

/// `?force=` of a role's deletion.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete a role keys hold, taking it from them (default false: refused with `role_in_use`).
    pub force: Option<bool>,
}

/// Delete a role
///
/// A role that keys hold is refused (`role_in_use`) unless `force=true`, which takes it from
/// every key holding it: they lose its scopes on every node at once. Needs `roles:write`.
#[utoipa::path(delete, path = "/v1/roles/{id}", tag = "roles", operation_id = "roles.delete",
    params(("id" = String, Path, format = Uuid, description = "Role id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such role in this tenant", body = ProblemDoc),
        (status = 409, description = "Keys hold the role and `force` was not given (`role_in_use`)", body = ProblemDoc),
    ),
    security(("root_key" = ["roles:write"])))]
pub async fn delete(
    auth: Authorized<RolesWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: crate::routes::input::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = role_id(&path)?;
    let force = query.force.unwrap_or(false);
    key_roles::delete(&state.manage(), &auth.audit, &auth.tenant, &id, force).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "billing-reader", "scopes": ["billing:read", "invoices:read"]}))]
pub struct CreateRole {
    /// 1 to 64 of `[a-zA-Z0-9_.:-]`, unique in the tenant, not a UUID.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-zA-Z0-9_.:-]{1,64}$")]
    pub name: String,
    /// Scopes as a key's (`resource:action`, at most 64).
    #[schema(value_type = Vec<super::keys::ScopeName>, max_items = 64)]
    pub scopes: Vec<String>,
}

impl TryFrom<CreateRole> for NewKeyRole {
    type Error = Invalid;

    fn try_from(body: CreateRole) -> Result<Self, Invalid> {
        Ok(Self {
            name: KeyRoleName::parse(&body.name).for_field("name")?,
            scopes: Scopes::parse(&body.scopes).for_field("scopes")?,
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scopes": ["billing:read"]}))]
pub struct UpdateRole {
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-zA-Z0-9_.:-]{1,64}$")]
    pub name: Option<String>,
    /// The role's whole set of scopes.
    #[schema(value_type = Option<Vec<super::keys::ScopeName>>, max_items = 64)]
    pub scopes: Option<Vec<String>>,
}

impl TryFrom<UpdateRole> for KeyRoleChanges {
    type Error = Invalid;

    fn try_from(body: UpdateRole) -> Result<Self, Invalid> {
        Ok(Self {
            name: body
                .name
                .map(|n| KeyRoleName::parse(&n).for_field("name"))
                .transpose()?,
            scopes: body
                .scopes
                .map(|s| Scopes::parse(&s).for_field("scopes"))
                .transpose()?,
        })
    }
}
