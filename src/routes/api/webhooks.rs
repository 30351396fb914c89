//! `/v1/webhook-endpoints`: where a tenant hears about its keys' events, signed per Standard
//! Webhooks; each endpoint's delivery log, redelivery and test event.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{OptionalJson, PageQuery, created_at};
use crate::domain::commands::{
    DEFAULT_SECRET_OVERLAP_SECONDS, ForField, Invalid, NewWebhookEndpoint, WebhookEndpointEdit,
    parse_description,
};
use crate::domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use crate::domain::webhook::{EndpointUrl, EventType, EventTypes, OutboundPolicy};
use crate::error::{ApiError, ProblemDoc};
use crate::manage::{PageRequest, parse_path_id, webhooks};
use crate::routes::api::views::{
    CreatedWebhookEndpoint, Page, RotatedWebhookSecret, WebhookDeliveryView, WebhookEndpointView,
};
use crate::routes::extractor::{Authorized, WebhooksRead, WebhooksWrite};
use crate::routes::no_store;
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhook-endpoints").post(create).get(list))
        .service(
            web::resource("/webhook-endpoints/{id}")
                .get(get)
                .patch(update)
                .delete(delete),
        )
        .service(web::resource("/webhook-endpoints/{id}/rotate-secret").post(rotate_secret))
        .service(web::resource("/webhook-endpoints/{id}/test").post(send_test))
        .service(web::resource("/webhook-endpoints/{id}/deliveries").get(deliveries))
        .service(
            web::resource("/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver")
                .post(redeliver),
        );
}

fn endpoint_id(raw: &str) -> Result<WebhookEndpointId, ApiError> {
    Ok(parse_path_id::<WebhookEndpointId>(raw, "webhook endpoint")?)
}

/// Create a webhook endpoint
///
/// Events the tenant subscribes to are signed (Standard Webhooks) and delivered to `url`. The
/// signing secret (`whsec_…`) is in this response only. Needs `webhooks:write`.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhookEndpoints", operation_id = "webhookEndpoints.create",
    request_body = CreateWebhookEndpoint,
    responses(
        (status = 201, description = "Created; `secret` is shown once", body = CreatedWebhookEndpoint,
            headers(("Location" = String, description = "The new endpoint: `/v1/webhook-endpoints/{id}`"))),
        (status = 409, description = "The tenant has the most endpoints it may (`too_many_webhook_endpoints`)", body = ProblemDoc),
        (status = 422, description = "Invalid field (a URL that is not https, a private address, an unknown event)", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:write"])))]
pub async fn create(
    auth: Authorized<WebhooksWrite>,
    state: web::Data<AppState>,
    body: crate::routes::input::Json<CreateWebhookEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().parse(state.webhook_policy)?;
    let created = webhooks::create(
        &state.manage(),
        &auth.audit,
        &auth.tenant,
        &state.webhook_cipher,
        new,
    )
    .await?;
    let created = CreatedWebhookEndpoint::from(created);
    let location = format!("/v1/webhook-endpoints/{}", created.view.id);
    Ok(no_store(created_at(&location)).json(created))
}

/// List webhook endpoints
///
/// The tenant's endpoints, newest first, a page at a time. Needs `webhooks:read`.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhookEndpoints", operation_id = "webhookEndpoints.list", params(PageQuery),
    responses((status = 200, description = "One page", body = Page<WebhookEndpointView>)),
    security(("root_key" = ["webhooks:read"])))]
pub async fn list(
    auth: Authorized<WebhooksRead>,
    state: web::Data<AppState>,
    query: crate::routes::input::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let listed = webhooks::list(&state.manage(), &auth.tenant, page).await?;
    Ok(HttpResponse::Ok().json(Page::<WebhookEndpointView>::from(listed)))
}

/// Read a webhook endpoint
///
/// Its URL, events, state and failure streak; never its secret. Needs `webhooks:read`.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhookEndpoints", operation_id = "webhookEndpoints.get",
    params(("id" = String, Path, format = Uuid, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpointView),
        (status = 404, description = "No such endpoint in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:read"])))]
pub async fn get(
    auth: Authorized<WebhooksRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(&path)?;
    let row = webhooks::get(&state.manage(), &auth.tenant, &id).await?;
    Ok(HttpResponse::Ok().json(WebhookEndpointView::from(row)))
}

