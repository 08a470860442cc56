-- The client addresses each key was used from (store.AddressRecorder), so
-- that key.new_ip fires once per key and address across restarts and
-- instances. At most 64 rows per key. No foreign key to the key table, so
-- that dropping or rebuilding it is not blocked: rows of deleted keys stay
-- until deleted (see the package doc).
CREATE TABLE {{prefix}}key_addresses (
    key_id     TEXT        NOT NULL,
    address    TEXT        NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, address)
);
