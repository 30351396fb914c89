//! The tenant switcher, for users who belong to several tenants.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::Member;
use super::{PageError, see_other};
use crate::domain::ids::TenantId;
use crate::manage::{ManageError, accounts};
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/switch", web::post().to(switch));
}

#[derive(Deserialize)]
pub struct SwitchForm {
    tenant_id: String,
}

/// Points the session at another tenant the user belongs to; any other id is "not found".
async fn switch(
    member: Member,
    state: web::Data<AppState>,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, PageError> {
    let target = TenantId::parse(&form.tenant_id).ok_or(PageError::NotFound)?;
    match accounts::switch_tenant(&state.manage(), &member.session, &target).await {
        Ok(()) => Ok(see_other("/")),
        Err(ManageError::NotFound(_)) => Err(PageError::NotFound),
        Err(err) => Err(err.into()),
    }
}
