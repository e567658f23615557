-- A credential depends on its customer only through `tm_delete` (a deleted
-- customer's credentials stop working) and `is_platform` (super admin
-- rights), and the shared customer count only through `tm_delete`. Editing a
-- customer's profile, LINE info or permission ids must not make every
-- server drop its whole credential cache.
DROP TRIGGER customers_credential_change ON customers;
CREATE TRIGGER customers_credential_change AFTER UPDATE ON customers
    FOR EACH ROW
    WHEN (OLD.tm_delete IS DISTINCT FROM NEW.tm_delete
          OR OLD.is_platform IS DISTINCT FROM NEW.is_platform
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION notify_credential_change();
CREATE TRIGGER customers_credential_removal AFTER DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION notify_credential_change();
