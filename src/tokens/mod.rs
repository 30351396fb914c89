//! Access tokens (RFC 9068 JWTs) minted from API keys: signing, checking, and the `jti`
//! denylist that revocation (RFC 7009) writes to.

pub mod denylist;
pub mod signing;

use std::sync::Arc;

use chrono::{NaiveDateTime, TimeDelta};
use jsonwebtoken::{Header, Validation};

use crate::audit::AuditContext;
use crate::domain::ids::{TenantId, new_id};
use crate::domain::scope::Scopes;
use crate::domain::time::Clock;
use crate::domain::token::{ACCESS_TOKEN_TYPE, AccessTokenClaims, scope_param};
use crate::store::models::RevokedTokenRow;
use crate::store::{Store, StoreError, revoked_tokens};
use denylist::Denylist;
use signing::Keyring;

/// Issues and checks access tokens for one deployment (one issuer).
pub struct TokenService {
    /// `iss`: the deployment's public URL.
    pub issuer: String,
    /// `aud` of every token.
    pub audience: String,
    pub ttl_seconds: i64,
    pub keyring: Keyring,
    /// Revoked tokens; [`Denylist::run`] keeps its Redis copy complete.
    denylist: Arc<Denylist>,
    store: Store,
    clock: Clock,
}

/// Why the token service could not answer. A token that is simply not ours is no error: it is
/// `None` from [`TokenService::check`].
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot sign an access token: {0}")]
    Signing(jsonwebtoken::errors::Error),
}

impl From<diesel::result::Error> for TokenError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Store(err.into())
    }
}

/// A token just minted, with what the token response needs.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// What a token is minted from: the key it stands for.
pub struct TokenSubject<'a> {
    pub key_id: &'a str,
    pub owner_id: Option<&'a str>,
    pub key_expires_at: Option<NaiveDateTime>,
}

impl TokenService {
    pub fn new(
        store: Store,
        issuer: String,
        audience: String,
        ttl_seconds: i64,
        keyring: Keyring,
        denylist: Arc<Denylist>,
        clock: Clock,
    ) -> Self {
        Self {
            issuer,
            audience,
            ttl_seconds,
            keyring,
            denylist,
            store,
            clock,
        }
    }

    /// Signs a token for `subject` with `scopes`. It never outlives the key it was minted from.
    pub async fn mint(
        &self,
        subject: TokenSubject<'_>,
        scopes: &Scopes,
    ) -> Result<IssuedToken, TokenError> {
        let signer = self.keyring.signer().await?;
        let at = self.clock.now().and_utc().timestamp();
        let mut exp = at + self.ttl_seconds;
        if let Some(key_end) = subject.key_expires_at {
            exp = exp.min(key_end.and_utc().timestamp());
        }
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            sub: subject.owner_id.unwrap_or(subject.key_id).to_owned(),
            aud: self.audience.clone(),
            exp,
            iat: at,
            jti: new_id(),
            client_id: subject.key_id.to_owned(),
            scope: scope_param(scopes),
        };
        let mut header = Header::new(signer.algorithm.jose());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(signer.kid.clone());
        let access_token =
            jsonwebtoken::encode(&header, &claims, &signer.key).map_err(TokenError::Signing)?;
        Ok(IssuedToken {
            access_token,
            expires_in: exp - at,
            scope: claims.scope,
        })
    }

    /// The claims of a token this deployment signed with a published key, for this issuer and
    /// audience, typed `at+jwt`. Expiry is *not* checked here: callers report it as `EXPIRED`.
    /// Anything else (garbage, `alg: none`, unknown or wrong key, other issuer) is `None`.
    pub async fn check(&self, raw: &str) -> Result<Option<AccessTokenClaims>, StoreError> {
        let Ok(header) = jsonwebtoken::decode_header(raw) else {
            return Ok(None);
        };
        // RFC 9068 §4: `at+jwt`, or the full media type `application/at+jwt`.
        let typ = header.typ.as_deref().unwrap_or_default();
        let typ = typ
            .get(..12)
            .filter(|p| p.eq_ignore_ascii_case("application/"))
            .map_or(typ, |_| &typ[12..]);
        if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) {
            return Ok(None);
        }
        let Some(kid) = header.kid else {
            return Ok(None);
        };
        let Some(verifier) = self.keyring.verifier(&kid).await? else {
            return Ok(None);
        };
        // The algorithm comes from our record of the key, never from the token's header.
        let mut validation = Validation::new(verifier.algorithm.jose());
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        Ok(
            jsonwebtoken::decode::<AccessTokenClaims>(raw, &verifier.key, &validation)
                .ok()
                .map(|data| data.claims),
        )
    }

    /// Denies a token until it expires, on every node, recording who did it. Denying twice is
    /// harmless.
    pub async fn revoke(
        &self,
        audit: &AuditContext,
        tenant: &TenantId,
        claims: &AccessTokenClaims,
    ) -> Result<(), StoreError> {
        let row = RevokedTokenRow {
            jti: claims.jti.clone(),
            tenant_id: tenant.as_str().to_owned(),
            expires_at: expiry(claims),
        };
        let (jti, expires_at) = (row.jti.clone(), row.expires_at);
        let at = self.clock.now();
        let (audit, owner, client_id) = (audit.clone(), tenant.clone(), claims.client_id.clone());
        self.store
            .transaction(move |conn| {
                if !revoked_tokens::insert(conn, &row)? {
                    return Ok(());
                }
                audit.record(
                    conn,
                    &owner,
                    "token.revoke",
                    ("access_token", &row.jti),
                    serde_json::json!({
                        "client_id": client_id,
                        "expires_at": row.expires_at.and_utc(),
                    }),
                )?;
                // Entries of expired tokens are dead weight; sweep them on the (rare) write path.
                revoked_tokens::purge_expired(conn, at - TimeDelta::minutes(5))?;
                Ok::<_, StoreError>(())
            })
            .await?;
        self.denylist.added(tenant, &jti, expires_at).await;
        Ok(())
    }

    pub async fn is_revoked(&self, tenant: &TenantId, jti: &str) -> Result<bool, StoreError> {
        self.denylist.contains(tenant, jti).await
    }
}

/// A token's `exp` as a store timestamp.
pub fn expiry(claims: &AccessTokenClaims) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(claims.exp, 0)
        .unwrap_or_default()
        .naive_utc()
}
