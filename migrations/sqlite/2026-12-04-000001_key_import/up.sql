-- Imported keys (issue 19 §3). digest_kind says what `digest` holds: 'hmac' for a key in
-- latchkey's format; 'legacy_hmac' for a key in another system's format, digested with the
-- pepper like any other; 'legacy_sha256' for an imported plain SHA-256 digest, rewritten to
-- 'legacy_hmac' at the key's first successful verification.
ALTER TABLE api_keys ADD COLUMN digest_kind TEXT NOT NULL DEFAULT 'hmac';
-- The importing system's id for the key: an import is idempotent per item by it.
ALTER TABLE api_keys ADD COLUMN external_ref TEXT;
CREATE UNIQUE INDEX api_keys_tenant_external_ref ON api_keys (tenant_id, external_ref);
-- Verification asks whether a tenant holds keys in another format before it digests a value
-- that is not in latchkey's.
CREATE INDEX api_keys_tenant_digest_kind ON api_keys (tenant_id, digest_kind);
