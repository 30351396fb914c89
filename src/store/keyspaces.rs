//! Keyspaces: a tenant's groups of keys, each with its own prefix and defaults.
