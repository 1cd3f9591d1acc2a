-- Issue 17: a callback's first attempt is stored on its outbox row, in the update that
-- records its outcome, instead of as a `callback_attempts` row (and an index entry) of its
-- own: most callbacks are delivered at once, and each wrote two rows for it. Later
-- attempts, and a first attempt made twice, are `callback_attempts` rows as before; the
-- readers list both, from the view `callback_log` (which is what to query by hand now).
-- Rows written before this migration keep their first attempt in `callback_attempts` and
-- have these columns NULL.
ALTER TABLE outbox ADD COLUMN first_at_ms INTEGER;
ALTER TABLE outbox ADD COLUMN first_status_code INTEGER;
ALTER TABLE outbox ADD COLUMN first_latency_ms INTEGER;
ALTER TABLE outbox ADD COLUMN first_error TEXT;
ALTER TABLE outbox ADD COLUMN first_retry_at_ms INTEGER;

-- Every callback attempt, wherever it is stored. In order: `outbox_id, attempt, seq` (each
-- callback's attempts by number; `seq` puts a first attempt made twice after the one on its
-- row, as it was written). Not by `at_ms`: a payment on a test clock has its attempts on
-- the clock's time, and on real time again once the clock is deleted.
CREATE VIEW callback_log AS
    SELECT id AS outbox_id, reference_id, 1 AS attempt, first_at_ms AS at_ms, url, method,
           first_status_code AS status_code, first_latency_ms AS latency_ms,
           first_error AS error, first_retry_at_ms AS retry_at_ms, 0 AS seq
    FROM outbox WHERE first_at_ms IS NOT NULL
    UNION ALL
    SELECT outbox_id, reference_id, attempt, at_ms, url, method, status_code, latency_ms, error,
           retry_at_ms, id AS seq
    FROM callback_attempts;
