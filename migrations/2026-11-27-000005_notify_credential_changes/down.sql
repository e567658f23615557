DROP TRIGGER sessions_credential_change ON sessions;
DROP TRIGGER access_keys_credential_removal ON access_keys;
DROP TRIGGER access_keys_credential_change ON access_keys;
DROP TRIGGER agents_credential_change ON agents;
DROP TRIGGER customers_credential_change ON customers;
DROP FUNCTION notify_credential_change();
