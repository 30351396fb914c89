//! `POST /oauth/revoke` (RFC 7009): a client revokes an access token it was issued, or its own
//! API key (which ends every token minted from it). Unknown or invalid tokens answer 200 too.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{Endpoint, OAuthError, OAuthForm, client};
use crate::audit::Actor;
use crate::domain::ids::{KeyId, TenantId};
use crate::domain::token::looks_like_jwt;
use crate::manage::keys;
use crate::routes::no_store;
use crate::routes::state::AppState;

/// Reason recorded on a key its own holder revoked.
const SELF_REVOKED: &str = "revoked by its holder (OAuth token revocation)";

/// `POST {issuer}/revoke`, and its alias `POST /oauth/revoke`.
pub async fn revoke(
    state: web::Data<AppState>,
    Endpoint(issuer): Endpoint,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let mut form = OAuthForm::parse(&req, &body)?;
    let token = form
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let credentials = client::credentials(&req, &mut form)?;
    // Any state of the key authenticates here: revoking is always safe, and a disabled key's
    // holder may still want its tokens gone.
    let client = client::authenticate(&state, issuer.as_ref(), &credentials).await?;
    let tenant = TenantId::from_trusted(client.tenant_id.clone());
    let audit =
        crate::routes::audit_context(&req, Actor::Client(KeyId::from_trusted(client.id.clone())));
    let not_yours =
        || OAuthError::unauthorized_client("this token was not issued to the authenticated client");
    // The hint (`access_token`, `refresh_token`, ...) only speeds up a search; both kinds are
    // told apart by shape, so it is ignored as RFC 7009 §2.1 allows.
    if looks_like_jwt(&token) {
        if let Some(claims) = state.tokens.check(&tenant, &token).await? {
            if claims.client_id != client.id {
                return Err(not_yours());
            }
            state.tokens.revoke(&audit, &tenant, &claims).await?;
        }
    } else if let Some(key) = state.verifier.resolve_key(&tenant, &token).await? {
        if key.id != client.id {
            return Err(not_yours());
        }
        keys::revoke(
            &state.manage(),
            &audit,
            &tenant,
            &KeyId::from_trusted(key.id.clone()),
            Some(SELF_REVOKED.into()),
        )
        .await?;
    }
    Ok(no_store(HttpResponse::Ok()).finish())
}
