-- The key that signs a customer's webhook deliveries. Existing customers get
-- one here: 256 bits hashed from two v4 UUIDs (gen_random_uuid draws from
-- the operating system's strong random source).
ALTER TABLE customers ADD COLUMN webhook_secret text NOT NULL
    DEFAULT encode(sha256((gen_random_uuid()::text || gen_random_uuid()::text)::bytea), 'hex');

-- One row per event to deliver to a customer's webhook: the queue, kept in
-- the database so that a delivery outlives the process sending it. Servers
-- claim rows with a lease (`lease_until`), so two never send one at once.
CREATE TABLE webhook_deliveries (
    event_id         uuid        PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    customer_id      uuid        NOT NULL REFERENCES customers (id),
    state            text        NOT NULL DEFAULT 'pending'
                                 CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    tm_create        timestamptz NOT NULL DEFAULT now(),
    tm_update        timestamptz
);

-- Pending deliveries, in each customer's event order: the head of each
-- customer's queue is the only one that may be sent.
CREATE INDEX webhook_deliveries_pending_idx
    ON webhook_deliveries (customer_id, tm_create, event_id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due_idx
    ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

-- Queued in the event's own transaction, for a customer with a webhook at
-- that moment: an event that commits has its delivery, whoever appended it.
CREATE FUNCTION queue_webhook_delivery() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (event_id, customer_id, tm_create, next_attempt_at)
    SELECT NEW.id, c.id, NEW.tm_create, now()
    FROM customers c
    WHERE c.id = NEW.customer_id AND c.webhook_uri <> '';
    IF FOUND THEN
        PERFORM pg_notify('webhook_deliveries', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_queue_webhook_delivery AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION queue_webhook_delivery();
