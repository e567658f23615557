-- One row per login token, so that a single token can be revoked (logout)
-- and so can all of an agent's tokens but one (password change).
CREATE TABLE sessions (
    id          uuid        PRIMARY KEY,
    agent_id    uuid        NOT NULL REFERENCES agents (id),
    tm_create   timestamptz NOT NULL DEFAULT now(),
    tm_expire   timestamptz NOT NULL,
    tm_revoke   timestamptz
);

CREATE INDEX sessions_agent_live_idx ON sessions (agent_id) WHERE tm_revoke IS NULL;
CREATE INDEX sessions_expire_idx ON sessions (tm_expire);
