//! API keys: list (search, filters, pages, bulk revoke), create (secret shown once), detail
//! (status, limits, rotation family, audit trail, usage), rotate with grace, revoke, and the
//! leaked-key report. Every rule lives in `manage::keys`; this file only translates forms.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::context::{Layout, Member, Permission, can};
use super::forms::{FormState, all_of, first_of, pairs, split_list};
use super::usage::{Chart, key_chart};
use super::{PageError, render, see_other, urlencode};
use crate::domain::commands::{Expiry, NewKey, RevokeSelection};
use crate::domain::ids::parse_id;
use crate::domain::inputs::{
    Credits, IpAllowlist, Meta, Refill, RefillInterval, parse_name, parse_owner_id,
};
use crate::domain::key::PlainKey;
use crate::domain::key_status::KeyStatus;
use crate::domain::role::Action;
use crate::domain::scope::Scopes;
use crate::error::ApiError;
use crate::manage::audit::{AuditEventView, AuditQuery};
use crate::manage::keys::{self, KeyView, ListQuery};
use crate::manage::keyspaces::KeyspaceView;
use crate::manage::{ManageError, parse_path_id};
use crate::routes::state::AppState;

/// Fields of the create form, for putting service errors next to them.
const CREATE_FIELDS: &[&str] = &[
    "keyspace_id",
    "name",
    "owner_id",
    "scopes",
    "ttl_days",
    "ip_allowlist",
    "ratelimit_limit",
    "ratelimit_window",
    "credits_remaining",
    "refill_amount",
    "meta",
];
const DAY: i64 = 24 * 3600;
const PAGE_SIZE: i64 = 25;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(list))
        .route("/keys", web::post().to(create))
        .route("/keys/new", web::get().to(new_page))
        .route("/keys/revoke", web::post().to(revoke_bulk))
        .route("/keys/{id}", web::get().to(detail))
        .route("/keys/{id}/rotate", web::post().to(rotate))
        .route("/keys/{id}/revoke", web::post().to(revoke))
        .route("/leaks", web::get().to(leak_page))
        .route("/leaks", web::post().to(report_leak));
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

async fn list(
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
    let page = keys_page(&member, &state, filter, notice, None).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn keys_page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    filter: Filter,
    notice: Option<String>,
    problem: Option<String>,
) -> Result<KeysPage, PageError> {
    let keyspaces = super::keyspaces::all(state, member.tenant_id()).await?;
    let status = match filter.status.as_str() {
        "active" => Some(KeyStatus::Active),
        "revoked" => Some(KeyStatus::Revoked),
        "expired" => Some(KeyStatus::Expired),
        "disabled" => Some(KeyStatus::Disabled),
        _ => None,
    };
    let query = ListQuery {
        keyspace_id: Some(filter.keyspace_id.clone()),
        owner_id: Some(filter.owner_id.trim().to_owned()),
        status,
        q: Some(filter.q.clone()),
        limit: Some(PAGE_SIZE),
        cursor: Some(filter.cursor.clone()),
    };
    // A cursor or id that means nothing shows an empty page rather than an error.
    let found = match keys::list(&state.manage(), member.tenant_id(), query).await {
        Ok(found) => found,
        Err(err) if err.is_client_error() => crate::manage::Page {
            data: Vec::new(),
            next_cursor: None,
        },
        Err(err) => return Err(err.into()),
    };
    let next_page = found
        .next_cursor
        .map(|cursor| format!("/keys?{}&cursor={}", filter.query(), urlencode(&cursor)));
    Ok(KeysPage {
        layout: member.layout("keys"),
        keys: found.data.iter().map(|k| row(k, &keyspaces)).collect(),
        keyspaces,
        filter,
        next_page,
        can_manage: member.can(Action::ManageKeys),
        notice,
        problem,
    })
}

#[derive(Template)]
#[template(path = "key_new.html")]
struct NewKeyPage {
    layout: Layout,
    keyspaces: Vec<KeyspaceView>,
    form: FormState,
}

#[derive(Deserialize)]
pub struct NewKeyQuery {
    keyspace_id: Option<String>,
}

async fn new_page(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    query: web::Query<NewKeyQuery>,
) -> Result<HttpResponse, PageError> {
    let keyspaces = super::keyspaces::all(&state, member.tenant_id()).await?;
    let mut form = FormState::new();
    if let Some(id) = query
        .keyspace_id
        .as_deref()
        .or(keyspaces.first().map(|k| k.id.as_str()))
    {
        form.keep("keyspace_id", id);
    }
    form.keep("refill_interval", "monthly");
    Ok(render(
        StatusCode::OK,
        &NewKeyPage {
            layout: member.layout("keys"),
            keyspaces,
            form,
        },
    ))
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

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    keyspace_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner_id: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    ttl_days: String,
    #[serde(default)]
    ip_allowlist: String,
    #[serde(default)]
    ratelimit_limit: String,
    #[serde(default)]
    ratelimit_window: String,
    #[serde(default)]
    credits_remaining: String,
    #[serde(default)]
    refill_amount: String,
    #[serde(default)]
    refill_interval: String,
    #[serde(default)]
    meta: String,
}

