-- The developer portal: accounts with password hashes, sign-in sessions, the virtual phone
-- setting, and indexes for listing a developer's API users and payments.
CREATE TABLE developer_accounts (
    developer_id INTEGER PRIMARY KEY REFERENCES developers(id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- Argon2id, PHC string format.
    password_hash TEXT NOT NULL,
    approval_mode INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE portal_sessions (
    -- SHA-256 of the cookie value: the database never holds a usable session id.
    id_hash BLOB PRIMARY KEY,
    developer_id INTEGER NOT NULL REFERENCES developers(id),
    csrf_token TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at_ms);

CREATE INDEX api_users_by_developer ON api_users (developer_id, created_at_ms);
CREATE INDEX payments_by_user_time ON payments (api_user, created_at_ms);
CREATE INDEX outbox_by_reference ON outbox (reference_id);
