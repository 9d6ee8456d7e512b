#!/bin/sh
# Make a bootable ISO: GRUB (BIOS) loads the kernel with Multiboot2.
#   mkiso.sh KERNEL.elf OUT.iso [CMDLINE [MODULE...]]
# CMDLINE reaches the kernel as the Multiboot2 command line. Each MODULE is loaded by GRUB as a
# Multiboot2 module whose string is the module's file name, so the kernel can find it by name.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 KERNEL.elf OUT.iso [CMDLINE [MODULE...]]" >&2; exit 2; }
kernel=$1 out=$2 cmdline=${3:-}
shift 2; [ $# -gt 0 ] && shift

work=$(mktemp -d "${TMPDIR:-/tmp}/ringzero-iso.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/iso
mkdir -p "$stage/boot/grub"
cp "$kernel" "$stage/boot/kernel.elf"
{
	echo 'set timeout=0'
	echo 'set default=0'
	echo 'menuentry "ringzero" {'
	echo "	multiboot2 /boot/kernel.elf $cmdline"
	for module in "$@"; do
		name=$(basename "$module")
		cp "$module" "$stage/boot/$name"
		echo "	module2 /boot/$name $name"
	done
	echo '	boot'
	echo '}'
} > "$stage/boot/grub/grub.cfg"

# Write next to the target and rename, so two builds of the same ISO never see a half-written one.
grub-mkrescue --locales= --fonts= --themes= --compress=no -o "$out.tmp.$$" "$stage" 2>"$work/log" \
	|| { cat "$work/log" >&2; exit 1; }
mv -f "$out.tmp.$$" "$out"
