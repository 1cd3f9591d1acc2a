-- Mkoba SQLite schema, version 1. Never edit once released: add a new file.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE developers (
    id INTEGER PRIMARY KEY,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE subscription_keys (
    key TEXT PRIMARY KEY,
    developer_id INTEGER NOT NULL REFERENCES developers(id),
    product TEXT NOT NULL,
    slot TEXT NOT NULL,
    UNIQUE (developer_id, product, slot)
);

CREATE TABLE api_users (
    id TEXT PRIMARY KEY,
    developer_id INTEGER NOT NULL,
    provider_callback_host TEXT NOT NULL,
    target_environment TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    api_user TEXT NOT NULL REFERENCES api_users(id),
    key_hash BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys (api_user);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    limit_kind TEXT NOT NULL,
    debits_pending INTEGER NOT NULL,
    debits_posted INTEGER NOT NULL,
    credits_pending INTEGER NOT NULL,
    credits_posted INTEGER NOT NULL,
    UNIQUE (owner, currency)
);

CREATE TABLE transfers (
    id INTEGER PRIMARY KEY,
    debit_account INTEGER NOT NULL REFERENCES accounts(id),
    credit_account INTEGER NOT NULL REFERENCES accounts(id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    reference_id TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX transfers_by_reference ON transfers (reference_id);
CREATE INDEX transfers_pending ON transfers (state) WHERE state = 'pending';

CREATE TABLE payments (
    reference_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    product TEXT NOT NULL,
    api_user TEXT NOT NULL,
    environment TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    external_id TEXT,
    party_type TEXT NOT NULL,
    party_id TEXT NOT NULL,
    payer_message TEXT,
    payee_note TEXT,
    callback_url TEXT,
    callback_method TEXT,
    refund_of TEXT,
    details TEXT,
    expires_at_ms INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    financial_transaction_id TEXT,
    created_at_ms INTEGER NOT NULL,
    settled_at_ms INTEGER,
    settle_at_ms INTEGER,
    transfer_id INTEGER,
    notifications INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX payments_pending ON payments (status) WHERE status = 'PENDING';
CREATE INDEX payments_by_party ON payments (api_user, party_id);
CREATE INDEX payments_by_refund_of ON payments (refund_of) WHERE refund_of IS NOT NULL;

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    reference_id TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at_ms INTEGER NOT NULL
);
CREATE INDEX outbox_pending ON outbox (state) WHERE state = 'pending';

CREATE TABLE callback_attempts (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL,
    reference_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    status_code INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    retry_at_ms INTEGER
);
CREATE INDEX callback_attempts_by_reference ON callback_attempts (reference_id);
