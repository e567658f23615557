-- A frozen customer keeps its rows but none of its credentials work until a
-- super admin recovers it.
ALTER TABLE customers ADD COLUMN tm_freeze timestamptz
    CONSTRAINT customers_tm_freeze_in_range
    CHECK (tm_freeze >= '1970-01-01 00:00:00+00' AND tm_freeze < '9999-01-01 00:00:00+00');

-- Freezing and recovering change whether the customer's credentials work,
-- so every server must hear of it as it hears of a deletion.
DROP TRIGGER customers_credential_change ON customers;
CREATE TRIGGER customers_credential_change AFTER UPDATE ON customers
    FOR EACH ROW
    WHEN (OLD.tm_delete IS DISTINCT FROM NEW.tm_delete
          OR OLD.tm_freeze IS DISTINCT FROM NEW.tm_freeze
          OR OLD.is_platform IS DISTINCT FROM NEW.is_platform
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION notify_credential_change();

-- `customers(filter: {search})` is a case-insensitive substring match on
-- username and name; trigram indexes serve `ILIKE '%term%'` on each column
-- (a bitmap OR of the two), so a search does not read every customer.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX customers_username_trgm_idx ON customers USING gin (username gin_trgm_ops);
CREATE INDEX customers_name_trgm_idx ON customers USING gin (name gin_trgm_ops);

-- Deleted customers listed (`status: DELETED`) in the same keyset order as
-- live ones.
CREATE INDEX customers_deleted_page_idx
    ON customers (tm_create DESC, id DESC) WHERE tm_delete IS NOT NULL;
