//! The OAuth 2.0 endpoints: token (RFC 6749 §4.4), introspection (RFC 7662), revocation
//! (RFC 7009), and discovery (RFC 8414 metadata, RFC 7517 JWKS). Errors here are RFC 6749 §5.2
//! JSON bodies, which is what OAuth client libraries parse, not problem+json.

pub mod client;
pub mod discovery;
pub mod introspect;
pub mod revoke;
pub mod token;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use crate::domain::ids::TenantId;
use crate::error::{ApiError, Challenge};

/// Each tenant is its own issuer, `{public_url}/oauth/{tenant_id}`, with its own endpoints,
/// keys and metadata. The deployment-wide `/oauth/token`, `/oauth/introspect` and `/oauth/revoke`
/// are aliases that find the tenant from the credentials and answer as its own endpoint would.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path: another method is a 405 with `Allow`.
    cfg.service(web::resource("/oauth/token").post(token::token))
        .service(web::resource("/oauth/introspect").post(introspect::introspect))
        .service(web::resource("/oauth/revoke").post(revoke::revoke))
        .service(web::resource("/oauth/{tenant_id}/token").post(token::token))
        .service(web::resource("/oauth/{tenant_id}/introspect").post(introspect::introspect))
        .service(web::resource("/oauth/{tenant_id}/revoke").post(revoke::revoke))
        .service(web::resource("/oauth/{tenant_id}/jwks.json").get(discovery::jwks))
        .service(
            web::resource("/oauth/{tenant_id}/.well-known/oauth-authorization-server")
                .get(discovery::metadata),
        )
        .service(
            web::resource("/.well-known/oauth-authorization-server/oauth/{tenant_id}")
                .get(discovery::metadata),
        );
}

/// The tenant whose issuer a request's path names (`/oauth/{tenant_id}/…`). A malformed id is
/// simply not found; whether the tenant exists is for the endpoint to find out (a client of
/// another tenant is refused all the same).
pub struct Issuer {
    pub tenant: TenantId,
}

impl Issuer {
    /// The issuer the path names; `None` on a route without one (a deployment-wide alias).
    fn named_by(req: &HttpRequest) -> Option<Result<Self, OAuthError>> {
        let raw = req.match_info().get("tenant_id")?;
        Some(
            TenantId::parse(raw)
                .map(|tenant| Issuer { tenant })
                .ok_or_else(OAuthError::no_such_issuer),
        )
    }
}

impl actix_web::FromRequest for Issuer {
    type Error = OAuthError;
    type Future = std::future::Ready<Result<Self, OAuthError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let issuer = Issuer::named_by(req).unwrap_or_else(|| Err(OAuthError::no_such_issuer()));
        std::future::ready(issuer)
    }
}

/// Which issuer an endpoint answers for: the tenant its path names (`{issuer}/token`), or
/// `None` at a deployment-wide alias (`/oauth/token`), which finds the tenant from the
/// credentials and answers exactly as the tenant's own endpoint would.
pub struct Endpoint(pub Option<Issuer>);

impl actix_web::FromRequest for Endpoint {
    type Error = OAuthError;
    type Future = std::future::Ready<Result<Self, OAuthError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Issuer::named_by(req).transpose().map(Endpoint))
    }
}

/// An RFC 6749 §5.2 error answer.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    /// The registered error code (`invalid_request`, `invalid_client`, ...).
    pub error: &'static str,
    pub description: String,
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401, or of a 403 to a bearer.
    challenge: Challenges,
    /// Logged, never sent.
    source: Option<Box<ApiError>>,
}

/// Which scheme a refusal challenges: HTTP Basic for client credentials (RFC 6749 §5.2), the
/// RFC 6750 bearer challenge for a bearer credential, or both when none was sent at an endpoint
/// that takes either (introspection).
#[derive(Clone, Copy, Debug)]
enum Challenges {
    Basic,
    Bearer(Challenge),
    BasicOrBearer,
}

