-- Issue 17: a transfer's accounts are checked once per statement instead of once per row.
-- A foreign key checks each row with a trigger that runs a query and locks the account row
-- (FOR KEY SHARE, a WAL record of its own): two per transfer, about a tenth of the writer's
-- backend time under load. The writer inserts a batch's transfers in one statement, so one
-- statement-level trigger over the inserted rows does the same check for all of them, with
-- no row locks (nothing deletes accounts). The transfers insert never changes a transfer's
-- accounts on conflict, so inserts are all there is to check. docs/architecture.md.
ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_debit_account_fkey;
ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_credit_account_fkey;

CREATE FUNCTION transfers_name_existing_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A correlated count, not NOT EXISTS: the planner would hash the whole accounts table
    -- for that (it cannot know the batch is small); this probes the primary key per row.
    IF EXISTS (
        SELECT 1 FROM new_transfers t
        WHERE (SELECT count(*) FROM accounts a
               WHERE a.id = ANY (ARRAY[t.debit_account, t.credit_account]))
            < CASE WHEN t.debit_account = t.credit_account THEN 1 ELSE 2 END
    ) THEN
        RAISE EXCEPTION 'a transfer names an account that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER transfers_name_existing_accounts
    AFTER INSERT ON transfers
    REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION transfers_name_existing_accounts();
