-- Test clocks (issue 19): a clock attached to one API user; the API user's payments,
-- tokens and expiries run on its time, which moves only when it is advanced.
CREATE TABLE test_clocks (
    id TEXT PRIMARY KEY,
    developer_id BIGINT NOT NULL,
    api_user TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES api_users (id),
    name TEXT NOT NULL,
    now_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- The last commit that created, advanced or deleted a test clock: the other nodes read the
-- clocks again when it moves (docs/postgres.md, "Several nodes").
ALTER TABLE writer_log ADD COLUMN clocks_seq BIGINT NOT NULL DEFAULT 0;
