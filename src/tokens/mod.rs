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
use crate::domain::token::{
    ACCESS_TOKEN_TYPE, AccessTokenClaims, default_audience, issuer_of, scope_param,
};
use crate::store::models::RevokedTokenRow;
use crate::store::{Store, StoreError, revoked_tokens};
use denylist::Denylist;
use signing::Keyring;

/// Issues and checks access tokens. Each tenant is its own issuer, below the deployment's public
/// URL, and signs with keys of its own.
pub struct TokenService {
    /// The deployment's public URL (no trailing slash).
    public_url: String,
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
    pub tenant: &'a TenantId,
    pub key_id: &'a str,
    pub keyspace_id: &'a str,
    /// The keyspace's own audience, if it sets one.
    pub audience: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    pub key_expires_at: Option<NaiveDateTime>,
}

impl TokenService {
    pub fn new(
        store: Store,
        public_url: String,
        ttl_seconds: i64,
        keyring: Keyring,
        denylist: Arc<Denylist>,
        clock: Clock,
    ) -> Self {
        Self {
            public_url,
            ttl_seconds,
            keyring,
            denylist,
            store,
            clock,
        }
    }

    /// The deployment's public URL, below which every tenant's issuer lives.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// `tenant`'s issuer: `{public_url}/oauth/{tenant_id}`.
    pub fn issuer(&self, tenant: &TenantId) -> String {
        issuer_of(&self.public_url, tenant)
    }

    /// The `aud` of tokens minted from a keyspace's keys.
    pub fn audience(&self, tenant: &TenantId, keyspace_id: &str, own: Option<&str>) -> String {
        own.map_or_else(
            || default_audience(&self.issuer(tenant), keyspace_id),
            str::to_owned,
        )
    }

    /// Signs a token for `subject` with `scopes`, with its tenant's key and as its tenant's
    /// issuer. It never outlives the key it was minted from.
    pub async fn mint(
        &self,
        subject: TokenSubject<'_>,
        scopes: &Scopes,
    ) -> Result<IssuedToken, TokenError> {
        let signer = self.keyring.signer(subject.tenant).await?;
        let at = self.clock.now().and_utc().timestamp();
        let mut exp = at + self.ttl_seconds;
        if let Some(key_end) = subject.key_expires_at {
            exp = exp.min(key_end.and_utc().timestamp());
        }
        let claims = AccessTokenClaims {
            iss: self.issuer(subject.tenant),
            sub: subject.owner_id.unwrap_or(subject.key_id).to_owned(),
            aud: self.audience(subject.tenant, subject.keyspace_id, subject.audience),
            exp,
            iat: at,
            jti: new_id(),
            client_id: subject.key_id.to_owned(),
            tenant_id: subject.tenant.as_str().to_owned(),
            keyspace_id: subject.keyspace_id.to_owned(),
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

    /// The claims of a token `tenant` issued: signed with a key `tenant` publishes, with
    /// `tenant`'s issuer and tenant claim, typed `at+jwt`. Expiry is *not* checked here: callers
    /// report it as `EXPIRED`. The audience is the one its keyspace had when it was minted (the
    /// resource server checks it is its own). Anything else (garbage, `alg: none`, unknown or
    /// wrong key, another tenant's token) is `None`.
    pub async fn check(
        &self,
        tenant: &TenantId,
        raw: &str,
    ) -> Result<Option<AccessTokenClaims>, StoreError> {
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
        let Some(verifier) = self.keyring.verifier(tenant, &kid).await? else {
            return Ok(None);
        };
        // The algorithm comes from our record of the key, never from the token's header.
        let mut validation = Validation::new(verifier.algorithm.jose());
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[self.issuer(tenant)]);
        validation.validate_aud = false;
        Ok(
            jsonwebtoken::decode::<AccessTokenClaims>(raw, &verifier.key, &validation)
                .ok()
                .map(|data| data.claims)
                .filter(|claims| claims.tenant_id == tenant.as_str()),
        )
    }

    /// The tenant and claims of `raw` if it is an access token some tenant of this deployment
    /// issued: the tenant its unverified `tenant_id` claim names, then [`Self::check`] with that
    /// tenant's keys, so a forged claim names nobody.
    pub async fn check_any(
        &self,
        raw: &str,
    ) -> Result<Option<(TenantId, AccessTokenClaims)>, StoreError> {
        let Some(tenant) = claimed_tenant(raw) else {
            return Ok(None);
        };
        Ok(self
            .check(&tenant, raw)
            .await?
            .map(|claims| (tenant, claims)))
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

/// The `tenant_id` a JWT claims, unverified: only which tenant's keys to check it with.
fn claimed_tenant(raw: &str) -> Option<TenantId> {
    use base64::Engine;
    #[derive(serde::Deserialize)]
    struct Claimed {
        tenant_id: String,
    }
    let payload = raw.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claimed: Claimed = serde_json::from_slice(&bytes).ok()?;
    TenantId::parse(&claimed.tenant_id)
}

/// A token's `exp` as a store timestamp.
pub fn expiry(claims: &AccessTokenClaims) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(claims.exp, 0)
        .unwrap_or_default()
        .naive_utc()
}
