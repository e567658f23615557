DROP INDEX customers_deleted_page_idx;
DROP INDEX customers_name_trgm_idx;
DROP INDEX customers_username_trgm_idx;
-- Ours: the up migration created it, and nothing else in this database uses it.
DROP EXTENSION pg_trgm;
DROP TRIGGER customers_credential_change ON customers;
CREATE TRIGGER customers_credential_change AFTER UPDATE ON customers
    FOR EACH ROW
    WHEN (OLD.tm_delete IS DISTINCT FROM NEW.tm_delete
          OR OLD.is_platform IS DISTINCT FROM NEW.is_platform
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION notify_credential_change();
ALTER TABLE customers DROP COLUMN tm_freeze;
