CREATE OR REPLACE FUNCTION queue_webhook_delivery() RETURNS trigger
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

CREATE FUNCTION notify_events_appended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();
