//! The webhook outbox: inside a change's transaction, one delivery row per announced event and
//! subscribed endpoint, so a committed change is never without its deliveries (and a rolled-back
//! one never has any). The workers of `delivery` send them.

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use super::{Change, Event, Source, Subject};
use crate::domain::ids::{TenantId, new_id};
use crate::domain::time::utc;
use crate::domain::webhook::{EventType, EventTypes};
use crate::store::models::{WebhookDeliveryRow, WebhookEndpointRow};
use crate::store::{DbConnection, StoreError, api_keys, memberships, root_keys, users, webhooks};

/// The webhook event types a change announces (none for most keyspace and invitation changes).
pub fn announced(event: &Event) -> Vec<EventType> {
    match (&event.subject, &event.change) {
        (Subject::Key { .. }, Change::Created) => vec![EventType::KeyCreated],
        (Subject::Key { .. }, Change::Updated) => vec![EventType::KeyUpdated],
        (Subject::Key { .. }, Change::Disabled) => vec![EventType::KeyDisabled],
        (Subject::Key { .. }, Change::Enabled) => vec![EventType::KeyEnabled],
        (Subject::Key { .. }, Change::Rotated { .. }) => vec![EventType::KeyRotated],
        (Subject::Key { .. }, Change::Revoked { .. }) if event.source == Source::LeakReport => {
            vec![EventType::KeyLeaked, EventType::KeyRevoked]
        }
        (Subject::Key { .. }, Change::Revoked { .. }) => vec![EventType::KeyRevoked],
        (Subject::RootKey { .. }, Change::Created) => vec![EventType::RootKeyCreated],
        (Subject::RootKey { .. }, Change::Revoked { .. }) => vec![EventType::RootKeyRevoked],
        (Subject::Member { .. }, Change::Created) => vec![EventType::MemberAdded],
        (Subject::Member { .. }, Change::Removed) => vec![EventType::MemberRemoved],
        (Subject::WebhookEndpoint { .. }, Change::Disabled) => {
            vec![EventType::WebhookEndpointDisabled]
        }
        _ => Vec::new(),
    }
}

/// Writes the deliveries of `event` to every enabled endpoint of its tenant subscribed to what
/// it announces. Call it in the change's transaction, after the change (the payload is read
/// from the changed rows). `changes` are the audit event's fields.
pub fn enqueue(
    conn: &mut DbConnection,
    event: &Event,
    changes: &Value,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    let types = announced(event);
    if types.is_empty() {
        return Ok(());
    }
    let endpoints = webhooks::enabled_endpoints(conn, &event.tenant)?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let subscribed = |t: EventType| -> Vec<&WebhookEndpointRow> {
        endpoints
            .iter()
            .filter(|e| EventTypes::from_json(&e.events).contains(t))
            .collect()
    };
    if types.iter().all(|t| subscribed(*t).is_empty()) {
        return Ok(());
    }
    let data = payload_data(conn, event, changes)?;
    for t in types {
        let targets = subscribed(t);
        if !targets.is_empty() {
            write(conn, &event.tenant, &targets, t, data.clone(), at)?;
        }
    }
    Ok(())
}

/// Writes one event (`type`, `timestamp`, `data`) as a delivery to each of `endpoints`, all
/// under one message id; answers the rows written.
pub fn write(
    conn: &mut DbConnection,
    tenant: &TenantId,
    endpoints: &[&WebhookEndpointRow],
    event_type: EventType,
    data: Value,
    at: NaiveDateTime,
) -> Result<Vec<WebhookDeliveryRow>, StoreError> {
    let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let payload = json!({
        "type": event_type.as_str(),
        "timestamp": utc(at),
        "data": data,
    })
    .to_string();
    let rows: Vec<WebhookDeliveryRow> = endpoints
        .iter()
        .map(|endpoint| WebhookDeliveryRow {
            id: new_id(),
            tenant_id: tenant.as_str().to_owned(),
            endpoint_id: endpoint.id.clone(),
            message_id: message_id.clone(),
            event_type: event_type.as_str().to_owned(),
            payload: payload.clone(),
            created_at: at,
            status: webhooks::PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: Some(at),
            claimed_until: None,
            last_attempt_at: None,
            last_status_code: None,
            last_latency_ms: None,
            last_error: None,
            delivered_at: None,
        })
        .collect();
    webhooks::insert_deliveries(conn, &rows)?;
    Ok(rows)
}

