-- Which process holds a node id (a random id each start): a second process started with a
-- running node's --node-id is refused instead of beating for both, and a node id is taken
-- over only from a process that stopped beating.
ALTER TABLE nodes ADD COLUMN instance TEXT;
