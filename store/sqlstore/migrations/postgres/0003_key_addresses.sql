-- The client addresses each key was used from (store.AddressRecorder), so
-- that key.new_ip fires once per key and address across restarts and
-- instances. At most 64 rows per key; deleting a key row deletes them.
CREATE TABLE {{prefix}}key_addresses (
    key_id     TEXT        NOT NULL REFERENCES {{prefix}}keys (id) ON DELETE CASCADE,
    address    TEXT        NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, address)
);
