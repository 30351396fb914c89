//! The root-key extractor: a handler names the scope it needs in its signature
//! (`Authorized<KeysCreate>`) and never runs unless the caller holds it. Recognising the key is
//! the authenticator's job (`auth::root_key`); this is the HTTP side of it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::audit::{Actor, AuditContext};
use crate::auth::root_key::AuthError;
use crate::auth::throttle::Standing;
use crate::domain::ids::{RootKeyId, TenantId};
use crate::domain::scope::{Scope, Scopes};
use crate::error::ApiError;
use crate::routes::state::AppState;

/// A scope a route requires, as a type.
pub trait RequiredScope: 'static {
    const SCOPE: &'static str;
    /// [`Self::SCOPE`], parsed once.
    fn scope() -> &'static Scope;
}

macro_rules! scopes {
    ($($name:ident => $scope:literal),* $(,)?) => {
        $(
            #[doc = concat!("Requires `", $scope, "`.")]
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPE: &'static str = $scope;
                fn scope() -> &'static Scope {
                    static SCOPE: std::sync::LazyLock<Scope> = std::sync::LazyLock::new(|| {
                        Scope::parse($scope).expect("route scopes are valid literals")
                    });
                    &SCOPE
                }
            }
        )*
    };
}

scopes! {
    KeysCreate => "keys:create",
    KeysRead => "keys:read",
    KeysUpdate => "keys:update",
    KeysRotate => "keys:rotate",
    KeysRevoke => "keys:revoke",
    KeysVerify => "keys:verify",
    KeyspacesCreate => "keyspaces:create",
    KeyspacesRead => "keyspaces:read",
    KeyspacesUpdate => "keyspaces:update",
    KeyspacesDelete => "keyspaces:delete",
    AuditRead => "audit:read",
    RootKeysCreate => "root_keys:create",
    RootKeysRead => "root_keys:read",
    RootKeysRevoke => "root_keys:revoke",
    WebhooksRead => "webhooks:read",
    WebhooksWrite => "webhooks:write",
    RolesRead => "roles:read",
    RolesWrite => "roles:write",
}

/// Who is calling: an authenticated root key of one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub root_key_id: String,
    /// Shared with the cached record: authenticating does not copy the scope list.
    pub scopes: Arc<Scopes>,
    pub audit: AuditContext,
}

/// A caller proven to hold scope `S`.
pub struct Authorized<S> {
    pub caller: Caller,
    scope: PhantomData<S>,
}

impl<S> std::ops::Deref for Authorized<S> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<S: RequiredScope> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?
                .clone();
            let caller = authenticate(&req, &state).await?;
            if !caller.scopes.grants(S::scope()) {
                return Err(ApiError::insufficient_scope(S::SCOPE));
            }
            // Verification is the hot path and has its own per-key limits; everything else is
            // management and is throttled per root key. Its answer, whatever it is, tells the
            // caller where it stands (`RateLimit-Policy`, `RateLimit`: routes::semantics).
            if S::SCOPE != KeysVerify::SCOPE {
                let standing = state.management_throttle.check(&caller.root_key_id);
                req.extensions_mut().insert(ManagementQuota {
                    per_minute: state.management_throttle.per_minute_quota(),
                    standing,
                });
                if let Some(wait) = standing.retry_after {
                    return Err(ApiError::rate_limited(wait));
                }
            }
            Ok(Self {
                caller,
                scope: PhantomData,
            })
        })
    }
}

/// A management caller's standing against its root key's quota, for the answer's headers.
#[derive(Clone, Copy, Debug)]
pub struct ManagementQuota {
    pub per_minute: u32,
    pub standing: Standing,
}

/// A request carried more than one `Authorization` header.
#[derive(Debug)]
pub struct SeveralAuthorizations;

/// The request's `Authorization` header, if it has one. Two are refused, never resolved to the
/// first: a proxy and a client may each add one, and hops that pick differently would then
/// authenticate different callers.
pub fn authorization(
    req: &HttpRequest,
) -> Result<Option<&header::HeaderValue>, SeveralAuthorizations> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let first = values.next();
    match values.next() {
        Some(_) => Err(SeveralAuthorizations),
        None => Ok(first),
    }
}

/// The bearer token of a request, if it has exactly one `Authorization` header and that is one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = authorization(req).ok()??.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Resolves the root key in `Authorization: Bearer`. Every failure is the same 401, so the answer
/// does not tell a malformed key from a revoked one.
async fn authenticate(req: &HttpRequest, state: &web::Data<AppState>) -> Result<Caller, ApiError> {
    let token = bearer_token(req).ok_or_else(|| {
        ApiError::unauthorized("send a root key as `Authorization: Bearer <root key>`")
    })?;
    let record = state
        .root_keys
        .authenticate(token)
        .await
        .map_err(|err| match err {
            AuthError::Invalid => ApiError::invalid_token(err.to_string()),
            AuthError::Store(err) => ApiError::from(err),
        })?;
    Ok(Caller {
        tenant: TenantId::from_trusted(record.tenant_id.clone()),
        audit: crate::routes::audit_context(
            req,
            Actor::RootKey(RootKeyId::from_trusted(record.id.clone())),
        ),
        root_key_id: record.id.clone(),
        scopes: record.scopes.clone(),
    })
}
