-- Where the event bus publisher has got to in the event log, one row per
-- RabbitMQ exchange. The position is advanced only after the broker has
-- confirmed every event up to it, so a publisher that dies (even SIGKILL)
-- loses nothing: whoever takes over starts again from here, and publishes
-- at most some events twice.
--
-- The row is also the lease that keeps one replica publishing at a time:
-- `holder` renews `lease_until` while it publishes, and another replica
-- takes the row over once the lease has run out. Times are the database's,
-- so that the replicas' clocks never have to agree.
CREATE TABLE event_bus_cursors (
    exchange     text        PRIMARY KEY,
    -- A position in the log as `db::models::event::LogPosition` has it: the
    -- transaction (`events.txid`, as bigint) and the event id within it.
    txid         bigint      NOT NULL,
    event_id     uuid        NOT NULL,
    holder       uuid        NOT NULL,
    lease_until  timestamptz NOT NULL,
    tm_update    timestamptz NOT NULL DEFAULT now()
);
