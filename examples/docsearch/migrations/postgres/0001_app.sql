-- The host application's own tables: users, their documents (with a
-- generated tsvector column and its GIN index for full-text search), scs
-- sessions, and the assistant's sealed keys. mcpauth's key and audit tables
-- are migrated by sqlstore and sqlaudit.
CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT  NOT NULL
);
CREATE TABLE documents (
    id         BIGSERIAL NOT NULL PRIMARY KEY,
    user_id    TEXT      NOT NULL REFERENCES users (id),
    title      TEXT      NOT NULL,
    body       TEXT      NOT NULL,
    created_at BIGINT    NOT NULL,
    search     tsvector  GENERATED ALWAYS AS (setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')) STORED
);
CREATE INDEX documents_user_id_idx ON documents (user_id, created_at);
CREATE INDEX documents_search_idx ON documents USING GIN (search);
CREATE TABLE sessions (
    token  TEXT        NOT NULL PRIMARY KEY,
    data   BYTEA       NOT NULL,
    expiry TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);
CREATE TABLE assistant_keys (
    user_id    TEXT   NOT NULL PRIMARY KEY REFERENCES users (id),
    key_id     TEXT   NOT NULL,
    sealed     BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL
);
