-- The login limiter counts here, so that its limits hold across every
-- server on the database. One row per counted attempt, per bucket: failures
-- per username (`fu:`), failures per client address (`fa:`), and attempts
-- per client address (`aa:`). Rows older than the window are pruned.
CREATE TABLE login_attempts (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket  text        NOT NULL,
    at      timestamptz NOT NULL
);
CREATE INDEX login_attempts_bucket_at_idx ON login_attempts (bucket, at);
CREATE INDEX login_attempts_at_idx ON login_attempts (at);

-- Addresses a username has logged in from: there, the per-username limit
-- does not apply, so that an attacker cannot lock a user out.
CREATE TABLE login_known_addresses (
    username  text        NOT NULL,
    address   text        NOT NULL,
    seen_at   timestamptz NOT NULL,
    PRIMARY KEY (username, address)
);

-- Counts one attempt in every bucket (answering each bucket's row id, to
-- give it back), or in none: if any bucket already holds its limit of
-- attempts within the window, nothing is counted, and the full buckets are
-- named with when they all have room again (`retry_after_seconds`).
-- `limits[i]` NULL means bucket i is counted but not limited, and so are
-- the per-username buckets (`fu:`) when `known_username` has logged in from
-- `known_address` within the last 30 days. Concurrent
-- calls for the same bucket take turns (advisory locks, taken in a fixed
-- order so that they cannot deadlock), so at most the limit get through.
CREATE FUNCTION reserve_login_attempt(
    buckets text[],
    limits integer[],
    window_seconds double precision,
    known_username text,
    known_address text,
    OUT counted_buckets text[],
    OUT ids bigint[],
    OUT refused_buckets text[],
    OUT retry_after_seconds integer
)
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    since timestamptz := started - make_interval(secs => window_seconds);
    counted integer;
    freeing timestamptz;
    wait double precision := 0;
    own_address boolean := EXISTS (
        SELECT 1 FROM login_known_addresses
        WHERE username = known_username AND address = known_address
          AND seen_at > started - interval '30 days'
    );
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(bucket, 7))
    FROM (SELECT DISTINCT unnest(buckets) AS bucket ORDER BY 1) AS sorted;
    DELETE FROM login_attempts WHERE bucket = ANY (buckets) AND at <= since;
    -- Buckets nobody tries again (random usernames) are swept now and then.
    IF random() < 0.01 THEN
        DELETE FROM login_attempts WHERE at <= since;
    END IF;
    FOR i IN 1 .. coalesce(array_length(buckets, 1), 0) LOOP
        CONTINUE WHEN limits[i] IS NULL OR (own_address AND buckets[i] LIKE 'fu:%');
        SELECT count(*) INTO counted
        FROM login_attempts WHERE bucket = buckets[i] AND at > since;
        IF counted >= limits[i] THEN
            -- Room again once this many of the oldest have left the window.
            SELECT at INTO freeing
            FROM login_attempts WHERE bucket = buckets[i] AND at > since
            ORDER BY at OFFSET counted - limits[i] LIMIT 1;
            wait := greatest(wait, extract(epoch FROM freeing - since));
            refused_buckets := array_append(refused_buckets, buckets[i]);
        END IF;
    END LOOP;
    IF wait > 0 THEN
        retry_after_seconds := greatest(1, ceil(wait))::integer;
        RETURN;
    END IF;
    WITH inserted AS (
        INSERT INTO login_attempts (bucket, at)
        SELECT unnest(buckets), started
        RETURNING bucket, id
    )
    SELECT array_agg(bucket), array_agg(id) INTO counted_buckets, ids FROM inserted;
END;
$$;
