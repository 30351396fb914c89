ALTER TABLE keyspaces DROP COLUMN token_audience;

DROP TABLE signing_keys;
CREATE TABLE signing_keys (
    kid                    TEXT PRIMARY KEY,
    algorithm              TEXT NOT NULL,
    public_jwk             TEXT NOT NULL,
    private_key_encrypted  BYTEA NOT NULL,
    created_at             TIMESTAMP NOT NULL,
    retired_at             TIMESTAMP,
    remove_after           TIMESTAMP
);
