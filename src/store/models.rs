//! Row types: what the store reads and writes, one struct per table shape.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    audit_events, invitations, key_roles, memberships, roles, root_keys, sessions, tenants, users,
    webhook_deliveries, webhook_endpoints,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships)]
pub struct Membership {
    pub tenant_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = root_keys)]
pub struct RootKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// JSON array of scope strings.
    pub scopes: String,
    pub digest: Vec<u8>,
    pub start: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub created_by: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    pub id: String,
    pub tenant_id: String,
    pub occurred_at: NaiveDateTime,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    /// JSON object of changed fields (never secrets).
    pub changes: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    /// HMAC of the cookie value; the value itself is never stored.
    pub id_digest: Vec<u8>,
    pub user_id: String,
    pub tenant_id: Option<String>,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invitations)]
pub struct InvitationRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub role: String,
    /// HMAC of the token in the invite link; the token itself is shown once and never stored.
    pub token_digest: Vec<u8>,
    pub invited_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::keyspaces)]
pub struct KeyspaceRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub prefix: String,
    pub environment: String,
    pub default_ttl_seconds: Option<i64>,
    /// JSON array of scope strings.
    pub default_scopes: String,
    pub default_ratelimit_limit: Option<i32>,
    pub default_ratelimit_window: Option<i32>,
    pub token_exchange_enabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `aud` of access tokens minted from this keyspace's keys; `None`: the default audience.
    pub token_audience: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub keyspace_id: String,
    pub name: Option<String>,
    pub owner_id: Option<String>,
    /// JSON array of scope strings.
    pub scopes: String,
    /// JSON object.
    pub meta: String,
    pub digest: Vec<u8>,
    pub start: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
    pub enabled: bool,
    /// JSON array of CIDR strings.
    pub ip_allowlist: String,
    pub ratelimit_limit: Option<i32>,
    pub ratelimit_window: Option<i32>,
    pub credits_remaining: Option<i64>,
    pub credits_refill_amount: Option<i64>,
    pub credits_refill_interval: Option<String>,
    pub credits_refilled_at: Option<NaiveDateTime>,
    pub rotated_from: Option<String>,
    pub family_id: String,
    pub idempotency_key: Option<String>,
    pub created_by: String,
    /// SHA-256 of the create request that `idempotency_key` came with (none before it was kept).
    pub idempotency_fingerprint: Option<Vec<u8>>,
    /// What `digest` holds ([`crate::domain::key::DigestKind`]).
    pub digest_kind: String,
    /// The importing system's id for an imported key.
    pub external_ref: Option<String>,
}

/// The fields of a key that PATCH may change; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = super::schema::api_keys)]
pub struct ApiKeyChanges {
    pub name: Option<Option<String>>,
    pub owner_id: Option<Option<String>>,
    pub scopes: Option<String>,
    pub meta: Option<String>,
    pub expires_at: Option<Option<NaiveDateTime>>,
    pub enabled: Option<bool>,
    pub ip_allowlist: Option<String>,
    pub ratelimit_limit: Option<Option<i32>>,
    pub ratelimit_window: Option<Option<i32>>,
    pub credits_remaining: Option<Option<i64>>,
    pub credits_refill_amount: Option<Option<i64>>,
    pub credits_refill_interval: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = super::schema::keyspaces)]
pub struct KeyspaceChanges {
    pub name: Option<String>,
    pub default_ttl_seconds: Option<Option<i64>>,
    pub default_scopes: Option<String>,
    pub default_ratelimit_limit: Option<Option<i32>>,
    pub default_ratelimit_window: Option<Option<i32>>,
    pub token_exchange_enabled: Option<bool>,
    pub token_audience: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    /// The issuer this key signs for.
    pub tenant_id: String,
    /// JOSE name: `EdDSA` or `ES256`.
    pub algorithm: String,
    /// The public key as a JWK (JSON), exactly as published.
    pub public_jwk: String,
    /// Nonce followed by the AES-256-GCM ciphertext of the private key.
    pub private_key_encrypted: Vec<u8>,
    pub created_at: NaiveDateTime,
    /// Set when a newer key took over signing.
    pub retired_at: Option<NaiveDateTime>,
    /// When every token this key signed has expired: it leaves the JWKS then.
    pub remove_after: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::revoked_tokens)]
pub struct RevokedTokenRow {
    pub jti: String,
    pub tenant_id: String,
    /// The token's own expiry: after it the entry is useless and may be purged.
    pub expires_at: NaiveDateTime,
}

/// A row looked up by its digest (API keys, root keys): the digest it is stored under.
pub trait StoredByDigest {
    fn digest(&self) -> &[u8];
}

impl StoredByDigest for ApiKeyRow {
    fn digest(&self) -> &[u8] {
        &self.digest
    }
}

impl StoredByDigest for RootKeyRow {
    fn digest(&self) -> &[u8] {
        &self.digest
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: String,
    /// JSON array of event types.
    pub events: String,
    pub enabled: bool,
    pub secret_sealed: Vec<u8>,
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_secret_until: Option<NaiveDateTime>,
    pub failing_since: Option<NaiveDateTime>,
    pub disabled_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A change to an endpoint; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookEndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<String>,
    pub enabled: Option<bool>,
    pub secret_sealed: Option<Vec<u8>>,
    pub previous_secret_sealed: Option<Option<Vec<u8>>>,
    pub previous_secret_until: Option<Option<NaiveDateTime>>,
    pub failing_since: Option<Option<NaiveDateTime>>,
    pub disabled_reason: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct WebhookDeliveryRow {
    pub id: String,
    pub tenant_id: String,
    pub endpoint_id: String,
    pub message_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub claimed_until: Option<NaiveDateTime>,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub last_status_code: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
}

/// A key role: a named bundle of scopes (not a dashboard member role).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = roles)]
pub struct KeyRoleRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// JSON array of scope strings.
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A change to a role; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = roles)]
pub struct KeyRoleRowChanges {
    pub name: Option<String>,
    pub scopes: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// That a key holds a role.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = key_roles)]
pub struct KeyRoleGrantRow {
    pub key_id: String,
    pub role_id: String,
    pub tenant_id: String,
}

/// A key with the roles it holds, as verification loads it: its effective scopes are its own
/// plus its roles'.
#[derive(Debug, Clone)]
pub struct KeyWithRoles {
    pub key: ApiKeyRow,
    pub roles: Vec<KeyRoleRow>,
}

impl StoredByDigest for KeyWithRoles {
    fn digest(&self) -> &[u8] {
        &self.key.digest
    }
}
