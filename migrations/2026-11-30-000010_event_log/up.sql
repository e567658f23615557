-- Every change the service makes appends one event here, in the change's own
-- transaction: a rolled-back change leaves none, a committed one always has
-- its event. The audit trail, webhooks and the event bus all read this log.
CREATE TABLE events (
    id           uuid        PRIMARY KEY,
    -- The platform's event name: customer_created, accesskey_deleted, ...
    type         text        NOT NULL CHECK (type ~ '^[a-z_]{1,64}$'),
    customer_id  uuid        REFERENCES customers (id),
    -- The agent or access key that made the change; NULL for the server
    -- itself (bootstrap) or an anonymous caller (a failed login).
    actor_id     uuid,
    request_id   text,
    tm_create    timestamptz NOT NULL
                 CONSTRAINT events_tm_create_in_range
                 CHECK (tm_create >= '1970-01-01 00:00:00+00' AND tm_create < '9999-01-01 00:00:00+00'),
    -- The resource as the REST API shows it, less every secret.
    data         jsonb       NOT NULL,
    -- The appending transaction. Readers that follow the log (deliveries,
    -- the event bus, subscriptions) take events in this order, only below
    -- the oldest transaction still running: an id or a timestamp is taken
    -- before commit, so following either would skip events that commit late.
    txid         xid8        NOT NULL DEFAULT pg_current_xact_id()
);

-- The audit trail, newest first: all events, one customer's, one actor's.
CREATE INDEX events_page_idx ON events (tm_create DESC, id DESC);
CREATE INDEX events_customer_page_idx ON events (customer_id, tm_create DESC, id DESC);
CREATE INDEX events_actor_page_idx ON events (actor_id, tm_create DESC, id DESC)
    WHERE actor_id IS NOT NULL;
CREATE INDEX events_txid_idx ON events (txid);
