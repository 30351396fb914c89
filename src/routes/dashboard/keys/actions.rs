//! What the detail page's forms do to a key: disable or enable it, rotate it with a grace
//! period, or revoke it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::detail::key_page;
use super::{reveal_redirect, when};
use crate::domain::commands::{KeyChanges, RevokeSelection};
use crate::domain::ids::KeyId;
use crate::domain::key_status::KeyStatus;
use crate::manage::keys;
use crate::manage::{ManageError, parse_path_id};
use crate::routes::api::views::RotatedKey;
use crate::routes::dashboard::context::{Member, can};
use crate::routes::dashboard::forms::FormState;
use crate::routes::dashboard::reveal::Reveal;
use crate::routes::dashboard::{Dashboard, PageError, render, see_other};
use crate::routes::state::AppState;

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_hours: String,
}

/// Issues the successor of a key; the old one keeps working for the grace period.
pub(super) async fn rotate(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    path: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    shown.keep("grace_hours", &form.grace_hours);
    let grace = shown.number("grace_hours", &form.grace_hours).unwrap_or(0);
    if !shown.has_errors() {
        let id = parse_path_id::<KeyId>(&path, "key")?;
        let grace_seconds = grace.saturating_mul(3600);
        match keys::rotate(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            &id,
            grace_seconds,
        )
        .await
        {
            Ok(rotated) => {
                let rotated = RotatedKey::from(rotated);
                let expires = when(Some(rotated.previous_key.expires_at), "");
                let reveal = Reveal::key(rotated.key, Some(expires));
                let now = state.clock.now();
                return reveal_redirect(&member, &dashboard, &rotated.view.id, Some(reveal), now);
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
pub(super) async fn revoke(
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
        let id = parse_path_id::<KeyId>(&path, "key")?;
        let reason = Some(form.reason.clone());
        match keys::revoke(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            &id,
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

/// Revokes every key of this key's rotation family at once (a leaked key whose successor was
/// already handed out, a predecessor still in its grace period); the form must be confirmed.
pub(super) async fn revoke_family(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<KeyId>(&path, "key")?;
    if form.confirm.is_none() {
        let mut shown = FormState::new();
        shown.keep("family_reason", &form.reason);
        shown.error(
            "family_confirm",
            "Tick the box to confirm: revoking cannot be undone.",
        );
        let page = key_page(&member, &state, &path, shown, None).await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let (cx, tenant) = (state.manage(), member.tenant_id());
    let family = keys::family(&cx, tenant, &id).await?;
    let ids = family
        .into_iter()
        .filter(|k| k.status != KeyStatus::Revoked)
        .map(|k| KeyId::from_trusted(k.row.id))
        .collect();
    let reason = Some(form.reason.clone());
    let selection = RevokeSelection::Ids(ids);
    keys::revoke_bulk(&cx, &member.audit, tenant, selection, reason, false).await?;
    Ok(see_other(&format!("/keys/{id}?notice=family_revoked")))
}

#[derive(Deserialize)]
pub struct EnabledForm {
    #[serde(default)]
    enabled: String,
}

/// Disables a key (it answers `DISABLED` everywhere at once, like a revocation, but can be
/// enabled again) or enables it; audited as `key.disable` or `key.enable`.
pub(super) async fn set_enabled(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<EnabledForm>,
) -> Result<HttpResponse, PageError> {
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(PageError::from(crate::error::ApiError::from(
                ManageError::invalid("enabled", "expected true or false"),
            )));
        }
    };
    let id = parse_path_id::<KeyId>(&path, "key")?;
    let changes = KeyChanges {
        enabled: Some(enabled),
        ..Default::default()
    };
    keys::update(
        &state.manage(),
        &member.audit,
        member.tenant_id(),
        &id,
        changes,
    )
    .await?;
    let notice = if enabled { "enabled" } else { "disabled" };
    Ok(see_other(&format!("/keys/{id}?notice={notice}")))
}
