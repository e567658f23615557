-- No NOTIFY on the write path. A transaction that notifies holds
-- PostgreSQL's notification queue lock from pre-commit to the end of its
-- commit (WAL flush included), so every write that appends an event would
-- commit one at a time: measured with bench/run.sh --events-only, renames
-- fell from 1,661 to 525 a second. The readers of the log (subscriptions,
-- the event bus, the webhook workers) poll it instead, on an index, only
-- while they have something to do.
DROP TRIGGER events_notify_appended ON events;
DROP FUNCTION notify_events_appended();

CREATE OR REPLACE FUNCTION queue_webhook_delivery() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (event_id, customer_id, tm_create, next_attempt_at)
    SELECT NEW.id, c.id, NEW.tm_create, now()
    FROM customers c
    WHERE c.id = NEW.customer_id AND c.webhook_uri <> '';
    RETURN NULL;
END;
$$;
