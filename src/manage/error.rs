//! How a management operation fails. The HTTP edge turns each into problem+json; the dashboard
//! into words beside the field.

use crate::domain::error_code::ErrorCode;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// A field of the request is not acceptable; `field` is named as the caller sent it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Nothing of this kind with that id in the tenant (also for malformed ids).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not do this, whatever its input.
    #[error("{0}")]
    Forbidden(String),
    /// The request is well formed but refused, for a reason with its own stable code.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// Too many attempts: the caller may try again after `retry_after` seconds.
    #[error("too many attempts; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant (say, a malformed stored value): never the caller's fault.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl ManageError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    /// Whether the caller can fix this by asking differently (as opposed to a failure of ours).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Internal(_))
    }
}

impl From<diesel::result::Error> for ManageError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Store(err.into())
    }
}

impl From<crate::domain::commands::Invalid> for ManageError {
    fn from(err: crate::domain::commands::Invalid) -> Self {
        Self::invalid(err.field, err.message)
    }
}
