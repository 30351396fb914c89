//! `POST /oauth/introspect` (RFC 7662): a resource server, authenticated by a root key with
//! `keys:verify` (as a bearer or as client credentials), asks whether an API key or access token of its tenant is active. Anything not
//! active, including another tenant's credential, is exactly `{"active": false}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{Endpoint, OAuthError, OAuthForm, client};
use crate::domain::token::scope_param;
use crate::routes::no_store;
use crate::routes::state::AppState;
use crate::verify;

#[derive(Serialize)]
struct Active {
    active: bool,
    /// `Bearer` for access tokens minted here, `api_key` for API keys.
    token_type: &'static str,
    scope: String,
    client_id: String,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    keyspace_id: String,
}

/// `POST {issuer}/introspect`, and its alias `POST /oauth/introspect` (for the root key's
/// tenant). The root key authenticates as a bearer or as client credentials
/// ([`client::resource_server`]).
pub async fn introspect(
    Endpoint(issuer): Endpoint,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let mut form = OAuthForm::parse(&req, &body)?;
    let tenant = client::resource_server(&state, issuer.as_ref(), &req, &mut form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = || no_store(HttpResponse::Ok()).json(serde_json::json!({ "active": false }));
    let resolved = state.verifier.resolve(&tenant, token).await;
    let Some(resolved) = resolved.map_err(OAuthError::from)? else {
        return Ok(inactive());
    };
    let key = resolved.key;
    if key.tenant_id != tenant.as_str() || verify::status_check(&key, state.clock.now()).is_some() {
        return Ok(inactive());
    }
    let exp = key.expires_at.map(|e| e.and_utc().timestamp());
    let sub = key.owner_id.clone().unwrap_or_else(|| key.id.clone());
    let answer = match resolved.token {
        Some(claims) => Active {
            active: true,
            token_type: "Bearer",
            scope: scope_param(&key.scopes),
            client_id: key.id.clone(),
            sub: claims.sub,
            exp,
            iat: claims.iat,
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            jti: Some(claims.jti),
            keyspace_id: key.keyspace_id.clone(),
        },
        None => Active {
            active: true,
            token_type: "api_key",
            scope: scope_param(&key.scopes),
            client_id: key.id.clone(),
            sub,
            exp,
            iat: key.created_at.and_utc().timestamp(),
            iss: None,
            aud: None,
            jti: None,
            keyspace_id: key.keyspace_id.clone(),
        },
    };
    Ok(no_store(HttpResponse::Ok()).json(answer))
}
