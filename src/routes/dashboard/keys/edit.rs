//! Editing a key: every setting in one form, filled in with what the key has now. Only what
//! the member changed is sent, so the audit log names exactly that, and credits spent while
//! the form was open are not put back.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;

use super::settings::{Settings, SettingsForm, optional};
use super::{KeyRow, row};
use crate::domain::commands::KeyChanges;
use crate::domain::ids::KeyId;
use crate::manage::{ManageError, keys, parse_path_id};
use crate::routes::api::views::KeyView;
use crate::routes::dashboard;
use crate::routes::dashboard::context::{Layout, Member, can};
use crate::routes::dashboard::forms::FormState;
use crate::routes::dashboard::{PageError, render, see_other};
use crate::routes::state::AppState;

/// Fields of the edit form, for putting the service's complaints next to them.
const EDIT_FIELDS: &[&str] = &[
    "name",
    "owner_id",
    "scopes",
    "expires_on",
    "ip_allowlist",
    "ratelimit_limit",
    "ratelimit_window",
    "credits_remaining",
    "refill_amount",
    "meta",
];

#[derive(Template)]
#[template(path = "key_edit.html")]
struct EditPage {
    layout: Layout,
    row: KeyRow,
    form: FormState,
    /// Always true: the limit fields say that empty clears them.
    editing: bool,
}

#[derive(Deserialize)]
pub struct EditForm {
    /// The day the key stops working (UTC), empty for never.
    #[serde(default)]
    expires_on: String,
    /// The credits the form showed: unchanged, the balance is left to what verifications did
    /// with it meanwhile.
    #[serde(default)]
    credits_shown: String,
    #[serde(flatten)]
    settings: SettingsForm,
}

/// The form, filled in with the key's settings now.
pub(super) async fn edit_page(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let key = current(&member, &state, &path).await?;
    if key.revoked_at.is_some() {
        return Ok(see_other(&format!("/keys/{}", key.id)));
    }
    let form = prefilled(&key);
    page(&member, &state, &key, form, StatusCode::OK).await
}

