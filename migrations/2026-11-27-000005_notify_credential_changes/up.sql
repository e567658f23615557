-- Servers cache who a credential belongs to. Any change to a row a credential
-- depends on is announced on this channel, whoever makes it (the API, another
-- replica, or an operator in psql), so that every server drops its cache.
CREATE FUNCTION notify_credential_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('credential_changes', TG_TABLE_NAME || ':' || COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER customers_credential_change AFTER UPDATE OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION notify_credential_change();
CREATE TRIGGER agents_credential_change AFTER UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION notify_credential_change();
-- tm_last_used is bookkeeping, not a credential change.
CREATE TRIGGER access_keys_credential_change AFTER UPDATE ON access_keys
    FOR EACH ROW
    WHEN (OLD.tm_delete IS DISTINCT FROM NEW.tm_delete
          OR OLD.tm_expire IS DISTINCT FROM NEW.tm_expire
          OR OLD.customer_id IS DISTINCT FROM NEW.customer_id
          OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
    EXECUTE FUNCTION notify_credential_change();
CREATE TRIGGER access_keys_credential_removal AFTER DELETE ON access_keys
    FOR EACH ROW EXECUTE FUNCTION notify_credential_change();
CREATE TRIGGER sessions_credential_change AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_credential_change();
