//! Webhook endpoints and deliveries as the API shows them: never a sealed secret; a new or
//! rotated secret once.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::time::utc;
use crate::domain::webhook::{EventType, EventTypes};
use crate::manage::webhooks::{RotatedSecret, WithSecret};
use crate::store::models::{WebhookDeliveryRow, WebhookEndpointRow};

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(example = "https://hooks.example.com/latchkey")]
    pub url: String,
    pub description: String,
    #[schema(value_type = Vec<EventType>, example = json!(["key.created", "key.revoked"]))]
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why latchkey disabled it (after 5 days of failed deliveries); null otherwise.
    #[schema(required)]
    pub disabled_reason: Option<String>,
    /// Since when deliveries fail without a success in between; null while they succeed.
    #[schema(required)]
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs beside the current one.
    #[schema(required)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookEndpointRow> for WebhookEndpointView {
    fn from(row: WebhookEndpointRow) -> Self {
        let WebhookEndpointRow {
            id,
            tenant_id: _,
            url,
            description,
            events,
            enabled,
            secret_sealed: _,
            previous_secret_sealed: _,
            previous_secret_until,
            failing_since,
            disabled_reason,
            created_at,
            updated_at,
        } = row;
        Self {
            id,
            url,
            description,
            events: EventTypes::from_json(&events)
                .to_strings()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            enabled,
            disabled_reason,
            failing_since: failing_since.map(utc),
            previous_secret_expires_at: previous_secret_until.map(utc),
            created_at: utc(created_at),
            updated_at: utc(updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookEndpoint {
    #[serde(flatten)]
    pub view: WebhookEndpointView,
    /// The signing secret (`whsec_` and base64), shown only in this response.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

impl From<WithSecret> for CreatedWebhookEndpoint {
    fn from(created: WithSecret) -> Self {
        Self {
            secret: created.secret.expose_text(),
            view: created.endpoint.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedWebhookSecret {
    #[serde(flatten)]
    pub view: WebhookEndpointView,
    /// The new signing secret, shown only in this response.
    pub secret: String,
}

impl From<RotatedSecret> for RotatedWebhookSecret {
    fn from(rotated: RotatedSecret) -> Self {
        Self {
            secret: rotated.secret.expose_text(),
            view: rotated.endpoint.into(),
        }
    }
}

/// One event's delivery to one endpoint, with its last attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    #[schema(format = Uuid)]
    pub id: String,
    /// The `webhook-id` header: the same for every attempt and every endpoint of one event.
    pub message_id: String,
    #[schema(example = "key.revoked")]
    pub event_type: String,
    /// `pending`, `succeeded`, or `failed` (no more attempts after 3 days).
    pub status: String,
    pub attempts: i32,
    #[schema(required)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status at the last attempt; null if none came.
    #[schema(required)]
    pub last_status_code: Option<i32>,
    #[schema(required)]
    pub last_latency_ms: Option<i32>,
    #[schema(required)]
    pub last_error: Option<String>,
    #[schema(required)]
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The body sent (`type`, `timestamp`, `data`).
    #[schema(value_type = HashMap<String, Value>)]
    pub payload: Value,
}

impl From<WebhookDeliveryRow> for WebhookDeliveryView {
    fn from(row: WebhookDeliveryRow) -> Self {
        Self {
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
            id: row.id,
            message_id: row.message_id,
            event_type: row.event_type,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at.map(utc),
            last_attempt_at: row.last_attempt_at.map(utc),
            last_status_code: row.last_status_code,
            last_latency_ms: row.last_latency_ms,
            last_error: row.last_error,
            delivered_at: row.delivered_at.map(utc),
            created_at: utc(row.created_at),
        }
    }
}
