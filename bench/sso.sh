#!/usr/bin/env bash
# Single sign-on benchmark (see BENCHMARKS.md): with an existing session, SAML SSO
# responses per second (the AuthnRequest read, the app sign-in step, the assertion
# signed with RSA-SHA256, the auto-post page) side by side with OpenID Connect
# authorization codes in the same run, against one server, one user, one load
# generator.
#
#   bench/sso.sh sqlite
#   bench/sso.sh postgres
#
# TESSERA_BIN=/path/to/tessera runs another build of the server (a previous
# release, for a side-by-side run) against this tree's load generator.
#
# Needs release binaries (cargo build --release -p tessera -p tessera-bench). The
# server runs on core 0 and the load generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/tessera-sso.XXXXXX)"
port="${PORT:-18447}"
seconds="${SECONDS_EACH:-20}"
env_args=()
if [ "$backend" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    head -c 32 /dev/urandom > "$work/secrets.key"
    env_args=(TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench TESSERA_SECRETS_KEY_FILE="$work/secrets.key")
fi
env "${env_args[@]}" TESSERA_PUBLIC_URL="http://localhost:$port" TESSERA_LOG__LEVEL=warn taskset -c 0 "${TESSERA_BIN:-$target/tessera}" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
token="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"
echo "backend: $backend ($(nproc) cores, $(uname -r)); $seconds s each; server on CPU 0, load generator on CPU 1"
for concurrency in ${CONCURRENCY:-1 8 32}; do
    echo "c=$concurrency"
    taskset -c 1 "$target/tessera-bench" --server "http://localhost:$port" --token "$token" single-sign-on --seconds "$seconds" --concurrency "$concurrency"
done
