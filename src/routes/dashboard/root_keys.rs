//! Root keys: create with chosen scopes (the key shown once), list, revoke. Members create
//! root keys with at most their role's power: developers never grant `root_keys:*`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::context::{Layout, Member, Notice, Permission, can};
use super::forms::{FormState, all_of, first_of, pairs};
use super::keys::when;
use super::reveal::{Reveal, with_cookie};
use super::{Dashboard, PageError, render, see_other};
use crate::domain::commands::{Expiry, NewRootKey};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::RootKeyId;
use crate::domain::inputs::parse_name;
use crate::domain::role::{Action, Role};
use crate::domain::scope::{ROOT_SCOPES, Scopes};
use crate::manage::root_keys;
use crate::routes::api::views::RootKeyView;
use secrecy::{ExposeSecret as _, SecretString};

const DAY: i64 = 24 * 3600;
use crate::manage::{ManageError, PageRequest, parse_path_id};
use crate::routes::state::AppState;

const ROOT_ADMIN_SCOPE: &str = "root_keys:*";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/root-keys", web::get().to(list))
        .route("/root-keys", web::post().to(create))
        .route("/root-keys/{id}/secret", web::get().to(secret))
        .route("/root-keys/{id}/revoke", web::post().to(revoke));
}

/// The scopes a member with `role` may put on a root key.
pub fn grantable(role: Role) -> Vec<&'static str> {
    ROOT_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != ROOT_ADMIN_SCOPE || role.allows(Action::RevokeRootKeys))
        .collect()
}

struct RootKeyRow {
    id: String,
    name: String,
    start: String,
    scopes: Vec<String>,
    created: String,
    expires: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "root_keys.html")]
struct RootKeysPage {
    layout: Layout,
    keys: Vec<RootKeyRow>,
    scopes: Vec<&'static str>,
    chosen: Vec<String>,
    can_create: bool,
    can_revoke: bool,
    form: FormState,
    /// The key just created, shown on this response only.
    secret: Option<SecretString>,
    notice: Option<&'static str>,
    problem: Option<String>,
}

impl RootKeysPage {
    fn is_chosen(&self, scope: &str) -> bool {
        self.chosen.iter().any(|s| s == scope)
    }
}

async fn list(
    member: Member,
    state: web::Data<AppState>,
    query: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let notice = match query.notice.as_deref() {
        Some("revoked") => Some("The root key was revoked."),
        _ => None,
    };
    let page = page(
        &member,
        &state,
        FormState::new(),
        Vec::new(),
        None,
        notice,
        None,
    )
    .await?;
    Ok(render(StatusCode::OK, &page))
}

async fn page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    form: FormState,
    chosen: Vec<String>,
    secret: Option<SecretString>,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> Result<RootKeysPage, PageError> {
    let listed = root_keys::list(
        &state.manage(),
        member.tenant_id(),
        PageRequest::parse(Some(crate::manage::MAX_LIMIT), None)?,
    )
    .await?;
    Ok(RootKeysPage {
        layout: member.layout("root-keys"),
        keys: listed
            .data
            .into_iter()
            .map(|key| row(RootKeyView::from(key)))
            .collect(),
        scopes: grantable(member.role()),
        chosen,
        can_create: member.can(Action::CreateRootKeys),
        can_revoke: member.can(Action::RevokeRootKeys),
        form,
        secret,
        notice,
        problem,
    })
}

fn row(key: RootKeyView) -> RootKeyRow {
    RootKeyRow {
        revoked: key.revoked_at.is_some(),
        created: when(Some(key.created_at), ""),
        expires: when(key.expires_at, "never"),
        id: key.id,
        name: key.name,
        start: format!("{}…", key.start),
        scopes: key.scopes,
    }
}

/// Creates a root key; its scopes may not exceed what the member's role may grant.
async fn create(
    member: Member<can::CreateRootKeys>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let pairs = pairs(&body);
    let name = first_of(&pairs, "name").to_owned();
    let chosen = all_of(&pairs, "scopes");
    let mut shown = FormState::new();
    shown
        .keep("name", &name)
        .keep("ttl_days", first_of(&pairs, "ttl_days"));
    let valid_name = shown.parsed("name", parse_name(&name));
    let expiry = shown
        .number("ttl_days", first_of(&pairs, "ttl_days"))
        .and_then(|days| shown.parsed("ttl_days", Expiry::after_seconds(days.saturating_mul(DAY))));
    let scopes = shown.parsed("scopes", Scopes::parse(&chosen));
    if chosen.is_empty() {
        shown.error("scopes", "Choose at least one scope.");
    }
    if let (Some(name), Some(scopes), false) = (valid_name, scopes, shown.has_errors()) {
        let holder = Scopes::parse(grantable(member.role())).expect("root scopes are valid");
        let input = NewRootKey {
            name,
            scopes,
            expiry,
        };
        match root_keys::create(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            &holder,
            input,
        )
        .await
        {
            Ok(created) => {
                let id = created.row.id;
                let reveal = Reveal::key(created.key, None);
                let (location, now) = (format!("/root-keys/{id}/secret"), state.clock.now());
                let session = &member.session;
                return dashboard.reveals.redirect(
                    &dashboard,
                    session,
                    &location,
                    &id,
                    Some(reveal),
                    now,
                );
            }
            Err(ManageError::Forbidden(message)) => {
                shown.error("scopes", message);
            }
            Err(err) if err.is_client_error() => {
                shown.absorb(&err, &["name", "scopes", "ttl_days"])
            }
            Err(err) => return Err(err.into()),
        }
    }
    let page = page(&member, &state, shown, chosen, None, None, None).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// Where a new root key is shown, once: reached by the redirect that answers the create form,
/// with the key in a sealed cookie ([`reveal`](super::reveal)); a reload says it was shown.
async fn secret(
    member: Member<can::CreateRootKeys>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<RootKeyId>(&path, "root key")?;
    let reveals = &dashboard.reveals;
    let now = state.clock.now();
    let reveal = reveals.open(&req, &dashboard, &member.session, id.as_str(), now);
    let notice = reveal
        .is_none()
        .then_some("That root key was shown once, when it was created; it cannot be shown again.");
    let secret = reveal.map(|r| r.secret);
    let page = page(
        &member,
        &state,
        FormState::new(),
        Vec::new(),
        secret,
        notice,
        None,
    )
    .await?;
    with_cookie(
        render(StatusCode::OK, &page),
        &reveals.removal(&dashboard, id.as_str()),
    )
}

async fn revoke(
    member: Member<can::RevokeRootKeys>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<RootKeyId>(&path, "root key")?;
    match root_keys::revoke(&state.manage(), &member.audit, member.tenant_id(), &id).await {
        Ok(_) => Ok(see_other("/root-keys?notice=revoked")),
        Err(ManageError::Refused {
            code: ErrorCode::LastRootAdminKey,
            ..
        }) => {
            let page = page(
                &member,
                &state,
                FormState::new(),
                Vec::new(),
                None,
                None,
                Some(
                    "This is the last root key that can manage root keys. Create its replacement first."
                        .to_owned(),
                ),
            )
            .await?;
            Ok(render(StatusCode::CONFLICT, &page))
        }
        Err(err) => Err(err.into()),
    }
}
