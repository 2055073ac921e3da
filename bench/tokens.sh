#!/usr/bin/env bash
# Token endpoint benchmark (see BENCHMARKS.md): client-credentials token requests per
# second with client_secret_basic, each token an ES256 JWT (and, for Tessera, each
# request logged as a workload sign-in), side by side with npm `oidc-provider` (the
# certified Node.js provider) in the same run, driven by the same load generator.
#
#   bench/tokens.sh sqlite
#   bench/tokens.sh postgres
#   PEER=0 bench/tokens.sh sqlite        # Tessera only
#   FLOOD=16 PEER=0 bench/tokens.sh postgres   # with 16 hostile loops beside
#                                        # (NUL client ids, wrong secrets)
#   BASELINE=/path/to/old/tessera ROUNDS=3 PEER=0 bench/tokens.sh sqlite
#                                        # against a previous release's binary, in
#                                        # the same run: rounds alternate the two
#                                        # servers, each on a fresh database
#
# Needs release binaries (cargo build --release -p tessera -p tessera-bench) and, for
# the peer, `npm ci --prefix bench/oidc-provider`. Each server runs alone on core 0
# and the load generator on core 1 (taskset); SERVER_CPUS=0,1 CLIENT_CPUS=0,1 lets
# both use both cores (oidc-provider runs on one thread either way).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/tessera-tokens.XXXXXX)"
port="${PORT:-18445}"
peer_port="${PEER_PORT:-18446}"
url="http://127.0.0.1:$port"
seconds="${SECONDS_EACH:-20}"
levels="${CONCURRENCY:-1 32 128}"
results="$work/results"
server_cpus="${SERVER_CPUS:-0}"
client_cpus="${CLIENT_CPUS:-1}"

# Runs the Tessera binary $1 on a fresh database and measures every level as $2.
run_tessera() {
    local binary="$1" label="$2" env_args=()
    rm -rf "$work/data"
    if [ "$backend" = postgres ]; then
        psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" postgres
        psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_bench" postgres
        head -c 32 /dev/urandom > "$work/secrets.key"
        env_args=(TESSERA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench TESSERA_PUBLIC_URL="http://localhost:$port" TESSERA_SECRETS_KEY_FILE="$work/secrets.key")
    fi
    env "${env_args[@]}" TESSERA_LOG__LEVEL=warn taskset -c "$server_cpus" "$binary" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.out" 2> "$work/serve.err" &
    server=$!
    for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    export TESSERA_TOKEN="$(grep -o 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve.out")"
    for concurrency in $levels; do
        line="$(taskset -c "$client_cpus" "$target/tessera-bench" --server "$url" client-credentials --seconds "$seconds" --concurrency "$concurrency" --flood "${FLOOD:-0}")"
        echo "$label c=$concurrency: $line"
        echo "$label $concurrency $line" >> "$results"
    done
    kill $server
    wait $server 2>/dev/null || true
}

# The mean requests/s of every run labelled $1 at concurrency $2.
mean_rate() {
    awk -v l="$1" -v c="$2" '$1 == l && $2 == c { for (i = 1; i <= NF; i++) if ($i == "requests/s,") { s += $(i-1); n++ } } END { if (n) printf "%.0f", s / n }' "$results"
}

trap 'kill ${server:-} 2>/dev/null || true; kill ${peer:-} 2>/dev/null || true' EXIT
echo "backend: $backend ($(nproc) cores, $(uname -r)); $seconds s per level; servers on CPU $server_cpus, load generator on CPU $client_cpus"
if [ -n "${BASELINE:-}" ]; then
    for round in $(seq 1 "${ROUNDS:-1}"); do
        run_tessera "$target/tessera" tessera
        run_tessera "$BASELINE" baseline
    done
    for concurrency in $levels; do
        ours="$(mean_rate tessera "$concurrency")"
        theirs="$(mean_rate baseline "$concurrency")"
        echo "c=$concurrency: tessera $ours/s, baseline $theirs/s, change $(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%+.1f%%", (a / b - 1) * 100 }')"
    done
else
    run_tessera "$target/tessera" tessera
fi

if [ "${PEER:-1}" != 0 ]; then
    if [ ! -d bench/oidc-provider/node_modules ]; then
        npm ci --prefix bench/oidc-provider --no-audit --no-fund --loglevel=error
    fi
    (cd bench/oidc-provider && NODE_ENV=production PORT="$peer_port" exec taskset -c "$server_cpus" node server.mjs) > "$work/peer.out" 2> "$work/peer.err" &
    peer=$!
    for _ in $(seq 1 100); do grep -q "^Listening" "$work/peer.out" 2>/dev/null && break; sleep 0.1; done
    for concurrency in $levels; do
        line="$(taskset -c "$client_cpus" "$target/tessera-bench" --server "http://127.0.0.1:$peer_port" client-credentials \
            --seconds "$seconds" --concurrency "$concurrency" --token-path /token \
            --client-id bench --client-secret bench-secret-bench-secret-bench-secret --scope api)"
        echo "oidc-provider c=$concurrency: $line"
        echo "peer $concurrency $line" >> "$results"
    done
    kill $peer
    wait $peer 2>/dev/null || true
    # Ratio of throughputs per concurrency level.
    for concurrency in $levels; do
        ours="$(awk -v c="$concurrency" '$1 == "tessera" && $2 == c { for (i = 1; i <= NF; i++) if ($i == "requests/s,") print $(i-1) }' "$results")"
        theirs="$(awk -v c="$concurrency" '$1 == "peer" && $2 == c { for (i = 1; i <= NF; i++) if ($i == "requests/s,") print $(i-1) }' "$results")"
        if [ -n "$ours" ] && [ -n "$theirs" ]; then
            echo "c=$concurrency: tessera/oidc-provider = $(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')"
        fi
    done
fi
