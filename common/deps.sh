#!/bin/sh
# The Debian packages the tree needs, and how to get them.
#   deps.sh check    list what is missing; exit 1 if anything is
#   deps.sh ensure   install what is missing when root, else print the apt-get line and fail
#   deps.sh install  the same as ensure (for `make deps`)
#   deps.sh ensure-model   ensure the packages that training the model needs
set -eu

# Packages checked by name. clangd and tshark: the students' tools that make test tries
# (common/tools_test.py). chromium: step 08's chat page and the book's pages (make book-check)
# are tested in it (headless, driven by playwright-core from common/npm, which never downloads a
# browser of its own). python3-prometheus-client: the parser that reads /metrics in the tests.
# fortunes: the validation text on which the int8 model's perplexity is checked
# (common/model/int8_check.py).
PACKAGES="make gcc binutils libc6-dev git python3 grub-pc-bin grub-common xorriso mtools
qemu-system-x86 pandoc graphviz curl wrk clang libclang-rt-14-dev iproute2 chromium
clangd tshark python3-prometheus-client fortunes"

# Only for `make model` (training): deps.sh ensure-model.
MODEL_PACKAGES="python3-torch python3-numpy fortunes libopenblas0-pthread"

# Tools checked by command, because a machine may have them from elsewhere (Node.js from
# NodeSource, say), where installing Debian's package would conflict: "command:packages".
COMMANDS="node:nodejs npm:npm"

missing_packages() {
	for package in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' \
			|| printf '%s ' "$package"
	done
	for pair in $COMMANDS; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || printf '%s ' "${pair#*:}"
	done
}

if [ "${1:-}" = ensure-model ]; then
	PACKAGES=$MODEL_PACKAGES
	COMMANDS=""
	set -- ensure
fi
missing=$(missing_packages)
case "${1:-check}" in
check)
	[ -z "$missing" ] && exit 0
	echo "missing Debian packages: $missing"
	exit 1 ;;
ensure|install)
	[ -z "$missing" ] && exit 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "ringzero needs these Debian packages: $missing" >&2
		echo "install them with:" >&2
		echo "  sudo apt-get install -y $missing" >&2
		exit 1
	fi
	echo "installing missing Debian packages: $missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y -q $missing ;;
*)
	echo "usage: $0 check|ensure|install" >&2
	exit 2 ;;
esac
