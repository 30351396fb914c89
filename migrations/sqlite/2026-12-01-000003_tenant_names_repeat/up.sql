-- Tenants are identified by id everywhere; a unique name only told sign-up visitors which
-- company names were taken. Two tenants may now share a name.
--
-- The table is rebuilt (the only way SQLite drops a column's UNIQUE). Foreign keys are off so
-- that dropping the old table deletes nothing that refers to it, and legacy_alter_table keeps
-- the other tables' REFERENCES tenants (id) pointing at the name "tenants", not at the renamed
-- old table.
PRAGMA foreign_keys = OFF;
PRAGMA legacy_alter_table = ON;
BEGIN IMMEDIATE;
ALTER TABLE tenants RENAME TO tenants_with_unique_names;
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
INSERT INTO tenants (id, name, created_at)
SELECT id, name, created_at FROM tenants_with_unique_names;
DROP TABLE tenants_with_unique_names;
COMMIT;
PRAGMA legacy_alter_table = OFF;
PRAGMA foreign_keys = ON;
