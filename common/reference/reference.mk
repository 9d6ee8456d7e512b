# The host reference program: an inference step's engine, compiled for Linux.
#
#   make -f common/reference/reference.mk STEP_DIR=steps/08-inference
#
# builds build/08-inference/reference (OUT= moves it).
#
# It takes the kernel's compiler flags (common/kernel.mk plus the step's flags.mk), so that the
# benchmark races the same code built the same way, minus what only a kernel needs: no C
# library (-ffreestanding), no red zone, the small code model, no SSE.

STEP_DIR ?= steps/08-inference
OUT      ?= build/$(notdir $(STEP_DIR))
HERE     := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: reference
reference: $(OUT)/reference

include $(HERE)/../kernel.mk

KERNEL_ONLY  := -ffreestanding -mno-red-zone -mgeneral-regs-only -mcmodel=small
# -iquote: "string.h" in the engine is the kernel's, whose declarations are libc's; <string.h>
# in the reference stays libc's.
HOST_CFLAGS  := $(filter-out $(KERNEL_ONLY),$(CFLAGS)) -iquote $(STEP_DIR) -iquote $(HERE)
ENGINE       := vecmath vecmath_fast checkpoint transformer tokenizer sampler sort utf8
# A step that offers parallel-engine (its MANIFEST says so; step 09 on) hands the engine's
# loops to parallel.h, which the kernel runs on every CPU; the reference runs them in order on
# its one thread (parallel_serial.c), same bits.
SERIAL       := $(if $(filter parallel-engine,$(call manifest,offers)),parallel_serial)
HOST_OBJECTS := $(patsubst %,$(OUT)/reference-obj/%.o,$(ENGINE) reference golden perplexity $(SERIAL))

$(OUT)/reference-obj/%.o: $(STEP_DIR)/%.c $(MAKEFILE_LIST)
	@mkdir -p $(@D)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(OUT)/reference-obj/%.o: $(HERE)/%.c $(MAKEFILE_LIST)
	@mkdir -p $(@D)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(OUT)/reference: $(HOST_OBJECTS)
	$(CC) -no-pie -o $@ $^ -lm

-include $(HOST_OBJECTS:.o=.d)