/// Reads the create form into a new key; problems go next to their fields.
fn read_create(form: &CreateForm, shown: &mut FormState) -> Option<NewKey> {
    for (field, value) in [
        ("keyspace_id", &form.keyspace_id),
        ("name", &form.name),
        ("owner_id", &form.owner_id),
        ("scopes", &form.scopes),
        ("ttl_days", &form.ttl_days),
        ("ip_allowlist", &form.ip_allowlist),
        ("ratelimit_limit", &form.ratelimit_limit),
        ("ratelimit_window", &form.ratelimit_window),
        ("credits_remaining", &form.credits_remaining),
        ("refill_amount", &form.refill_amount),
        ("refill_interval", &form.refill_interval),
        ("meta", &form.meta),
    ] {
        shown.keep(field, value);
    }
    let keyspace_id = parse_id(&form.keyspace_id);
    if keyspace_id.is_none() {
        shown.error("keyspace_id", "no such keyspace");
    }
    let name = optional(&form.name).and_then(|n| shown.parsed("name", parse_name(n)));
    let owner_id =
        optional(&form.owner_id).and_then(|o| shown.parsed("owner_id", parse_owner_id(o)));
    let scopes = split_list(&form.scopes);
    let scopes = if scopes.is_empty() {
        None
    } else {
        shown.parsed("scopes", Scopes::parse(&scopes))
    };
    let expiry = shown
        .number("ttl_days", &form.ttl_days)
        .and_then(|days| shown.parsed("ttl_days", Expiry::after_seconds(days.saturating_mul(DAY))));
    let allowlist = split_list(&form.ip_allowlist);
    let ip_allowlist = shown.parsed("ip_allowlist", IpAllowlist::parse(&allowlist));
    let ratelimit = shown
        .rate_limit(&form.ratelimit_limit, &form.ratelimit_window)
        .and_then(|limit| shown.parsed("ratelimit_limit", limit.validate()));
    let remaining = shown.number("credits_remaining", &form.credits_remaining);
    let refill_amount = shown.number("refill_amount", &form.refill_amount);
    let interval = match form.refill_interval.as_str() {
        "daily" => Some(RefillInterval::Daily),
        "monthly" | "" => Some(RefillInterval::Monthly),
        _ => None,
    };
    let credits = match (remaining, refill_amount) {
        (None, None) => None,
        (None, Some(_)) => {
            shown.error("credits_remaining", "Give the starting credits too.");
            None
        }
        (Some(remaining), amount) => {
            let refill = amount
                .zip(interval)
                .map(|(amount, interval)| Refill { amount, interval });
            shown.parsed(
                "credits_remaining",
                Credits { remaining, refill }.validate(),
            )
        }
    };
    let meta = if form.meta.trim().is_empty() {
        Some(Meta::empty())
    } else {
        match serde_json::from_str::<serde_json::Value>(&form.meta) {
            Ok(value) => shown.parsed("meta", Meta::parse(value)),
            Err(_) => {
                shown.error("meta", "Enter a JSON object, like {\"plan\": \"pro\"}.");
                None
            }
        }
    };
    if shown.has_errors() {
        return None;
    }
    Some(NewKey {
        keyspace_id: keyspace_id?,
        name,
        owner_id,
        scopes,
        meta: meta?,
        expiry,
        ip_allowlist: ip_allowlist?,
        ratelimit,
        credits,
        enabled: true,
    })
}

/// A text field's value, unless it was left empty.
fn optional(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|s| !s.is_empty())
}

/// Creates a key and shows its secret, once.
async fn create(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    if let Some(new) = read_create(&form, &mut shown) {
        match keys::create(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            new,
            None,
        )
        .await
        {
            Ok(created) => {
                return Ok(render(
                    StatusCode::CREATED,
                    &SecretPage {
                        layout: member.layout("keys"),
                        heading: "Your new key",
                        key_name: created.view.name.clone().unwrap_or_default(),
                        key_id: created.view.id,
                        secret: created.key.ok_or_else(|| {
                            PageError::from(ApiError::internal(anyhow::anyhow!(
                                "a key created without an Idempotency-Key has its plaintext"
                            )))
                        })?,
                        previous_expires: None,
                    },
                ));
            }
            Err(err) if err.is_client_error() => shown.absorb(&err, CREATE_FIELDS),
            Err(err) => return Err(err.into()),
        }
    }
    let keyspaces = super::keyspaces::all(&state, member.tenant_id()).await?;
    Ok(render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &NewKeyPage {
            layout: member.layout("keys"),
            keyspaces,
            form: shown,
        },
    ))
}

