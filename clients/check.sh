#!/usr/bin/env bash
# The client-facing checks of the API contract (schema.graphql):
#   1. graphql-codegen generates typed documents for the operations a frontend
#      uses (clients/typescript/src/operations.ts) from schema.graphql;
#   2. tsc --strict compiles them with an example client that uses them;
#   3. graphql-inspector diffs schema.graphql against the last released schema
#      (clients/schema.released.graphql) and fails on a breaking change.
# Needs Node.js and npm; installs clients/typescript's packages from its lock
# file when they are missing.
set -euo pipefail
cd "$(dirname "$0")/typescript"

if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bin=node_modules/.bin

echo "== graphql-codegen: typed documents from schema.graphql"
rm -rf src/gql
"$bin/graphql-codegen" --config codegen.mjs
echo "codegen: wrote $(ls src/gql | tr '\n' ' ')for $(grep -cE '^  (query|mutation|subscription) ' src/operations.ts) operations"

echo "== tsc --strict --noEmit ($("$bin/tsc" --version))"
"$bin/tsc" --strict --noEmit -p tsconfig.json
echo "tsc: no errors"

echo "== graphql-inspector diff clients/schema.released.graphql schema.graphql"
"$bin/graphql-inspector" diff ../schema.released.graphql ../../schema.graphql
