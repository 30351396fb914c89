//! The query strings of `/v1/keys`, each turned once into the service's own filter or period;
//! the errors name the query's parameters.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::key_status::KeyStatus;
use crate::manage::keys::{KeyListFilter, UsagePeriod};
use crate::manage::{ManageError, PageRequest};

/// What a caller may ask to see in a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub keyspace_id: Option<String>,
    pub owner_id: Option<String>,
    pub status: Option<KeyStatus>,
    pub q: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl TryFrom<ListQuery> for (KeyListFilter, PageRequest) {
    type Error = ManageError;

    fn try_from(query: ListQuery) -> Result<Self, ManageError> {
        let ListQuery {
            keyspace_id,
            owner_id,
            status,
            q,
            limit,
            cursor,
        } = query;
        let page = PageRequest::parse(limit, cursor.as_deref())?;
        Ok((
            KeyListFilter::parse(keyspace_id, owner_id, status, q)?,
            page,
        ))
    }
}

/// `?since=&until=` of a usage query (default: the last 24 hours, at most 31 days).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl From<UsageQuery> for UsagePeriod {
    fn from(query: UsageQuery) -> Self {
        let UsageQuery { since, until } = query;
        Self { since, until }
    }
}

/// `DELETE /v1/keys/{id}` and `DELETE /v1/keyspaces/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Revoke live (active or disabled) keys first instead of refusing them (default false).
    pub force: Option<bool>,
}