#[derive(Template)]
#[template(path = "key.html")]
struct KeyPage {
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

async fn detail(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = match query.notice.as_deref() {
        Some("revoked") => Some("The key was revoked. Verifications now answer REVOKED."),
        _ => None,
    };
    let page = key_page(&member, &state, &path, FormState::new(), notice).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn key_page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    raw_id: &str,
    mut form: FormState,
    notice: Option<&'static str>,
) -> Result<KeyPage, PageError> {
    let id = parse_path_id(raw_id, "key")?;
    let tenant = member.tenant_id();
    let key = keys::get(&state.manage(), tenant, id.clone()).await?;
    let keyspaces = super::keyspaces::all(state, tenant).await?;
    let family = keys::family(&state.manage(), tenant, id.clone()).await?;
    let events = crate::manage::audit::list(
        &state.manage(),
        tenant,
        &AuditQuery {
            target: Some(id.clone()),
            limit: Some(20),
            ..AuditQuery::default()
        },
    )
    .await?
    .data;
    let chart = key_chart(state, tenant, &id).await?;
    if form.value("grace_hours").is_empty() {
        form.keep("grace_hours", "24");
    }
    Ok(KeyPage {
        layout: member.layout("keys"),
        row: row(&key, &keyspaces),
        meta: serde_json::to_string_pretty(&key.meta).unwrap_or_default(),
        family: family.iter().map(|k| row(k, &keyspaces)).collect(),
        events,
        chart,
        key,
        can_manage: member.can(Action::ManageKeys),
        notice,
        form,
    })
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_hours: String,
}

/// Issues the successor of a key; the old one keeps working for the grace period.
async fn rotate(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    shown.keep("grace_hours", &form.grace_hours);
    let grace = shown.number("grace_hours", &form.grace_hours).unwrap_or(0);
    if !shown.has_errors() {
        let id = parse_path_id(&path, "key")?;
        let grace_seconds = grace.saturating_mul(3600);
        match keys::rotate(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            id,
            grace_seconds,
        )
        .await
        {
            Ok(rotated) => {
                return Ok(render(
                    StatusCode::CREATED,
                    &SecretPage {
                        layout: member.layout("keys"),
                        heading: "The rotated key",
                        key_name: rotated.view.name.clone().unwrap_or_default(),
                        key_id: rotated.view.id,
                        secret: rotated.key,
                        previous_expires: Some(when(Some(rotated.previous_key.expires_at), "")),
                    },
                ));
            }
            Err(ManageError::Invalid { message, .. }) => {
                shown.error("grace_hours", format!("Grace period {message} seconds."));
            }
            Err(err) if err.is_client_error() => {
                shown.error("grace_hours", err.to_string());
            }
            Err(err) => return Err(err.into()),
        }
    }
    let page = key_page(&member, &state, &path, shown, None).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

/// Revokes one key at once; the form must be confirmed.
async fn revoke(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    shown.keep("reason", &form.reason);
    if form.confirm.is_none() {
        shown.error(
            "confirm",
            "Tick the box to confirm: revoking cannot be undone.",
        );
    } else {
        let id = parse_path_id(&path, "key")?;
        let reason = Some(form.reason.clone());
        match keys::revoke(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            id.clone(),
            reason,
        )
        .await
        {
            Ok(_) => return Ok(see_other(&format!("/keys/{id}?notice=revoked"))),
            Err(err) if err.is_client_error() => shown.absorb(&err, &["reason"]),
            Err(err) => return Err(err.into()),
        }
    }
    let page = key_page(&member, &state, &path, shown, None).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// Revokes the keys ticked in the list.
async fn revoke_bulk(
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
        let page = keys_page(
            &member,
            &state,
            Filter::default(),
            None,
            Some(problem.to_owned()),
        )
        .await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let selection = RevokeSelection::Ids(ids.iter().filter_map(|id| parse_id(id)).collect());
    let reason = Some(first_of(&pairs, "reason").to_owned());
    let cx = state.manage();
    let done = keys::revoke_bulk(&cx, &member.audit, member.tenant_id(), selection, reason).await?;
    Ok(see_other(&format!("/keys?revoked={}", done.revoked)))
}

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

async fn leak_page(member: Member<can::ManageKeys>) -> HttpResponse {
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
async fn report_leak(
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
    let digests = match state.keys.parse(&raw) {
        Ok(parsed) => state.keys.digests(&parsed),
        Err(_) => Vec::new(),
    };
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
    let keyspaces = super::keyspaces::all(&state, &tenant).await?;
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
