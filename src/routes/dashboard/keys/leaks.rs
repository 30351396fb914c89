//! The leaked-key report: paste a key found somewhere public, and it is revoked if it is one of
//! this tenant's, root keys included for members who may revoke root keys
//! (`manage::leaks::report_pasted` decides; this page only says what happened).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::{KeyRow, row, when};
use crate::domain::role::Action;
use crate::manage::leaks::{self, PastedLeak};
use crate::routes::api::views::KeyView;
use crate::routes::dashboard;
use crate::routes::dashboard::context::{Layout, Member, can};
use crate::routes::dashboard::forms::FormState;
use crate::routes::dashboard::{PageError, render};
use crate::routes::state::AppState;
use crate::store::models::RootKeyRow;

#[derive(Template)]
#[template(path = "leaks.html")]
struct LeakPage {
    layout: Layout,
    form: FormState,
    /// What the last report found; none before any.
    outcome: Option<Outcome>,
}

/// What a report found, as the page says it.
enum Outcome {
    /// A key of this tenant, revoked by this report.
    Revoked(KeyRow),
    /// A key of this tenant that was revoked before, at `since`; nothing changed.
    AlreadyRevoked { key: KeyRow, since: String },
    /// A root key of this tenant, revoked by this report.
    RootKeyRevoked(RootKeyShown),
    /// A root key of this tenant that was revoked before; nothing changed.
    RootKeyAlreadyRevoked(RootKeyShown),
    /// A live root key of this tenant, left alone: this member may not revoke root keys.
    RootKeyKept(RootKeyShown),
    /// Not one of this tenant's keys.
    Nothing,
}

/// A root key as the page names it: never its value.
struct RootKeyShown {
    name: String,
    start: String,
}

impl From<RootKeyRow> for RootKeyShown {
    fn from(row: RootKeyRow) -> Self {
        Self {
            name: row.name,
            start: row.start,
        }
    }
}

pub(super) async fn leak_page(member: Member<can::ManageKeys>) -> HttpResponse {
    render(
        StatusCode::OK,
        &LeakPage {
            layout: member.layout("leaks"),
            form: FormState::new(),
            outcome: None,
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
/// nothing was found. The pasted key is never shown back: only the reason is kept in the form.
pub(super) async fn report_leak(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    form: web::Form<LeakForm>,
) -> Result<HttpResponse, PageError> {
    let LeakForm { key, reason } = form.into_inner();
    let mut shown = FormState::new();
    shown.keep("reason", &reason);
    if key.trim().is_empty() {
        shown.error("key", "Paste the leaked key.");
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &LeakPage {
                layout: member.layout("leaks"),
                form: shown,
                outcome: None,
            },
        ));
    }
    let tenant = member.tenant_id();
    let pasted = SecretString::from(key);
    let found = leaks::report_pasted(
        &state.manage(),
        &member.audit,
        tenant,
        &pasted,
        Some(reason),
        member.can(Action::RevokeRootKeys),
    )
    .await?;
    let (outcome, form) = match found {
        PastedLeak::NotOurs => (Outcome::Nothing, shown),
        PastedLeak::RootKeyRevoked(row) => (Outcome::RootKeyRevoked(row.into()), FormState::new()),
        PastedLeak::RootKeyAlreadyRevoked(row) => {
            (Outcome::RootKeyAlreadyRevoked(row.into()), FormState::new())
        }
        PastedLeak::RootKeyKept(row) => (Outcome::RootKeyKept(row.into()), shown),
        PastedLeak::Revoked(key) => {
            let keyspaces = dashboard::keyspaces::all(&state, tenant).await?;
            let key = KeyView::from(key);
            (Outcome::Revoked(row(&key, &keyspaces)), FormState::new())
        }
        PastedLeak::AlreadyRevoked(key) => {
            let keyspaces = dashboard::keyspaces::all(&state, tenant).await?;
            let key = KeyView::from(key);
            let since = when(key.revoked_at, "earlier");
            let key = row(&key, &keyspaces);
            (Outcome::AlreadyRevoked { key, since }, FormState::new())
        }
    };
    Ok(render(
        StatusCode::OK,
        &LeakPage {
            layout: member.layout("leaks"),
            form,
            outcome: Some(outcome),
        },
    ))
}
