#!/usr/bin/env bash
# Admin console page benchmark (see BENCHMARKS.md): on SQLite, imports 1,000,000 users,
# then an administrator signs in through the pages and the console's own code flow,
# and each console page is fetched for SECONDS (default 20), CONCURRENCY (default 4)
# at a time.
#
#   bench/console.sh
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

TESSERA_LOG__LEVEL=warn TESSERA_PUBLIC_URL="$url" taskset -c 0 "$target/tessera" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
export TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"
bench() { taskset -c 1 "$target/tessera-bench" --server "$url" "$@"; }

echo "backend: sqlite ($(nproc) cores, $(uname -r))"
bench import-users --count "$import_count" --concurrency 2 --prefix seed
bench console-pages --seconds "${SECONDS_EACH:-20}" --concurrency "${CONCURRENCY:-4}"
echo "database size: $(du -sh "$work/data" | cut -f1)"
