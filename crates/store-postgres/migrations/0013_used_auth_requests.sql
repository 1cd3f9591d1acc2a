-- The CIBA auth_req_ids exchanged for tokens (SQLite 0012): a second exchange is refused
-- (invalid_grant), also after a restart and on another node (the check runs in the pass,
-- under the pass lock). Each row is kept until keep_until_ms (real time); the next row
-- written drops those past it.
CREATE TABLE used_auth_requests (
    jti TEXT PRIMARY KEY,
    api_user TEXT NOT NULL,
    used_at_ms BIGINT NOT NULL,
    keep_until_ms BIGINT NOT NULL
);
CREATE INDEX used_auth_requests_by_end ON used_auth_requests (keep_until_ms);
