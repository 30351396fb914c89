//! The audit log: every change in the tenant, newest first, filterable, linking to keys.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::context::{Layout, Member};
use super::{PageError, render, urlencode};
use crate::manage::audit;
use crate::manage::{Page, PageRequest, parse_filter};
use crate::routes::api::views::AuditEventView;
use crate::routes::state::AppState;
use crate::store::audit_events::AuditFilter;

const PAGE_SIZE: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list));
}

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    cursor: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    events: Vec<AuditEventView>,
    /// E-mail addresses of the tenant's members, by user id, to name user actors.
    emails: HashMap<String, String>,
    filter: Filter,
    next_page: Option<String>,
}

impl AuditPage {
    /// Who did it, for people: a member's e-mail address, or the kind and id.
    fn actor(&self, event: &AuditEventView) -> String {
        match self.emails.get(&event.actor.id) {
            Some(email) if event.actor.kind == "user" => email.clone(),
            _ => format!("{} {}", event.actor.kind.replace('_', " "), event.actor.id),
        }
    }

    /// Where a target links to, if it has a page.
    fn link(&self, event: &AuditEventView) -> Option<String> {
        match event.target.kind.as_str() {
            "key" => Some(format!("/keys/{}", event.target.id)),
            "keyspace" => Some(format!("/keyspaces/{}", event.target.id)),
            "root_key" => Some("/root-keys".to_owned()),
            "user" | "invitation" => Some("/members".to_owned()),
            _ => None,
        }
    }
}

async fn list(
    member: Member,
    state: web::Data<AppState>,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, PageError> {
    let filter = filter.into_inner();
    let listed = async {
        let page = PageRequest::parse(Some(PAGE_SIZE), Some(&filter.cursor))?;
        let found = AuditFilter {
            action: parse_filter("action", Some(filter.action.trim().to_owned()))?,
            actor_id: parse_filter("actor", Some(filter.actor.trim().to_owned()))?,
            target_id: parse_filter("target", Some(filter.target.trim().to_owned()))?,
            ..AuditFilter::default()
        };
        audit::list(&state.manage(), member.tenant_id(), found, page).await
    };
    let found = match listed.await {
        Ok(found) => found,
        Err(err) if err.is_client_error() => Page::empty(),
        Err(err) => return Err(err.into()),
    };
    let emails = crate::manage::members::list(&state.manage(), member.tenant_id())
        .await?
        .into_iter()
        .map(|m| (m.user_id.into_string(), m.email))
        .collect();
    let next_page = found.next_cursor.map(|cursor| {
        format!(
            "/audit?action={}&actor={}&target={}&cursor={}",
            urlencode(&filter.action),
            urlencode(&filter.actor),
            urlencode(&filter.target),
            urlencode(&cursor)
        )
    });
    Ok(render(
        StatusCode::OK,
        &AuditPage {
            layout: member.layout("audit"),
            events: found.data.into_iter().map(AuditEventView::from).collect(),
            emails,
            filter,
            next_page,
        },
    ))
}
