#!/bin/bash
# Runs once, when the primary's data directory is created: lets the
# replica stream from it with the application's password (scram-sha-256).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "ALTER ROLE \"$POSTGRES_USER\" WITH REPLICATION"
echo "host replication $POSTGRES_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"
