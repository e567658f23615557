# Sourced by the bench scripts: `need`, and wrk, pgbench and psql installed
# from Debian's packages when missing.
need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need pgbench || ! need psql; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk postgresql-client >/dev/null
fi
