CREATE TABLE agents (
    id             uuid        PRIMARY KEY,
    customer_id    uuid        NOT NULL REFERENCES customers (id),
    username       text        NOT NULL,
    password_hash  text        NOT NULL,
    name           text        NOT NULL DEFAULT '',
    detail         text        NOT NULL DEFAULT '',
    permission     integer     NOT NULL DEFAULT 0,
    -- The admin agent created together with its customer.
    is_guest       boolean     NOT NULL DEFAULT false,
    tm_create      timestamptz NOT NULL DEFAULT now(),
    tm_update      timestamptz,
    tm_delete      timestamptz
);

-- Agents log in by username alone, so usernames are unique among all live
-- agents, case-insensitively.
CREATE UNIQUE INDEX agents_username_live_key
    ON agents (lower(username)) WHERE tm_delete IS NULL;

-- At most one guest agent per customer; also serves the guestAgent dataloader.
CREATE UNIQUE INDEX agents_guest_key
    ON agents (customer_id) WHERE is_guest;

CREATE INDEX agents_customer_id_idx ON agents (customer_id);
