//! The outcome codes of a verification (DESIGN §5), in the order their checks run.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The outcome codes, stable for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyCode {
    Valid,
    NotFound,
    Revoked,
    Disabled,
    Expired,
    IpNotAllowed,
    InsufficientScope,
    RateLimited,
    UsageExceeded,
}

impl VerifyCode {
    /// Every code, in declaration order (`code as usize` indexes it).
    pub const ALL: [VerifyCode; 9] = [
        Self::Valid,
        Self::NotFound,
        Self::Revoked,
        Self::Disabled,
        Self::Expired,
        Self::IpNotAllowed,
        Self::InsufficientScope,
        Self::RateLimited,
        Self::UsageExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::NotFound => "NOT_FOUND",
            Self::Revoked => "REVOKED",
            Self::Disabled => "DISABLED",
            Self::Expired => "EXPIRED",
            Self::IpNotAllowed => "IP_NOT_ALLOWED",
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::RateLimited => "RATE_LIMITED",
            Self::UsageExceeded => "USAGE_EXCEEDED",
        }
    }
}
