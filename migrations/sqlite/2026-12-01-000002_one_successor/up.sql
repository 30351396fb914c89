-- A key is rotated once: the schema says so, whatever the isolation level. Successors that
-- concurrent rotations made before this index (only possible on PostgreSQL) keep working but
-- stop claiming the same predecessor: all but the first become keys of their own family line.
UPDATE api_keys SET rotated_from = NULL
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY rotated_from ORDER BY created_at, id) AS n
        FROM api_keys
        WHERE rotated_from IS NOT NULL
    ) AS successors
    WHERE n > 1
);
CREATE UNIQUE INDEX api_keys_one_successor ON api_keys (rotated_from);
