//! Commands on keyspaces: create one, change its defaults.

use serde::{Deserialize, Serialize};

use crate::domain::inputs::{MAX_TTL_SECONDS, RateLimit};
use crate::domain::key::KeyPrefix;
use crate::domain::scope::Scopes;
use crate::domain::token::TokenAudience;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Live,
    Test,
}

impl Environment {
    /// Every environment, in declaration order.
    pub const ALL: [Self; 2] = [Self::Live, Self::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        if text == "test" {
            Self::Test
        } else {
            Self::Live
        }
    }
}

#[derive(Debug)]
pub struct NewKeyspace {
    pub name: String,
    pub prefix: KeyPrefix,
    pub environment: Environment,
    /// Lifetime of its keys when they are made without one, in seconds.
    pub default_ttl_seconds: Option<i64>,
    pub default_scopes: Scopes,
    pub default_ratelimit: Option<RateLimit>,
    pub token_exchange_enabled: bool,
    /// The `aud` of its keys' access tokens; `None`: `{issuer}/keyspaces/{id}`.
    pub token_audience: Option<TokenAudience>,
}

/// Changes to a keyspace; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct KeyspaceChanges {
    pub name: Option<String>,
    pub default_ttl_seconds: Option<Option<i64>>,
    pub default_scopes: Option<Scopes>,
    pub default_ratelimit: Option<Option<RateLimit>>,
    pub token_exchange_enabled: Option<bool>,
    pub token_audience: Option<Option<TokenAudience>>,
}

/// A default key lifetime: 1 s to ten years.
pub fn default_ttl(seconds: i64) -> Result<i64, String> {
    if (1..=MAX_TTL_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("must be between 1 and {MAX_TTL_SECONDS}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_environment_in_order_under_its_stored_name() {
        for (index, environment) in Environment::ALL.into_iter().enumerate() {
            assert_eq!(environment as usize, index);
            assert_eq!(Environment::from_stored(environment.as_str()), environment);
            assert_eq!(
                serde_json::to_value(environment).unwrap(),
                environment.as_str()
            );
            // A new environment breaks this match: list it in ALL too.
            match environment {
                Environment::Live | Environment::Test => {}
            }
        }
    }
}
