-- The M-Pesa OpenAPI: one application per developer, the short code of M-Pesa payments,
-- and lookups of payments by transaction id (M-Pesa queries and reversals name them so).
CREATE TABLE mpesa_apps (
    developer_id INTEGER PRIMARY KEY,
    api_user TEXT NOT NULL UNIQUE,
    -- SHA-256 of the current API key: the database never holds a usable renewed key.
    api_key_hash BLOB NOT NULL UNIQUE,
    api_key_created_at_ms INTEGER NOT NULL,
    -- The sandbox developer's first key, printed by `mkoba credentials` until renewed.
    sandbox_api_key TEXT,
    -- Allowed Origin values, one per line.
    allowed_origins TEXT NOT NULL,
    session_lifetime_secs INTEGER NOT NULL,
    result_url TEXT,
    created_at_ms INTEGER NOT NULL
);

ALTER TABLE payments ADD COLUMN short_code TEXT;
-- Only M-Pesa payments: MoMo payments never pay for this index.
CREATE INDEX payments_by_transaction_id ON payments (financial_transaction_id)
    WHERE product = 'mpesa' AND financial_transaction_id IS NOT NULL;
