//! Root keys: issuing them (shown once) and recognising them on requests.

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::cache::{Lookup, LookupFor, TieredCache};
use crate::domain::ids::{TenantId, new_id};
use crate::domain::key::{KeyHasher, KeyPrefix, PlainKey};
use crate::domain::scope::Scopes;
use crate::domain::time::Clock;
use crate::store::models::RootKeyRow;
use crate::store::{DbConnection, Store, StoreError, root_keys};

/// Every root key starts with this prefix; keyspaces may not use it.
pub const ROOT_KEY_PREFIX: &str = "lk_root";

/// A root key just created: the row as stored and the plaintext, which exists only here.
pub struct IssuedRootKey {
    pub row: RootKeyRow,
    pub key: PlainKey,
}

/// What a new root key is.
pub struct RootKeySpec<'a> {
    pub name: &'a str,
    pub scopes: &'a Scopes,
    pub expires_at: Option<NaiveDateTime>,
    /// The actor's label (`Actor::label`).
    pub created_by: &'a str,
    pub created_at: NaiveDateTime,
}

/// Creates and stores a root key. The caller checks that `scopes` do not exceed its own and
/// records the audit event in the same transaction.
pub fn issue(
    conn: &mut DbConnection,
    hasher: &KeyHasher,
    tenant: &TenantId,
    spec: RootKeySpec<'_>,
) -> Result<IssuedRootKey, StoreError> {
    let prefix = KeyPrefix::parse(ROOT_KEY_PREFIX).expect("the root key prefix is a valid prefix");
    let generated = hasher.generate(&prefix);
    let row = RootKeyRow {
        id: new_id(),
        tenant_id: tenant.as_str().to_owned(),
        name: spec.name.to_owned(),
        scopes: spec.scopes.to_json(),
        digest: generated.digest.as_bytes().to_vec(),
        start: generated.start,
        created_at: spec.created_at,
        expires_at: spec.expires_at,
        revoked_at: None,
        last_used_at: None,
        created_by: spec.created_by.to_owned(),
    };
    root_keys::insert(conn, &row)?;
    Ok(IssuedRootKey {
        row,
        key: generated.key,
    })
}

/// A root key as authentication needs it; what the cache tiers hold.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RootKeyRecord {
    pub id: String,
    pub tenant_id: String,
    pub scopes: Arc<Scopes>,
    pub expires_at: Option<chrono::NaiveDateTime>,
    pub revoked: bool,
}

impl crate::cache::Cached for RootKeyRecord {
    const NAMESPACE: &'static str = "rk";
    const KIND: crate::metrics::CacheKind = crate::metrics::CacheKind::RootKey;
}

impl From<crate::store::models::RootKeyRow> for RootKeyRecord {
    fn from(row: crate::store::models::RootKeyRow) -> Self {
        Self {
            scopes: Arc::new(Scopes::from_json(&row.scopes)),
            id: row.id,
            tenant_id: row.tenant_id,
            expires_at: row.expires_at,
            revoked: row.revoked_at.is_some(),
        }
    }
}

/// Why a presented root key does not authenticate. Every invalid key is the same answer, so a
/// caller cannot tell a malformed key from a revoked one.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the root key is invalid, expired or revoked")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Recognises root keys: shape and check tag first (a forged key costs no I/O), then the cache
/// tiers, then the store.
pub struct RootKeyAuthenticator {
    store: Store,
    hasher: KeyHasher,
    cache: Arc<TieredCache<RootKeyRecord>>,
    clock: Clock,
}

