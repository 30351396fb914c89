//! A key's state, and the one rule that derives it: revoked, then disabled, then expired (the
//! order verification checks them in, DESIGN §5).

use chrono::NaiveDateTime;

use super::verify_code::VerifyCode;

/// A key's state, in the order verification checks it: revoked, then disabled, then expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Revoked,
    Expired,
    Disabled,
}

impl KeyStatus {
    /// Every state, in declaration order.
    pub const ALL: [Self; 4] = [Self::Active, Self::Revoked, Self::Expired, Self::Disabled];

    /// The state of a key with these facts, as of `at`.
    pub fn of(
        revoked: bool,
        enabled: bool,
        expires_at: Option<NaiveDateTime>,
        at: NaiveDateTime,
    ) -> Self {
        if revoked {
            Self::Revoked
        } else if !enabled {
            Self::Disabled
        } else if expires_at.is_some_and(|end| end <= at) {
            Self::Expired
        } else {
            Self::Active
        }
    }

    /// The verify code that refuses a key in this state; `None` for an active key.
    pub fn refusal(self) -> Option<VerifyCode> {
        match self {
            Self::Active => None,
            Self::Revoked => Some(VerifyCode::Revoked),
            Self::Disabled => Some(VerifyCode::Disabled),
            Self::Expired => Some(VerifyCode::Expired),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn all_lists_every_state_in_order() {
        for (index, status) in KeyStatus::ALL.into_iter().enumerate() {
            assert_eq!(status as usize, index);
            // A new state breaks this match: list it in ALL too.
            match status {
                KeyStatus::Active
                | KeyStatus::Revoked
                | KeyStatus::Expired
                | KeyStatus::Disabled => {}
            }
        }
    }

    #[test]
    fn revoked_then_disabled_then_expired() {
        let at = crate::domain::time::system_now();
        let past = Some(at - TimeDelta::seconds(1));
        let cases = [
            ((true, false, past), KeyStatus::Revoked),
            ((false, false, past), KeyStatus::Disabled),
            ((false, true, past), KeyStatus::Expired),
            ((false, true, Some(at)), KeyStatus::Expired),
            (
                (false, true, Some(at + TimeDelta::seconds(1))),
                KeyStatus::Active,
            ),
            ((false, true, None), KeyStatus::Active),
        ];
        for ((revoked, enabled, expires_at), expected) in cases {
            let status = KeyStatus::of(revoked, enabled, expires_at, at);
            assert_eq!(status, expected, "{revoked} {enabled} {expires_at:?}");
            assert_eq!(status.refusal().is_none(), status == KeyStatus::Active);
        }
    }
}
