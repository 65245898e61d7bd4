#!/usr/bin/env bash
# `make demo`: start a local rivetkit 2.3 server (engine + Node actor host) with
# the example actors, run examples/counter.lua against it, stop the server.
#
#   scripts/demo.sh [EXAMPLE.lua]        default examples/counter.lua
#   RIVET_DEMO_SERVER=v20 scripts/demo.sh   use the 2.0 server instead
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
example=${1:-examples/counter.lua}
kind=${RIVET_DEMO_SERVER:-v23}

trap 'scripts/servers.sh stop demo' EXIT
trap 'exit 130' INT TERM HUP

scripts/servers.sh start "$kind" examples/actors/index.mjs demo || exit 1
endpoint=$(sed -n 's/^RIVET_TEST_ENDPOINT=//p' .run/demo/env)
echo "demo: RIVET_ENDPOINT=$endpoint lua5.4 $example"
RIVET_ENDPOINT="$endpoint" \
	LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" \
	LUA_CPATH="./build/?.so;;" \
	lua5.4 "$example"
rc=$?
[ $rc -ne 0 ] && echo "demo: $example exited with status $rc (server log: .run/demo/server.log)" >&2
exit $rc
