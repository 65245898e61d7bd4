#!/usr/bin/env bash
# make bench: start a 2.0 server (smallest server overhead) and, if BENCH_SERVERS says so,
# a 2.3 one; run the benchmarks against each; stop everything started here.
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${BENCH_SERVERS:-v20}
export LUA_PATH="./lua/?.lua;./lua/?/init.lua;./?.lua;;"
export LUA_CPATH="./build/?.so;;"
started=()
cleanup() { for s in "${started[@]}"; do scripts/servers.sh stop "$s" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT INT TERM
for s in $servers; do
  scripts/servers.sh start "$s" >/dev/null
  started+=("$s")
  # shellcheck disable=SC1090
  endpoint=$(grep '^RIVET_TEST_ENDPOINT=' ".run/$s/env" | cut -d= -f2-)
  echo "== $s ($endpoint)"
  RIVET_ENDPOINT=$endpoint lua5.4 bench/http_actions.lua "${BENCH_CALLS:-500}"
done
