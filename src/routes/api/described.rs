//! The OpenAPI description of the endpoints outside `/v1`: OAuth (`routes/oauth/`, each mounted
//! at a tenant's issuer and at a deployment-wide alias) and the operational ones
//! (`routes/health.rs`, `/openapi.json`). Their handlers are shared between paths, so the paths
//! are described here, on functions that only carry the description; `tests/api/openapi.rs`
//! checks that each described path answers as described.
#![allow(dead_code)] // each function exists for its `#[utoipa::path]`

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ProblemDoc;

/// `POST …/token` (RFC 6749 §4.4).
#[derive(Serialize, ToSchema)]
pub struct TokenRequest {
    pub grant_type: GrantType,
    /// Space-separated scopes, at most the key's; default all of them.
    pub scope: Option<String>,
    /// The key id, with `client_secret`, when not sent by HTTP Basic (`client_secret_post`).
    pub client_id: Option<String>,
    /// The API key itself, when not sent by HTTP Basic.
    pub client_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
}

/// An access token (RFC 9068 JWT).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// `POST …/introspect` (RFC 7662 §2.1).
#[derive(Serialize, ToSchema)]
pub struct IntrospectionRequest {
    /// An API key or an access token.
    #[schema(min_length = 1)]
    pub token: String,
    /// Ignored: both kinds are told apart by their shape.
    pub token_type_hint: Option<String>,
    /// The root key's id, with `client_secret`, when the root key is sent neither by HTTP Basic
    /// nor as a bearer (`client_secret_post`).
    pub client_id: Option<String>,
    /// The root key itself, when not sent by HTTP Basic or as a bearer.
    pub client_secret: Option<String>,
}

/// RFC 7662 §2.2: `{"active": false}` for anything not active (unknown, revoked, expired,
/// another tenant's); the other fields only when active.
#[derive(Serialize, ToSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    /// `Bearer` for access tokens, `api_key` for API keys.
    pub token_type: Option<String>,
    pub scope: Option<String>,
    /// The key id.
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub jti: Option<String>,
    #[schema(format = Uuid)]
    pub keyspace_id: Option<String>,
}

/// `POST …/revoke` (RFC 7009 §2.1).
#[derive(Serialize, ToSchema)]
pub struct RevocationRequest {
    /// An access token issued to the client, or the client's own API key.
    #[schema(min_length = 1)]
    pub token: String,
    /// Ignored: both kinds are told apart by their shape.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// An OAuth error (RFC 6749 §5.2), which OAuth client libraries parse.
#[derive(Serialize, ToSchema)]
pub struct OAuthError {
    #[schema(example = "invalid_client")]
    pub error: OAuthErrorCode,
    pub error_description: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    UnsupportedTokenType,
    TemporarilyUnavailable,
    ServerError,
    /// Introspection only: the bearer root key is not valid (RFC 6750 §3.1).
    InvalidToken,
    /// Introspection only: the root key lacks `keys:verify` (RFC 6750 §3.1).
    InsufficientScope,
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    /// Public keys (`kty`, `crv`, `x`, `kid`, `alg`, `use`).
    pub keys: Vec<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// Authorization server metadata (RFC 8414 §2).
#[derive(Serialize, ToSchema)]
pub struct AuthorizationServerMetadata {
    /// `{public_url}/oauth/{tenant_id}`: the `iss` of the tenant's tokens.
    pub issuer: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub access_token_signing_alg_values_supported: Vec<String>,
    pub service_documentation: String,
}

/// `/healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// `/readyz`: `ready`, `degraded` (Redis is down: answers still come from the store) or
/// `unavailable` (the store is down).
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: ReadinessStatus,
    /// Each dependency's state: `store`, and with Redis `redis` and `invalidations`.
    pub checks: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessStatus {
    Ready,
    Degraded,
    Unavailable,
}

/// Exchange an API key for an access token
///
/// The client credentials grant (RFC 6749 §4.4) at the tenant's issuer: the key authenticates
/// as the client (id and key by HTTP Basic, or in the form) and must verify (not revoked,
/// disabled, expired, out of its IP allowlist, rate-limited or out of credit).
#[utoipa::path(post, path = "/oauth/{tenant_id}/token", tag = "oauth", operation_id = "oauth.token",
    params(("tenant_id" = String, Path, format = Uuid, description = "The tenant whose issuer this is")),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The access token", body = TokenResponse),
        (status = 400, description = "A malformed request, an unsupported grant or a scope beyond the key's", body = OAuthError),
        (status = 401, description = "Unknown client or wrong secret (`invalid_client`)", body = OAuthError),
        (status = 404, description = "No issuer at this address", body = OAuthError),
        (status = 413, description = "The body is too large", body = OAuthError),
        (status = 429, description = "The key's rate limit is spent (`temporarily_unavailable`)", body = OAuthError),
        (status = 503, description = "The key store is unavailable (`temporarily_unavailable`)", body = OAuthError),
    ),
    security(("client_basic" = []), ()))]
