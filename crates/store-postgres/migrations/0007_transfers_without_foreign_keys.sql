-- Issue 17: a transfer's accounts are no longer checked by foreign keys. The ledger in the
-- writer creates every account before (or in the same batch as) the first transfer that
-- names it, and nothing deletes accounts; SQLite keeps the same check because there it is
-- a row-id lookup. On PostgreSQL each check is a trigger running a query and locking the
-- account row (FOR KEY SHARE, a WAL record of its own), two per transfer: about a tenth of
-- the writer's backend time. Dropping them gave 3,108 -> 3,634 lifecycles/s (three
-- alternating pairs, scripts/bench-nodes.sh 1, -n 60000); docs/architecture.md.
ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_debit_account_fkey;
ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_credit_account_fkey;
