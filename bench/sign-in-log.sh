#!/usr/bin/env bash
# Sign-in log bytes per refused token request (see BENCHMARKS.md): client-credentials
# requests with a wrong secret for SECONDS_EACH seconds against a fresh SQLite
# database, then the sign-in log's pages (its table and indexes, from SQLite's
# dbstat) divided by the requests refused.
#
#   bench/sign-in-log.sh                      # every request from one address
#   SOURCES=distinct bench/sign-in-log.sh     # a new address per request (X-Forwarded-For)
#   KIND=success bench/sign-in-log.sh         # the right secret: bytes per token
#   TESSERA=/tmp/old/tessera bench/sign-in-log.sh   # another build of the server
#
# Needs binaries (cargo build --release -p tessera -p tessera-bench; PROFILE=debug for
# a debug build: the bytes do not depend on it; the load generator must be this
# version's, TESSERA_BENCH names another) and the sqlite3 command.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/${PROFILE:-release}"
server_bin="${TESSERA:-$target/tessera}"
bench_bin="${TESSERA_BENCH:-$target/tessera-bench}"
work="$(mktemp -d /tmp/tessera-log.XXXXXX)"
port="${PORT:-18447}"
url="http://127.0.0.1:$port"
seconds="${SECONDS_EACH:-5}"
concurrency="${CONCURRENCY:-32}"

bench_args=(--wrong-secret)
echo 'trusted_proxies = ["127.0.0.1"]' > "$work/config.toml"
if [ "${SOURCES:-one}" = distinct ]; then
    bench_args+=(--distinct-sources)
fi
if [ "${KIND:-failure}" = success ]; then
    bench_args=()
fi

TESSERA_LOG__LEVEL=warn "$server_bin" serve --config "$work/config.toml" --data-dir "$work/data" \
    --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
export TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"

line="$("$bench_bin" --server "$url" client-credentials --seconds "$seconds" \
    --concurrency "$concurrency" "${bench_args[@]}")"
echo "$line"
kill $server
wait $server 2>/dev/null || true

requests="$(echo "$line" | awk '{ for (i = 1; i <= NF; i++) if ($i == "requests,") print $(i-1) }')"
database="$work/data/tessera.db"
bytes="$(sqlite3 "$database" "SELECT SUM(pgsize) FROM dbstat JOIN sqlite_schema AS s ON dbstat.name = s.name WHERE s.tbl_name = 'sign_ins'")"
entries="$(sqlite3 "$database" "SELECT COUNT(*) FROM sign_ins")"
echo "sign-in log: $entries entries, $bytes bytes (table and indexes) for $requests requests" \
    "= $(awk -v b="$bytes" -v r="$requests" 'BEGIN { printf "%.1f", b / r }') bytes per request"
rm -rf "$work"
