#!/usr/bin/env bash
# Checks of what deploy/ and the Dockerfile promise, for a machine that can
# neither pull base images nor run containers (this one: no registry is
# reachable, and podman's runtime may not set rlimits in the sandbox):
#   1. the Kubernetes manifests validate against the API schemas (strict);
#   2. every YAML file lints;
#   3. the shell scripts the compose file mounts parse;
#   4. the binary needs no shared library beyond those of the runtime image
#      (distroless cc: glibc, libgcc_s), and its probe command exists.
# Usage: deploy/check.sh [path to the customer-api binary]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/customer-api}

if ! command -v kubernetes-validate >/dev/null || ! command -v yamllint >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate yamllint
fi

echo "== kubernetes-validate --strict deploy/k8s"
manifests=$(ls deploy/k8s/*.yaml | grep -v kustomization.yaml)
# shellcheck disable=SC2086
kubernetes-validate --strict --quiet $manifests
echo "manifests: valid ($(echo "$manifests" | wc -l) files)"

echo "== yamllint deploy"
yamllint -d '{extends: relaxed, rules: {line-length: {max: 120}}}' --strict deploy
echo "yaml: clean"

echo "== compose scripts"
for script in deploy/compose/*.sh; do bash -n "$script"; done
echo "scripts: parse"

echo "== $binary fits the runtime image"
allowed='^(linux-vdso\.so|libc\.so|libm\.so|libgcc_s\.so|libdl\.so|libpthread\.so|librt\.so|ld-linux-x86-64\.so|/lib64/ld-linux-x86-64\.so)'
needed=$(ldd "$binary" | awk '{print $1}')
extra=$(echo "$needed" | grep -Ev "$allowed" || true)
if [ -n "$extra" ]; then
  echo "the binary needs libraries the distroless cc image lacks: $extra" >&2
  exit 1
fi
"$binary" probe --help >/dev/null
grep -q '"probe", "/readyz"' Dockerfile
echo "binary: needs only $(echo "$needed" | tr '\n' ' ')"
