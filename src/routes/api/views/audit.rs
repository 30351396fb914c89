//! An audit event as the API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::time::utc;
use crate::store::models::AuditEventRow;
#[allow(unused_imports)] // named by the schemas only
use std::collections::HashMap;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    #[schema(format = Uuid)]
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    #[schema(example = "key.revoke")]
    pub action: String,
    pub target: Target,
    /// Changed fields (never secrets).
    #[schema(value_type = HashMap<String, Value>)]
    pub changes: Value,
    #[schema(required)]
    pub ip: Option<String>,
    #[schema(required)]
    pub user_agent: Option<String>,
    #[schema(required, format = Uuid)]
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Actor {
    #[serde(rename = "type")]
    #[schema(value_type = ActorType)]
    pub kind: String,
    pub id: String,
}

/// Who acted (the schema of [`Actor::kind`]).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // named by the schema only
pub enum ActorType {
    RootKey,
    User,
    Cli,
    LeakReporter,
    OauthClient,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl From<AuditEventRow> for AuditEventView {
    fn from(row: AuditEventRow) -> Self {
        let AuditEventRow {
            id,
            tenant_id: _,
            occurred_at,
            actor_type,
            actor_id,
            action,
            target_type,
            target_id,
            changes,
            ip,
            user_agent,
            request_id,
        } = row;
        Self {
            changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
            id,
            occurred_at: utc(occurred_at),
            actor: Actor {
                kind: actor_type,
                id: actor_id,
            },
            action,
            target: Target {
                kind: target_type,
                id: target_id,
            },
            ip,
            user_agent,
            request_id,
        }
    }
}
