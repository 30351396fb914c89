-- Names must be unique again: every tenant but the oldest of a name gets its id appended. The
-- table is rebuilt as in up.sql, with its original definition.
PRAGMA foreign_keys = OFF;
PRAGMA legacy_alter_table = ON;
BEGIN IMMEDIATE;
UPDATE tenants SET name = name || ' (' || id || ')'
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY name ORDER BY created_at, id) AS n
        FROM tenants
    ) AS named
    WHERE n > 1
);
ALTER TABLE tenants RENAME TO tenants_with_repeated_names;
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL
);
INSERT INTO tenants (id, name, created_at)
SELECT id, name, created_at FROM tenants_with_repeated_names;
DROP TABLE tenants_with_repeated_names;
COMMIT;
PRAGMA legacy_alter_table = OFF;
PRAGMA foreign_keys = ON;
