//! Keyspaces: list, create, edit defaults. The rules live in `manage::keyspaces`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::context::{Layout, Member, Notice, Permission, can};
use super::forms::{FormState, split_list};
use super::{PageError, render, see_other};
use crate::domain::commands::{Environment, KeyspaceChanges, NewKeyspace, default_ttl};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyspaceId, TenantId};
use crate::domain::inputs::RateLimit;
use crate::domain::inputs::parse_name;
use crate::domain::key::KeyPrefix;
use crate::domain::role::Action;
use crate::domain::scope::Scopes;
use crate::domain::token::{TokenAudience, jwks_uri_of, metadata_url_of};
use crate::manage::keyspaces;
use crate::manage::{ManageError, PageRequest, parse_path_id};
use crate::routes::api::views::KeyspaceView;
use crate::routes::state::AppState;

const DAY: i64 = 24 * 3600;
/// Form fields, for mapping service errors back next to them.
const FIELDS: &[&str] = &[
    "name",
    "prefix",
    "environment",
    "default_ttl_days",
    "default_scopes",
    "ratelimit_limit",
    "ratelimit_window",
    "token_audience",
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keyspaces", web::get().to(list))
        .route("/keyspaces", web::post().to(create))
        .route("/keyspaces/{id}", web::get().to(edit_page))
        .route("/keyspaces/{id}", web::post().to(update));
}

#[derive(Template)]
#[template(path = "keyspaces.html")]
struct KeyspacesPage {
    layout: Layout,
    keyspaces: Vec<KeyspaceView>,
    can_manage: bool,
    form: FormState,
    notice: Option<&'static str>,
}

/// Every keyspace of the tenant (a tenant has few; the first page of 100 is shown).
pub async fn all(
    state: &AppState,
    member_tenant: &crate::domain::ids::TenantId,
) -> Result<Vec<KeyspaceView>, PageError> {
    let page = PageRequest::parse(Some(crate::manage::MAX_LIMIT), None)?;
    let listed = keyspaces::list(&state.manage(), member_tenant, page).await?;
    Ok(listed.data.into_iter().map(KeyspaceView::from).collect())
}

async fn list(
    member: Member,
    state: web::Data<AppState>,
    query: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let notice = match query.notice.as_deref() {
        Some("created") => Some("The keyspace was created."),
        Some("saved") => Some("The keyspace defaults were saved."),
        _ => None,
    };
    let mut form = FormState::new();
    form.keep("environment", "live");
    let page = keyspaces_page(&member, &state, form, notice).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn keyspaces_page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    form: FormState,
    notice: Option<&'static str>,
) -> Result<KeyspacesPage, PageError> {
    Ok(KeyspacesPage {
        layout: member.layout("keyspaces"),
        keyspaces: all(state, member.tenant_id()).await?,
        can_manage: member.can(Action::ManageKeyspaces),
        form,
        notice,
    })
}

#[derive(Deserialize)]
pub struct KeyspaceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    default_ttl_days: String,
    #[serde(default)]
    default_scopes: String,
    #[serde(default)]
    ratelimit_limit: String,
    #[serde(default)]
    ratelimit_window: String,
    #[serde(default)]
    token_audience: String,
}

/// The name and defaults a form describes, each valid.
struct Defaults {
    name: String,
    ttl_seconds: Option<i64>,
    scopes: Scopes,
    ratelimit: Option<RateLimit>,
    token_audience: Option<TokenAudience>,
}

/// Reads the form's name and defaults; `None` when any is wrong (each said beside its field).
fn read_defaults(form: &KeyspaceForm, shown: &mut FormState) -> Option<Defaults> {
    let name = shown.parsed("name", parse_name(&form.name));
    let ttl_seconds = shown
        .number("default_ttl_days", &form.default_ttl_days)
        .and_then(|days| shown.parsed("default_ttl_days", default_ttl(days.saturating_mul(DAY))));
    let scopes = shown.parsed(
        "default_scopes",
        Scopes::parse(split_list(&form.default_scopes)),
    );
    let ratelimit = shown
        .rate_limit(&form.ratelimit_limit, &form.ratelimit_window)
        .and_then(|limit| shown.parsed("ratelimit_limit", limit.validate()));
    let audience = form.token_audience.trim();
    let token_audience = if audience.is_empty() {
        None
    } else {
        shown.parsed("token_audience", TokenAudience::parse(audience))
    };
    if shown.has_errors() {
        return None;
    }
    Some(Defaults {
        name: name?,
        ttl_seconds,
        scopes: scopes?,
        ratelimit,
        token_audience,
    })
}

fn keep_all(form: &KeyspaceForm, shown: &mut FormState) {
    shown
        .keep("name", &form.name)
        .keep("prefix", &form.prefix)
        .keep("environment", &form.environment)
        .keep("default_ttl_days", &form.default_ttl_days)
        .keep("default_scopes", &form.default_scopes)
        .keep("ratelimit_limit", &form.ratelimit_limit)
        .keep("ratelimit_window", &form.ratelimit_window)
        .keep("token_audience", &form.token_audience);
}

