-- instance is audit.Event.Instance (which process recorded the event) and
-- actor is audit.Event.Actor (who made a key change). Both are '' for rows
-- written before this migration; the hash chain covers them only when one
-- is set (canonical form v2), so older chains verify unchanged.
ALTER TABLE {{prefix}}audit_events ADD COLUMN instance TEXT NOT NULL DEFAULT '';
ALTER TABLE {{prefix}}audit_events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