/// What a receiver learns about the change: ids and names, never a secret or digest.
fn payload_data(
    conn: &mut DbConnection,
    event: &Event,
    changes: &Value,
) -> Result<Value, StoreError> {
    let tenant = &event.tenant;
    let mut data = Map::new();
    data.insert("tenant_id".into(), json!(tenant.as_str()));
    match &event.subject {
        Subject::Key { id, .. } => {
            data.insert("key_id".into(), json!(id.as_str()));
            if let Some(row) = api_keys::find(conn, tenant, id.as_str())? {
                data.insert("keyspace_id".into(), json!(row.keyspace_id));
                data.insert("name".into(), json!(row.name));
                data.insert("owner_id".into(), json!(row.owner_id));
                data.insert("start".into(), json!(row.start));
                data.insert("enabled".into(), json!(row.enabled));
                data.insert("expires_at".into(), json!(row.expires_at.map(utc)));
                data.insert("revoked_at".into(), json!(row.revoked_at.map(utc)));
            }
        }
        Subject::RootKey { id, .. } => {
            data.insert("root_key_id".into(), json!(id.as_str()));
            if let Some(row) = root_keys::find(conn, tenant, id.as_str())? {
                data.insert("name".into(), json!(row.name));
                let scopes: Value = serde_json::from_str(&row.scopes).unwrap_or(Value::Null);
                data.insert("scopes".into(), scopes);
            }
        }
        Subject::Member { user_id } => {
            data.insert("user_id".into(), json!(user_id.as_str()));
            if let Some(user) = users::find(conn, user_id.as_str())? {
                data.insert("email".into(), json!(user.email));
            }
            let role = memberships::find(conn, tenant, user_id.as_str())?.map(|m| m.role);
            data.insert("role".into(), json!(role));
        }
        Subject::WebhookEndpoint { id } => {
            data.insert("endpoint_id".into(), json!(id.as_str()));
            if let Some(row) = webhooks::find_endpoint(conn, tenant, id.as_str())? {
                data.insert("url".into(), json!(row.url));
                data.insert("reason".into(), json!(row.disabled_reason));
            }
        }
        Subject::Keyspace { id } => {
            data.insert("keyspace_id".into(), json!(id.as_str()));
        }
        Subject::Invitation { id } => {
            data.insert("invitation_id".into(), json!(id.as_str()));
        }
        // No event type announces role changes yet (see `announced`).
        Subject::KeyRole { id, .. } => {
            data.insert("role_id".into(), json!(id.as_str()));
        }
    }
    match &event.change {
        Change::Revoked { reason } => {
            data.insert("reason".into(), json!(reason));
        }
        Change::Rotated { successor_id } => {
            data.insert("successor_key_id".into(), json!(successor_id.as_str()));
        }
        Change::Updated => {
            let fields: Vec<&String> = changes
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            data.insert("changed_fields".into(), json!(fields));
        }
        _ => {}
    }
    if let Some(leaks) = changes
        .get("leaks")
        .filter(|_| event.source == Source::LeakReport)
    {
        // Where scanners found it (type, url, source), never the value.
        data.insert("leaks".into(), leaks.clone());
    }
    data.insert("source".into(), json!(event.source.as_str()));
    let (actor_type, actor_id) = event.actor.parts();
    data.insert(
        "actor".into(),
        json!({ "type": actor_type, "id": actor_id }),
    );
    Ok(Value::Object(data))
}
