#!/bin/sh
# Fuzz the kernel's HTTP request parser and JSON reader on the host, with libFuzzer.
#
#   common/fuzz/run.sh [SECONDS]      each target runs for SECONDS (default 20), both at once
#
# The targets build from the step's own sources, unchanged (FUZZ_STEP, default steps/07-http;
# FUZZ_OUT moves build/fuzz):
#   fuzz_http  http_parse.c                                   (fuzz_http.c says what it checks)
#   fuzz_json  json.c json_number.c json_write.c utf8.c strbuf.c + kernel_shim.c for the heap
# with -fsanitize=fuzzer,address,undefined, into build/fuzz/. Each starts from the committed
# seeds in common/fuzz/corpus/NAME plus what earlier runs found (build/fuzz/corpus/NAME).
# A crash, a failed check, a sanitizer report, a leak, a slow input or a build error fails a
# target; libFuzzer saves the input that did it as build/fuzz/NAME-crash-* (or -leak-,
# -timeout-, -oom-). Reproduce with: build/fuzz/fuzz_NAME build/fuzz/NAME-crash-...
# Ends with the line `N passed, N failed`, one test per target; exits 1 if any failed.
set -u

seconds=${1:-20}
case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
step=${FUZZ_STEP:-$root/steps/07-http}
out=${FUZZ_OUT:-$root/build/fuzz}
cc=${CC_FUZZ:-clang}
flags="-std=c11 -g -O1 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -iquote $step -iquote $here"
mkdir -p "$out"

# build NAME SOURCES...: build/fuzz/fuzz_NAME, or explain in build/fuzz/NAME.log.
build() {
	name=$1
	shift
	# shellcheck disable=SC2086 # flags is a list of words
	if ! "$cc" $flags -o "$out/fuzz_$name" "$@" >"$out/$name.log" 2>&1; then
		if ! command -v "$cc" >/dev/null 2>&1; then
			echo "$cc is not installed (Debian packages clang and libclang-rt-14-dev)" \
				>>"$out/$name.log"
		elif grep -q 'libclang_rt.fuzzer' "$out/$name.log"; then
			echo "libFuzzer is missing (Debian package libclang-rt-14-dev)" >>"$out/$name.log"
		fi
		return 1
	fi
}

# fuzz NAME MAX_LEN: run the target; its exit status is the verdict.
fuzz() {
	name=$1
	mkdir -p "$out/corpus/$name"
	"$out/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$2" -dict="$here/$name.dict" -artifact_prefix="$out/$name-" \
		-print_final_stats=1 "$out/corpus/$name" "$here/corpus/$name" \
		>>"$out/$name.log" 2>&1
}

# run NAME MAX_LEN SOURCES...: build and fuzz; writes PASS or FAIL and a reason to NAME.verdict.
run() {
	name=$1
	max_len=$2
	shift 2
	if ! build "$name" "$@"; then
		echo "FAIL fuzz_$name: the build failed: $(tail -n 3 "$out/$name.log" | tr '\n' ' ')" \
			>"$out/$name.verdict"
		return
	fi
	if fuzz "$name" "$max_len"; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -n 1)
		echo "PASS fuzz_$name: ${runs:-?} inputs in ${seconds}s," \
			"corpus $(find "$out/corpus/$name" -type f | wc -l) files" >"$out/$name.verdict"
	else
		artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$out/$name.log" | tail -n 1)
		reason=$(grep -m 1 -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z]+:)|runtime error' \
			"$out/$name.log")
		echo "FAIL fuzz_$name: ${reason:-libFuzzer failed, see $out/$name.log}" >"$out/$name.verdict"
		echo "    reproducer: ${artifact:-none saved}; log: $out/$name.log" >>"$out/$name.verdict"
	fi
}

rm -f "$out"/*.verdict
run http 16384 "$here/fuzz_http.c" "$step/http_parse.c" &
run json 65536 "$here/fuzz_json.c" "$here/kernel_shim.c" "$step/json.c" \
	"$step/json_number.c" "$step/json_write.c" "$step/utf8.c" "$step/strbuf.c" &
wait

passed=0
failed=0
for name in http json; do
	if [ -f "$out/$name.verdict" ]; then
		cat "$out/$name.verdict"
	else
		echo "FAIL fuzz_$name: no verdict (the run died); log: $out/$name.log"
	fi
	if grep -q '^PASS' "$out/$name.verdict" 2>/dev/null; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
