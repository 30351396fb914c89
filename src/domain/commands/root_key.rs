//! Commands on root keys.

use super::Expiry;
use crate::domain::scope::Scopes;

/// A root key to create; its scopes must be held by whoever creates it (the service checks).
#[derive(Debug)]
pub struct NewRootKey {
    pub name: String,
    /// At least one.
    pub scopes: Scopes,
    pub expiry: Option<Expiry>,
}
