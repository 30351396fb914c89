//! Webhook endpoints: create (the signing secret shown once), list, read, change, delete, rotate
//! the secret with an overlap, send a test event; an endpoint's delivery log and redelivery.

use chrono::{NaiveDateTime, TimeDelta};
use serde_json::{Value, json};

use super::{Context, ManageError, Page, PageRequest};
use crate::audit::AuditContext;
use crate::domain::commands::{
    MAX_SECRET_OVERLAP_SECONDS, NewWebhookEndpoint, WebhookEndpointEdit,
};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{TenantId, WebhookDeliveryId, WebhookEndpointId, new_id};
use crate::domain::webhook::{EventType, WebhookSecret};
use crate::events::delivery::secret_aad;
use crate::events::{Change, Event, Subject, outbox};
use crate::store::models::{WebhookDeliveryRow, WebhookEndpointChanges, WebhookEndpointRow};
use crate::store::{DbConnection, tenants, webhooks};
use crate::tokens::signing::KeyCipher;

/// Most endpoints one tenant may have.
pub const MAX_ENDPOINTS: usize = 20;

fn not_found() -> ManageError {
    ManageError::NotFound("webhook endpoint")
}

fn subject(id: &str) -> Subject {
    Subject::WebhookEndpoint {
        id: WebhookEndpointId::from_trusted(id.to_owned()),
    }
}

/// An endpoint and its signing secret, which only this answer shows.
#[derive(Debug)]
pub struct WithSecret {
    pub endpoint: WebhookEndpointRow,
    pub secret: WebhookSecret,
}

pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    cipher: &KeyCipher,
    new: NewWebhookEndpoint,
) -> Result<WithSecret, ManageError> {
    let at = cx.clock.now();
    let secret = WebhookSecret::generate();
    let id = new_id();
    let row = WebhookEndpointRow {
        secret_sealed: cipher.seal(&secret_aad(&id), secret.expose_bytes()),
        id,
        tenant_id: tenant.as_str().to_owned(),
        url: new.url.as_str().to_owned(),
        description: new.description,
        events: new.events.to_json(),
        enabled: new.enabled,
        previous_secret_sealed: None,
        previous_secret_until: None,
        failing_since: None,
        disabled_reason: None,
        created_at: at,
        updated_at: at,
    };
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (endpoint, event) = cx
        .store
        .transaction(move |conn| {
            // Two creations at once must not both see room for one more.
            tenants::lock(conn, &tenant)?;
            if webhooks::list_endpoints(conn, &tenant, None, MAX_ENDPOINTS as i64)?.len()
                >= MAX_ENDPOINTS
            {
                return Err(ManageError::refused(
                    ErrorCode::TooManyWebhookEndpoints,
                    format!("a tenant may have at most {MAX_ENDPOINTS} webhook endpoints"),
                ));
            }
            webhooks::insert_endpoint(conn, &row)?;
            let fields = json!({
                "url": row.url,
                "events": serde_json::from_str::<Value>(&row.events).unwrap_or(Value::Null),
                "enabled": row.enabled,
            });
            let event = Event::record(
                conn,
                &audit,
                &tenant,
                subject(&row.id),
                Change::Created,
                fields,
            )?;
            Ok::<_, ManageError>((row, event))
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(WithSecret { endpoint, secret })
}

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    page: PageRequest,
) -> Result<Page<WebhookEndpointRow>, ManageError> {
    super::list_page(cx, tenant, page, webhooks::list_endpoints, |r| &r.id).await
}

pub async fn get(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: &WebhookEndpointId,
) -> Result<WebhookEndpointRow, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    cx.store
        .run(move |conn| webhooks::find_endpoint(conn, &tenant, id.as_str()))
        .await?
        .ok_or_else(not_found)
}