async fn token() {}

/// Exchange an API key for an access token (any tenant)
///
/// The deployment-wide alias of `POST /oauth/{tenant_id}/token`: the tenant is the key's, and
/// the answer is exactly what the tenant's own endpoint gives.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth", operation_id = "oauth.tokenAlias",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The access token", body = TokenResponse),
        (status = 400, description = "A malformed request, an unsupported grant or a scope beyond the key's", body = OAuthError),
        (status = 401, description = "Unknown client or wrong secret (`invalid_client`)", body = OAuthError),
        (status = 413, description = "The body is too large", body = OAuthError),
        (status = 429, description = "The key's rate limit is spent (`temporarily_unavailable`)", body = OAuthError),
        (status = 503, description = "The key store is unavailable (`temporarily_unavailable`)", body = OAuthError),
    ),
    security(("client_basic" = []), ()))]
async fn token_alias() {}

/// Introspect an API key or access token
///
/// RFC 7662, for resource servers, authenticated by a root key with `keys:verify`: as OAuth
/// client credentials (`client_id` the root key's id, `client_secret` the root key, by HTTP Basic
/// or in the form) or as a bearer. Only the root key's tenant's credentials can be active;
/// anything else is `{"active": false}`.
#[utoipa::path(post, path = "/oauth/{tenant_id}/introspect", tag = "oauth", operation_id = "oauth.introspect",
    params(("tenant_id" = String, Path, format = Uuid, description = "The tenant whose issuer this is")),
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active, and what it is", body = IntrospectionResponse),
        (status = 400, description = "No `token`, not a form, or two authentication methods at once", body = OAuthError),
        (status = 401, description = "An invalid root key: `invalid_token` with a bearer challenge, `invalid_client` with a Basic challenge for client credentials", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "`Bearer error=\"invalid_token\"` for a bearer, `Basic` for client credentials, both when none was sent"))),
        (status = 403, description = "The root key lacks `keys:verify` (`insufficient_scope`)", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "For a bearer: `Bearer error=\"insufficient_scope\", scope=\"keys:verify\"`"))),
        (status = 404, description = "No issuer at this address", body = OAuthError),
        (status = 413, description = "The body is too large", body = OAuthError),
        (status = 503, description = "The key store is unavailable", body = OAuthError),
    ),
    security(("root_key_client" = []), ("root_key" = ["keys:verify"])))]
async fn introspect() {}

/// Introspect an API key or access token (the root key's tenant)
///
/// The deployment-wide alias of `POST /oauth/{tenant_id}/introspect`, for the root key's
/// tenant.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth", operation_id = "oauth.introspectAlias",
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active, and what it is", body = IntrospectionResponse),
        (status = 400, description = "No `token`, not a form, or two authentication methods at once", body = OAuthError),
        (status = 401, description = "An invalid root key: `invalid_token` with a bearer challenge, `invalid_client` with a Basic challenge for client credentials", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "`Bearer error=\"invalid_token\"` for a bearer, `Basic` for client credentials, both when none was sent"))),
        (status = 403, description = "The root key lacks `keys:verify` (`insufficient_scope`)", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "For a bearer: `Bearer error=\"insufficient_scope\", scope=\"keys:verify\"`"))),
        (status = 413, description = "The body is too large", body = OAuthError),
        (status = 503, description = "The key store is unavailable", body = OAuthError),
    ),
    security(("root_key_client" = []), ("root_key" = ["keys:verify"])))]
async fn introspect_alias() {}

