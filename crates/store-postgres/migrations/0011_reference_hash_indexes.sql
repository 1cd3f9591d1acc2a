-- Issue 17: a payment's transfers, callbacks and callback attempts are found by the
-- payment's reference id, a random UUID, and only ever by equality (`reference_id = $1`, a
-- join on it). As B-trees, each insert descended three or four levels comparing 36-byte
-- strings to a random leaf (`_bt_compare` led the writer backend's profile); a hash index
-- goes to its bucket by a 4-byte hash, and its entries are a third of the size. With these,
-- the statements that insert those rows took 11-27 % less time (`pg_stat_statements`, two
-- pairs of 40,000-payment runs; docs/architecture.md). The payments' own reference id stays
-- a B-tree: it is the primary key, and PostgreSQL's hash indexes cannot be unique.
DROP INDEX transfers_by_reference;
CREATE INDEX transfers_by_reference ON transfers USING hash (reference_id);
DROP INDEX outbox_by_reference;
CREATE INDEX outbox_by_reference ON outbox USING hash (reference_id);
DROP INDEX callback_attempts_by_reference;
CREATE INDEX callback_attempts_by_reference ON callback_attempts USING hash (reference_id);
