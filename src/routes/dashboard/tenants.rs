//! The tenant switcher, for users who belong to several tenants.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::Member;
use super::{PageError, see_other};
use crate::routes::state::AppState;
use crate::store::sessions;

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
    let target = member
        .session
        .tenants
        .iter()
        .find(|t| t.id.as_str() == form.tenant_id)
        .map(|t| t.id.clone())
        .ok_or(PageError::NotFound)?;
    let digest = member.session.digest.clone();
    state
        .store
        .run(move |conn| sessions::set_tenant(conn, &digest, &target))
        .await?;
    Ok(see_other("/"))
}
