//! Webhooks: the tenant's endpoints, and each endpoint's page with its delivery log, a test
//! event, redelivery, enabling and disabling, a new signing secret, and deletion. A signing
//! secret is shown once, on a page reached by redirect ([`reveal`](super::reveal)), so a reload
//! or Back never makes another endpoint or another secret.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret as _, SecretString};

use super::context::{Layout, Member, Notice, Permission, can};
use super::forms::{FormState, all_of, first_of, pairs};
use super::keys::when;
use super::reveal::{Reveal, with_cookie};
use super::{Dashboard, PageError, render, see_other};
use crate::domain::commands::{NewWebhookEndpoint, WebhookEndpointEdit, parse_description};
use crate::domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use crate::domain::role::Action;
use crate::domain::webhook::{EndpointUrl, EventType, EventTypes};
use crate::manage::{ManageError, PageRequest, parse_path_id, webhooks};
use crate::routes::api::views::{WebhookDeliveryView, WebhookEndpointView};
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks", web::get().to(list))
        .route("/webhooks", web::post().to(create))
        .route("/webhooks/{id}", web::get().to(detail))
        .route("/webhooks/{id}/secret", web::get().to(secret))
        .route("/webhooks/{id}/secret", web::post().to(rotate_secret))
        .route("/webhooks/{id}/delete", web::post().to(delete))
        .route("/webhooks/{id}/test", web::post().to(send_test))
        .route("/webhooks/{id}/enabled", web::post().to(set_enabled))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            web::post().to(redeliver),
        );
}

/// Event types offered in the form: every one an endpoint may subscribe to.
fn offered() -> Vec<&'static str> {
    EventType::ALL.iter().map(|e| e.as_str()).collect()
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    endpoints: Vec<WebhookEndpointView>,
    events: Vec<&'static str>,
    chosen: Vec<String>,
    can_manage: bool,
    form: FormState,
    notice: Option<&'static str>,
}

impl WebhooksPage {
    fn is_chosen(&self, event: &str) -> bool {
        self.chosen.iter().any(|e| e == event)
    }
}

async fn list(
    member: Member,
    state: web::Data<AppState>,
    query: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let mut page = page(&member, &state, FormState::new(), Vec::new()).await?;
    if query.notice.as_deref() == Some("deleted") {
        page.notice = Some("The endpoint is deleted; nothing more is sent to it.");
    }
    Ok(render(StatusCode::OK, &page))
}

async fn page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    form: FormState,
    chosen: Vec<String>,
) -> Result<WebhooksPage, PageError> {
    let listed = webhooks::list(
        &state.manage(),
        member.tenant_id(),
        PageRequest::parse(Some(crate::manage::MAX_LIMIT), None)?,
    )
    .await?;
    Ok(WebhooksPage {
        layout: member.layout("webhooks"),
        endpoints: listed.data.into_iter().map(Into::into).collect(),
        events: offered(),
        chosen,
        can_manage: member.can(Action::ManageWebhooks),
        form,
        notice: None,
    })
}

async fn create(
    member: Member<can::ManageWebhooks>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let pairs = pairs(&body);
    let (url, description) = (first_of(&pairs, "url"), first_of(&pairs, "description"));
    let chosen = all_of(&pairs, "events");
    let mut shown = FormState::new();
    shown.keep("url", url).keep("description", description);
    let url = shown.parsed("url", EndpointUrl::parse(url, state.webhook_policy));
    let events = shown.parsed("events", EventTypes::parse(&chosen));
    let description = shown.parsed("description", parse_description(description));
    if let (Some(url), Some(events), Some(description), false) =
        (url, events, description, shown.has_errors())
    {
        let new = NewWebhookEndpoint {
            url,
            events,
            description,
            enabled: true,
        };
        match webhooks::create(
            &state.manage(),
            &member.audit,
            member.tenant_id(),
            &state.webhook_cipher,
            new,
        )
        .await
        {
            Ok(created) => {
                let reveal = Reveal {
                    secret: SecretString::from(created.secret.expose_text()),
                    previous_expires: None,
                };
                let id = created.endpoint.id;
                return reveal_redirect(&member, &dashboard, &state, &id, reveal);
            }
            Err(err) if err.is_client_error() => shown.absorb(&err, &["url", "events"]),
            Err(err) => return Err(err.into()),
        }
    }
    let page = page(&member, &state, shown, chosen).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    layout: Layout,
    endpoint: WebhookEndpointView,
    deliveries: Vec<DeliveryRow>,
    can_manage: bool,
    notice: Option<&'static str>,
    /// On the page the create and rotate forms redirect to: the new signing secret, once.
    reveal: Option<Reveal>,
}

