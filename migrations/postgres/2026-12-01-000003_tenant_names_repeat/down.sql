-- Names must be unique again: every tenant but the oldest of a name gets its id appended.
UPDATE tenants SET name = name || ' (' || id || ')'
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY name ORDER BY created_at, id) AS n
        FROM tenants
    ) AS named
    WHERE n > 1
);
ALTER TABLE tenants ADD CONSTRAINT tenants_name_key UNIQUE (name);
