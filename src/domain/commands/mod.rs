//! Validated commands: what a request asks the services to do, built once at the edge from a
//! JSON body or a dashboard form (each naming its own fields in errors) and valid from then on.

mod key;
mod key_role;
mod keyspace;
mod root_key;
mod webhook;

pub use key::{KeyChanges, MAX_BULK, NewKey, RevokeSelection};
pub use key_role::{KeyRoleChanges, NewKeyRole};
pub use keyspace::{Environment, KeyspaceChanges, NewKeyspace, default_ttl};
pub use root_key::NewRootKey;
pub use webhook::{
    DEFAULT_SECRET_OVERLAP_SECONDS, MAX_SECRET_OVERLAP_SECONDS, NewWebhookEndpoint,
    WebhookEndpointEdit, parse_description,
};

use std::fmt::Display;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use super::inputs::MAX_TTL_SECONDS;

/// A field that failed validation, named as the body or form that carried it names it; the
/// message never repeats the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Names the field a parser's complaint is about.
pub trait ForField<T> {
    fn for_field(self, field: &'static str) -> Result<T, Invalid>;
}

impl<T, E: Display> ForField<T> for Result<T, E> {
    fn for_field(self, field: &'static str) -> Result<T, Invalid> {
        self.map_err(|e| Invalid::new(field, e.to_string()))
    }
}

/// Parses a field that may be absent.
pub fn optional<T, U, E: Display>(
    field: &'static str,
    value: Option<T>,
    parse: impl FnOnce(T) -> Result<U, E>,
) -> Result<Option<U>, Invalid> {
    value.map(parse).transpose().for_field(field)
}

/// Parses a field of a change: absent (leave it), `null` (clear it) or a new value.
pub fn patch<T, U, E: Display>(
    field: &'static str,
    value: Option<Option<T>>,
    parse: impl FnOnce(T) -> Result<U, E>,
) -> Result<Option<Option<U>>, Invalid> {
    value
        .map(|set| set.map(parse).transpose())
        .transpose()
        .for_field(field)
}

/// When a new credential stops working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// At this moment; it must still be ahead when the credential is made.
    At(DateTime<Utc>),
    /// This long after it is made (1 s to ten years).
    After(TimeDelta),
}

impl Expiry {
    /// The API's pair of fields: `expires_at` or `ttl_seconds`, not both; neither is `None`.
    pub fn from_fields(
        expires_at: Option<DateTime<Utc>>,
        ttl_seconds: Option<i64>,
    ) -> Result<Option<Self>, Invalid> {
        match (expires_at, ttl_seconds) {
            (Some(_), Some(_)) => Err(Invalid::new(
                "expires_at",
                "give expires_at or ttl_seconds, not both",
            )),
            (Some(at), None) => Ok(Some(Self::At(at))),
            (None, Some(ttl)) => Self::after_seconds(ttl).map(Some).for_field("ttl_seconds"),
            (None, None) => Ok(None),
        }
    }

    /// A lifetime in seconds.
    pub fn after_seconds(seconds: i64) -> Result<Self, String> {
        if !(1..=MAX_TTL_SECONDS).contains(&seconds) {
            return Err(format!("must be between 1 and {MAX_TTL_SECONDS}"));
        }
        Ok(Self::After(TimeDelta::seconds(seconds)))
    }

    /// The moment, for a credential made `now`. An absolute time must lie ahead, within ten
    /// years (`field` names it).
    pub fn from(self, now: NaiveDateTime, field: &'static str) -> Result<NaiveDateTime, Invalid> {
        match self {
            Self::After(ttl) => Ok(now + ttl),
            Self::At(at) => {
                let at = at.naive_utc();
                if at <= now {
                    return Err(Invalid::new(field, "must be in the future"));
                }
                if at > now + TimeDelta::seconds(MAX_TTL_SECONDS) {
                    return Err(Invalid::new(field, "must be within ten years"));
                }
                Ok(at)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_a_time_ahead_or_a_lifetime_but_not_both() {
        let now = DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        let soon = DateTime::from_timestamp(1_700_000_060, 0).unwrap();
        let past = DateTime::from_timestamp(1_699_999_999, 0).unwrap();
        assert_eq!(
            Expiry::from_fields(Some(soon), Some(5)).unwrap_err().field,
            "expires_at"
        );
        assert_eq!(
            Expiry::from_fields(None, Some(0)).unwrap_err().field,
            "ttl_seconds"
        );
        assert_eq!(Expiry::from_fields(None, None), Ok(None));
        let after = Expiry::from_fields(None, Some(60)).unwrap().unwrap();
        assert_eq!(after.from(now, "expires_at"), Ok(soon.naive_utc()));
        assert_eq!(
            Expiry::At(soon).from(now, "expires_at"),
            Ok(soon.naive_utc())
        );
        let refused = Expiry::At(past).from(now, "expires_at").unwrap_err();
        assert_eq!(refused.message, "must be in the future");
    }
}