struct DeliveryRow {
    id: String,
    event_type: String,
    status: String,
    attempts: i32,
    last: String,
    outcome: String,
    latency: String,
    next: String,
}

fn delivery_row(d: WebhookDeliveryView) -> DeliveryRow {
    let outcome = match (&d.last_status_code, &d.last_error) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(error)) => error.clone(),
        (None, None) => String::new(),
    };
    DeliveryRow {
        last: when(d.last_attempt_at, "not yet"),
        next: when(d.next_attempt_at, "—"),
        latency: d
            .last_latency_ms
            .map_or_else(String::new, |ms| format!("{ms} ms")),
        outcome,
        id: d.id,
        event_type: d.event_type,
        status: d.status,
        attempts: d.attempts,
    }
}

async fn detail(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<WebhookEndpointId>(&path, "webhook endpoint")?;
    let notice = match query.notice.as_deref() {
        Some("test") => Some("A test event is on its way; the log below shows how it went."),
        Some("redeliver") => Some("The delivery is queued again."),
        Some("enabled") => Some("The endpoint is enabled; pending deliveries resume."),
        Some("disabled") => Some("The endpoint is disabled; deliveries wait until it is enabled."),
        _ => None,
    };
    let page = endpoint_page(&member, &state, &id, notice, None).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn endpoint_page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    id: &WebhookEndpointId,
    notice: Option<&'static str>,
    reveal: Option<Reveal>,
) -> Result<WebhookPage, PageError> {
    let cx = state.manage();
    let endpoint = webhooks::get(&cx, member.tenant_id(), id).await?;
    let page = PageRequest::parse(Some(crate::manage::MAX_LIMIT), None)?;
    let log = webhooks::deliveries(&cx, member.tenant_id(), id, page).await?;
    Ok(WebhookPage {
        layout: member.layout("webhooks"),
        endpoint: endpoint.into(),
        deliveries: log
            .data
            .into_iter()
            .map(|d| delivery_row(d.into()))
            .collect(),
        can_manage: member.can(Action::ManageWebhooks),
        notice,
        reveal,
    })
}

