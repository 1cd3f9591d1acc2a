-- Reference ids written behind (issue 17, `src/refs.rs`). A payment's reference id is
-- random, so its unique index took every insert on a leaf of its own: 38 % of a fresh
-- database's WAL frames, 40–47 % at a million payments. The index moves out of the payments
-- table into `payment_refs` (the id's 16 bytes, the payment's integer id), which the writer
-- fills behind its commits, a slice of the key space at a time; the ids not yet there wait
-- in the server's memory, and the writer keeps them unique. The `settings` row
-- `payment_refs_through` names the payment up to which every reference id is in the table.

CREATE TABLE payment_refs (
    reference_id BLOB PRIMARY KEY,
    payment INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO payment_refs (reference_id, payment)
SELECT unhex(replace(reference_id, '-', '')), id FROM payments ORDER BY 1;

CREATE TABLE payments_new (
    id INTEGER PRIMARY KEY,
    reference_id TEXT NOT NULL,
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
    notifications INTEGER NOT NULL DEFAULT 0,
    short_code TEXT
);
INSERT INTO payments_new (id, reference_id, kind, product, api_user, environment,
    amount_minor, currency, external_id, party_type, party_id, payer_message, payee_note,
    callback_url, callback_method, refund_of, details, expires_at_ms, status, reason,
    financial_transaction_id, created_at_ms, settled_at_ms, settle_at_ms, transfer_id,
    notifications, short_code)
SELECT id, reference_id, kind, product, api_user, environment,
    amount_minor, currency, external_id, party_type, party_id, payer_message, payee_note,
    callback_url, callback_method, refund_of, details, expires_at_ms, status, reason,
    financial_transaction_id, created_at_ms, settled_at_ms, settle_at_ms, transfer_id,
    notifications, short_code
FROM payments ORDER BY id;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_pending ON payments (status) WHERE status = 'PENDING';
CREATE INDEX payments_by_refund_of ON payments (refund_of) WHERE refund_of IS NOT NULL;
CREATE INDEX payments_by_user_time ON payments (api_user, created_at_ms);
CREATE INDEX payments_by_transaction_id ON payments (financial_transaction_id)
    WHERE product = 'mpesa' AND financial_transaction_id IS NOT NULL;
CREATE INDEX payments_by_party ON payments (api_user, party_id)
    WHERE kind IN ('preapproval', 'directdebit');

INSERT INTO settings (name, value)
VALUES ('payment_refs_through', (SELECT COALESCE(MAX(id), 0) FROM payments))
ON CONFLICT (name) DO UPDATE SET value = excluded.value;
