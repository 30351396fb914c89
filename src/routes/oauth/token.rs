//! `POST /oauth/token`: the client credentials grant (RFC 6749 §4.4) trades an API key for a
//! short-lived access token. The key is checked by the verification engine, so a key that would
//! not verify (revoked, disabled, expired, wrong IP, rate-limited, out of credit) gets no token.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{Endpoint, OAuthError, OAuthForm, client};
use crate::domain::ids::TenantId;
use crate::domain::token::parse_scope_param;
use crate::domain::verify_code::VerifyCode;
use crate::routes::no_store;
use crate::routes::state::AppState;
use crate::store::keyspaces;
use crate::tokens::TokenSubject;
use crate::verify::{self, VerifyInput};

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

/// `POST {issuer}/token`, and its alias `POST /oauth/token`. Each answer is counted by its
/// outcome: `issued`, or the error code (`latchkey_token_requests_total`).
pub async fn token(
    state: web::Data<AppState>,
    endpoint: Endpoint,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let answer = issue(&state, endpoint, &req, &body).await;
    state.metrics.token_request(match &answer {
        Ok(_) => "issued",
        Err(err) => err.error,
    });
    answer
}

async fn issue(
    state: &AppState,
    Endpoint(issuer): Endpoint,
    req: &HttpRequest,
    body: &[u8],
) -> Result<HttpResponse, OAuthError> {
    let mut form = OAuthForm::parse(req, body)?;
    let grant_type = form
        .take("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let credentials = client::credentials(req, &mut form)?;
    let key = client::authenticate(state, issuer.as_ref(), &credentials).await?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::unsupported_grant_type(
            "only the client_credentials grant is supported",
        ));
    }
    match verify::status_check(&key, state.clock.now()) {
        Some(VerifyCode::Revoked) => return Err(OAuthError::invalid_client("this key is revoked")),
        Some(VerifyCode::Disabled) => {
            return Err(OAuthError::invalid_client("this key is disabled"));
        }
        Some(_) => return Err(OAuthError::invalid_client("this key has expired")),
        None => {}
    }
    let tenant = TenantId::from_trusted(key.tenant_id.clone());
    let (lookup_tenant, keyspace_id) = (tenant.clone(), key.keyspace_id.clone());
    let keyspace = state
        .store
        .run(move |conn| keyspaces::find(conn, &lookup_tenant, &keyspace_id))
        .await?
        .filter(|ks| ks.token_exchange_enabled)
        .ok_or_else(|| {
            OAuthError::unauthorized_client(
                "token exchange is switched off for this key's keyspace",
            )
        })?;
    let requested = match form.get("scope") {
        Some(raw) => {
            parse_scope_param(raw).map_err(|e| OAuthError::invalid_scope(format!("scope: {e}")))?
        }
        None => key.scopes.clone(),
    };
    let input = VerifyInput {
        key: String::new(),
        keyspace_id: None,
        scopes: requested.iter().cloned().collect(),
        scope_query: None,
        ip: crate::routes::client_addr::of(req),
        cost: 1,
    };
    let subject_owner = key.owner_id.clone();
    let subject_expiry = key.expires_at;
    // Now, not before the lookups above: the rate-limit window is judged at this moment.
    let at = state.clock.now();
    let outcome = state.verifier.decide(&tenant, &key, &input, at).await?;
    match outcome.code {
        VerifyCode::Valid => {}
        VerifyCode::InsufficientScope => {
            return Err(OAuthError::invalid_scope(
                "the requested scope exceeds the scopes of this key",
            ));
        }
        VerifyCode::IpNotAllowed => {
            return Err(OAuthError::unauthorized_client(
                "this key may not be used from this address",
            ));
        }
        VerifyCode::RateLimited => {
            let wait = outcome
                .ratelimit
                .map(|r| {
                    (r.reset_at - state.clock.now().and_utc())
                        .num_seconds()
                        .max(1) as u64
                })
                .unwrap_or(1);
            return Err(OAuthError::slow_down(wait));
        }
        VerifyCode::UsageExceeded => {
            return Err(OAuthError::unauthorized_client(
                "this key has no credits left",
            ));
        }
        VerifyCode::NotFound | VerifyCode::Revoked | VerifyCode::Disabled | VerifyCode::Expired => {
            return Err(OAuthError::unknown_client());
        }
    }
    let issued = state
        .tokens
        .mint(
            TokenSubject {
                tenant: &tenant,
                key_id: &credentials.client_id,
                keyspace_id: &keyspace.id,
                audience: keyspace.token_audience.as_deref(),
                owner_id: subject_owner.as_deref(),
                key_expires_at: subject_expiry,
            },
            &requested,
        )
        .await?;
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: issued.scope,
    }))
}
