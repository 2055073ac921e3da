#!/usr/bin/env bash
# PIM across two nodes on one PostgreSQL database (see BENCHMARKS.md): a role
# activated through node A, used through node B; how soon it works there, and how
# soon after the activation's end each node refuses it, with the background jobs
# running, then with them stopped on both nodes (TESSERA_RUN_JOBS=false): the end
# is checked at every use, not by a job.
#
#   bench/pim.sh
#
# Needs release binaries (cargo build --release -p tessera -p tessera-bench) and the
# test PostgreSQL on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/tessera-pim.XXXXXX)"
rounds="${ROUNDS:-5}"
seconds="${ACTIVATION_SECONDS:-3}"
head -c 32 /dev/urandom > "$work/secrets.key"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

run() {
    local jobs="$1" a="$2" b="$3"
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_pim_bench WITH (FORCE)" postgres
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_pim_bench" postgres
    local url=postgres://postgres@127.0.0.1:5432/tessera_pim_bench
    for port in "$a" "$b"; do
        TESSERA_DATABASE_URL="$url" TESSERA_SECRETS_KEY_FILE="$work/secrets.key" \
            TESSERA_PUBLIC_URL="http://localhost:$a" TESSERA_RUN_JOBS="$jobs" TESSERA_LOG__LEVEL=warn \
            taskset -c 0 "$target/tessera" serve --data-dir "$work/data-$port" --listen "127.0.0.1:$port" \
            > "$work/serve-$port.out" 2> "$work/serve-$port.err" &
        pids+=($!)
        for _ in $(seq 1 100); do grep -q "^Listening" "$work/serve-$port.out" 2>/dev/null && break; sleep 0.1; done
    done
    local token
    token="$(grep -ho 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve-$a.out" "$work/serve-$b.out" | head -1)"
    echo "jobs: $jobs"
    taskset -c 1 "$target/tessera-bench" --server "http://localhost:$a" --token "$token" \
        pim-across-nodes --other "http://localhost:$b" --rounds "$rounds" --seconds "$seconds"
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    pids=()
}

echo "PostgreSQL; two nodes; $(nproc) cores, $(uname -r); both servers on CPU 0, the probe on CPU 1"
run true 18461 18462
run false 18463 18464
