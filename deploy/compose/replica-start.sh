#!/bin/bash
# The replica: cloned from the primary on first start (pg_basebackup -R
# writes standby.signal and the connection to stream from), then a hot
# standby that serves read-only queries.
set -euo pipefail
export PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_basebackup -h postgres-primary -U customer_api -D "$PGDATA" -R -X stream -c fast; do
    echo "waiting for the primary"; sleep 2
  done
  chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on
