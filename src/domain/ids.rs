//! Identifier newtypes. A tenant id is required by every query on tenant-owned rows, so an
//! unscoped query does not type-check.

use std::fmt;

/// Generates a new time-ordered id (UUIDv7), so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Parses a public id: a UUID in canonical lower-case form. Anything else is rejected.
pub fn parse_id(raw: &str) -> Option<String> {
    let parsed = uuid::Uuid::try_parse(raw).ok()?;
    let canonical = parsed.to_string();
    (canonical == raw).then_some(canonical)
}

/// The isolation boundary: every row a tenant owns carries this.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// A new tenant's id. There is no `Default`: a tenant id is always one on purpose.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(new_id())
    }

    /// Wraps an id read from the store (already trusted).
    pub fn from_trusted(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert!(a < b, "UUIDv7 strings sort by creation time");
        assert_eq!(parse_id(&a).as_deref(), Some(a.as_str()));
        assert_eq!(parse_id(&a.to_uppercase()), None);
        assert_eq!(parse_id("not-a-uuid"), None);
        assert_eq!(parse_id(""), None);
    }
}
