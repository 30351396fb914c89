//! Every Redis key and channel latchkey uses, in one place, so no two features can collide and an
//! operator can see what lives in Redis.

/// The channel on which every node publishes and hears cache invalidations.
pub const INVALIDATION_CHANNEL: &str = "latchkey:invalidate";

/// The sorted set of revoked access-token ids (by tenant), scored by expiry.
pub const REVOKED_TOKENS: &str = "latchkey:revoked-jti";

/// A cached record (L2): `namespace` is the record type's (`key`, `rk`), `digest_hex` its digest,
/// and `tenant` the tenant whose lookups it answers (API keys; root keys answer anyone's).
pub fn record(namespace: &str, tenant: Option<&str>, digest_hex: &str) -> String {
    match tenant {
        Some(tenant) => format!("latchkey:{namespace}:{tenant}:{digest_hex}"),
        None => format!("latchkey:{namespace}:{digest_hex}"),
    }
}

/// A key's sliding-window rate-limit counter for windows of `window_seconds`.
pub fn rate_limit(key_id: &str, window_seconds: i32) -> String {
    // `rlw`: a sliding window's hash, never one of the fixed windows' `rl` counters (strings)
    // that nodes of an older version may still be writing.
    format!("latchkey:rlw:{key_id}:{window_seconds}")
}

/// A sign-in throttle counter: `kind` is `account` or `address`, `name_hex` a keyed MAC of the
/// value (so e-mail addresses and IPs never appear in Redis).
pub fn sign_in(kind: &str, name_hex: &str) -> String {
    format!("latchkey:sign-in:{kind}:{name_hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_per_feature() {
        let names = [
            INVALIDATION_CHANNEL.to_owned(),
            REVOKED_TOKENS.to_owned(),
            record("key", Some("t1"), "ab"),
            record("key", Some("t2"), "ab"),
            record("rk", None, "ab"),
            rate_limit("ab", 0),
            sign_in("account", "ab"),
            sign_in("address", "ab"),
        ];
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("latchkey:")));
    }
}
