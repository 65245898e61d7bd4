# Sourced by the scripts that count TAP lines (test.sh, asan.sh, valgrind.sh).
#
# tap_counts FILE RC: prints "passed failed skipped" for the TAP lines in FILE. A
# command that exited non-zero (RC) with no failing line counts one failure: busted's
# TAP output stops without one when a spec file does not load.
tap_counts() {
	awk -v rc="$2" '/^ok [0-9]* ?- # SKIP/{s++;next} /^ok /{p++} /^not ok /{f++}
		END{if(rc&&!f)f=1; printf "%d %d %d\n",p,f,s}' "$1"
}
