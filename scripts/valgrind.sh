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
TOOL=valgrind
DEFAULT_SPECS=(spec/codec_spec.lua spec/conn_sm_spec.lua spec/conn_spec.lua spec/values_spec.lua spec/ws_fault_spec.lua)
# shellcheck source=scripts/one_server.sh
. "$(dirname "${BASH_SOURCE[0]}")/one_server.sh" "$@"

if ! make --no-print-directory build >"$OUT/build.log" 2>&1; then
	echo "not ok - valgrind: build failed (.run/valgrind/build.log)"
	exit 1
fi
start_server

t0=$(date +%s)
setsid -w valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30 --trace-children=no \
	--log-file="$OUT/memcheck.log" \
	lua5.4 /usr/bin/busted -o TAP --cpath='./build/?.so' "${args[@]}" >"$OUT/tap.out" 2>&1
rc=$?
t1=$(date +%s)
cat "$OUT/tap.out"
read -r p f s <<<"$(tap_counts "$OUT/tap.out" "$rc")"
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
