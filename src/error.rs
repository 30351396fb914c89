//! API errors as RFC 9457 `application/problem+json` with a stable machine-readable `code`.
//!
//! Client mistakes carry a human message; unexpected failures answer a generic 500 with the
//! request id, and their cause chain goes to the log only.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use std::sync::Arc;

use serde::Serialize;

use crate::domain::error_code::ErrorCode;
use crate::manage::ManageError;
use crate::store::StoreError;

tokio::task_local! {
    /// The page documenting the error codes, `{public_url}/docs/errors`, for the request being
    /// answered (set by `routes::semantics`).
    static ERROR_PAGE: Arc<str>;
}

/// Runs `work` with `page` as the base of its problems' `type`.
pub async fn with_error_page<F: std::future::Future>(page: Arc<str>, work: F) -> F::Output {
    ERROR_PAGE.scope(page, work).await
}

/// [`with_error_page`] for synchronous work.
pub fn with_error_page_sync<R>(page: Arc<str>, work: impl FnOnce() -> R) -> R {
    ERROR_PAGE.sync_scope(page, work)
}

/// A problem's `type`: the anchor of its code on the error page; `about:blank` outside a
/// request (RFC 9457 §4.2.1).
fn problem_type(code: ErrorCode) -> String {
    ERROR_PAGE
        .try_with(|page| format!("{page}#{code}"))
        .unwrap_or_else(|_| "about:blank".to_owned())
}

/// One error answer. Construct with the helpers below so codes stay consistent.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Field-level problems for validation errors: `(field, message)`.
    pub fields: Vec<(String, String)>,
    /// Seconds to put in `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750 §3).
    challenge: Option<Challenge>,
    /// Logged, never sent.
    source: Option<anyhow::Error>,
}

/// The error body, for the API description (RFC 9457 problem details).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem, example = json!({"type": "https://keys.example/docs/errors#not_found",
    "title": "Not Found", "status": 404, "detail": "key not found", "code": "not_found",
    "request_id": "0b9e0d5e-8d1c-4a59-9a57-0c3f6d0e2b11"}))]
pub struct ProblemDoc {
    /// The page that documents `code`: `{public_url}/docs/errors#{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for people; never the value that was sent.
    pub detail: String,
    /// Stable, machine-readable error code.
    #[schema(value_type = ErrorCode)]
    pub code: String,
    /// Finds the request in the server's log (also the `X-Request-Id` header); left out, never
    /// `null`, on the rare answer given outside a request's span.
    #[schema(format = Uuid, nullable = false)]
    pub request_id: Option<String>,
    /// Field-level problems of a validation failure.
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldProblemDoc>>,
}

/// One field at fault.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = FieldProblem)]
pub struct FieldProblemDoc {
    /// The field's name (`query` for a query string that names none of ours).
    pub field: String,
    pub message: String,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldProblem<'a>>,
}

#[derive(Serialize)]
struct FieldProblem<'a> {
    field: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
            challenge: None,
            source: None,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A request body or query that failed validation, naming the field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            format!("{field}: {message}"),
        );
        err.fields.push((field, message));
        err
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    /// A bearer credential was sent and is not valid: RFC 6750 §3.1 `invalid_token`.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        let mut err = Self::unauthorized(message);
        err.challenge = Some(Challenge::InvalidToken);
        err
    }

    /// A valid root key without `scope`: RFC 6750 §3.1 `insufficient_scope`, naming it.
    pub fn insufficient_scope(scope: &'static str) -> Self {
        let mut err = Self::forbidden(format!("this root key lacks the `{scope}` scope"));
        err.challenge = Some(Challenge::InsufficientScope(scope));
        err
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("too many requests; retry in {retry_after} s"),
        );
        err.retry_after = Some(retry_after);
        err
    }

    pub fn unavailable(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        err.retry_after = Some(1);
        err
    }

    /// An unexpected failure: the caller sees a generic message, the log gets the cause.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "an unexpected error occurred; the request id identifies it in the server log",
        );
        err.source = Some(source.into());
        err
    }
}

/// Why a bearer credential was refused (RFC 6750 §3.1 error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    InvalidToken,
    /// The scope the operation needs: a route's literal, never client input.
    InsufficientScope(&'static str),
}

