-- Applied by bench/peer.py to the benchmark's database only (never to
-- migrations/): what PostGraphile needs to answer the same questions as
-- our server, on the same indexes.

-- guestAgent: PostGraphile turns a function taking the row into a field of
-- the row's type (a computed column). The guest agent is the customer's
-- agent with is_guest set, as our server's dataloader reads it
-- (agents_guest_key serves it).
CREATE OR REPLACE FUNCTION customers_guest_agent(c customers) RETURNS agents
    LANGUAGE sql STABLE
AS $$
    SELECT * FROM agents a WHERE a.customer_id = c.id AND a.is_guest
$$;

-- PostGraphile offers orderBy and condition only on indexed columns; these
-- two are covered by the partial index customers_live_page_idx
-- (tm_create DESC, id DESC) WHERE tm_delete IS NULL, which our listing uses.
COMMENT ON COLUMN customers.tm_create IS E'@behavior +orderBy';
COMMENT ON COLUMN customers.tm_delete IS E'@behavior +filterBy';
