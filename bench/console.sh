#!/usr/bin/env bash
# Admin console page benchmark (see BENCHMARKS.md): on SQLite, imports 1,000,000 users,
# then an administrator signs in through the pages and the console's own code flow,
# and each console page is fetched for SECONDS (default 20), CONCURRENCY (default 4)
# at a time.
#
#   bench/console.sh             # SQLite
#   bench/console.sh postgres    # a fresh database tessera_bench on 127.0.0.1:5432
#
# Needs release binaries: cargo build --release -p tessera -p tessera-bench
# The server runs on core 0 and the load generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/tessera-console-bench.XXXXXX)"
port="${PORT:-18444}"
url="http://localhost:$port"
import_count="${IMPORT_COUNT:-1000000}"
backend="${1:-sqlite}"

env_args=()
if [ "$backend" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    env_args=(TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench)
    # Nodes on PostgreSQL share a secrets key; a fresh one for this run.
    mkdir -p "$work/data" && head -c 32 /dev/urandom > "$work/data/secrets.key"
fi

env "${env_args[@]}" TESSERA_LOG__LEVEL=warn TESSERA_PUBLIC_URL="$url" taskset -c 0 "$target/tessera" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
if ! grep -q "^Listening" "$work/serve.out"; then echo "the server did not start:"; cat "$work/serve.err"; exit 1; fi
export TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"
bench() { taskset -c 1 "$target/tessera-bench" --server "$url" "$@"; }

echo "backend: $backend ($(nproc) cores, $(uname -r))"
bench import-users --count "$import_count" --concurrency 2 --prefix seed
if [ "$backend" = postgres ]; then
    # This machine's PostgreSQL runs with autovacuum off: analyse the bulk-loaded
    # table as autovacuum would, or the planner sorts a million rows for a page.
    psql -h 127.0.0.1 -U postgres -qc "ANALYZE" tessera_bench
fi
bench console-pages --seconds "${SECONDS_EACH:-20}" --concurrency "${CONCURRENCY:-4}"
if [ "$backend" = sqlite ]; then
    echo "database size: $(du -sh "$work/data" | cut -f1)"
else
    echo "database size: $(psql -h 127.0.0.1 -U postgres -Atc "SELECT pg_size_pretty(pg_database_size('tessera_bench'))" postgres)"
fi
