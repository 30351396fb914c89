-- Each tenant is its own OAuth issuer with its own signing keys. The deployment-wide keys
-- cannot be attributed to a tenant, so they go (with them, the few minutes of tokens they signed).
DROP TABLE signing_keys;
CREATE TABLE signing_keys (
    kid                    TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    algorithm              TEXT NOT NULL,
    public_jwk             TEXT NOT NULL,
    private_key_encrypted  BLOB NOT NULL,
    created_at             TIMESTAMP NOT NULL,
    retired_at             TIMESTAMP,
    remove_after           TIMESTAMP
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, created_at);

-- The `aud` of access tokens minted from the keyspace's keys; NULL means {issuer}/keyspaces/{id}.
ALTER TABLE keyspaces ADD COLUMN token_audience TEXT;
