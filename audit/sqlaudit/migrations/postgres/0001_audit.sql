-- Audit events. seq is assigned from audit_head in commit order, so it is
-- gap-free and strictly increasing. Empty strings mean unset; arguments and
-- attributes are JSON text or NULL. prev_hash and hash are the SHA-256 chain
-- (NULL when the store does not chain).
CREATE TABLE {{prefix}}audit_events (
    seq              BIGINT      NOT NULL PRIMARY KEY,
    id               TEXT        NOT NULL,
    event_time       TIMESTAMPTZ NOT NULL,
    request_id       TEXT        NOT NULL DEFAULT '',
    user_id          TEXT        NOT NULL DEFAULT '',
    key_id           TEXT        NOT NULL DEFAULT '',
    outcome          TEXT        NOT NULL DEFAULT '',
    reason           TEXT        NOT NULL DEFAULT '',
    action           TEXT        NOT NULL DEFAULT '',
    method           TEXT        NOT NULL DEFAULT '',
    tool             TEXT        NOT NULL DEFAULT '',
    resource_uri     TEXT        NOT NULL DEFAULT '',
    prompt           TEXT        NOT NULL DEFAULT '',
    rpc_id           TEXT        NOT NULL DEFAULT '',
    session_id       TEXT        NOT NULL DEFAULT '',
    protocol_version TEXT        NOT NULL DEFAULT '',
    status           INTEGER     NOT NULL DEFAULT 0,
    duration_ns      BIGINT      NOT NULL DEFAULT 0,
    client_ip        TEXT        NOT NULL DEFAULT '',
    user_agent       TEXT        NOT NULL DEFAULT '',
    arguments        TEXT,
    attributes       TEXT,
    prev_hash        BYTEA,
    hash             BYTEA
);
CREATE INDEX {{prefix}}audit_events_time_idx ON {{prefix}}audit_events (event_time, seq);
CREATE INDEX {{prefix}}audit_events_user_idx ON {{prefix}}audit_events (user_id, event_time);
CREATE INDEX {{prefix}}audit_events_key_idx ON {{prefix}}audit_events (key_id, event_time);
-- One row: the last sequence number handed out and the hash of that event.
-- Writers lock it (UPDATE) for the length of a batch, which serialises
-- appends across processes.
CREATE TABLE {{prefix}}audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash BYTEA
);
INSERT INTO {{prefix}}audit_head (id, seq) VALUES (1, 0);
-- One row per Purge of a chained log: the last purged event's seq and hash,
-- from which the first remaining event's prev_hash is checked.
CREATE TABLE {{prefix}}audit_anchors (
    seq       BIGINT      NOT NULL PRIMARY KEY,
    hash      BYTEA,
    purged_at TIMESTAMPTZ NOT NULL
);
