-- An API key's last four characters, kept in the clear beside its hash so that its owner
-- can tell their keys apart in the portal (16 bits of a 128-bit key; the key itself is
-- still stored only as a hash). Keys made before this migration have none.
ALTER TABLE api_keys ADD COLUMN ending TEXT;
