-- API key records. Timestamps are Unix microseconds (UTC); NULL means unset.
-- Scopes and allowed CIDRs are JSON arrays, metadata a JSON object.
CREATE TABLE {{prefix}}keys (
    id             TEXT    NOT NULL PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    name           TEXT    NOT NULL DEFAULT '',
    hash           BLOB    NOT NULL,
    pepper_version INTEGER NOT NULL DEFAULT 0,
    scopes         TEXT    NOT NULL DEFAULT '[]',
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER,
    revoked_at     INTEGER,
    last_used_at   INTEGER,
    rate_limit     INTEGER NOT NULL DEFAULT 0,
    allowed_cidrs  TEXT    NOT NULL DEFAULT '[]',
    metadata       TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX {{prefix}}keys_user_id_idx ON {{prefix}}keys (user_id, created_at);
