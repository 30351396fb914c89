//! One key's page: status, limits, rotation family, audit trail and usage, with the rotate and
//! revoke forms (which re-render it with their errors).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{KeyRow, row};
use crate::domain::ids::KeyId;
use crate::domain::key_status::KeyStatus;
use crate::domain::role::Action;
use crate::manage::keys;
use crate::manage::{PageRequest, parse_path_id};
use crate::routes::api::views::{AuditEventView, KeyView};
use crate::routes::dashboard;
use crate::routes::dashboard::context::{Layout, Member, Permission};
use crate::routes::dashboard::forms::FormState;
use crate::routes::dashboard::usage::{Chart, key_chart};
use crate::routes::dashboard::{PageError, render};
use crate::routes::state::AppState;
use crate::store::audit_events::AuditFilter;

#[derive(Template)]
#[template(path = "key.html")]
pub(super) struct KeyPage {
    layout: Layout,
    key: KeyView,
    row: KeyRow,
    meta: String,
    family: Vec<KeyRow>,
    events: Vec<AuditEventView>,
    chart: Chart,
    can_manage: bool,
    notice: Option<&'static str>,
    form: FormState,
    rotation: Rotation,
}

/// Where a key stands in its rotation family, as its page says it.
#[derive(Default)]
pub(super) struct Rotation {
    /// The key that replaced this one, if it was rotated.
    successor: Option<KeyRow>,
    /// The family's newest key (the one to rotate next), when it is not this one.
    newest: Option<KeyRow>,
    /// Other keys of the family that still verify (a predecessor in its grace period, say).
    others_live: Vec<KeyRow>,
}

impl Rotation {
    fn of(key: &KeyView, family: &[KeyView], rows: &[KeyRow]) -> Self {
        let live = |k: &KeyView| matches!(k.status, KeyStatus::Active | KeyStatus::Disabled);
        let replaced = |k: &KeyView| {
            family
                .iter()
                .any(|f| f.rotated_from.as_ref() == Some(&k.id))
        };
        let row_of = |k: &KeyView| rows.iter().find(|r| r.id == k.id).cloned();
        let successor = family
            .iter()
            .find(|f| f.rotated_from.as_ref() == Some(&key.id))
            .and_then(row_of);
        let newest = family
            .iter()
            .filter(|f| f.id != key.id && !replaced(f))
            .max_by_key(|f| f.created_at)
            .and_then(row_of);
        let others_live = family
            .iter()
            .filter(|f| f.id != key.id && live(f))
            .filter_map(row_of)
            .collect();
        Self {
            successor: successor.filter(|_| family.len() > 1),
            newest: newest.filter(|_| replaced(key)),
            others_live,
        }
    }
}

impl KeyPage {
    fn ratelimit(&self) -> String {
        self.key.ratelimit.map_or_else(
            || "none".to_owned(),
            |r| format!("{} per {} s", r.limit, r.window_seconds),
        )
    }

    fn credits(&self) -> String {
        match self.key.credits {
            None => "unlimited".to_owned(),
            Some(c) => match c.refill {
                Some(r) => format!(
                    "{} left, refilled to {} {}",
                    c.remaining,
                    r.amount,
                    r.interval.as_str()
                ),
                None => format!("{} left", c.remaining),
            },
        }
    }

    fn is_current(&self, id: &str) -> bool {
        self.key.id == id
    }
}

#[derive(Deserialize)]
pub struct DetailQuery {
    notice: Option<String>,
}

pub(super) async fn detail(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = match query.notice.as_deref() {
        Some("revoked") => Some("The key was revoked. Verifications now answer REVOKED."),
        Some("disabled") => Some(
            "The key was disabled. Verifications now answer DISABLED until you enable it again.",
        ),
        Some("enabled") => Some("The key was enabled. It verifies again."),
        Some("updated") => Some("The key was changed. Every node answers with its new settings."),
        Some("family_revoked") => {
            Some("Every key of this rotation family was revoked. None of them verifies anywhere.")
        }
        _ => None,
    };
    let page = key_page(&member, &state, &path, FormState::new(), notice).await?;
    Ok(render(StatusCode::OK, &page))
}

pub(super) async fn key_page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    raw_id: &str,
    mut form: FormState,
    notice: Option<&'static str>,
) -> Result<KeyPage, PageError> {
    let id = parse_path_id::<KeyId>(raw_id, "key")?;
    let tenant = member.tenant_id();
    let key = KeyView::from(keys::get(&state.manage(), tenant, &id).await?);
    let keyspaces = dashboard::keyspaces::all(state, tenant).await?;
    let family = keys::family(&state.manage(), tenant, &id).await?;
    let family: Vec<KeyView> = family.into_iter().map(KeyView::from).collect();
    let trail = AuditFilter {
        target_id: Some(id.to_string()),
        ..AuditFilter::default()
    };
    let events = crate::manage::audit::list(
        &state.manage(),
        tenant,
        trail,
        PageRequest::parse(Some(20), None)?,
    )
    .await?
    .data
    .into_iter()
    .map(AuditEventView::from)
    .collect();
    let chart = key_chart(state, tenant, &id).await?;
    if form.value("grace_hours").is_empty() {
        form.keep("grace_hours", "24");
    }
    let rows: Vec<KeyRow> = family.iter().map(|k| row(k, &keyspaces)).collect();
    let rotation = Rotation::of(&key, &family, &rows);
    Ok(KeyPage {
        layout: member.layout("keys"),
        row: row(&key, &keyspaces),
        meta: serde_json::to_string_pretty(&key.meta).unwrap_or_default(),
        rotation,
        family: rows,
        events,
        chart,
        key,
        can_manage: member.can(Action::ManageKeys),
        notice,
        form,
    })
}
