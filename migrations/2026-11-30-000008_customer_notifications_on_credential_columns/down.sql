DROP TRIGGER customers_credential_removal ON customers;
DROP TRIGGER customers_credential_change ON customers;
CREATE TRIGGER customers_credential_change AFTER UPDATE OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION notify_credential_change();