/// A refusal of the service, said beside the field it concerns.
fn absorb(shown: &mut FormState, err: ManageError) {
    if let ManageError::Refused {
        code: ErrorCode::PrefixTaken,
        ..
    } = err
    {
        shown.error(
            "prefix",
            "Another keyspace of this tenant already uses this prefix. Choose another.",
        );
        return;
    }
    shown.absorb(&err, FIELDS);
}

async fn create(
    member: Member<can::ManageKeyspaces>,
    state: web::Data<AppState>,
    form: web::Form<KeyspaceForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    keep_all(&form, &mut shown);
    let prefix = shown.parsed("prefix", KeyPrefix::parse(form.prefix.trim()));
    let environment = match form.environment.as_str() {
        "test" => Environment::Test,
        "live" | "" => Environment::Live,
        _ => {
            shown.error("environment", "Choose live or test.");
            Environment::Live
        }
    };
    let defaults = read_defaults(&form, &mut shown);
    if let (Some(defaults), Some(prefix), false) = (defaults, prefix, shown.has_errors()) {
        let new = NewKeyspace {
            name: defaults.name,
            prefix,
            environment,
            default_ttl_seconds: defaults.ttl_seconds,
            default_scopes: defaults.scopes,
            default_ratelimit: defaults.ratelimit,
            token_exchange_enabled: true,
            token_audience: defaults.token_audience,
        };
        match keyspaces::create(&state.manage(), &member.audit, member.tenant_id(), new).await {
            Ok(_) => return Ok(see_other("/keyspaces?notice=created")),
            Err(err) if err.is_client_error() => absorb(&mut shown, err),
            Err(err) => return Err(err.into()),
        }
    }
    let page = keyspaces_page(&member, &state, shown, None).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Template)]
#[template(path = "keyspace.html")]
struct KeyspacePage {
    layout: Layout,
    keyspace: KeyspaceView,
    oauth: OAuthFacts,
    can_manage: bool,
    form: FormState,
}

/// What a resource server of this keyspace configures to check its access tokens offline.
struct OAuthFacts {
    issuer: String,
    metadata_url: String,
    jwks_uri: String,
    /// The `aud` its tokens carry now.
    audience: String,
}

impl OAuthFacts {
    fn of(state: &AppState, member_tenant: &TenantId, keyspace: &KeyspaceView) -> Self {
        let tokens = &state.tokens;
        let issuer = tokens.issuer(member_tenant);
        Self {
            metadata_url: metadata_url_of(tokens.public_url(), member_tenant),
            jwks_uri: jwks_uri_of(&issuer),
            audience: tokens.audience(
                member_tenant,
                &keyspace.id,
                keyspace.token_audience.as_deref(),
            ),
            issuer,
        }
    }
}

fn form_of(keyspace: &KeyspaceView) -> FormState {
    let mut form = FormState::new();
    form.keep("name", &keyspace.name)
        .keep(
            "default_ttl_days",
            &keyspace
                .default_ttl_seconds
                .map(|s| (s / DAY).max(1).to_string())
                .unwrap_or_default(),
        )
        .keep("default_scopes", &keyspace.default_scopes.join(" "))
        .keep(
            "token_audience",
            keyspace.token_audience.as_deref().unwrap_or_default(),
        );
    if let Some(limit) = keyspace.default_ratelimit {
        form.keep("ratelimit_limit", &limit.limit.to_string())
            .keep("ratelimit_window", &limit.window_seconds.to_string());
    }
    form
}

async fn edit_page(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<KeyspaceId>(&path, "keyspace")?;
    let keyspace =
        KeyspaceView::from(keyspaces::get(&state.manage(), member.tenant_id(), &id).await?);
    Ok(render(
        StatusCode::OK,
        &KeyspacePage {
            form: form_of(&keyspace),
            layout: member.layout("keyspaces"),
            oauth: OAuthFacts::of(&state, member.tenant_id(), &keyspace),
            keyspace,
            can_manage: member.can(Action::ManageKeyspaces),
        },
    ))
}

async fn update(
    member: Member<can::ManageKeyspaces>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<KeyspaceForm>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<KeyspaceId>(&path, "keyspace")?;
    let keyspace = keyspaces::get(&state.manage(), member.tenant_id(), &id).await?;
    let keyspace = KeyspaceView::from(keyspace);
    let mut shown = FormState::new();
    keep_all(&form, &mut shown);
    if let Some(defaults) = read_defaults(&form, &mut shown) {
        let input = KeyspaceChanges {
            name: Some(defaults.name),
            default_ttl_seconds: Some(defaults.ttl_seconds),
            default_scopes: Some(defaults.scopes),
            default_ratelimit: Some(defaults.ratelimit),
            token_exchange_enabled: None,
            token_audience: Some(defaults.token_audience),
        };
        match keyspaces::update(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            &id,
            input,
        )
        .await
        {
            Ok(_) => return Ok(see_other("/keyspaces?notice=saved")),
            Err(err) if err.is_client_error() => absorb(&mut shown, err),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &KeyspacePage {
            layout: member.layout("keyspaces"),
            oauth: OAuthFacts::of(&state, member.tenant_id(), &keyspace),
            keyspace,
            can_manage: true,
            form: shown,
        },
    ))
}
