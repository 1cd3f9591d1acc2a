-- Integer keys inside, the UUID in one unique index (issue 17). A payment's reference id is
-- random, so every index keyed by it takes its insert on a random page: the writer's
-- commits were spread over many pages of four such indexes. Now the payments table is keyed
-- by an integer `id` (rows and that key appended in order), the reference id keeps its one
-- unique index, and the rows that belong to a payment (its transfers and callbacks) name it
-- by that `id`, in indexes that grow at their end. Callback attempts are found through
-- their outbox row.

CREATE TABLE payments_new (
    id INTEGER PRIMARY KEY,
    reference_id TEXT NOT NULL UNIQUE,
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
SELECT rowid, reference_id, kind, product, api_user, environment,
    amount_minor, currency, external_id, party_type, party_id, payer_message, payee_note,
    callback_url, callback_method, refund_of, details, expires_at_ms, status, reason,
    financial_transaction_id, created_at_ms, settled_at_ms, settle_at_ms, transfer_id,
    notifications, short_code
FROM payments ORDER BY rowid;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_pending ON payments (status) WHERE status = 'PENDING';
CREATE INDEX payments_by_party ON payments (api_user, party_id);
CREATE INDEX payments_by_refund_of ON payments (refund_of) WHERE refund_of IS NOT NULL;
CREATE INDEX payments_by_user_time ON payments (api_user, created_at_ms);
CREATE INDEX payments_by_transaction_id ON payments (financial_transaction_id)
    WHERE product = 'mpesa' AND financial_transaction_id IS NOT NULL;

ALTER TABLE transfers ADD COLUMN payment INTEGER;
UPDATE transfers SET payment = (SELECT p.id FROM payments p WHERE p.reference_id = transfers.reference_id)
    WHERE reference_id IS NOT NULL;
DROP INDEX transfers_by_reference;
CREATE INDEX transfers_by_payment ON transfers (payment) WHERE payment IS NOT NULL;

ALTER TABLE outbox ADD COLUMN payment INTEGER;
UPDATE outbox SET payment = (SELECT p.id FROM payments p WHERE p.reference_id = outbox.reference_id);
DROP INDEX outbox_by_reference;
CREATE INDEX outbox_by_payment ON outbox (payment) WHERE payment IS NOT NULL;

DROP INDEX callback_attempts_by_reference;
CREATE INDEX callback_attempts_by_outbox ON callback_attempts (outbox_id);