/// Revoke an access token or the client's own key
///
/// RFC 7009: the client revokes a token it was issued, or its own API key (which ends every
/// token minted from it). An unknown or invalid token answers 200 too.
#[utoipa::path(post, path = "/oauth/{tenant_id}/revoke", tag = "oauth", operation_id = "oauth.revoke",
    params(("tenant_id" = String, Path, format = Uuid, description = "The tenant whose issuer this is")),
    request_body(content = RevocationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "No `token`, not a form, or a token of another client", body = OAuthError),
        (status = 401, description = "Unknown client or wrong secret (`invalid_client`)", body = OAuthError),
        (status = 404, description = "No issuer at this address", body = OAuthError),
        (status = 413, description = "The body is too large", body = OAuthError),
        (status = 503, description = "The key store is unavailable", body = OAuthError),
    ),
    security(("client_basic" = []), ()))]
async fn revoke() {}

/// Revoke an access token or the client's own key (any tenant)
///
/// The deployment-wide alias of `POST /oauth/{tenant_id}/revoke`.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth", operation_id = "oauth.revokeAlias",
    request_body(content = RevocationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "No `token`, not a form, or a token of another client", body = OAuthError),
        (status = 401, description = "Unknown client or wrong secret (`invalid_client`)", body = OAuthError),
        (status = 413, description = "The body is too large", body = OAuthError),
        (status = 503, description = "The key store is unavailable", body = OAuthError),
    ),
    security(("client_basic" = []), ()))]
async fn revoke_alias() {}

/// The tenant's signing keys
///
/// The public keys that sign the tenant's access tokens (RFC 7517), cacheable for 5 minutes;
/// refetch on an unknown `kid`.
#[utoipa::path(get, path = "/oauth/{tenant_id}/jwks.json", tag = "oauth", operation_id = "oauth.jwks",
    params(("tenant_id" = String, Path, format = Uuid, description = "The tenant whose issuer this is")),
    responses(
        (status = 200, description = "The key set", body = Jwks, content_type = "application/jwk-set+json"),
        (status = 404, description = "No issuer at this address", body = OAuthError),
    ),
    security(()))]
async fn jwks() {}

/// The tenant's authorization server metadata
///
/// RFC 8414 metadata at the issuer's own path.
#[utoipa::path(get, path = "/oauth/{tenant_id}/.well-known/oauth-authorization-server", tag = "oauth",
    operation_id = "oauth.metadata",
    params(("tenant_id" = String, Path, format = Uuid, description = "The tenant whose issuer this is")),
    responses(
        (status = 200, description = "The metadata", body = AuthorizationServerMetadata),
        (status = 404, description = "No issuer at this address", body = OAuthError),
    ),
    security(()))]
async fn metadata() {}

/// The tenant's authorization server metadata (RFC 8414 location)
///
/// The same metadata at the address RFC 8414 §3.1 derives from the issuer.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server/oauth/{tenant_id}", tag = "oauth",
    operation_id = "oauth.metadataWellKnown",
    params(("tenant_id" = String, Path, format = Uuid, description = "The tenant whose issuer this is")),
    responses(
        (status = 200, description = "The metadata", body = AuthorizationServerMetadata),
        (status = 404, description = "No issuer at this address", body = OAuthError),
    ),
    security(()))]
async fn metadata_well_known() {}

/// Liveness
///
/// The process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "health.live",
    responses((status = 200, description = "Alive", body = Health)),
    security(()))]
async fn healthz() {}

/// Readiness
///
/// The store answers (and Redis, when configured: without it the node is `degraded` but still
/// answers correctly from the store).
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "health.ready",
    responses(
        (status = 200, description = "Ready or degraded", body = Readiness),
        (status = 503, description = "The store is unavailable", body = Readiness),
    ),
    security(()))]
async fn readyz() {}

/// Prometheus metrics
///
/// The text exposition format; with `LATCHKEY_METRICS_TOKEN` set, only for
/// `Authorization: Bearer <that token>`.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics.get",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain"),
        (status = 401, description = "`LATCHKEY_METRICS_TOKEN` is set and was not sent", body = ProblemDoc),
    ),
    security(("metrics_token" = []), ()))]
async fn metrics() {}

/// This description
///
/// The OpenAPI 3.1 document of the whole API, with this deployment's public URL as its server.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi.get",
    responses((status = 200, description = "The document", body = Object, content_type = "application/json")),
    security(()))]
async fn openapi() {}
