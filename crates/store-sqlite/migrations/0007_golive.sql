-- Operators and going live (seed 004). An account is a developer's or an operator's;
-- operators review go-live requests and own no keys or payments.
ALTER TABLE developer_accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'developer';
CREATE INDEX developer_accounts_by_role ON developer_accounts (role, developer_id);

-- A developer's request to go live: details, the markets and products wanted, and the
-- transaction report made from their sandbox transactions when they submitted it (JSON).
CREATE TABLE golive_requests (
    id INTEGER PRIMARY KEY,
    developer_id INTEGER NOT NULL REFERENCES developers(id),
    created_at_ms INTEGER NOT NULL,
    -- pending, approved, rejected
    state TEXT NOT NULL,
    company TEXT NOT NULL,
    contact TEXT NOT NULL,
    website TEXT NOT NULL,
    use_case TEXT NOT NULL,
    -- space-separated MoMo target environments
    markets TEXT NOT NULL,
    -- space-separated products (collection, …, mpesa)
    products TEXT NOT NULL,
    report TEXT NOT NULL,
    decided_at_ms INTEGER,
    decided_by INTEGER,
    comment TEXT
);
CREATE INDEX golive_by_developer ON golive_requests (developer_id, id);
CREATE INDEX golive_by_state ON golive_requests (state, id);
