#!/usr/bin/env bash
# The benchmark suite, one command: installs what it needs (wrk, pgbench),
# builds the release binary, and runs bench/run.py, which prints the table
# and writes it to bench/results.md. Options: see `bench/run.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/tools.sh
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
# The peer section (bench/peer.py) installs PostGraphile with npm; Node 22
# itself comes from npm, so any npm will do.
case " $* " in
  *" --no-peer "*|*" --abuse-only "*|*" --search-only "*|*" --events-only "*) ;;
  *) need npm || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; } ;;
esac
# --binary PATH runs a prebuilt server: nothing to build.
case " $* " in
  *" --binary "*|*" --binary="*) ;;
  *) cargo build --release --quiet ;;
esac
exec python3 bench/run.py "$@"
