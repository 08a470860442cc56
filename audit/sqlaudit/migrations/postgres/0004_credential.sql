-- credential is audit.Event.Credential: the kind of credential a request
-- authenticated with ("api_key", "jwt", "opaque_token"). '' for rows written
-- before this migration and for events without one; the hash chain covers
-- it only when set (canonical form v3), so older chains verify unchanged.
ALTER TABLE {{prefix}}audit_events ADD COLUMN credential TEXT NOT NULL DEFAULT '';
