-- Loads :n customers, each with its guest agent, in two set-based
-- statements. Ids are derived from the row number so that workloads can
-- pick random existing customers; tm_create advances one second every three
-- rows, so listings cross ties. Every guest agent gets the password hash
-- :'hash' (the bootstrap admin's), so bench logins use its password.
\set ON_ERROR_STOP on
SET synchronous_commit = off;
BEGIN;
INSERT INTO customers (id, username, name, detail, webhook_method, webhook_uri,
                       line_secret, line_token, permission_ids, tm_create, tm_update)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
       'bench-customer-' || i,
       'Customer ' || i || ' Communications Ltd',
       'Account ' || i || ': contact-centre tenant with inbound queues, outbound campaigns and SMS',
       (ARRAY['POST', 'GET', 'PUT', 'DELETE', NULL])[1 + i % 5],
       CASE WHEN i % 5 = 4 THEN '' ELSE 'https://hooks.example.com/voipbin/' || md5(i::text) END,
       md5('secret' || i),
       encode(sha256(('token' || i)::bytea), 'base64') || encode(sha256(('more' || i)::bytea), 'base64'),
       ARRAY['03796e14-7cb4-11ec-9dba-e72023efd1c6'::uuid],
       timestamptz '2022-01-01 00:00:00+00' + (i / 3) * interval '1 second',
       CASE WHEN i % 7 = 0 THEN timestamptz '2024-06-16 08:37:16.952738+00' END
FROM generate_series(1, :n) AS i;
INSERT INTO agents (id, customer_id, username, password_hash, name, detail, permission,
                    is_guest, tm_create)
SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
       'bench-customer-' || i,
       :'hash',
       'guest',
       '',
       32,
       true,
       timestamptz '2022-01-01 00:00:00+00' + (i / 3) * interval '1 second'
FROM generate_series(1, :n) AS i;
COMMIT;
ANALYZE customers;
ANALYZE agents;
