#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/*.c, built by `make fuzz-build` into build/fuzz/), one
# at a time under `nice -n 19`, each for FUZZ_SECONDS (default 60), starting from its
# committed corpus fuzz/corpus/<target>/ (seeds and regression inputs: every file there
# is run first) plus build/fuzz/work/<target>/ (what earlier runs found; not committed).
#
#   scripts/fuzz.sh [TARGET...]      all targets, or the named ones
#   scripts/fuzz.sh --ci             the short pass for `make test`: 20 s each, seed 1
#   FUZZ_SECONDS=600 scripts/fuzz.sh conn_feed
#
# Per target it prints one TAP line:
#   ok N - fuzz <target>: <execs> execs in <s> s, corpus <n>, 0 findings
#   not ok N - fuzz <target>: finding (build/fuzz/findings/<target>-crash-...), see <log>
# then "# fuzz: T targets, E execs, F findings" and exits non-zero on any finding (a crash,
# a leak, a sanitizer report, a timeout of 10 s on one input, or a property that failed;
# the input is saved under build/fuzz/findings/). Logs: build/fuzz/logs/<target>.log.
# Reproduce a finding: build/fuzz/<target> build/fuzz/findings/<file>; keep its input in
# fuzz/corpus/<target>/ once fixed, as a regression input.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

secs=${FUZZ_SECONDS:-60}
seed=${FUZZ_SEED:-0} # 0: libFuzzer picks one; --ci fixes it (1), so CI runs the same inputs
targets=()
for a in "$@"; do
	case "$a" in
	--ci) secs=${FUZZ_CI_SECONDS:-20} seed=${FUZZ_SEED:-1} ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) targets+=("$a") ;;
	esac
done
if [ ${#targets[@]} -eq 0 ]; then
	for f in fuzz/*.c; do targets+=("$(basename "$f" .c)"); done
fi

# Debian's clang ships libFuzzer in libclang-rt-<ver>-dev (libclang-rt-dev depends on it)
fuzzer_works() {
	printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
		${FUZZ_CC:-clang} -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1
}
if ! fuzzer_works; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		echo "# fuzz.sh: installing clang and libclang-rt-dev (libFuzzer)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-dev >/dev/null 2>&1
	fi
	if ! fuzzer_works; then
		echo "not ok 1 - fuzz: clang -fsanitize=fuzzer does not work (apt-get install clang libclang-rt-dev)"
		exit 1
	fi
fi

mkdir -p build/fuzz
if ! make --no-print-directory fuzz-build >build/fuzz/build.log 2>&1; then
	echo "not ok 1 - fuzz: build failed (build/fuzz/build.log)"
	tail -n 20 build/fuzz/build.log | sed 's/^/# /'
	exit 1
fi

mkdir -p build/fuzz/logs build/fuzz/findings
# ASan/UBSan: stop at the first report; leaks are checked (libFuzzer's -detect_leaks=1)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
i=0 total=0 findings=0
echo "1..${#targets[@]}"
for t in "${targets[@]}"; do
	i=$((i + 1))
	bin=build/fuzz/$t log=build/fuzz/logs/$t.log work=build/fuzz/work/$t
	mkdir -p "$work" "fuzz/corpus/$t"
	before=$(ls build/fuzz/findings | wc -l)
	nice -n 19 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-detect_leaks=1 -print_final_stats=1 -seed="$seed" -artifact_prefix="build/fuzz/findings/$t-" \
		"$work" "fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	corpus=$(ls "$work" | wc -l)
	after=$(ls build/fuzz/findings | wc -l)
	total=$((total + ${execs:-0}))
	if [ "$rc" -eq 0 ] && [ "$after" -eq "$before" ]; then
		echo "ok $i - fuzz $t: ${execs:-0} execs in ${time:-?} s, corpus $corpus, 0 findings"
	else
		findings=$((findings + 1))
		art=$(ls -t build/fuzz/findings/"$t"-* 2>/dev/null | head -n 1)
		echo "not ok $i - fuzz $t: finding (exit $rc${art:+, input $art}), see $log"
		grep -a -m 3 -E 'FINDING|ERROR: |SUMMARY: |runtime error' "$log" | sed 's/^/# /'
	fi
done
echo "# fuzz: ${#targets[@]} targets, $total execs, $findings findings (${secs} s each)"
[ "$findings" -eq 0 ]
