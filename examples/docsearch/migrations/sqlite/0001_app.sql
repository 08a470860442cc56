-- The host application's own tables: users, their documents (with an FTS5
-- index kept in step by triggers), scs sessions, and the assistant's sealed
-- keys. mcpauth's key and audit tables are migrated by sqlstore and sqlaudit.
CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);
CREATE TABLE documents (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT    NOT NULL REFERENCES users (id),
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX documents_user_id_idx ON documents (user_id, created_at);
CREATE VIRTUAL TABLE documents_fts USING fts5(title, body, content='documents', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN INSERT INTO documents_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END;
CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN INSERT INTO documents_fts (documents_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END;
CREATE TRIGGER documents_fts_update AFTER UPDATE ON documents BEGIN INSERT INTO documents_fts (documents_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); INSERT INTO documents_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END;
CREATE TABLE sessions (
    token  TEXT NOT NULL PRIMARY KEY,
    data   BLOB NOT NULL,
    expiry REAL NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);
CREATE TABLE assistant_keys (
    user_id    TEXT    NOT NULL PRIMARY KEY REFERENCES users (id),
    key_id     TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    expires_at INTEGER NOT NULL
);
