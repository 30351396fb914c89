ALTER TABLE api_keys DROP COLUMN idempotency_fingerprint;
