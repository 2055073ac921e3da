#!/usr/bin/env bash
# Single-request writes on PostgreSQL, side by side in one run (see BENCHMARKS.md):
# creating users with one `POST /api/v1/users` each, 16 concurrent, first with
# every write in its own transaction (database_group_commit = false, the path
# before issue 16), then with group commit (the default). Each starts from an
# empty database.
#
#   bench/write-path.sh            # CREATE_COUNT=20000 by default
#
# Needs release binaries: cargo build --release -p tessera -p tessera-bench
# The server runs on core 0 and the load generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/release"
port="${PORT:-18443}"
url="http://127.0.0.1:$port"
create_count="${CREATE_COUNT:-20000}"

run() {
    local group_commit="$1"
    local work
    work="$(mktemp -d /tmp/tessera-bench.XXXXXX)"
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    mkdir -p "$work/data" && head -c 32 /dev/urandom > "$work/data/secrets.key"
    TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench \
    TESSERA_PUBLIC_URL="http://localhost:$port" \
    TESSERA_DATABASE_GROUP_COMMIT="$group_commit" TESSERA_LOG__LEVEL=warn \
        taskset -c 0 "$target/tessera" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
        > "$work/serve.out" 2> "$work/serve.err" &
    local server=$!
    for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")" \
        taskset -c 1 "$target/tessera-bench" --server "$url" \
        create-users --count "$create_count" --concurrency 16 --prefix "gc$group_commit"
    echo "audit events: $(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM audit_events" tessera_bench)"
    kill -TERM $server
    wait $server || true
    rm -rf "$work"
}

echo "PostgreSQL $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version' postgres), $(nproc) cores, $(uname -r)"
echo "== each write its own transaction (database_group_commit = false)"
run false
echo "== group commit (database_group_commit = true, the default)"
run true
