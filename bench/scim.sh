#!/usr/bin/env bash
# SCIM benchmark (issue 16, see BENCHMARKS.md): on one backend, imports a million
# users, then through /scim/v2 with a provisioning token: creates 20,000 users one
# request each, PATCHes them, filters by userName among the million and by
# externalId among the SCIM users, and sends /Bulk requests of 1,000 creations.
#
#   bench/scim.sh sqlite
#   bench/scim.sh postgres       # a fresh database tessera_bench on 127.0.0.1:5432
#
# Needs release binaries: cargo build --release -p tessera -p tessera-bench
# The server runs on core 0 and the load generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
target="${CARGO_TARGET_DIR:-target}/${PROFILE:-release}"
work="$(mktemp -d /tmp/tessera-bench.XXXXXX)"
port="${PORT:-18447}"
url="http://127.0.0.1:$port"
seed="${SEED_COUNT:-1000000}"
count="${SCIM_COUNT:-20000}"

env_args=()
if [ "$backend" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    env_args=(TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench TESSERA_PUBLIC_URL="http://localhost:$port")
    mkdir -p "$work/data" && head -c 32 /dev/urandom > "$work/data/secrets.key"
fi

env "${env_args[@]}" TESSERA_LOG__LEVEL=warn taskset -c 0 "$target/tessera" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
export TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"
bench() { taskset -c 1 "$target/tessera-bench" --server "$url" "$@"; }

echo "backend: $backend ($(nproc) cores, $(uname -r))"
bench import-users --count "$seed" --concurrency 2 --prefix seed
if [ "$backend" = postgres ]; then
    # This machine's PostgreSQL runs with autovacuum off: analyse the bulk load.
    psql -h 127.0.0.1 -U postgres -qc "ANALYZE" tessera_bench
fi
bench scim --count "$count" --concurrency 16 --seconds "${SECONDS_EACH:-20}" --seeded "$seed" --bulks 3
kill -TERM $server
wait $server || true
rm -rf "$work"
