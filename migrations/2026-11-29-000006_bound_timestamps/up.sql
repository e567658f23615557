-- Every timestamp must be one that every surface can write and read back:
-- GraphQL's RFC 3339 and REST's `YYYY-MM-DD HH:MM:SS.ffffff` stop at year
-- 9999, and REST uses 9999-01-01 as its "unset" sentinel. A row dated past
-- that (possible by hand in SQL) made the server refuse its own cursors.
ALTER TABLE access_keys ADD CONSTRAINT access_keys_tm_expire_in_range CHECK (tm_expire >= '1970-01-01 00:00:00+00' AND tm_expire < '9999-01-01 00:00:00+00');
ALTER TABLE access_keys ADD CONSTRAINT access_keys_tm_last_used_in_range CHECK (tm_last_used >= '1970-01-01 00:00:00+00' AND tm_last_used < '9999-01-01 00:00:00+00');
ALTER TABLE access_keys ADD CONSTRAINT access_keys_tm_create_in_range CHECK (tm_create >= '1970-01-01 00:00:00+00' AND tm_create < '9999-01-01 00:00:00+00');
ALTER TABLE access_keys ADD CONSTRAINT access_keys_tm_update_in_range CHECK (tm_update >= '1970-01-01 00:00:00+00' AND tm_update < '9999-01-01 00:00:00+00');
ALTER TABLE access_keys ADD CONSTRAINT access_keys_tm_delete_in_range CHECK (tm_delete >= '1970-01-01 00:00:00+00' AND tm_delete < '9999-01-01 00:00:00+00');
ALTER TABLE agents ADD CONSTRAINT agents_tm_create_in_range CHECK (tm_create >= '1970-01-01 00:00:00+00' AND tm_create < '9999-01-01 00:00:00+00');
ALTER TABLE agents ADD CONSTRAINT agents_tm_update_in_range CHECK (tm_update >= '1970-01-01 00:00:00+00' AND tm_update < '9999-01-01 00:00:00+00');
ALTER TABLE agents ADD CONSTRAINT agents_tm_delete_in_range CHECK (tm_delete >= '1970-01-01 00:00:00+00' AND tm_delete < '9999-01-01 00:00:00+00');
ALTER TABLE customers ADD CONSTRAINT customers_tm_create_in_range CHECK (tm_create >= '1970-01-01 00:00:00+00' AND tm_create < '9999-01-01 00:00:00+00');
ALTER TABLE customers ADD CONSTRAINT customers_tm_update_in_range CHECK (tm_update >= '1970-01-01 00:00:00+00' AND tm_update < '9999-01-01 00:00:00+00');
ALTER TABLE customers ADD CONSTRAINT customers_tm_delete_in_range CHECK (tm_delete >= '1970-01-01 00:00:00+00' AND tm_delete < '9999-01-01 00:00:00+00');
ALTER TABLE sessions ADD CONSTRAINT sessions_tm_create_in_range CHECK (tm_create >= '1970-01-01 00:00:00+00' AND tm_create < '9999-01-01 00:00:00+00');
ALTER TABLE sessions ADD CONSTRAINT sessions_tm_expire_in_range CHECK (tm_expire >= '1970-01-01 00:00:00+00' AND tm_expire < '9999-01-01 00:00:00+00');
ALTER TABLE sessions ADD CONSTRAINT sessions_tm_revoke_in_range CHECK (tm_revoke >= '1970-01-01 00:00:00+00' AND tm_revoke < '9999-01-01 00:00:00+00');
