#!/usr/bin/env bash
# The "Deploying" figures, one command: installs what it needs (wrk,
# pgbench) and runs bench/deploy.py, which starts a private primary and a
# streaming replica of it, prints the tables and writes them to
# bench/deploy-results.md. It builds nothing in this tree: pass the server
# with --binary (default target/release/customer-api); the binary before the
# login limiter moved to PostgreSQL is built from a git worktree in /tmp.
# Options: see `bench/deploy.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need pgbench || ! need psql; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk postgresql-client >/dev/null
fi
exec python3 bench/deploy.py "$@"
