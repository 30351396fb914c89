-- Tombstones of deleted keys (issue 19 §4): the digest stays known, so a deleted key can never
-- be stored again (imported, say) and verify; the rest of the key is gone.
CREATE TABLE deleted_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    digest      BYTEA NOT NULL UNIQUE,
    deleted_at  TIMESTAMP NOT NULL
);
CREATE INDEX deleted_keys_tenant ON deleted_keys (tenant_id, id);
