-- Several gateway nodes writing one database (docs/postgres.md, "Several nodes").
--
-- Every writer's pass holds a transaction-scoped advisory lock, so passes of different
-- nodes follow each other. `writer_log.seq` counts the commits; the rows the writers keep
-- in memory carry the `seq` of the commit that last wrote them, so a node that takes the
-- lock reads only what the others changed since its own last pass.
-- `keys_seq` and `approval_seq` are the last commits that changed subscription keys or the
-- virtual phone's developers, `max_outbox` the highest callback id: a node reads those
-- tables only when they changed.
CREATE TABLE writer_log (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    keys_seq BIGINT NOT NULL,
    approval_seq BIGINT NOT NULL,
    max_outbox BIGINT NOT NULL
);
INSERT INTO writer_log (id, seq, keys_seq, approval_seq, max_outbox)
SELECT 1, 0, 0, 0, COALESCE(MAX(id), 0) FROM outbox;

ALTER TABLE accounts ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transfers ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscription_keys ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX accounts_by_seq ON accounts (seq);
CREATE INDEX transfers_by_seq ON transfers (seq);
CREATE INDEX payments_by_seq ON payments (seq);

-- The nodes, with the time each was last seen; a node not seen for its lease is gone, and
-- the callbacks it owned are taken over by a live node.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    started_at_ms BIGINT NOT NULL,
    seen_at_ms BIGINT NOT NULL
);

-- Who delivers a callback (NULL: whoever takes it first), the node it was taken over from
-- (if it was), and who made each attempt.
ALTER TABLE outbox ADD COLUMN node TEXT;
ALTER TABLE outbox ADD COLUMN taken_from TEXT;
ALTER TABLE callback_attempts ADD COLUMN node TEXT;
