//! What a client reads: the JSON of every answer of the REST API, with its OpenAPI schema, one
//! file per resource. Each view is built here from what a service returns (a store row, or the
//! service's own result); the dashboard shows the same views.

mod audit;
mod key_roles;
mod keys;
mod keyspaces;
mod leaks;
mod root_keys;
mod verify;
mod webhooks;

pub use audit::{Actor, AuditEventView, Target};
pub use key_roles::{HeldRoleView, KeyRoleView};
pub use keys::{
    BulkRevoked, CreatedKey, ImportResult, ImportStatus, ImportedKeys, KeyUsage, KeyView,
    PreviousKey, RotatedKey, UsageHour,
};
pub use keyspaces::KeyspaceView;
pub use leaks::LeakFeedback;
pub use root_keys::{CreatedRootKey, RootKeyView};
pub use verify::{RateLimitStateBody, VerifyOutcomeBody};
pub use webhooks::{
    CreatedWebhookEndpoint, RotatedWebhookSecret, WebhookDeliveryView, WebhookEndpointView,
};

use serde::Serialize;
use utoipa::ToSchema;

use crate::manage;

/// One page of a list, newest first; `next_cursor` fetches the next one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required)]
    pub next_cursor: Option<String>,
}

impl<S, T: From<S>> From<manage::Page<S>> for Page<T> {
    fn from(page: manage::Page<S>) -> Self {
        let manage::Page { data, next_cursor } = page;
        Self {
            data: data.into_iter().map(T::from).collect(),
            next_cursor,
        }
    }
}
