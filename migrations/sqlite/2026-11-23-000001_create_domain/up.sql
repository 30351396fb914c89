-- The whole latchkey domain (DESIGN.md §3). Ids are UUIDv7 text; timestamps are UTC without zone.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

CREATE TABLE memberships (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_id ON memberships (user_id);

CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    token_digest  BLOB NOT NULL UNIQUE,
    invited_by    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    accepted_at   TIMESTAMP
);
CREATE INDEX invitations_tenant_id ON invitations (tenant_id);

CREATE TABLE sessions (
    id_digest     BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id     TEXT REFERENCES tenants (id) ON DELETE SET NULL,
    csrf_token    TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE keyspaces (
    id                        TEXT PRIMARY KEY,
    tenant_id                 TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                      TEXT NOT NULL,
    prefix                    TEXT NOT NULL,
    environment               TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    default_ttl_seconds       BIGINT,
    default_scopes            TEXT NOT NULL DEFAULT '[]',
    default_ratelimit_limit   INTEGER,
    default_ratelimit_window  INTEGER,
    token_exchange_enabled    BOOLEAN NOT NULL DEFAULT 1,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, prefix)
);

CREATE TABLE api_keys (
    id                       TEXT PRIMARY KEY,
    tenant_id                TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    keyspace_id              TEXT NOT NULL REFERENCES keyspaces (id) ON DELETE CASCADE,
    name                     TEXT,
    owner_id                 TEXT,
    scopes                   TEXT NOT NULL DEFAULT '[]',
    meta                     TEXT NOT NULL DEFAULT '{}',
    digest                   BLOB NOT NULL UNIQUE,
    start                    TEXT NOT NULL,
    created_at               TIMESTAMP NOT NULL,
    updated_at               TIMESTAMP NOT NULL,
    last_used_at             TIMESTAMP,
    expires_at               TIMESTAMP,
    revoked_at               TIMESTAMP,
    revoked_reason           TEXT,
    enabled                  BOOLEAN NOT NULL DEFAULT 1,
    ip_allowlist             TEXT NOT NULL DEFAULT '[]',
    ratelimit_limit          INTEGER,
    ratelimit_window         INTEGER,
    credits_remaining        BIGINT,
    credits_refill_amount    BIGINT,
    credits_refill_interval  TEXT CHECK (credits_refill_interval IN ('daily', 'monthly')),
    credits_refilled_at      TIMESTAMP,
    rotated_from             TEXT REFERENCES api_keys (id) ON DELETE SET NULL,
    family_id                TEXT NOT NULL,
    idempotency_key          TEXT,
    created_by               TEXT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX api_keys_tenant_keyspace ON api_keys (tenant_id, keyspace_id, id);
CREATE INDEX api_keys_tenant_owner ON api_keys (tenant_id, owner_id, id);
CREATE INDEX api_keys_tenant_family ON api_keys (tenant_id, family_id);
CREATE INDEX api_keys_tenant_id ON api_keys (tenant_id, id);

CREATE TABLE root_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    digest        BLOB NOT NULL UNIQUE,
    start         TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP,
    revoked_at    TIMESTAMP,
    last_used_at  TIMESTAMP,
    created_by    TEXT NOT NULL
);
CREATE INDEX root_keys_tenant_id ON root_keys (tenant_id, id);

CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    occurred_at  TIMESTAMP NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    changes      TEXT NOT NULL DEFAULT '{}',
    ip           TEXT,
    user_agent   TEXT,
    request_id   TEXT
);
CREATE INDEX audit_events_tenant_id ON audit_events (tenant_id, id);
CREATE INDEX audit_events_tenant_action ON audit_events (tenant_id, action, id);
CREATE INDEX audit_events_tenant_target ON audit_events (tenant_id, target_id, id);
CREATE INDEX audit_events_tenant_actor ON audit_events (tenant_id, actor_id, id);

CREATE TABLE usage_rollups (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id     TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    hour       TIMESTAMP NOT NULL,
    outcome    TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (key_id, hour, outcome)
);
CREATE INDEX usage_rollups_tenant_hour ON usage_rollups (tenant_id, hour);

-- Deployment-wide JWT signing keys, private halves encrypted under a key derived from the master secret.
CREATE TABLE signing_keys (
    kid                    TEXT PRIMARY KEY,
    algorithm              TEXT NOT NULL,
    public_jwk             TEXT NOT NULL,
    private_key_encrypted  BLOB NOT NULL,
    created_at             TIMESTAMP NOT NULL,
    retired_at             TIMESTAMP,
    remove_after           TIMESTAMP
);

-- Denied access-token ids (RFC 7009) when Redis is absent; rows expire with their tokens.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