/// Changes an endpoint. Enabling one that was disabled (by hand or after days of failures)
/// starts it afresh: its pending deliveries resume.
pub async fn update(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &WebhookEndpointId,
    edit: WebhookEndpointEdit,
) -> Result<WebhookEndpointRow, ManageError> {
    let at = cx.clock.now();
    let mut fields = serde_json::Map::new();
    let mut changes = WebhookEndpointChanges {
        updated_at: Some(at),
        ..Default::default()
    };
    if let Some(url) = &edit.url {
        fields.insert("url".into(), json!(url.as_str()));
        changes.url = Some(url.as_str().to_owned());
    }
    if let Some(events) = &edit.events {
        fields.insert("events".into(), json!(events.to_strings()));
        changes.events = Some(events.to_json());
    }
    if let Some(description) = &edit.description {
        fields.insert("description".into(), json!(description));
        changes.description = Some(description.clone());
    }
    if let Some(enabled) = edit.enabled {
        fields.insert("enabled".into(), json!(enabled));
        changes.enabled = Some(enabled);
        if enabled {
            changes.disabled_reason = Some(None);
            changes.failing_since = Some(None);
        }
    }
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let (row, event) = cx
        .store
        .transaction(move |conn| {
            let current =
                webhooks::find_endpoint(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            if edit.is_empty() {
                return Ok((current, None));
            }
            webhooks::update_endpoint(conn, &tenant, id.as_str(), &changes)?;
            let change = match edit.enabled {
                Some(false) if current.enabled => Change::Disabled,
                Some(true) if !current.enabled => Change::Enabled,
                _ => Change::Updated,
            };
            let event = Event::record(
                conn,
                &audit,
                &tenant,
                subject(id.as_str()),
                change,
                Value::Object(fields),
            )?;
            let row = webhooks::find_endpoint(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            Ok::<_, ManageError>((row, Some(event)))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(row)
}

/// Deletes an endpoint with its delivery log; pending deliveries to it are dropped.
pub async fn delete(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &WebhookEndpointId,
) -> Result<(), ManageError> {
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let event = cx
        .store
        .transaction(move |conn| {
            let row = webhooks::find_endpoint(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            webhooks::delete_endpoint(conn, &tenant, id.as_str())?;
            let fields = json!({ "url": row.url });
            let event = Event::record(
                conn,
                &audit,
                &tenant,
                subject(id.as_str()),
                Change::Removed,
                fields,
            )?;
            Ok::<_, ManageError>(event)
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(())
}

/// A secret rotation: the new secret (shown once) and until when the old one still signs.
#[derive(Debug)]
pub struct RotatedSecret {
    pub endpoint: WebhookEndpointRow,
    pub secret: WebhookSecret,
    pub previous_secret_expires_at: NaiveDateTime,
}

/// Gives the endpoint a new secret; the current one keeps signing beside it for
/// `overlap_seconds` (deliveries carry both signatures), so receivers can switch without
/// losing a delivery. A rotation during an overlap ends the older overlap.
pub async fn rotate_secret(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    cipher: &KeyCipher,
    id: &WebhookEndpointId,
    overlap_seconds: i64,
) -> Result<RotatedSecret, ManageError> {
    if !(0..=MAX_SECRET_OVERLAP_SECONDS).contains(&overlap_seconds) {
        return Err(ManageError::invalid(
            "overlap_seconds",
            format!("must be between 0 and {MAX_SECRET_OVERLAP_SECONDS}"),
        ));
    }
    let at = cx.clock.now();
    let until = at + TimeDelta::seconds(overlap_seconds);
    let secret = WebhookSecret::generate();
    let sealed = cipher.seal(&secret_aad(id.as_str()), secret.expose_bytes());
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let endpoint = cx
        .store
        .transaction(move |conn| {
            let current =
                webhooks::find_endpoint(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            let changes = WebhookEndpointChanges {
                secret_sealed: Some(sealed),
                previous_secret_sealed: Some(Some(current.secret_sealed)),
                previous_secret_until: Some(Some(until)),
                updated_at: Some(at),
                ..Default::default()
            };
            webhooks::update_endpoint(conn, &tenant, id.as_str(), &changes)?;
            let fields = json!({ "overlap_seconds": overlap_seconds });
            audit.record(
                conn,
                &tenant,
                "webhook_endpoint.rotate_secret",
                ("webhook_endpoint", id.as_str()),
                fields,
            )?;
            webhooks::find_endpoint(conn, &tenant, id.as_str())?.ok_or_else(not_found)
        })
        .await?;
    Ok(RotatedSecret {
        endpoint,
        secret,
        previous_secret_expires_at: until,
    })
}

/// Sends a `webhook.test` event to this endpoint (whatever it subscribes to, and even while
/// disabled it is queued: it goes out once enabled).
pub async fn send_test(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &WebhookEndpointId,
) -> Result<WebhookDeliveryRow, ManageError> {
    let at = cx.clock.now();
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let (row, event) = cx
        .store
        .transaction(move |conn| {
            let endpoint =
                webhooks::find_endpoint(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            let (actor_type, actor_id) = audit.actor.parts();
            let data = json!({
                "tenant_id": tenant.as_str(),
                "endpoint_id": endpoint.id,
                "actor": { "type": actor_type, "id": actor_id },
            });
            let rows = outbox::write(
                conn,
                &tenant,
                &[&endpoint],
                EventType::WebhookTest,
                data,
                at,
            )?;
            let row = rows.into_iter().next().ok_or_else(not_found)?;
            audit.record(
                conn,
                &tenant,
                "webhook_endpoint.test",
                ("webhook_endpoint", id.as_str()),
                json!({ "delivery_id": row.id }),
            )?;
            Ok::<_, ManageError>((row, nudge(&audit, &tenant, id.as_str())))
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(row)
}

/// An after-commit event that only wakes the local delivery worker (its audit event is
/// written by the caller, under its own action).
fn nudge(audit: &AuditContext, tenant: &TenantId, id: &str) -> Event {
    Event::new(audit, tenant, subject(id), Change::Updated)
}

/// The endpoint's deliveries, newest first.
pub async fn deliveries(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: &WebhookEndpointId,
    page: PageRequest,
) -> Result<Page<WebhookDeliveryRow>, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    let rows = {
        let page = page.clone();
        cx.store
            .run(move |conn| {
                webhooks::find_endpoint(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
                Ok::<_, ManageError>(webhooks::list_deliveries(
                    conn,
                    &tenant,
                    id.as_str(),
                    page.before.as_deref(),
                    page.fetch_limit(),
                )?)
            })
            .await?
    };
    Ok(page.page(rows, |r| &r.id, |row| row))
}

/// Sends a delivery again now, whatever became of it, with the same `webhook-id` (receivers
/// de-duplicate on it). One a worker is sending right now is queued again behind that attempt.
pub async fn redeliver(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    endpoint: &WebhookEndpointId,
    delivery: &WebhookDeliveryId,
) -> Result<WebhookDeliveryRow, ManageError> {
    let at = cx.clock.now();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (endpoint, delivery) = (endpoint.clone(), delivery.clone());
    let (row, event) = cx
        .store
        .transaction(move |conn| {
            let find = |conn: &mut DbConnection| -> Result<WebhookDeliveryRow, ManageError> {
                webhooks::find_delivery(conn, &tenant, endpoint.as_str(), delivery.as_str())?
                    .ok_or(ManageError::NotFound("webhook delivery"))
            };
            find(conn)?;
            webhooks::reschedule(conn, &tenant, delivery.as_str(), at)?;
            audit.record(
                conn,
                &tenant,
                "webhook_delivery.redeliver",
                ("webhook_delivery", delivery.as_str()),
                json!({ "endpoint_id": endpoint.as_str() }),
            )?;
            let row = find(conn)?;
            Ok::<_, ManageError>((row, nudge(&audit, &tenant, endpoint.as_str())))
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(row)
}
