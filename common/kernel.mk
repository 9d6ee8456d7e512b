# Build one step's kernel and its bootable ISO.
#
#   make -f common/kernel.mk STEP_DIR=steps/02-serial OUT=build/02-serial
#
# Every step is a flat folder of *.c, *.S, *.h and linker.ld, so the same rules build all nine
# steps and a student's copy of any of them. A step that needs extra compiler flags (step 08
# turns on SSE) says so in an optional flags.mk of its own, which shows up in `make step N diff`.
# CMDLINE is the kernel command line in the ISO. MODULES are files GRUB loads beside the
# kernel, by default those the step's MANIFEST names (`modules:`, step 08's model).

STEP_DIR ?= $(error STEP_DIR is not set, e.g. STEP_DIR=steps/01-boot)
OUT      ?= build/$(notdir $(STEP_DIR))
COMMON   := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
PYTHON   ?= /usr/bin/python3
# $(call manifest,KEY): KEY's value in the step's MANIFEST, as common/steps.py reads it
# (continuation lines joined; empty if the MANIFEST does not have the key).
manifest  = $(shell $(PYTHON) $(COMMON)/steps.py field $(1) --manifest $(STEP_DIR)/MANIFEST)
ifeq ($(origin MODULES),undefined)
MODULES  := $(call manifest,modules)
endif

CC      := gcc
# -mno-red-zone: an interrupt pushes its frame right below RSP, where the red zone would be.
# -mgeneral-regs-only: SSE state is not enabled (CR4.OSFXSR) until a step does it on purpose.
# -fno-omit-frame-pointer: the exception handler walks RBP to print a backtrace.
# -fno-tree-loop-distribute-patterns: or GCC turns the loop inside memmove into a call to memmove.
CFLAGS  := -std=c11 -ffreestanding -O2 -g -Wall -Wextra -Werror \
           -fno-pic -fno-pie -fno-stack-protector -fno-omit-frame-pointer \
           -fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
           -mno-red-zone -mgeneral-regs-only -mcmodel=small -MMD -MP
ASFLAGS := -g -Wa,--noexecstack -MMD -MP
LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 \
           -Wl,-T,$(STEP_DIR)/linker.ld
LDLIBS  := -lgcc

# Before flags.mk, which may add prerequisites to rules of its own: all stays the default goal.
.PHONY: all kernel iso FORCE
all: iso
kernel: $(OUT)/kernel.elf
iso: $(OUT)/ringzero.iso

-include $(STEP_DIR)/flags.mk

SOURCES := $(sort $(wildcard $(STEP_DIR)/*.c $(STEP_DIR)/*.S))
OBJECTS := $(patsubst $(STEP_DIR)/%,$(OUT)/obj/%.o,$(SOURCES))

$(OUT)/obj/%.c.o: $(STEP_DIR)/%.c $(MAKEFILE_LIST)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/obj/%.S.o: $(STEP_DIR)/%.S $(MAKEFILE_LIST)
	@mkdir -p $(@D)
	$(CC) $(ASFLAGS) -c $< -o $@

$(OUT)/kernel.elf: $(OBJECTS) $(STEP_DIR)/linker.ld
	$(CC) $(LDFLAGS) -o $@ $(OBJECTS) $(LDLIBS)
	@grub-file --is-x86-multiboot2 $@ || { echo "$@: no valid Multiboot2 header" >&2; rm -f $@; exit 1; }

# The ISO also holds CMDLINE and the MODULES files (step 08's model and tokenizer, often
# symlinks). iso-inputs records which, so that choosing others rebuilds the ISO.
ISO_INPUTS := $(CMDLINE) | $(realpath $(MODULES))
$(OUT)/iso-inputs: FORCE
	@mkdir -p $(@D)
	@echo '$(ISO_INPUTS)' | cmp -s - $@ || echo '$(ISO_INPUTS)' > $@

$(OUT)/ringzero.iso: $(OUT)/kernel.elf $(COMMON)/mkiso.sh $(OUT)/iso-inputs $(MODULES)
	$(COMMON)/mkiso.sh $< $@ "$(CMDLINE)" $(MODULES)

# The flags above, after flags.mk, for tools that must compile as this file does
# (common/compile_commands.py). One NAME=value line each.
.PHONY: print-flags
print-flags:
	$(info CC=$(CC))
	$(info CFLAGS=$(CFLAGS))
	$(info ASFLAGS=$(ASFLAGS))
	$(info SOURCES=$(SOURCES))
	$(info OUT=$(OUT))
	@:

-include $(OBJECTS:.o=.d)
