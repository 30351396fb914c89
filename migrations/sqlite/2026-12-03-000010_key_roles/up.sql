-- Key roles: a tenant's named bundles of scopes (not the dashboard member roles of
-- `memberships.role`), and which keys hold which. A key's effective scopes are its own plus
-- its roles'. Identities will hold roles through a table of their own beside key_roles.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- JSON array of scope strings.
    scopes      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX roles_tenant_name ON roles (tenant_id, name);

CREATE TABLE key_roles (
    key_id     TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, role_id)
);
-- A role's keys, to evict them when it changes.
CREATE INDEX key_roles_role ON key_roles (tenant_id, role_id);
