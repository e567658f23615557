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

. bench/tools.sh
exec python3 bench/deploy.py "$@"
