#!/usr/bin/env bash
# Token endpoint benchmark (see BENCHMARKS.md): client-credentials token requests per
# second with client_secret_basic, each token signed (ES256) and logged.
#
#   bench/tokens.sh sqlite
#   bench/tokens.sh postgres
#
# Needs release binaries: cargo build --release -p tessera -p tessera-bench
# The server runs on core 0 and the load generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/tessera-tokens.XXXXXX)"
port="${PORT:-18445}"
url="http://127.0.0.1:$port"
seconds="${SECONDS_EACH:-20}"

env_args=()
if [ "$backend" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    head -c 32 /dev/urandom > "$work/secrets.key"
    env_args=(TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench TESSERA_SECRETS_KEY_FILE="$work/secrets.key")
fi

env "${env_args[@]}" TESSERA_LOG__LEVEL=warn taskset -c 0 "$target/tessera" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
export TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"

echo "backend: $backend ($(nproc) cores, $(uname -r))"
for concurrency in 1 32; do
    taskset -c 1 "$target/tessera-bench" --server "$url" client-credentials --seconds "$seconds" --concurrency "$concurrency"
done
