-- Issue 17: a balance update no longer writes `accounts.seq`, which is now the commit that
-- created the account (other nodes find changed balances through the transfers written
-- since; src/nodes.rs). With no indexed column changed, PostgreSQL can update the row in
-- place (HOT) instead of adding an entry to each of the table's three indexes, if the page
-- has room: leave a fifth of each page free for the next versions.
ALTER TABLE accounts SET (fillfactor = 80);
