CREATE TABLE access_keys (
    id            uuid        PRIMARY KEY,
    customer_id   uuid        NOT NULL REFERENCES customers (id),
    name          text        NOT NULL DEFAULT '',
    detail        text        NOT NULL DEFAULT '',
    -- SHA-256 of the whole key, hex-encoded; the key itself is never stored.
    token_hash    text        NOT NULL,
    -- The first characters of the key, so that people can tell keys apart.
    token_prefix  text        NOT NULL,
    tm_expire     timestamptz NOT NULL,
    tm_last_used  timestamptz,
    tm_create     timestamptz NOT NULL DEFAULT now(),
    tm_update     timestamptz,
    tm_delete     timestamptz
);

CREATE UNIQUE INDEX access_keys_token_hash_key ON access_keys (token_hash);

-- Serves the keyset pagination of a customer's live keys, newest first.
CREATE INDEX access_keys_customer_page_idx
    ON access_keys (customer_id, tm_create DESC, id DESC) WHERE tm_delete IS NULL;
