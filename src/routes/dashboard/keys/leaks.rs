//! The leaked-key report: paste a key found somewhere public, and it is revoked if it is one of
//! this tenant's.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{KeyRow, row};
use crate::manage::keys;
use crate::routes::dashboard;
use crate::routes::dashboard::context::{Layout, Member, can};
use crate::routes::dashboard::forms::FormState;
use crate::routes::dashboard::{PageError, render};
use crate::routes::state::AppState;

#[derive(Template)]
#[template(path = "leaks.html")]
struct LeakPage {
    layout: Layout,
    form: FormState,
    /// The key that was revoked, when the pasted value was one of this tenant's.
    found: Option<KeyRow>,
    /// Set after a report that matched nothing.
    nothing: bool,
}

pub(super) async fn leak_page(member: Member<can::ManageKeys>) -> HttpResponse {
    render(
        StatusCode::OK,
        &LeakPage {
            layout: member.layout("leaks"),
            form: FormState::new(),
            found: None,
            nothing: false,
        },
    )
}

#[derive(Deserialize)]
pub struct LeakForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    reason: String,
}

/// Revokes a pasted key if it is one of this tenant's and says which; otherwise says
/// nothing was found (the same answer whether or not another tenant has such a key).
pub(super) async fn report_leak(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    form: web::Form<LeakForm>,
) -> Result<HttpResponse, PageError> {
    let raw = form.key.trim().to_owned();
    let mut shown = FormState::new();
    shown.keep("reason", &form.reason);
    if raw.is_empty() {
        shown.error("key", "Paste the leaked key.");
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &LeakPage {
                layout: member.layout("leaks"),
                form: shown,
                found: None,
                nothing: false,
            },
        ));
    }
    let tenant = member.tenant_id().clone();
    let digests = state.keys.digests_of(&raw);
    let found = if digests.is_empty() {
        None
    } else {
        let lookup = tenant.clone();
        state
            .store
            .run(move |conn| crate::store::api_keys::find_by_digests(conn, &digests))
            .await?
            .filter(|row| row.tenant_id == lookup.as_str())
    };
    let Some(found) = found else {
        return Ok(render(
            StatusCode::OK,
            &LeakPage {
                layout: member.layout("leaks"),
                form: shown,
                found: None,
                nothing: true,
            },
        ));
    };
    let reason = if form.reason.trim().is_empty() {
        "reported as leaked in the dashboard".to_owned()
    } else {
        form.reason.trim().to_owned()
    };
    let revoked = keys::revoke(
        &state.manage(),
        &member.audit,
        &tenant,
        found.id,
        Some(reason),
    )
    .await?;
    let keyspaces = dashboard::keyspaces::all(&state, &tenant).await?;
    Ok(render(
        StatusCode::OK,
        &LeakPage {
            layout: member.layout("leaks"),
            form: FormState::new(),
            found: Some(row(&revoked, &keyspaces)),
            nothing: false,
        },
    ))
}
