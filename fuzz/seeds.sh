#!/usr/bin/env bash
# Refreshes the seed corpora in fuzz/corpus/ from real traffic of both test servers:
# starts a 2.3 and a 2.0 server (scripts/servers.sh, random 127.0.0.1 ports, stopped by
# PID on exit) and runs fuzz/capture.lua against each. New files are added next to the
# committed ones (named by content hash); nothing is removed.
#   fuzz/seeds.sh [OUTDIR]      (default fuzz/corpus)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${1:-fuzz/corpus}
export RIVET_TEST_MAX_INCOMING=${RIVET_TEST_MAX_INCOMING:-4194304}
started=()
cleanup() { for s in "${started[@]}"; do scripts/servers.sh stop "fuzz-seeds-$s" >/dev/null 2>&1; done; }
trap cleanup EXIT INT TERM
rc=0
for s in v23 v20; do
	started+=("$s")
	if ! scripts/servers.sh start "$s" spec/actors/index.mjs "fuzz-seeds-$s" >".run/fuzz-seeds-$s.out" 2>&1; then
		echo "seeds.sh: the $s server did not start (.run/fuzz-seeds-$s.out)" >&2
		rc=1
		continue
	fi
	env_file=".run/fuzz-seeds-$s/env"
	endpoint=$(sed -n 's/^RIVET_TEST_ENDPOINT=//p' "$env_file")
	RIVET_TEST_ENDPOINT="$endpoint" RIVET_TEST_SERVER="$s" timeout 300 lua5.4 fuzz/capture.lua "$OUT" || rc=1
done
exit $rc