/// The endpoint's page again, saying why its form was refused.
async fn refused(
    member: &Member<can::ManageWebhooks>,
    state: &AppState,
    id: &WebhookEndpointId,
    why: &'static str,
) -> Result<HttpResponse, PageError> {
    let page = endpoint_page(member, state, id, Some(why), None).await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// The answer to a form that made a signing secret: a redirect to the page that shows it once.
fn reveal_redirect(
    member: &Member<can::ManageWebhooks>,
    dashboard: &Dashboard,
    state: &AppState,
    id: &str,
    reveal: Reveal,
) -> Result<HttpResponse, PageError> {
    let location = format!("/webhooks/{id}/secret");
    let (session, now) = (&member.session, state.clock.now());
    dashboard
        .reveals
        .redirect(dashboard, session, &location, id, Some(reveal), now)
}

/// Where a new signing secret is shown, once: reached by the redirect that answers the create
/// and rotate forms; a reload says it was shown and makes nothing.
async fn secret(
    member: Member<can::ManageWebhooks>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<WebhookEndpointId>(&path, "webhook endpoint")?;
    let reveals = &dashboard.reveals;
    let reveal = reveals.open(
        &req,
        &dashboard,
        &member.session,
        id.as_str(),
        state.clock.now(),
    );
    let notice = reveal.is_none().then_some(
        "That signing secret was shown once, when it was made; it cannot be shown again. \
         Make a new one if it was not stored.",
    );
    let page = endpoint_page(&member, &state, &id, notice, reveal).await?;
    with_cookie(
        render(StatusCode::OK, &page),
        &reveals.removal(&dashboard, id.as_str()),
    )
}

/// How long the old secret keeps signing beside the new one, as offered in the form.
const OVERLAP_HOURS: [i64; 4] = [0, 1, 24, 168];

/// Gives the endpoint a new signing secret; the old one signs beside it for the chosen overlap.
async fn rotate_secret(
    member: Member<can::ManageWebhooks>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<WebhookEndpointId>(&path, "webhook endpoint")?;
    let hours = first_of(&pairs(&body), "overlap_hours").parse::<i64>();
    let Some(hours) = hours.ok().filter(|h| OVERLAP_HOURS.contains(h)) else {
        let notice = "Choose how long the old secret keeps signing, from the list.";
        return refused(&member, &state, &id, notice).await;
    };
    let rotated = webhooks::rotate_secret(
        &state.manage(),
        &member.audit,
        member.tenant_id(),
        &state.webhook_cipher,
        &id,
        hours * 3600,
    )
    .await?;
    let reveal = Reveal {
        secret: SecretString::from(rotated.secret.expose_text()),
        previous_expires: (hours > 0)
            .then(|| when(Some(rotated.previous_secret_expires_at.and_utc()), "")),
    };
    reveal_redirect(&member, &dashboard, &state, id.as_str(), reveal)
}

/// Deletes the endpoint and its delivery log; the form must be confirmed.
async fn delete(
    member: Member<can::ManageWebhooks>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<WebhookEndpointId>(&path, "webhook endpoint")?;
    if first_of(&pairs(&body), "confirm").is_empty() {
        let notice = "Tick the box to confirm the deletion; nothing was deleted.";
        return refused(&member, &state, &id, notice).await;
    }
    webhooks::delete(&state.manage(), &member.audit, member.tenant_id(), &id).await?;
    Ok(see_other("/webhooks?notice=deleted"))
}

async fn send_test(
    member: Member<can::ManageWebhooks>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<WebhookEndpointId>(&path, "webhook endpoint")?;
    webhooks::send_test(&state.manage(), &member.audit, member.tenant_id(), &id).await?;
    Ok(see_other(&format!("/webhooks/{id}?notice=test")))
}

async fn set_enabled(
    member: Member<can::ManageWebhooks>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = parse_path_id::<WebhookEndpointId>(&path, "webhook endpoint")?;
    let enabled = first_of(&pairs(&body), "enabled") == "true";
    let edit = WebhookEndpointEdit {
        enabled: Some(enabled),
        ..Default::default()
    };
    webhooks::update(
        &state.manage(),
        &member.audit,
        member.tenant_id(),
        &id,
        edit,
    )
    .await?;
    let notice = if enabled { "enabled" } else { "disabled" };
    Ok(see_other(&format!("/webhooks/{id}?notice={notice}")))
}

async fn redeliver(
    member: Member<can::ManageWebhooks>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (endpoint, delivery) = path.into_inner();
    let endpoint = parse_path_id::<WebhookEndpointId>(&endpoint, "webhook endpoint")?;
    let delivery = parse_path_id::<WebhookDeliveryId>(&delivery, "webhook delivery")?;
    let cx = state.manage();
    match webhooks::redeliver(&cx, &member.audit, member.tenant_id(), &endpoint, &delivery).await {
        Ok(_) => Ok(see_other(&format!("/webhooks/{endpoint}?notice=redeliver"))),
        Err(ManageError::NotFound(_)) => Err(PageError::NotFound),
        Err(err) => Err(err.into()),
    }
}