/// Change a webhook endpoint
///
/// Its URL, events, description or `enabled`. Enabling a disabled endpoint resumes its pending
/// deliveries. Needs `webhooks:write`.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhookEndpoints", operation_id = "webhookEndpoints.update",
    params(("id" = String, Path, format = Uuid, description = "Endpoint id")),
    request_body = UpdateWebhookEndpoint,
    responses(
        (status = 200, description = "The changed endpoint", body = WebhookEndpointView),
        (status = 404, description = "No such endpoint in this tenant", body = ProblemDoc),
        (status = 422, description = "Invalid field", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:write"])))]
pub async fn update(
    auth: Authorized<WebhooksWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: crate::routes::input::Json<UpdateWebhookEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(&path)?;
    let edit = body.into_inner().parse(state.webhook_policy)?;
    let row = webhooks::update(&state.manage(), &auth.audit, &auth.tenant, &id, edit).await?;
    Ok(HttpResponse::Ok().json(WebhookEndpointView::from(row)))
}

/// Delete a webhook endpoint
///
/// With its delivery log and its pending deliveries. Needs `webhooks:write`.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhookEndpoints", operation_id = "webhookEndpoints.delete",
    params(("id" = String, Path, format = Uuid, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:write"])))]
pub async fn delete(
    auth: Authorized<WebhooksWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(&path)?;
    webhooks::delete(&state.manage(), &auth.audit, &auth.tenant, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a webhook endpoint's secret
///
/// A new signing secret, shown once. The old one keeps signing beside it for `overlap_seconds`
/// (default 86400, at most 7 days): deliveries carry both signatures. Needs `webhooks:write`.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhookEndpoints", operation_id = "webhookEndpoints.rotateSecret",
    params(("id" = String, Path, format = Uuid, description = "Endpoint id")),
    request_body(content = Option<RotateWebhookSecret>, description = "Optional: without a body the overlap is a day"),
    responses(
        (status = 200, description = "The endpoint; `secret` is shown once", body = RotatedWebhookSecret),
        (status = 404, description = "No such endpoint in this tenant", body = ProblemDoc),
        (status = 422, description = "Invalid field", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:write"])))]
pub async fn rotate_secret(
    auth: Authorized<WebhooksWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: OptionalJson<RotateWebhookSecret>,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(&path)?;
    let overlap = body
        .0
        .and_then(|b| b.overlap_seconds)
        .unwrap_or(DEFAULT_SECRET_OVERLAP_SECONDS);
    let rotated = webhooks::rotate_secret(
        &state.manage(),
        &auth.audit,
        &auth.tenant,
        &state.webhook_cipher,
        &id,
        overlap,
    )
    .await?;
    Ok(no_store(HttpResponse::Ok()).json(RotatedWebhookSecret::from(rotated)))
}

/// Send a test event
///
/// Queues a `webhook.test` event for this endpoint now; the delivery log shows how it went.
/// Needs `webhooks:write`.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/test", tag = "webhookEndpoints", operation_id = "webhookEndpoints.sendTest",
    params(("id" = String, Path, format = Uuid, description = "Endpoint id")),
    responses(
        (status = 202, description = "Queued; the delivery log shows how it went", body = WebhookDeliveryView),
        (status = 404, description = "No such endpoint in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:write"])))]
pub async fn send_test(
    auth: Authorized<WebhooksWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(&path)?;
    let row = webhooks::send_test(&state.manage(), &auth.audit, &auth.tenant, &id).await?;
    Ok(HttpResponse::Accepted().json(WebhookDeliveryView::from(row)))
}

/// List an endpoint's deliveries
///
/// The delivery log, newest first: status, attempts, latency, next attempt. Needs
/// `webhooks:read`.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhookEndpoints", operation_id = "webhookEndpoints.listDeliveries",
    params(("id" = String, Path, format = Uuid, description = "Endpoint id"), PageQuery),
    responses(
        (status = 200, description = "One page", body = Page<WebhookDeliveryView>),
        (status = 404, description = "No such endpoint in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:read"])))]
pub async fn deliveries(
    auth: Authorized<WebhooksRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: crate::routes::input::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(&path)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let listed = webhooks::deliveries(&state.manage(), &auth.tenant, &id, page).await?;
    Ok(HttpResponse::Ok().json(Page::<WebhookDeliveryView>::from(listed)))
}

/// Redeliver a delivery
///
/// Sends it again now, with the same `webhook-id` (receivers de-duplicate on it). Needs
/// `webhooks:write`.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhookEndpoints", operation_id = "webhookEndpoints.redeliver",
    params(
        ("id" = String, Path, format = Uuid, description = "Endpoint id"),
        ("delivery_id" = String, Path, format = Uuid, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "Queued again", body = WebhookDeliveryView),
        (status = 404, description = "No such endpoint or delivery in this tenant", body = ProblemDoc),
    ),
    security(("root_key" = ["webhooks:write"])))]
pub async fn redeliver(
    auth: Authorized<WebhooksWrite>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (endpoint, delivery) = path.into_inner();
    let endpoint = endpoint_id(&endpoint)?;
    let delivery = parse_path_id::<WebhookDeliveryId>(&delivery, "webhook delivery")?;
    let row = webhooks::redeliver(
        &state.manage(),
        &auth.audit,
        &auth.tenant,
        &endpoint,
        &delivery,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(WebhookDeliveryView::from(row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/latchkey", "events": ["key.created", "key.revoked", "key.leaked"], "description": "billing"}))]
pub struct CreateWebhookEndpoint {
    /// `https`, on a public address (checked again at every delivery).
    pub url: String,
    /// Event types to receive, e.g. `key.revoked`; see the README for the list.
    #[schema(value_type = Vec<EventType>, min_items = 1, max_items = 64)]
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

impl CreateWebhookEndpoint {
    pub fn parse(self, policy: OutboundPolicy) -> Result<NewWebhookEndpoint, Invalid> {
        Ok(NewWebhookEndpoint {
            url: EndpointUrl::parse(&self.url, policy).for_field("url")?,
            events: EventTypes::parse(&self.events).for_field("events")?,
            description: parse_description(self.description.as_deref().unwrap_or(""))
                .for_field("description")?,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"events": ["key.revoked"], "enabled": true}))]
pub struct UpdateWebhookEndpoint {
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<EventType>>, min_items = 1, max_items = 64)]
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

impl UpdateWebhookEndpoint {
    pub fn parse(self, policy: OutboundPolicy) -> Result<WebhookEndpointEdit, Invalid> {
        Ok(WebhookEndpointEdit {
            url: self
                .url
                .map(|u| EndpointUrl::parse(&u, policy).for_field("url"))
                .transpose()?,
            events: self
                .events
                .map(|e| EventTypes::parse(&e).for_field("events"))
                .transpose()?,
            description: self
                .description
                .map(|d| parse_description(&d).for_field("description"))
                .transpose()?,
            enabled: self.enabled,
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecret {
    /// How long the current secret keeps signing beside the new one; default 86400.
    #[schema(minimum = 0, maximum = 604_800)]
    pub overlap_seconds: Option<i64>,
}
