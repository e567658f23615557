DROP FUNCTION reserve_login_attempt(text[], integer[], double precision, text, text);
DROP TABLE login_known_addresses;
DROP TABLE login_attempts;
