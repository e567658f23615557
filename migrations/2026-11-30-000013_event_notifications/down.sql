DROP TRIGGER events_notify_appended ON events;
DROP FUNCTION notify_events_appended();
