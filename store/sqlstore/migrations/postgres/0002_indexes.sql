-- Revocations are polled by every Guard (RevokedSince), so that a key
-- revoked by one instance stops working on all of them within about a second.
CREATE INDEX {{prefix}}keys_revoked_at_idx ON {{prefix}}keys (revoked_at) WHERE revoked_at IS NOT NULL;
-- Expiring-soon notifications list keys by expiry (ListExpiring).
CREATE INDEX {{prefix}}keys_expires_at_idx ON {{prefix}}keys (expires_at) WHERE expires_at IS NOT NULL;
