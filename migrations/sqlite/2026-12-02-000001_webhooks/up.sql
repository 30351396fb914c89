-- Webhooks: a tenant's endpoints, and the outbox of deliveries written in the same transaction
-- as the change they announce (one row per event and endpoint), claimed by every node's worker.
CREATE TABLE webhook_endpoints (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                     TEXT NOT NULL,
    description             TEXT NOT NULL,
    -- JSON array of event types.
    events                  TEXT NOT NULL,
    enabled                 BOOLEAN NOT NULL,
    -- The signing secret, sealed (AES-256-GCM) like the JWT signing keys: it must be used.
    secret_sealed           BLOB NOT NULL,
    -- A rotated-out secret that still signs until previous_secret_until.
    previous_secret_sealed  BLOB,
    previous_secret_until   TIMESTAMP,
    -- When deliveries to this endpoint started failing without a success since.
    failing_since           TIMESTAMP,
    disabled_reason         TEXT,
    created_at              TIMESTAMP NOT NULL,
    updated_at              TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id       TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The webhook-id header: one per event, the same at every endpoint and every attempt.
    message_id        TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    payload           TEXT NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    -- pending, succeeded or failed (gave up after 3 days).
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    next_attempt_at   TIMESTAMP,
    -- A worker holds the row until then; past it, any node may claim it again.
    claimed_until     TIMESTAMP,
    last_attempt_at   TIMESTAMP,
    last_status_code  INTEGER,
    last_latency_ms   INTEGER,
    last_error        TEXT,
    delivered_at      TIMESTAMP
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);
