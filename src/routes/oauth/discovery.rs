//! Discovery: the signing keys (RFC 7517 JWKS) and the server metadata (RFC 8414).

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::OAuthError;
use crate::routes::state::AppState;

/// How long verifiers may cache the key set. A rotated-in key signs at once, so verifiers must
/// refetch on an unknown `kid` (standard JWKS clients do); a retired key stays published for a
/// whole token lifetime after rotation, far longer than this.
const JWKS_MAX_AGE: &str = "public, max-age=300";

pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let keys = state.tokens.keyring.jwks().await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE)))
        .content_type("application/jwk-set+json")
        .json(json!({ "keys": keys })))
}

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.tokens.issuer;
    let client_auth = ["client_secret_basic", "client_secret_post"];
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")))
        .json(json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/oauth/token"),
            "introspection_endpoint": format!("{issuer}/oauth/introspect"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            // Machine clients only: no authorization endpoint, so no response types.
            "response_types_supported": [],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": client_auth,
            "revocation_endpoint_auth_methods_supported": client_auth,
            // Resource servers introspect with a root key holding `keys:verify`.
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "access_token_signing_alg_values_supported": [state.tokens.keyring.algorithm().as_str()],
            "service_documentation": format!("{issuer}/openapi.json"),
        }))
}
