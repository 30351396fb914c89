//! The outcome codes of a verification (DESIGN §5), in the order their checks run.

use serde::{Deserialize, Serialize};

/// The outcome codes, stable for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_code_in_order_under_its_wire_name() {
        for (index, code) in VerifyCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, index);
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            // A new code breaks this match: list it in ALL too.
            match code {
                VerifyCode::Valid
                | VerifyCode::NotFound
                | VerifyCode::Revoked
                | VerifyCode::Disabled
                | VerifyCode::Expired
                | VerifyCode::IpNotAllowed
                | VerifyCode::InsufficientScope
                | VerifyCode::RateLimited
                | VerifyCode::UsageExceeded => {}
            }
        }
    }
}
