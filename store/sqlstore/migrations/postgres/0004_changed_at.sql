-- changed_at is when the key record last changed (revoked, expiry set):
-- every Guard polls it (ChangedSince) so that a change made through any
-- instance, a rotation's shortened expiry included, reaches all of them
-- within about a second even when no change channel is configured.
ALTER TABLE {{prefix}}keys ADD COLUMN changed_at TIMESTAMPTZ;
CREATE INDEX {{prefix}}keys_changed_at_idx ON {{prefix}}keys (changed_at) WHERE changed_at IS NOT NULL;
