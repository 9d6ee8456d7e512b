#!/bin/sh
# Host-side unit tests of kernel code that also builds on Linux: the JSON reader and writer of
# step 07, compiled unchanged with AddressSanitizer and UndefinedBehaviorSanitizer.
# Prints the test program's own "N passed, N failed" line.
set -eu
cd "$(dirname "$0")/../.."
step=steps/07-http
out=build/hosttest
mkdir -p "$out"
# -iquote: only "..." includes see the kernel's own string.h; <string.h> stays libc's.
gcc -std=c11 -O1 -g -Wall -Wextra -Werror -iquote "$step" -iquote common/fuzz \
	-fsanitize=address,undefined -fno-sanitize-recover=all -o "$out/test_json" \
	common/hosttest/test_json.c common/hosttest/test_json_numbers.c \
	common/hosttest/test_json_writer.c common/fuzz/kernel_shim.c \
	"$step/json.c" "$step/json_number.c" "$step/json_write.c" "$step/strbuf.c" \
	"$step/utf8.c"
exec "$out/test_json"
