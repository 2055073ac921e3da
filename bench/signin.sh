#!/usr/bin/env bash
# Sign-in benchmark (see BENCHMARKS.md): password sign-ins per second (argon2id-bound)
# and username-less passkey sign-in ceremonies per second, through the pages as a
# browser does them (flow cookie, anti-forgery token, forms; a software ES256
# authenticator for passkeys).
#
#   bench/signin.sh sqlite
#   bench/signin.sh postgres     # a fresh database tessera_bench on 127.0.0.1:5432
#
# Needs release binaries: cargo build --release -p tessera -p tessera-bench
# The server runs on core 0 and the load generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/tessera-signin.XXXXXX)"
port="${PORT:-18444}"
url="http://127.0.0.1:$port"
origin="http://localhost:$port"
seconds="${SECONDS_EACH:-30}"

env_args=()
if [ "$backend" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
    head -c 32 /dev/urandom > "$work/secrets.key"
    env_args=(TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench TESSERA_PUBLIC_URL="http://localhost:$port" TESSERA_SECRETS_KEY_FILE="$work/secrets.key")
fi

env "${env_args[@]}" TESSERA_LOG__LEVEL=warn taskset -c 0 "$target/tessera" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
export TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"
bench() { taskset -c 1 "$target/tessera-bench" --server "$url" "$@"; }

echo "backend: $backend ($(nproc) cores, $(uname -r))"
for concurrency in 1 4 16; do
    echo "concurrency $concurrency:"
    bench sign-in-password --users 50 --seconds "$seconds" --concurrency "$concurrency" --prefix "pw$concurrency"
    bench sign-in-passkey --users 50 --seconds "$seconds" --concurrency "$concurrency" --prefix "pk$concurrency" --origin "$origin"
done
