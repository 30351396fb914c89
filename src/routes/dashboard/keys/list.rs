//! The key list: search, filters by keyspace, owner and status, pages, and revoking the
//! ticked keys at once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{KeyRow, row};
use crate::domain::commands::RevokeSelection;
use crate::domain::ids::KeyId;
use crate::domain::key_status::KeyStatus;
use crate::domain::role::Action;
use crate::manage::keys::{self, KeyListFilter};
use crate::manage::{Page, PageRequest};
use crate::routes::api::views::{KeyView, KeyspaceView};
use crate::routes::dashboard;
use crate::routes::dashboard::context::{Layout, Member, Permission, can};
use crate::routes::dashboard::forms::{all_of, first_of, pairs};
use crate::routes::dashboard::{PageError, render, see_other, urlencode};
use crate::routes::state::AppState;

const PAGE_SIZE: i64 = 25;

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    keyspaces: Vec<KeyspaceView>,
    filter: Filter,
    next_page: Option<String>,
    can_manage: bool,
    notice: Option<String>,
    problem: Option<String>,
    /// What a refused bulk revocation had: the ticked keys and the reason, shown again.
    kept: BulkForm,
}

impl KeysPage {
    fn is_ticked(&self, id: &str) -> bool {
        self.kept.ids.iter().any(|ticked| ticked == id)
    }
}

/// The bulk revocation form's ticks and reason.
#[derive(Default)]
struct BulkForm {
    ids: Vec<String>,
    reason: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    keyspace_id: String,
    #[serde(default)]
    owner_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    revoked: Option<usize>,
    notice: Option<String>,
}

impl Filter {
    fn is_status(&self, status: &str) -> bool {
        self.status == status
    }

    fn is_keyspace(&self, id: &str) -> bool {
        self.keyspace_id == id
    }

    /// The query string of this filter (without the page cursor).
    fn query(&self) -> String {
        format!(
            "keyspace_id={}&owner_id={}&status={}&q={}",
            urlencode(&self.keyspace_id),
            urlencode(&self.owner_id),
            urlencode(&self.status),
            urlencode(&self.q)
        )
    }
}

pub(super) async fn list(
    member: Member,
    state: web::Data<AppState>,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, PageError> {
    let filter = filter.into_inner();
    let notice = match (filter.revoked, filter.notice.as_deref()) {
        (Some(1), _) => Some("1 key was revoked.".to_owned()),
        (Some(n), _) => Some(format!("{n} keys were revoked.")),
        _ => None,
    };
    let page = keys_page(&member, &state, filter, notice, None, BulkForm::default()).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn keys_page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    filter: Filter,
    notice: Option<String>,
    problem: Option<String>,
    kept: BulkForm,
) -> Result<KeysPage, PageError> {
    let keyspaces = dashboard::keyspaces::all(state, member.tenant_id()).await?;
    let status = match filter.status.as_str() {
        "active" => Some(KeyStatus::Active),
        "revoked" => Some(KeyStatus::Revoked),
        "expired" => Some(KeyStatus::Expired),
        "disabled" => Some(KeyStatus::Disabled),
        _ => None,
    };
    let listed = async {
        let page = PageRequest::parse(Some(PAGE_SIZE), Some(&filter.cursor))?;
        let found = KeyListFilter::parse(
            Some(filter.keyspace_id.clone()),
            Some(filter.owner_id.trim().to_owned()),
            status,
            Some(filter.q.clone()),
        )?;
        keys::list(&state.manage(), member.tenant_id(), found, page).await
    };
    // A cursor or id that means nothing shows an empty page rather than an error.
    let found = match listed.await {
        Ok(found) => found,
        Err(err) if err.is_client_error() => Page::empty(),
        Err(err) => return Err(err.into()),
    };
    let next_page = found
        .next_cursor
        .map(|cursor| format!("/keys?{}&cursor={}", filter.query(), urlencode(&cursor)));
    Ok(KeysPage {
        layout: member.layout("keys"),
        keys: found
            .data
            .into_iter()
            .map(|key| row(&KeyView::from(key), &keyspaces))
            .collect(),
        keyspaces,
        filter,
        next_page,
        can_manage: member.can(Action::ManageKeys),
        notice,
        problem,
        kept,
    })
}

/// Revokes the keys ticked in the list.
pub(super) async fn revoke_bulk(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let pairs = pairs(&body);
    let ids = all_of(&pairs, "ids");
    let problem = if ids.is_empty() {
        Some("Tick at least one key to revoke.")
    } else if first_of(&pairs, "confirm").is_empty() {
        Some("Tick “Yes, revoke the selected keys” to confirm: revoking cannot be undone.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let kept = BulkForm {
            ids: ids.clone(),
            reason: first_of(&pairs, "reason").to_owned(),
        };
        let problem = Some(problem.to_owned());
        let page = keys_page(&member, &state, Filter::default(), None, problem, kept).await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let selection = RevokeSelection::Ids(ids.iter().filter_map(|id| KeyId::parse(id)).collect());
    let reason = Some(first_of(&pairs, "reason").to_owned());
    let cx = state.manage();
    let tenant = member.tenant_id();
    let done = keys::revoke_bulk(&cx, &member.audit, tenant, selection, reason, false).await?;
    Ok(see_other(&format!("/keys?revoked={}", done.keys)))
}
