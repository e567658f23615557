CREATE TABLE customers (
    id              uuid        PRIMARY KEY,
    username        text        NOT NULL,
    name            text        NOT NULL DEFAULT '',
    detail          text        NOT NULL DEFAULT '',
    webhook_method  text        CHECK (webhook_method IN ('GET', 'POST', 'PUT', 'DELETE')),
    webhook_uri     text        NOT NULL DEFAULT '',
    line_secret     text        NOT NULL DEFAULT '',
    line_token      text        NOT NULL DEFAULT '',
    permission_ids  uuid[]      NOT NULL DEFAULT '{}'
                                CHECK (array_position(permission_ids, NULL) IS NULL),
    -- Marks the platform operator's own customer: its super admins run the
    -- platform, and it can never be deleted.
    is_platform     boolean     NOT NULL DEFAULT false,
    tm_create       timestamptz NOT NULL DEFAULT now(),
    tm_update       timestamptz,
    tm_delete       timestamptz
);

-- Usernames are unique among live customers, case-insensitively; the database
-- enforces it so that concurrent creates cannot both win.
CREATE UNIQUE INDEX customers_username_live_key
    ON customers (lower(username)) WHERE tm_delete IS NULL;

-- Serves the keyset pagination of live customers, newest first.
CREATE INDEX customers_live_page_idx
    ON customers (tm_create DESC, id DESC) WHERE tm_delete IS NULL;

CREATE UNIQUE INDEX customers_one_platform_key
    ON customers (is_platform) WHERE is_platform;
