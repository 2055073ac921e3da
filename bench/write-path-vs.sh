#!/usr/bin/env bash
# Single-request writes on PostgreSQL, two builds side by side in one run (see
# BENCHMARKS.md): creating users with one `POST /api/v1/users` each, 16
# concurrent, first with an older `tessera` binary (the write path before issue
# 16: no group commit, no callers cache), then with this one (defaults). Each
# starts from an empty database; the same load generator drives both.
#
#   OLD=/path/to/old/tessera bench/write-path-vs.sh      # CREATE_COUNT=20000 by default
#
# Build the old binary from the commit before group commit in a worktree:
#   git worktree add /tmp/old-tessera a5b19f6^
#   (cd /tmp/old-tessera && cargo build --release -p tessera) && cp "$CARGO_TARGET_DIR/release/tessera" /tmp/tessera-old
# then this one: cargo build --release -p tessera -p tessera-bench
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/release"
old="${OLD:?OLD=path of the older tessera binary}"
port="${PORT:-18443}"
url="http://127.0.0.1:$port"
create_count="${CREATE_COUNT:-20000}"

run() {
    local binary="$1" label="$2"
    local work
    work="$(mktemp -d /tmp/tessera-bench.XXXXXX)"
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    mkdir -p "$work/data" && head -c 32 /dev/urandom > "$work/data/secrets.key"
    TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench \
    TESSERA_PUBLIC_URL="http://localhost:$port" TESSERA_LOG__LEVEL=warn \
        taskset -c 0 "$binary" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
        > "$work/serve.out" 2> "$work/serve.err" &
    local server=$!
    for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")" \
        taskset -c 1 "$target/tessera-bench" --server "$url" \
        create-users --count "$create_count" --concurrency 16 --prefix "$label"
    kill -TERM $server
    wait $server || true
    rm -rf "$work"
}

echo "PostgreSQL $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version' postgres), $(nproc) cores, $(uname -r)"
echo "== before (the older binary)"
run "$old" old
echo "== now (this build, defaults)"
run "$target/tessera" new
