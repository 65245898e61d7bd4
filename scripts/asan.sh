#!/usr/bin/env bash
# The spec suite against the C core built with AddressSanitizer + UndefinedBehaviorSanitizer
# (build/asan/rivet/core.so, `make asan-build`), on one server line, in the stock lua5.4
# interpreter with the sanitizer runtimes preloaded; leak checking on. Called by
# `make test-asan`.
#
#   scripts/asan.sh                    every spec, on RIVET_TEST_SERVERS (default v20)
#   scripts/asan.sh spec/foo_spec.lua  a subset (busted path arguments)
#   scripts/asan.sh --ci               the same, for `make test`'s short pass (no other change)
#
# The server starts through scripts/servers.sh (random 127.0.0.1 port, name asan-<line>-<pid>,
# stopped by PID on exit) without the preload; busted runs with
#   LD_PRELOAD=libasan.so:libubsan.so (gcc's, the module is built with gcc)
#   ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:...:log_path=.run/asan/san
#   UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=.run/asan/san
# Only the interpreter runs with the sanitizers: build/asan/unpreload.so (preloaded last)
# takes LD_PRELOAD out of its environment, so the programs specs start (sh, curl, node)
# do not inherit it; Lua children on this build get it back (RIVET_ASAN_PRELOAD).
# Every sanitizer report lands in .run/asan/san.<pid>; 0 are required. Output: busted's TAP lines, then
#   ok - asan: 0 sanitizer reports (N specs passed)      or   not ok - asan: ...
# and "# asan: N passed, N failed, N skipped, N reports". Exit 0 only if nothing failed.
TOOL=asan
DEFAULT_SPECS=(spec)
# shellcheck source=scripts/one_server.sh
. "$(dirname "${BASH_SOURCE[0]}")/one_server.sh" "$@"

if ! make --no-print-directory asan-build >"$OUT/build.log" 2>&1; then
	echo "not ok - asan: build failed (.run/asan/build.log)"
	tail -n 20 "$OUT/build.log" | sed 's/^/# /'
	exit 1
fi
start_server

# the last one takes LD_PRELOAD away from the programs the specs start (it moves it to
# RIVET_ASAN_PRELOAD, for Lua children on this build)
preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so):$ROOT/build/asan/unpreload.so"
supp="$ROOT/scripts/lsan.supp"
asan_opts="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=23:log_path=$OUT/san"
asan_opts+=":detect_stack_use_after_return=0:check_initialization_order=1:strict_string_checks=1"
lsan_opts="report_objects=1"
[ -f "$supp" ] && lsan_opts+=":suppressions=$supp"
t0=$(date +%s)
# (env after setsid: the preload is for the interpreter, not for setsid)
setsid -w env LD_PRELOAD="$preload" ASAN_OPTIONS="$asan_opts" LSAN_OPTIONS="$lsan_opts" \
	UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$OUT/san" \
	lua5.4 /usr/bin/busted -o TAP --cpath='./build/asan/?.so' "${args[@]}" >"$OUT/tap.out" 2>&1
rc=$?
t1=$(date +%s)
cat "$OUT/tap.out"
read -r p f s <<<"$(tap_counts "$OUT/tap.out" "$rc")"
reports=0
for r in "$OUT"/san.*; do
	[ -e "$r" ] || continue
	reports=$((reports + 1))
	echo "# ---- $r"
	head -n 40 "$r" | sed 's/^/# /'
done
if [ "$reports" -eq 0 ]; then
	echo "ok - asan: 0 sanitizer reports ($p specs passed, $f failed, on $server, $((t1 - t0)) s)"
else
	echo "not ok - asan: $reports sanitizer report(s) in .run/asan/san.*"
fi
echo "# asan: $p passed, $f failed, $s skipped, $reports reports (busted exit $rc)"
[ "$reports" -eq 0 ] && [ "$f" -eq 0 ] && [ "$rc" -eq 0 ]
