DROP INDEX api_keys_tenant_digest_kind;
DROP INDEX api_keys_tenant_external_ref;
ALTER TABLE api_keys DROP COLUMN external_ref;
ALTER TABLE api_keys DROP COLUMN digest_kind;
