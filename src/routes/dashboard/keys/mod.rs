//! API keys, one file per page: list (search, filters, pages, bulk revoke), new (secret shown
//! once), detail (status, limits, rotation family, audit trail, usage), actions (rotate with
//! grace, revoke) and the leaked-key report. Here: the routes and what the pages share. Every
//! rule lives in `manage`; these files only translate forms.

mod actions;
mod detail;
mod leaks;
mod list;
mod new;

use actix_web::web;
use askama::Template;
use chrono::{DateTime, Utc};

use super::context::Layout;
use crate::domain::key::PlainKey;
use crate::domain::key_status::KeyStatus;
use crate::routes::api::views::KeyView;
use crate::routes::api::views::KeyspaceView;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(list::list))
        .route("/keys", web::post().to(new::create))
        .route("/keys/new", web::get().to(new::new_page))
        .route("/keys/revoke", web::post().to(list::revoke_bulk))
        .route("/keys/{id}", web::get().to(detail::detail))
        .route("/keys/{id}/rotate", web::post().to(actions::rotate))
        .route("/keys/{id}/revoke", web::post().to(actions::revoke))
        .route("/leaks", web::get().to(leaks::leak_page))
        .route("/leaks", web::post().to(leaks::report_leak));
}

/// A key as a table row or detail page shows it.
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
    heading: &'static str,
    key_id: String,
    key_name: String,
    secret: PlainKey,
    /// For a rotation: when the previous key stops working.
    previous_expires: Option<String>,
}
