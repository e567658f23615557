-- Attempts made before the delivery was last redelivered by hand. The
-- retry budget counts `attempts` (this round's); the history numbers every
-- attempt ever made, `earlier_attempts + attempts`, so that its numbers
-- keep counting up across redeliveries.
ALTER TABLE webhook_deliveries ADD COLUMN earlier_attempts integer NOT NULL DEFAULT 0;

-- Every settled attempt of a delivery, written by the statement that
-- settles it, so that the history and the delivery never disagree. An
-- attempt whose server died before settling it leaves a gap in the numbers.
-- The primary key is the index that lists one delivery's attempts.
CREATE TABLE webhook_attempts (
    event_id     uuid        NOT NULL REFERENCES webhook_deliveries (event_id) ON DELETE CASCADE,
    number       integer     NOT NULL CHECK (number > 0),
    tm_attempt   timestamptz NOT NULL,
    status_code  integer,
    error        text        CHECK (char_length(error) <= 512),
    PRIMARY KEY (event_id, number)
);

-- `webhookDeliveries`, newest first by queue time, for everyone and per
-- customer: a page is one index range read.
CREATE INDEX webhook_deliveries_listing_idx
    ON webhook_deliveries (tm_create DESC, event_id DESC);
CREATE INDEX webhook_deliveries_customer_listing_idx
    ON webhook_deliveries (customer_id, tm_create DESC, event_id DESC);
