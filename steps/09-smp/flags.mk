# Step 08 computes with floats. boot.S switches SSE on before any C runs, so the compiler may
# now use the SSE registers (x86-64's baseline, SSE2, is then its default; cpu.c turns on AVX,
# which only functions marked target("avx2") use).
CFLAGS := $(filter-out -mgeneral-regs-only,$(CFLAGS))
# -ffp-contract=off: never fuse a*b+c into one rounding, so every build of the engine (this
# kernel, the host reference) rounds the same way and gives the same bits.
# -fno-math-errno: sqrtf can be the sqrtss instruction; there is no errno to set.
CFLAGS += -ffp-contract=off -fno-math-errno

# chat_page.S pulls in chat_page.html with .incbin, which the assembler looks up in its own
# include path, and make must rebuild it when the page changes.
ASFLAGS += -Wa,-I,$(STEP_DIR)
$(OUT)/obj/chat_page.S.o: $(STEP_DIR)/chat_page.html
