DROP TRIGGER events_queue_webhook_delivery ON events;
DROP FUNCTION queue_webhook_delivery();
DROP TABLE webhook_deliveries;
ALTER TABLE customers DROP COLUMN webhook_secret;
