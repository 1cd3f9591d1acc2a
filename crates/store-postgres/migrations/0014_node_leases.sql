-- Each node's own lease, written with its heartbeat: a node is taken for gone after its own
-- lease, not the looking node's (nodes started with different --node-lease-secs).
ALTER TABLE nodes ADD COLUMN lease_ms BIGINT;
