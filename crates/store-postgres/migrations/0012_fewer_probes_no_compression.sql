-- Issue 17: two costs of every pass that bought nothing (pg_stat_statements over 40,000
-- request-to-pays, three pairs of runs; docs/architecture.md).
--
-- 1. The check that a batch's transfers name existing accounts probed the accounts' primary
--    key twice per transfer. A batch's transfers name few accounts (each payer's wallet and
--    the partner's one account): the check now probes each account once, in one index scan
--    over the distinct ids, and compares the count. 258-311 ms of trigger time became
--    117-138 ms.
CREATE OR REPLACE FUNCTION transfers_name_existing_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named BIGINT[] := ARRAY(
        SELECT DISTINCT unnest(ARRAY[debit_account, credit_account]) FROM new_transfers);
BEGIN
    IF (SELECT count(*) FROM accounts WHERE id = ANY (named)) < cardinality(named) THEN
        RAISE EXCEPTION 'a transfer names an account that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

-- 2. A commit-log row lists a pass's reference ids as text, past 2 kB for a pass of some
--    60 payments, where PostgreSQL compresses a row (pglz) before it stores it: a row read
--    once by another node and pruned soon after. Rows up to a page's size are now stored
--    as they are.
ALTER TABLE commit_log SET (toast_tuple_target = 8160);