/// Changes what the member changed; problems are shown beside their fields, all at once.
pub(super) async fn edit(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<EditForm>,
) -> Result<HttpResponse, PageError> {
    let key = current(&member, &state, &path).await?;
    let mut shown = FormState::new();
    shown.keep("expires_on", &form.expires_on);
    shown.keep("credits_shown", &form.credits_shown);
    let expiry = read_expiry(&form.expires_on, &mut shown);
    let settings = form.settings.read(&mut shown);
    if let (Some(expiry), Some(settings)) = (expiry, settings) {
        let changes = changes(&key, &form, settings, expiry);
        let id = parse_path_id::<KeyId>(&key.id, "key")?;
        match keys::update(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            &id,
            changes,
        )
        .await
        {
            Ok(_) => return Ok(see_other(&format!("/keys/{id}?notice=updated"))),
            Err(ManageError::Invalid { field, message }) if field == "expires_at" => {
                shown.error("expires_on", format!("The expiry {message}."));
            }
            Err(err) if err.is_client_error() => shown.absorb(&err, EDIT_FIELDS),
            Err(err) => return Err(err.into()),
        }
    }
    page(
        &member,
        &state,
        &key,
        shown,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn current(
    member: &Member<can::ManageKeys>,
    state: &AppState,
    raw_id: &str,
) -> Result<KeyView, PageError> {
    let id = parse_path_id::<KeyId>(raw_id, "key")?;
    Ok(keys::get(&state.manage(), member.tenant_id(), &id)
        .await?
        .into())
}

async fn page(
    member: &Member<can::ManageKeys>,
    state: &AppState,
    key: &KeyView,
    form: FormState,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let keyspaces = dashboard::keyspaces::all(state, member.tenant_id()).await?;
    let page = EditPage {
        layout: member.layout("keys"),
        row: row(key, &keyspaces),
        form,
        editing: true,
    };
    Ok(render(status, &page))
}

/// The form's fields as the key has them now.
fn prefilled(key: &KeyView) -> FormState {
    let mut form = FormState::new();
    let meta = match key.meta.as_object() {
        Some(map) if map.is_empty() => String::new(),
        _ => serde_json::to_string_pretty(&key.meta).unwrap_or_default(),
    };
    let (limit, window) = key.ratelimit.map_or((String::new(), String::new()), |r| {
        (r.limit.to_string(), r.window_seconds.to_string())
    });
    let remaining = key
        .credits
        .map_or_else(String::new, |c| c.remaining.to_string());
    let refill = key.credits.and_then(|c| c.refill);
    let interval = refill.map_or("monthly", |r| r.interval.as_str());
    form.keep("name", key.name.as_deref().unwrap_or(""))
        .keep("owner_id", key.owner_id.as_deref().unwrap_or(""))
        .keep("scopes", &key.scopes.join(" "))
        .keep("expires_on", &expires_on(key.expires_at))
        .keep("ip_allowlist", &key.ip_allowlist.join("\n"))
        .keep("ratelimit_limit", &limit)
        .keep("ratelimit_window", &window)
        .keep("credits_remaining", &remaining)
        .keep("credits_shown", &remaining)
        .keep(
            "refill_amount",
            &refill.map_or_else(String::new, |r| r.amount.to_string()),
        )
        .keep("refill_interval", interval)
        .keep("meta", &meta);
    form
}

fn expires_on(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string())
}

/// The expiry typed: `Some(None)` for never, `Some(Some(day))` for a day; `None` when it is not
/// a date (said beside the field).
fn read_expiry(raw: &str, shown: &mut FormState) -> Option<Option<NaiveDate>> {
    let Some(raw) = optional(raw) else {
        return Some(None);
    };
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(day) => Some(Some(day)),
        Err(_) => {
            shown.error(
                "expires_on",
                "Enter a date like 2027-03-31, or leave it empty for never.",
            );
            None
        }
    }
}

/// What differs from the key now, and only that.
fn changes(
    key: &KeyView,
    form: &EditForm,
    settings: Settings,
    expiry: Option<NaiveDate>,
) -> KeyChanges {
    let differs = |now: Option<&str>, new: &Option<String>| now != new.as_deref();
    let scopes = settings.scopes.unwrap_or_default();
    let credits_touched = form.settings.credits_remaining.trim() != form.credits_shown.trim()
        || settings.credits.and_then(|c| c.refill) != key.credits.and_then(|c| c.refill)
        || settings.credits.is_some() != key.credits.is_some();
    KeyChanges {
        name: differs(key.name.as_deref(), &settings.name).then_some(settings.name),
        owner_id: differs(key.owner_id.as_deref(), &settings.owner_id).then_some(settings.owner_id),
        scopes: (scopes.to_strings() != key.scopes).then_some(scopes),
        meta: (settings.meta.to_value() != key.meta).then_some(settings.meta),
        expires_at: changed_expiry(key.expires_at, expiry),
        ip_allowlist: (settings.ip_allowlist.to_strings() != key.ip_allowlist)
            .then_some(settings.ip_allowlist),
        ratelimit: (settings.ratelimit != key.ratelimit).then_some(settings.ratelimit),
        credits: credits_touched.then_some(settings.credits),
        enabled: None,
        // Roles are given through the API; this form leaves them as they are.
        roles: None,
    }
}

/// A day other than the expiry's own day ends at that day's last second (UTC); the same day
/// keeps the exact moment it had.
fn changed_expiry(
    now: Option<DateTime<Utc>>,
    day: Option<NaiveDate>,
) -> Option<Option<DateTime<Utc>>> {
    match (now, day) {
        (None, None) => None,
        (Some(at), Some(day)) if at.date_naive() == day => None,
        (_, None) => Some(None),
        (_, Some(day)) => {
            let end = day.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
            Some(Some(end.and_utc()))
        }
    }
}