impl RootKeyAuthenticator {
    pub fn new(
        store: Store,
        hasher: KeyHasher,
        cache: Arc<TieredCache<RootKeyRecord>>,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            hasher,
            cache,
            clock,
        }
    }

    /// The live root key `token` is, as of now.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<RootKeyRecord>, AuthError> {
        let parsed = self.hasher.parse(token).map_err(|_| AuthError::Invalid)?;
        if parsed.prefix() != ROOT_KEY_PREFIX {
            return Err(AuthError::Invalid);
        }
        let digests = self.hasher.digests(&parsed);
        let found = self
            .cache
            // A root key names the caller's tenant: there is none to look in yet.
            .get_stored(
                &self.store,
                LookupFor::Anyone,
                digests,
                root_keys::find_by_digests,
            )
            .await?;
        let record = match found {
            Lookup::Found(record) | Lookup::Stale(record) => record,
            Lookup::NotFound => return Err(AuthError::Invalid),
        };
        if record.revoked || record.expires_at.is_some_and(|at| at <= self.clock.now()) {
            return Err(AuthError::Invalid);
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    //! The authenticator on its own, over a real SQLite file: no server, no Redis.

    use super::*;
    use crate::metrics::Metrics;
    use crate::store::models::Tenant;
    use crate::store::url::DatabaseUrl;
    use crate::store::{now, tenants};

    fn spec<'a>(
        name: &'a str,
        scopes: &'a Scopes,
        expires_at: Option<NaiveDateTime>,
    ) -> RootKeySpec<'a> {
        RootKeySpec {
            name,
            scopes,
            expires_at,
            created_by: "test",
            created_at: now(),
        }
    }

    #[tokio::test]
    async fn only_a_live_root_key_authenticates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseUrl::Sqlite(dir.path().join("a.db")), 2).unwrap();
        store.migrate().unwrap();
        let secrets = crate::domain::secrets::MasterKey::from_bytes(vec![5; 32])
            .unwrap()
            .derive();
        let hasher = KeyHasher::new(&secrets, &[]);
        let metrics = Arc::new(Metrics::new());
        let cache = TieredCache::new(None, metrics.clone(), std::time::Duration::from_secs(60));
        let clock = Clock::system();
        let auth = RootKeyAuthenticator::new(
            store.clone(),
            hasher.clone(),
            Arc::new(cache),
            clock.clone(),
        );

        let tenant = TenantId::from_trusted(new_id());
        let mut conn = store.conn().unwrap();
        let row = Tenant {
            id: tenant.as_str().to_owned(),
            name: "acme".into(),
            created_at: now(),
        };
        tenants::insert(&mut conn, &row).unwrap();
        let scopes = Scopes::parse(["keys:read"]).unwrap();
        let live = issue(&mut conn, &hasher, &tenant, spec("ci", &scopes, None)).unwrap();
        let past = Some(now() - chrono::TimeDelta::minutes(1));
        let expired = issue(&mut conn, &hasher, &tenant, spec("old", &scopes, past)).unwrap();
        let soon = Some(now() + chrono::TimeDelta::seconds(60));
        let expiring = issue(&mut conn, &hasher, &tenant, spec("soon", &scopes, soon)).unwrap();
        drop(conn);

        let record = auth.authenticate(live.key.expose_secret()).await.unwrap();
        assert_eq!(record.id, live.row.id);
        assert_eq!(record.tenant_id, tenant.as_str());
        assert!(
            record
                .scopes
                .grants(&crate::domain::scope::Scope::parse("keys:read").unwrap())
        );

        let refused = auth.authenticate(expired.key.expose_secret()).await;
        assert!(matches!(refused, Err(AuthError::Invalid)), "{refused:?}");

        // Expiry is judged by the authenticator's clock, also for a record it has cached.
        assert!(
            auth.authenticate(expiring.key.expose_secret())
                .await
                .is_ok()
        );
        clock.advance(std::time::Duration::from_secs(61));
        let refused = auth.authenticate(expiring.key.expose_secret()).await;
        assert!(matches!(refused, Err(AuthError::Invalid)), "{refused:?}");

        // An API key of a keyspace, or a forged root key, is refused before any lookup.
        let lookups = metrics.store_lookups.get();
        let api_key = hasher.generate(&KeyPrefix::parse("acme_live").unwrap());
        let mut forged = live.key.expose_secret().to_owned();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        for token in [api_key.key.expose_secret(), forged.as_str(), "", "lk_root_"] {
            let refused = auth.authenticate(token).await;
            assert!(matches!(refused, Err(AuthError::Invalid)), "{refused:?}");
        }
        assert_eq!(metrics.store_lookups.get(), lookups);
    }
}
