//! Client authentication. At the token and revocation endpoints the client is an API key:
//! `client_id` is the key id, `client_secret` the API key. At introspection it is a resource
//! server's root key: `client_id` is the root key's id, `client_secret` the root key, or the root
//! key alone as `Authorization: Bearer`. Client credentials go by HTTP Basic (RFC 6749 §2.3.1,
//! the default) or in the form (`client_secret_post`), never both.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};

use super::{Issuer, OAuthError, OAuthForm};
use crate::auth::root_key::AuthError;
use crate::domain::ids::TenantId;
use crate::error::Challenge;
use crate::routes::extractor::{KeysVerify, RequiredScope, bearer_token};
use crate::routes::state::AppState;
use crate::verify::KeyRecord;

/// What a client presented.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: SecretString,
}

/// Reads the client's credentials from `Authorization: Basic` or the form.
pub fn credentials(
    req: &HttpRequest,
    form: &mut OAuthForm,
) -> Result<ClientCredentials, OAuthError> {
    let form_id = form.take("client_id");
    let form_secret = form.take("client_secret").map(SecretString::from);
    let authorization = crate::routes::extractor::authorization(req)
        .map_err(|_| OAuthError::invalid_request("send one Authorization header, not several"))?;
    if let Some(value) = authorization {
        let malformed = || OAuthError::invalid_client("the Basic credentials are malformed");
        let value = value.to_str().map_err(|_| malformed())?;
        let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_client(
                "authenticate with HTTP Basic (client_id:client_secret) or client_secret_post",
            ));
        }
        if form_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not Basic and client_secret both",
            ));
        }
        let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before joining.
        let id = url_decode(id).ok_or_else(malformed)?;
        let secret = SecretString::from(url_decode(secret).ok_or_else(malformed)?);
        if form_id.as_ref().is_some_and(|f| *f != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the authenticated client",
            ));
        }
        return Ok(ClientCredentials {
            client_id: id,
            secret,
        });
    }
    match (form_id, form_secret) {
        (Some(client_id), Some(secret)) => Ok(ClientCredentials { client_id, secret }),
        _ => Err(OAuthError::invalid_client(
            "client authentication is required: client_id (the key id) and client_secret (the \
             API key), by HTTP Basic or in the form",
        )),
    }
}

fn url_decode(raw: &str) -> Option<String> {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The key whose id and value the client presented, whatever its state; the caller decides
/// what that state allows. Unknown id, wrong secret, a secret of another key and, at a tenant's
/// own endpoint, a key of another tenant are all the same `invalid_client`.
pub async fn authenticate(
    state: &AppState,
    issuer: Option<&Issuer>,
    credentials: &ClientCredentials,
) -> Result<Arc<KeyRecord>, OAuthError> {
    let invalid = OAuthError::unknown_client;
    let tenant = issuer.map(|issuer| &issuer.tenant);
    let secret = credentials.secret.expose_secret();
    let key = state
        .verifier
        .resolve_client(tenant, &credentials.client_id, secret)
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(invalid)?;
    if key.id != credentials.client_id
        || issuer.is_some_and(|issuer| key.tenant_id != issuer.tenant.as_str())
    {
        return Err(invalid());
    }
    Ok(key)
}

/// A resource server at introspection: the tenant of its root key, which holds `keys:verify`.
/// The root key comes as `Authorization: Bearer`, or as client credentials (its id and the key)
/// by Basic or in the form, as OAuth libraries send them by default. Refusals answer in the
/// scheme the credential came in: RFC 6750 for a bearer, `invalid_client` for client
/// credentials. At a tenant's own endpoint, another tenant's root key is refused as unknown.
pub async fn resource_server(
    state: &AppState,
    issuer: Option<&Issuer>,
    req: &HttpRequest,
    form: &mut OAuthForm,
) -> Result<TenantId, OAuthError> {
    let presented = RootKeyPresented::read(req, form)?;
    let record = match state.root_keys.authenticate(presented.secret()).await {
        Ok(record) => record,
        Err(AuthError::Invalid) => return Err(presented.refused()),
        Err(AuthError::Store(err)) => return Err(err.into()),
    };
    let tenant = TenantId::from_trusted(record.tenant_id.clone());
    if !presented.names(&record.id) || issuer.is_some_and(|issuer| issuer.tenant != tenant) {
        return Err(presented.refused());
    }
    if !record.scopes.grants(KeysVerify::scope()) {
        return Err(presented.lacks(KeysVerify::SCOPE));
    }
    Ok(tenant)
}

/// How a resource server presented its root key.
enum RootKeyPresented {
    Bearer(SecretString),
    /// `client_id` must be the root key's id.
    Client(ClientCredentials),
}

impl RootKeyPresented {
    fn read(req: &HttpRequest, form: &mut OAuthForm) -> Result<Self, OAuthError> {
        let in_form = form.get("client_secret").is_some();
        if let Some(token) = bearer_token(req) {
            if in_form {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not a bearer and client_secret both",
                ));
            }
            return Ok(Self::Bearer(SecretString::from(token)));
        }
        if req.headers().get(AUTHORIZATION).is_none() && !in_form {
            return Err(OAuthError::no_credentials(
                "authenticate with a root key holding `keys:verify`: as client credentials \
                 (client_id the root key's id, client_secret the root key) by HTTP Basic or in \
                 the form, or as `Authorization: Bearer <root key>`",
            ));
        }
        credentials(req, form).map(Self::Client)
    }

    fn secret(&self) -> &str {
        match self {
            Self::Bearer(secret) => secret.expose_secret(),
            Self::Client(credentials) => credentials.secret.expose_secret(),
        }
    }

    /// Whether the credentials name the root key their secret is (a bearer names none).
    fn names(&self, root_key_id: &str) -> bool {
        match self {
            Self::Bearer(_) => true,
            Self::Client(credentials) => credentials.client_id == root_key_id,
        }
    }

    /// Unknown, revoked or expired, of another client id, or of another issuer's tenant.
    fn refused(&self) -> OAuthError {
        match self {
            Self::Bearer(_) => OAuthError::invalid_token(AuthError::Invalid.to_string()),
            Self::Client(_) => OAuthError::unknown_client(),
        }
    }

    fn lacks(&self, scope: &'static str) -> OAuthError {
        let err = OAuthError::insufficient_scope(scope);
        match self {
            Self::Bearer(_) => err.challenging_bearer(Challenge::InsufficientScope(scope)),
            Self::Client(_) => err,
        }
    }
}
