-- The CIBA auth_req_ids exchanged for tokens (their jti): a second exchange is refused
-- (invalid_grant), also after a restart. Each row is kept until keep_until_ms (real time),
-- past the time the id could still be exchanged; the next row written drops those past it.
CREATE TABLE used_auth_requests (
    jti TEXT PRIMARY KEY,
    api_user TEXT NOT NULL,
    used_at_ms INTEGER NOT NULL,
    keep_until_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX used_auth_requests_by_end ON used_auth_requests (keep_until_ms);
