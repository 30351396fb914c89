//! API keys, one file per page: list (search, filters, pages, bulk revoke), new (secret shown
//! once), detail (status, limits, rotation family, audit trail, usage), actions (rotate with
//! grace, revoke) and the leaked-key report. Here: the routes and what the pages share. Every
//! rule lives in `manage`; these files only translate forms.

mod actions;
mod detail;
mod edit;
mod leaks;
mod list;
mod new;
mod settings;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;

use super::context::{Layout, Member, can};
use super::reveal::{Reveal, with_cookie};
use super::{Dashboard, PageError, render};
use crate::domain::ids::KeyId;
use crate::domain::key_status::KeyStatus;
use crate::manage::{keys, parse_path_id};
use crate::routes::api::views::KeyView;
use crate::routes::api::views::KeyspaceView;
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(list::list))
        .route("/keys", web::post().to(new::create))
        .route("/keys/new", web::get().to(new::new_page))
        .route("/keys/revoke", web::post().to(list::revoke_bulk))
        .route("/keys/{id}", web::get().to(detail::detail))
        .route("/keys/{id}/secret", web::get().to(secret))
        .route("/keys/{id}/edit", web::get().to(edit::edit_page))
        .route("/keys/{id}/edit", web::post().to(edit::edit))
        .route("/keys/{id}/enabled", web::post().to(actions::set_enabled))
        .route("/keys/{id}/rotate", web::post().to(actions::rotate))
        .route("/keys/{id}/revoke", web::post().to(actions::revoke))
        .route(
            "/keys/{id}/revoke-family",
            web::post().to(actions::revoke_family),
        )
        .route("/leaks", web::get().to(leaks::leak_page))
        .route("/leaks", web::post().to(leaks::report_leak));
}

/// A key as a table row or detail page shows it.
#[derive(Clone)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub start: String,
    pub status: &'static str,
    pub keyspace: String,
    pub owner: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub revocable: bool,
}

pub fn when(at: Option<DateTime<Utc>>, none: &str) -> String {
    at.map_or_else(
        || none.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

pub fn status_label(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Revoked => "revoked",
        KeyStatus::Expired => "expired",
        KeyStatus::Disabled => "disabled",
    }
}

fn row(key: &KeyView, keyspaces: &[KeyspaceView]) -> KeyRow {
    KeyRow {
        id: key.id.clone(),
        name: key.name.clone().unwrap_or_else(|| "(unnamed)".into()),
        start: format!("{}…", key.start),
        status: status_label(key.status),
        keyspace: keyspaces
            .iter()
            .find(|k| k.id == key.keyspace_id)
            .map_or_else(|| key.keyspace_id.clone(), |k| k.name.clone()),
        owner: key.owner_id.clone().unwrap_or_default(),
        scopes: key.scopes.clone(),
        created: when(Some(key.created_at), ""),
        expires: when(key.expires_at, "never"),
        last_used: when(key.last_used_at, "never"),
        revocable: key.status != KeyStatus::Revoked,
    }
}

#[derive(Template)]
#[template(path = "key_secret.html")]
struct SecretPage {
    layout: Layout,
    key_id: String,
    key_name: String,
    keyspace_id: String,
    /// Where this deployment answers, for the "verify it" snippet.
    public_url: String,
    /// `None` when it was already shown (a reload, Back, or a form sent twice).
    reveal: Option<Reveal>,
}

/// Where a new key's secret is shown, once: reached by the redirect that answers the create or
/// rotate form, with the secret in a sealed cookie ([`reveal`](super::reveal)).
async fn secret(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let key = KeyView::from(keys::get(&state.manage(), member.tenant_id(), &id).await?);
    let reveals = &dashboard.reveals;
    let reveal = reveals.open(
        &req,
        &dashboard,
        &member.session,
        &key.id,
        state.clock.now(),
    );
    let page = SecretPage {
        layout: member.layout("keys"),
        key_name: key.name.clone().unwrap_or_default(),
        key_id: key.id.clone(),
        keyspace_id: key.keyspace_id.clone(),
        public_url: state.public_url.clone(),
        reveal,
    };
    with_cookie(
        render(StatusCode::OK, &page),
        &reveals.removal(&dashboard, &key.id),
    )
}

/// The answer to a form that made a key: a redirect to its secret's page, carrying the secret.
fn reveal_redirect(
    member: &Member<can::ManageKeys>,
    dashboard: &Dashboard,
    key_id: &str,
    reveal: Option<Reveal>,
    now: chrono::NaiveDateTime,
) -> Result<HttpResponse, PageError> {
    let location = format!("/keys/{key_id}/secret");
    let session = &member.session;
    dashboard
        .reveals
        .redirect(dashboard, session, &location, key_id, reveal, now)
}
