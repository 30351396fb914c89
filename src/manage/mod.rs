//! The key lifecycle as operations shared by the REST API and the dashboard: each takes a valid
//! command (see `domain::commands`), checks what needs the store, works inside one transaction
//! that records its audit event and its after-commit event, and dispatches that after commit.

pub mod accounts;
pub mod audit;
mod error;
pub mod invitations;
pub mod key_roles;
pub mod keys;
pub mod keyspaces;
pub mod leaks;
pub mod members;
pub mod retention;
pub mod root_keys;
pub mod tenants;
pub mod webhooks;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use error::ManageError;

use crate::domain::ids::{PublicId, TenantId};
use crate::domain::key::KeyHasher;
use crate::domain::time::Clock;
use crate::events::Dispatcher;
use crate::store::{DbConnection, Store, StoreError};

/// What the management operations work with: the store, the key hasher (to make and recognise
/// keys), the dispatcher of after-commit events, and the clock.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub store: &'a Store,
    pub hasher: &'a KeyHasher,
    pub events: &'a Dispatcher,
    pub clock: &'a Clock,
}

/// Page size when none is asked for, and the most one page may hold.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

/// One page of a list, newest first; `next_cursor` fetches the next one.
#[derive(Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// To get the next page (`PageRequest::parse` reads it back); absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The one page of a list that matches nothing.
    pub fn empty() -> Self {
        Self {
            data: Vec::new(),
            next_cursor: None,
        }
    }
}

/// A validated page request.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub limit: i64,
    /// Only items with an id below this one (the previous page's last id).
    pub before: Option<String>,
}

impl PageRequest {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, ManageError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ManageError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let before = match cursor {
            None | Some("") => None,
            Some(cursor) => Some(
                URL_SAFE_NO_PAD
                    .decode(cursor)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|id| crate::domain::ids::parse_id(&id))
                    .ok_or_else(|| {
                        ManageError::invalid("cursor", "is not a cursor from this API")
                    })?,
            ),
        };
        Ok(Self { limit, before })
    }

    /// Asks the store for one row more than the page holds, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts the fetched rows to a page and computes the cursor.
    pub fn page<R, T>(
        &self,
        mut rows: Vec<R>,
        id: impl Fn(&R) -> &str,
        view: impl Fn(R) -> T,
    ) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| URL_SAFE_NO_PAD.encode(id(r)))
        } else {
            None
        };
        Page {
            data: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

/// A store query for one page of a tenant's rows: `(conn, tenant, before, limit)`.
pub(crate) type ListQuery<R> =
    fn(&mut DbConnection, &TenantId, Option<&str>, i64) -> Result<Vec<R>, StoreError>;

/// Reads one page of a tenant's rows, newest first, with `list(conn, tenant, before, limit)`;
/// `id` is the row's id, for the cursor.
pub(crate) async fn list_page<R: Send + 'static>(
    cx: &Context<'_>,
    tenant: &TenantId,
    page: PageRequest,
    list: ListQuery<R>,
    id: fn(&R) -> &str,
) -> Result<Page<R>, ManageError> {
    let tenant = tenant.clone();
    let rows = {
        let page = page.clone();
        cx.store
            .run(move |conn| list(conn, &tenant, page.before.as_deref(), page.fetch_limit()))
            .await?
    };
    Ok(page.page(rows, id, |row| row))
}

/// A free-text list filter (`owner_id`, `q`, the audit log's `action`, ...): empty means no
/// filter. Control characters are refused: they match nothing anyway, and PostgreSQL text cannot
/// even hold a NUL, so passing one to the store would fail the whole request.
pub fn parse_filter(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, ManageError> {
    match raw {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) if value.chars().count() > 200 || value.chars().any(char::is_control) => {
            Err(ManageError::invalid(
                field,
                "must be at most 200 characters, without control characters",
            ))
        }
        Some(value) => Ok(Some(value)),
    }
}

/// Parses a public id from a path (`parse_path_id::<KeyId>(&path, "key")`); anything malformed
/// is simply not found.
pub fn parse_path_id<Id: PublicId>(raw: &str, what: &'static str) -> Result<Id, ManageError> {
    Id::parse(raw).ok_or(ManageError::NotFound(what))
}

#[cfg(test)]
mod tests;
