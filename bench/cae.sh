#!/usr/bin/env bash
# Continuous access evaluation across two nodes on one PostgreSQL database (see
# BENCHMARKS.md): a user signs in on node A and an application gets tokens there;
# a change on A (sessions revoked, account disabled, password reset, in turn);
# how long until node B refuses the access token at userinfo and introspection,
# and the refresh token. TRIALS (100) changes; the median and the worst of each.
#
#   bench/cae.sh                 # release binaries
#   PROFILE=debug bench/cae.sh   # what a test build has (the wait is the
#                                # revocation reader's, not the code's speed)
#
# Needs the binaries (cargo build [--release] -p tessera -p tessera-bench) and the
# test PostgreSQL on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/${PROFILE:-release}"
work="$(mktemp -d /tmp/tessera-cae.XXXXXX)"
trials="${TRIALS:-100}"
head -c 32 /dev/urandom > "$work/secrets.key"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
a=18471
b=18472
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS tessera_cae_bench WITH (FORCE)" postgres
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE tessera_cae_bench" postgres
url=postgres://postgres@127.0.0.1:5432/tessera_cae_bench
for port in "$a" "$b"; do
    TESSERA_DATABASE_URL="$url" TESSERA_SECRETS_KEY_FILE="$work/secrets.key" \
        TESSERA_PUBLIC_URL="http://localhost:$a" TESSERA_LOG__LEVEL=warn \
        taskset -c 0 "$target/tessera" serve --data-dir "$work/data-$port" --listen "127.0.0.1:$port" \
        > "$work/serve-$port.out" 2> "$work/serve-$port.err" &
    pids+=($!)
    for _ in $(seq 1 200); do grep -q "^Listening" "$work/serve-$port.out" 2>/dev/null && break; sleep 0.1; done
done
token="$(grep -ho 'tsr_pat_[A-Za-z0-9_-]*' "$work/serve-$a.out" "$work/serve-$b.out" | head -1)"
echo "PostgreSQL; two nodes; $(nproc) cores, $(uname -r); both servers on CPU 0, the probe on CPU 1; ${PROFILE:-release} build"
taskset -c 1 "$target/tessera-bench" --server "http://localhost:$a" --token "$token" \
    cae-across-nodes --other "http://localhost:$b" --trials "$trials"
