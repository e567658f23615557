DROP INDEX webhook_deliveries_customer_listing_idx;
DROP INDEX webhook_deliveries_listing_idx;
DROP TABLE webhook_attempts;
ALTER TABLE webhook_deliveries DROP COLUMN earlier_attempts;
