-- SHA-256 of the create request an Idempotency-Key was first used with: a retry must match it.
ALTER TABLE api_keys ADD COLUMN idempotency_fingerprint BLOB;
