#!/usr/bin/env bash
# Rebuilds the GraphiQL playground into assets/graphiql/ (committed, and
# embedded in the server binary by src/graphiql.rs) from the exact package
# versions in graphiql/package-lock.json. The output has fixed file names
# and is byte-for-byte the same on every run with the same lock file.
set -euo pipefail
cd "$(dirname "$0")"

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build

echo "built ../assets/graphiql:"
(cd ../assets/graphiql && ls -l --time-style=+ | tail -n +2 | awk '{ printf "  %10d  %s\n", $5, $NF }')
echo "then: cargo test --lib graphiql   (checks that src/graphiql.rs embeds exactly these files)"
