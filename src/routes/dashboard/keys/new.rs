//! A new key: the form, and creating the key, whose secret is shown once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::reveal_redirect;
use crate::auth::session::random_token;
use crate::domain::commands::{Expiry, NewKey};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::KeyspaceId;
use crate::domain::inputs::{
    Credits, IpAllowlist, Meta, Refill, RefillInterval, parse_name, parse_owner_id,
};
use crate::domain::scope::Scopes;
use crate::error::ApiError;
use crate::manage::{ManageError, keys};
use crate::routes::api::views::CreatedKey;
use crate::routes::api::views::KeyspaceView;
use crate::routes::dashboard;
use crate::routes::dashboard::context::{Layout, Member, can};
use crate::routes::dashboard::forms::{FormState, split_list};
use crate::routes::dashboard::reveal::Reveal;
use crate::routes::dashboard::{Dashboard, PageError, render};
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

pub(super) async fn new_page(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    query: web::Query<NewKeyQuery>,
) -> Result<HttpResponse, PageError> {
    let keyspaces = dashboard::keyspaces::all(&state, member.tenant_id()).await?;
    let mut form = FormState::new();
    if let Some(id) = query
        .keyspace_id
        .as_deref()
        .or(keyspaces.first().map(|k| k.id.as_str()))
    {
        form.keep("keyspace_id", id);
    }
    form.keep("refill_interval", "monthly");
    // Sent back with the form: a second submission of this form (a double click, a resent POST)
    // answers the key the first one made instead of making another.
    form.keep("form_token", &random_token());
    Ok(render(
        StatusCode::OK,
        &NewKeyPage {
            layout: member.layout("keys"),
            keyspaces,
            form,
        },
    ))
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    form_token: String,
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
    let keyspace_id = KeyspaceId::parse(&form.keyspace_id);
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
        roles: Default::default(),
    })
}

/// The form's token as an idempotency key, with the fields as its fingerprint: sent again
/// unchanged, it answers the first submission's key; changed, it is refused (the form was used).
fn once_per_form(form: &CreateForm) -> Result<Option<keys::Idempotency>, ApiError> {
    if form.form_token.is_empty() {
        return Ok(None);
    }
    let mut fingerprint = Sha256::new();
    for value in [
        &form.keyspace_id,
        &form.name,
        &form.owner_id,
        &form.scopes,
        &form.ttl_days,
        &form.ip_allowlist,
        &form.ratelimit_limit,
        &form.ratelimit_window,
        &form.credits_remaining,
        &form.refill_amount,
        &form.refill_interval,
        &form.meta,
    ] {
        fingerprint.update((value.len() as u64).to_be_bytes());
        fingerprint.update(value.as_bytes());
    }
    let key = format!("dashboard-form:{}", form.form_token);
    Ok(Some(keys::Idempotency::new(
        key,
        fingerprint.finalize().to_vec(),
    )?))
}

/// A text field's value, unless it was left empty.
fn optional(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|s| !s.is_empty())
}

/// Creates a key and shows its secret, once.
pub(super) async fn create(
    member: Member<can::ManageKeys>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    shown.keep("form_token", &form.form_token);
    if let Some(new) = read_create(&form, &mut shown) {
        let once = once_per_form(&form).map_err(PageError::from)?;
        match keys::create(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            new,
            once,
        )
        .await
        {
            Ok(created) => {
                let created = CreatedKey::from(created);
                // No plaintext: this form was sent before, and its key's secret shown then.
                let reveal = created.key.map(|secret| Reveal {
                    secret,
                    previous_expires: None,
                });
                let now = state.clock.now();
                return reveal_redirect(&member, &dashboard, &created.view.id, reveal, now);
            }
            Err(ManageError::Refused {
                code: ErrorCode::IdempotencyKeyReused,
                ..
            }) => {
                // This form already made a key, and was then changed: a new form makes another.
                shown.keep("form_token", &random_token());
                shown.summary = Some(
                    "This form was already used to create a key. Check your changes and \
                     create again to make another key."
                        .into(),
                );
            }
            Err(err) if err.is_client_error() => shown.absorb(&err, CREATE_FIELDS),
            Err(err) => return Err(err.into()),
        }
    }
    let keyspaces = dashboard::keyspaces::all(&state, member.tenant_id()).await?;
    Ok(render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &NewKeyPage {
            layout: member.layout("keys"),
            keyspaces,
            form: shown,
        },
    ))
}
