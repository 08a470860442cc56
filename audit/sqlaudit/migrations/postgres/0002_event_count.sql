-- event_count is audit.Event.Count: the number of MCP messages an
-- aggregated event stands for, 0 for an ordinary event (every row written
-- before this migration). The hash chain covers it only when it is 2 or
-- more, so older chains verify unchanged.
ALTER TABLE {{prefix}}audit_events ADD COLUMN event_count BIGINT NOT NULL DEFAULT 0;
