#!/usr/bin/env bash
# Management API benchmark (see BENCHMARKS.md): on one backend, measures idle memory,
# creating 100,000 users one request each, then (after importing 900,000 more) walking,
# fetching and listing at 1,000,000 users.
#
#   bench/api.sh sqlite
#   bench/api.sh postgres        # uses a fresh database tessera_bench on 127.0.0.1:5432
#
# Needs release binaries: cargo build --release -p tessera -p tessera-bench
# The server runs on core 0 and the load generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/tessera-bench.XXXXXX)"
port="${PORT:-18443}"
url="http://127.0.0.1:$port"
create_count="${CREATE_COUNT:-100000}"
import_count="${IMPORT_COUNT:-900000}"

env_args=()
if [ "$backend" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    env_args=(TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench TESSERA_PUBLIC_URL="http://localhost:$port")
    # Nodes on PostgreSQL share a secrets key; a fresh one for this run.
    mkdir -p "$work/data" && head -c 32 /dev/urandom > "$work/data/secrets.key"
fi

env "${env_args[@]}" TESSERA_LOG__LEVEL=warn taskset -c 0 "$target/tessera" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
token="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"
export TESSERA_TOKEN="$token"
bench() { taskset -c 1 "$target/tessera-bench" --server "$url" "$@"; }
rss() { echo "$(( $(ps -o rss= -p "$server") / 1024 )) MiB"; }

echo "backend: $backend ($(nproc) cores, $(uname -r))"
sleep 3
echo "idle RSS after start: $(rss)"
bench create-users --count "$create_count" --concurrency 16 --prefix create
echo "RSS after creating $create_count users: $(rss)"
bench import-users --count "$import_count" --concurrency 2 --prefix seed
echo "RSS after importing $import_count more: $(rss)"
bench read --seconds 20 --concurrency 16 --page 100
echo "RSS after the read phase: $(rss)"
if [ "$backend" = sqlite ]; then
    echo "database size: $(du -sh "$work/data" | cut -f1)"
else
    echo "database size: $(psql -h 127.0.0.1 -U postgres -Atc "SELECT pg_size_pretty(pg_database_size('tessera_bench'))" postgres)"
fi
kill -TERM $server
wait $server || true
rm -rf "$work"