impl Challenge {
    /// The `WWW-Authenticate` value. A request with no credential gets the bare challenge
    /// (§3: no error code when the request lacked authentication).
    pub fn header(challenge: Option<Self>) -> String {
        const BARE: &str = "Bearer realm=\"latchkey\"";
        match challenge {
            None => BARE.to_owned(),
            Some(challenge @ Self::InvalidToken) => {
                format!("{BARE}, error=\"{}\"", challenge.error_code())
            }
            Some(challenge @ Self::InsufficientScope(scope)) => {
                format!(
                    "{BARE}, error=\"{}\", scope=\"{scope}\"",
                    challenge.error_code()
                )
            }
        }
    }

    /// The RFC 6750 error code, as OAuth error bodies name it too.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(source) = &self.source {
            write!(f, ": {source:#}")?;
        }
        Ok(())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Down => {
                // Known to be down (`Down`): the store's breaker logged it once, when it opened.
                if let StoreError::Unavailable(_) = err {
                    tracing::error!(error = %err, "store unavailable");
                }
                Self::unavailable(
                    ErrorCode::StoreUnavailable,
                    "the key store is unavailable; retry shortly",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(err: ManageError) -> Self {
        match err {
            ManageError::Invalid { field, message } => Self::invalid_field(field, message),
            ManageError::NotFound(what) => Self::not_found(what),
            ManageError::Forbidden(message) => Self::forbidden(message),
            ManageError::Refused { code, message } => {
                Self::new(refusal_status(code), code, message)
            }
            ManageError::Throttled { retry_after } => Self::rate_limited(retry_after),
            ManageError::Store(err) => err.into(),
            ManageError::Internal(err) => Self::internal(err),
        }
    }
}

impl From<crate::domain::commands::Invalid> for ApiError {
    fn from(err: crate::domain::commands::Invalid) -> Self {
        Self::invalid_field(err.field, err.message)
    }
}

/// The status of a service's refusal: 409 when the state of things is in the way, 422 when the
/// request contradicts an earlier one, 400 when it is malformed.
fn refusal_status(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::IdempotencyConflict
        | C::ImportConflict
        | C::KeyActive
        | C::PrefixTaken
        | C::KeyExpired
        | C::KeyAlreadyRotated
        | C::KeyRevoked
        | C::KeyRevokedReuseDetected
        | C::LastRootAdminKey
        | C::LastOwner
        | C::AlreadyMember
        | C::EmailTaken
        | C::TooManyWebhookEndpoints
        | C::RoleNameTaken
        | C::RoleInUse
        | C::TooManyRoles => StatusCode::CONFLICT,
        C::IdempotencyKeyReused | C::ValidationFailed | C::InvalidBody => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        C::Unauthorized => StatusCode::UNAUTHORIZED,
        C::Forbidden => StatusCode::FORBIDDEN,
        C::NotFound => StatusCode::NOT_FOUND,
        C::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        C::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        C::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        C::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        C::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        C::InvalidJson | C::InvalidIdempotencyKey | C::InvalidSelector | C::TooManyTokens => {
            StatusCode::BAD_REQUEST
        }
    }
}

impl From<crate::tokens::TokenError> for ApiError {
    fn from(err: crate::tokens::TokenError) -> Self {
        match err {
            crate::tokens::TokenError::Store(err) => err.into(),
            signing => Self::internal(signing),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        Self::from(StoreError::from(err))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = crate::telemetry::current_request_id();
        if self.status.is_server_error() {
            tracing::error!(code = self.code.as_str(), error = %self, "request failed");
        }
        let problem = Problem {
            kind: problem_type(self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.message,
            code: self.code.as_str(),
            request_id,
            errors: self
                .fields
                .iter()
                .map(|(field, message)| FieldProblem { field, message })
                .collect(),
        };
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED || self.challenge.is_some() {
            response.insert_header((header::WWW_AUTHENTICATE, Challenge::header(self.challenge)));
        }
        response.body(serde_json::to_string(&problem).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::{ErrorCode, refusal_status};

    /// docs/ERRORS.md, the page every problem's `type` points at, has an anchor and a heading
    /// for each code, with the status the code is sent with; and nothing else.
    #[test]
    fn the_error_page_documents_every_code_with_its_status() {
        let page = include_str!("../docs/ERRORS.md");
        for code in ErrorCode::ALL {
            let anchor = format!("<a id=\"{code}\"></a>\n## `{code}` (");
            let at = page
                .find(&anchor)
                .unwrap_or_else(|| panic!("docs/ERRORS.md has no section for {code}"));
            let heading = &page[at + anchor.len()..];
            let status = refusal_status(*code).as_u16().to_string();
            assert!(heading.starts_with(&status), "{code}: {status}");
        }
        assert_eq!(page.matches("<a id=").count(), ErrorCode::ALL.len());
    }
}
