-- Wakes the readers that follow the event log (subscriptions on every
-- server, the event bus publisher) when events commit: NOTIFY is delivered
-- at commit, and a rolled-back insert sends nothing. One notification per
-- statement: readers only need to know that there is something to read.
CREATE FUNCTION notify_events_appended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();