const BASIC_CHALLENGE: &str = "Basic realm=\"latchkey\", charset=\"UTF-8\"";

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
            challenge: Challenges::Basic,
            source: None,
        }
    }

    /// No credential at all, at an endpoint that takes client credentials or a bearer.
    pub fn no_credentials(description: impl Into<String>) -> Self {
        let mut err = Self::invalid_client(description);
        err.challenge = Challenges::BasicOrBearer;
        err
    }

    /// A bearer credential that is not valid: 401 `invalid_token` (RFC 6750 §3.1), in the
    /// challenge and the body.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let challenge = Challenge::InvalidToken;
        Self::new(
            StatusCode::UNAUTHORIZED,
            challenge.error_code(),
            description,
        )
        .challenging_bearer(challenge)
    }

    /// This refusal of a bearer credential carries the RFC 6750 challenge.
    pub fn challenging_bearer(mut self, challenge: Challenge) -> Self {
        self.challenge = Challenges::Bearer(challenge);
        self
    }

    /// An authenticated root key that lacks `scope`: 403 `insufficient_scope`.
    pub fn insufficient_scope(scope: &'static str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Challenge::InsufficientScope(scope).error_code(),
            format!("this root key lacks the `{scope}` scope"),
        )
    }

    /// The path names no tenant's issuer.
    pub fn no_such_issuer() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "there is no issuer at this address",
        )
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// Client authentication failed: always 401 with `WWW-Authenticate` (RFC 6749 §5.2).
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    /// The one answer to an unknown client id, a wrong secret and a client of another issuer.
    pub fn unknown_client() -> Self {
        Self::invalid_client("unknown client or wrong client secret")
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub fn unsupported_token_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            description,
        )
    }

    /// The body is over `LATCHKEY_MAX_BODY_BYTES`.
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        )
    }

    /// The client's key is over its rate limit: retry later.
    pub fn slow_down(retry_after: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            format!("this key's rate limit is exhausted; retry in {retry_after} s"),
        );
        err.retry_after = Some(retry_after);
        err
    }
}

impl From<ApiError> for OAuthError {
    fn from(err: ApiError) -> Self {
        let mut out = if err.status == StatusCode::SERVICE_UNAVAILABLE {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the key store is unavailable; retry shortly",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "an unexpected error occurred; the request id identifies it in the server log",
            )
        };
        out.retry_after = err.retry_after;
        out.source = Some(Box::new(err));
        out
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<crate::manage::ManageError> for OAuthError {
    fn from(err: crate::manage::ManageError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<crate::tokens::TokenError> for OAuthError {
    fn from(err: crate::tokens::TokenError) -> Self {
        ApiError::from(err).into()
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            tracing::error!(error = %self, "oauth request failed");
        }
        let mut response = crate::routes::no_store(HttpResponse::build(self.status));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        let challenges = match self.challenge {
            Challenges::Bearer(challenge) => vec![Challenge::header(Some(challenge))],
            _ if self.status != StatusCode::UNAUTHORIZED => vec![],
            Challenges::Basic => vec![BASIC_CHALLENGE.to_owned()],
            Challenges::BasicOrBearer => vec![BASIC_CHALLENGE.to_owned(), Challenge::header(None)],
        };
        for challenge in challenges {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.append_header((header::WWW_AUTHENTICATE, value));
            }
        }
        response.json(ErrorBody {
            error: self.error,
            error_description: &self.description,
        })
    }
}

/// The parameters the OAuth endpoints read.
const PARAMETERS: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
];

/// The parameters of a form-encoded OAuth request. RFC 6749 §3.1/§3.2: a parameter sent more
/// than once is an error, and one sent empty counts as absent.
pub struct OAuthForm(HashMap<String, String>);

impl OAuthForm {
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
            .unwrap_or(false);
        if !form_type {
            return Err(OAuthError::invalid_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("the form body could not be read"))?;
        let mut params = HashMap::new();
        for (name, value) in pairs {
            if value.is_empty() {
                continue;
            }
            if params.insert(name.clone(), value).is_some() {
                // Named only if it is one of ours: any other name is whatever the client wrote.
                return Err(OAuthError::invalid_request(
                    match PARAMETERS.iter().find(|known| **known == name) {
                        Some(known) => format!("parameter `{known}` is repeated"),
                        None => "a parameter is repeated".to_owned(),
                    },
                ));
            }
        }
        Ok(Self(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }
}
