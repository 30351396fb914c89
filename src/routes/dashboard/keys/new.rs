//! A new key: the form, and creating the key, whose secret is shown once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::reveal_redirect;
use super::settings::SettingsForm;
use crate::auth::session::random_token;
use crate::domain::commands::{Expiry, NewKey};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::KeyspaceId;
use crate::domain::inputs::MAX_TTL_SECONDS;
use crate::error::ApiError;
use crate::manage::{ManageError, keys};
use crate::routes::api::views::CreatedKey;
use crate::routes::api::views::KeyspaceView;
use crate::routes::dashboard;
use crate::routes::dashboard::context::{Layout, Member, can};
use crate::routes::dashboard::forms::FormState;
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
    /// Always false: the limit fields say what "empty" means for a new key.
    editing: bool,
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
            editing: false,
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
    ttl_days: String,
    #[serde(flatten)]
    settings: SettingsForm,
}

/// Reads the create form into a new key; problems go next to their fields.
fn read_create(form: &CreateForm, shown: &mut FormState) -> Option<NewKey> {
    shown.keep("keyspace_id", &form.keyspace_id);
    shown.keep("ttl_days", &form.ttl_days);
    let keyspace_id = KeyspaceId::parse(&form.keyspace_id);
    if keyspace_id.is_none() {
        shown.error("keyspace_id", "no such keyspace");
    }
    let most = MAX_TTL_SECONDS / DAY;
    let expiry = shown.number("ttl_days", &form.ttl_days).and_then(|days| {
        let in_range = (1..=most).contains(&days);
        let expiry = Expiry::after_seconds(days.saturating_mul(DAY))
            .ok()
            .filter(|_| in_range);
        if expiry.is_none() {
            let years = most / 365;
            let why = format!("Enter a number of days from 1 to {most} ({years} years).");
            shown.error("ttl_days", why);
        }
        expiry
    });
    let settings = form.settings.read(shown)?;
    Some(NewKey {
        keyspace_id: keyspace_id?,
        name: settings.name,
        owner_id: settings.owner_id,
        scopes: settings.scopes,
        meta: settings.meta,
        expiry,
        ip_allowlist: settings.ip_allowlist,
        ratelimit: settings.ratelimit,
        credits: settings.credits,
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
    let fields = form.settings.fields().map(|(_, value)| value);
    for value in [form.keyspace_id.as_str(), &form.ttl_days]
        .into_iter()
        .chain(fields)
    {
        fingerprint.update((value.len() as u64).to_be_bytes());
        fingerprint.update(value.as_bytes());
    }
    let key = format!("dashboard-form:{}", form.form_token);
    Ok(Some(keys::Idempotency::new(
        key,
        fingerprint.finalize().to_vec(),
    )?))
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
                let reveal = created.key.map(|secret| Reveal::key(secret, None));
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
            editing: false,
        },
    ))
}
