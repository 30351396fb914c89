//! The answer to `/v1/keys/verify`, borrowed from the engine's outcome and the key's cached
//! record: answering a verification copies none of the key's fields.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::scope::{Scope, Scopes};
use crate::domain::time::utc;
use crate::domain::verify_code::VerifyCode;
use crate::verify::{RateLimitState, VerifyOutcome};

// Its doc comment is the schema's description.
/// The answer to a verification: `valid` with everything a service needs, or the reason not.
#[derive(Serialize, ToSchema)]
#[schema(as = VerifyOutcome)]
pub struct VerifyOutcomeBody<'a> {
    pub valid: bool,
    pub code: VerifyCode,
    // The fields below are left out when they do not apply, never `null`: the schema says
    // so (`nullable = false`), or generated clients would type each one as absent *or* null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub keyspace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub owner_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, nullable = false)]
    pub scopes: Option<&'a Scopes>,
    /// Names of the roles the key holds; `scopes` includes their scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub roles: Option<&'a [String]>,
    /// The key's `meta`, as it was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, Value>>, nullable = false)]
    pub meta: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ratelimit: Option<RateLimitStateBody>,
    /// Credits left after this verification; with `USAGE_EXCEEDED`, the balance that was
    /// smaller than the cost (nothing was taken).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub credits_remaining: Option<i64>,
    /// With `INSUFFICIENT_SCOPE`: the required scopes the key lacks; for a `scope_query`, those
    /// of its first failing branch.
    #[serde(skip_serializing_if = "<[Scope]>::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub missing_scopes: &'a [Scope],
}

impl<'a> From<&'a VerifyOutcome> for VerifyOutcomeBody<'a> {
    fn from(outcome: &'a VerifyOutcome) -> Self {
        let VerifyOutcome {
            valid,
            code,
            key,
            ratelimit,
            credits_remaining,
            missing_scopes,
        } = outcome;
        // A refusal shows the key's ids and expiry; a valid answer everything.
        let key = key.as_deref();
        let valid_key = outcome.valid_key();
        Self {
            valid: *valid,
            code: *code,
            key_id: key.map(|k| k.id.as_str()),
            keyspace_id: key.map(|k| k.keyspace_id.as_str()),
            owner_id: key.and_then(|k| k.owner_id.as_deref()),
            name: valid_key.and_then(|k| k.name.as_deref()),
            scopes: valid_key.map(|k| &k.scopes),
            roles: valid_key.map(|k| k.roles.as_slice()),
            meta: valid_key.map(|k| &k.meta),
            expires_at: key.and_then(|k| k.expires_at).map(utc),
            ratelimit: ratelimit.map(RateLimitStateBody::from),
            credits_remaining: *credits_remaining,
            missing_scopes,
        }
    }
}

// A rate limit's state after this verification (a plain comment: the published schema has no
// description).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = RateLimitState)]
pub struct RateLimitStateBody {
    pub limit: i32,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
}

impl From<RateLimitState> for RateLimitStateBody {
    fn from(state: RateLimitState) -> Self {
        let RateLimitState {
            limit,
            remaining,
            reset_at,
        } = state;
        Self {
            limit,
            remaining,
            reset_at,
        }
    }
}
