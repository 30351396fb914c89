//! Discovery, per tenant: the tenant's signing keys (RFC 7517 JWKS) and its authorization server
//! metadata (RFC 8414), whose `issuer` is exactly the `iss` of the tenant's tokens.

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{Issuer, OAuthError};
use crate::domain::token::jwks_uri_of;
use crate::routes::state::AppState;
use crate::store::tenants;

/// How long verifiers may cache the key set. A rotated-in key signs at once, so verifiers must
/// refetch on an unknown `kid` (standard JWKS clients do); a retired key stays published for a
/// whole token lifetime after rotation, far longer than this.
const JWKS_MAX_AGE: &str = "public, max-age=300";

/// `GET {issuer}/jwks.json`.
pub async fn jwks(state: web::Data<AppState>, issuer: Issuer) -> Result<HttpResponse, OAuthError> {
    existing(&state, &issuer).await?;
    let keys = state.tokens.keyring.jwks(&issuer.tenant).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE)))
        .content_type("application/jwk-set+json")
        .json(json!({ "keys": keys })))
}

/// `GET /.well-known/oauth-authorization-server/oauth/{tenant_id}` and
/// `GET {issuer}/.well-known/oauth-authorization-server`.
pub async fn metadata(
    state: web::Data<AppState>,
    issuer: Issuer,
) -> Result<HttpResponse, OAuthError> {
    existing(&state, &issuer).await?;
    let iss = state.tokens.issuer(&issuer.tenant);
    // IANA-registered methods only (RFC 8414 §2). At introspection the client is a root key
    // (its id and the key); a bearer root key works there too, but has no registered name.
    let client_auth = ["client_secret_basic", "client_secret_post"];
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")))
        .json(json!({
            "issuer": iss,
            "token_endpoint": format!("{iss}/token"),
            "introspection_endpoint": format!("{iss}/introspect"),
            "revocation_endpoint": format!("{iss}/revoke"),
            "jwks_uri": jwks_uri_of(&iss),
            // Machine clients only: no authorization endpoint, so no response types.
            "response_types_supported": [],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": client_auth,
            "revocation_endpoint_auth_methods_supported": client_auth,
            "introspection_endpoint_auth_methods_supported": client_auth,
            "access_token_signing_alg_values_supported": [state.tokens.keyring.algorithm().as_str()],
            "service_documentation": format!("{}/openapi.json", state.tokens.public_url()),
        })))
}

/// Refuses an issuer of no tenant, so no signing key is ever made for one.
async fn existing(state: &AppState, issuer: &Issuer) -> Result<(), OAuthError> {
    let tenant = issuer.tenant.clone();
    state
        .store
        .run(move |conn| tenants::find(conn, &tenant))
        .await?
        .map(drop)
        .ok_or_else(OAuthError::no_such_issuer)
}
