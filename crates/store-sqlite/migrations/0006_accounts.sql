-- A developer account's journey: activation by e-mailed link, then the phone step. Accounts
-- that exist already (the sandbox developer's, those of an upgraded database) are active.
ALTER TABLE developer_accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
-- The confirmed phone number, international digits.
ALTER TABLE developer_accounts ADD COLUMN phone TEXT;

-- The code a developer at the phone step was sent last: a MAC under the platform secret,
-- never the code itself.
CREATE TABLE phone_codes (
    developer_id INTEGER PRIMARY KEY REFERENCES developers(id),
    msisdn TEXT NOT NULL,
    code_mac BLOB NOT NULL,
    sent_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL
);

-- Every message the platform sends: e-mail (queued for SMTP when configured, else only
-- kept here) and the virtual phone's SMS. The portal's mailbox reads it.
CREATE TABLE mailbox (
    id INTEGER PRIMARY KEY,
    developer_id INTEGER NOT NULL REFERENCES developers(id),
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    -- kept, queued, sending (claimed until next_attempt_at_ms), sent, failed
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error TEXT,
    sent_at_ms INTEGER
);
CREATE INDEX mailbox_by_developer ON mailbox (developer_id, id);
CREATE INDEX mailbox_due ON mailbox (next_attempt_at_ms) WHERE state IN ('queued', 'sending');

-- Password changes end a developer's other sessions.
CREATE INDEX portal_sessions_by_developer ON portal_sessions (developer_id);
