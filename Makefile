# ringzero: a teaching kernel in nine steps. `make help` lists everything.

PYTHON  ?= /usr/bin/python3
STEPS   := $(PYTHON) common/steps.py
GRADER  := $(PYTHON) common/grader/grade.py
QEMU    := $(PYTHON) common/qemu.py
KERNEL  := $(MAKE) --no-print-directory -f common/kernel.mk
LAB     := $(PYTHON) common/lab/lab.py

.DEFAULT_GOAL := help

# `make step N ACTION`: N and ACTION are words on the command line, not targets of their own.
ifeq ($(firstword $(MAKECMDGOALS)),step)
STEP_WORDS  := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
STEP_ACTION := $(word 2,$(STEP_WORDS))
ifneq ($(word 3,$(STEP_WORDS)),)
$(error usage: make step N ACTION (one step, one action; see make help))
endif
step:
ifeq ($(STEP_WORDS),)
	@echo "The steps (make step N ACTION, N as 5, 05 or e1000):"
	@$(STEPS) list
else
	@s=$$($(STEPS) resolve $(word 1,$(STEP_WORDS))) && \
	  $(MAKE) --no-print-directory step-$(or $(STEP_ACTION),actions) S=$$s
endif
$(STEP_WORDS):
	@:
else

.PHONY: help run test book book-check deps forward check-steps check-labs handouts clean bench fuzz model \
        compile-commands
help:
	@echo "ringzero: a teaching kernel in nine steps"
	@echo
	@echo "  make run                    boot the finished kernel (the last step) in QEMU;"
	@echo "                                CPUS=N, ARGS, QEMU_ARGS and PCAP as for make step N run"
	@echo "  make test                   grade every step, then run the host-side checks"
	@echo "  make book                   build the book (HTML and EPUB) under build/book/;"
	@echo "                                EDITION=student leaves the labs' code out"
	@echo "  make book-check             build the book, then check every page in headless Chromium"
	@echo "                                at 1280x800: links, images, no listing wider than its box;"
	@echo "                                screenshots in build/book/screenshots/"
	@echo "  make deps                   install the Debian packages the tree needs"
	@echo "  make bench                  benchmarks: TCP echo, HTTP throughput and inference speed,"
	@echo "                                each against a reference (Linux and nginx in QEMU for"
	@echo "                                HTTP, the host for the others); the host CPU an idle"
	@echo "                                kernel costs, halting and with idle=poll; and the"
	@echo "                                engine (float and int8) against an earlier commit's"
	@echo "  make fuzz                   fuzz the HTTP parser and JSON reader (FUZZ_SECONDS=600)"
	@echo "  make model                  train the small language model from scratch (~20 min)"
	@echo "  make compile-commands       write compile_commands.json (every step's files, each"
	@echo "                                with its step's flags) for clangd and other editors' tools"
	@echo
	@echo "  make step                   list the steps"
	@echo "  make step N run             boot step N (ARGS='...' sets the kernel command line;"
	@echo "                                from step 08, MODEL=file TOKENIZER=file swap the model;"
	@echo "                                QEMU_ARGS='...' adds QEMU flags after the project's own;"
	@echo "                                from step 05, PCAP=file records the NIC's frames)"
	@echo "  make step N grade           run the tests of steps 01..N against step N"
	@echo "                                T=name: one test; TREE=path: grade a student's copy;"
	@echo "                                JSON=file: also write Gradescope's results.json"
	@echo "  make step N gdb             boot step N paused, waiting for gdb (QEMU_ARGS, PCAP too)"
	@echo "  make step N diff            what step N adds to step N-1"
	@echo "  make step N lab             list step N's lab: the functions a student writes"
	@echo "  make step N handout OUT=dir write step N as a lab to hand out (a repository)"
	@echo "  make step N autograder OUT=file.zip   a Gradescope autograder for step N's lab"
	@echo "  make step N iso             build step N's bootable ISO"
	@echo "  make step N clean           remove step N's build output"
	@echo
	@echo "  make forward STEP=K         carry a fix made in step K into every later step"
	@echo "  make check-steps            check every step against its MANIFEST"
	@echo "  make check-labs             prove every lab item, stubbed alone, fails a test"
	@echo "  make handouts OUT=dir       one lab handout per step, in dir/NN-name"
	@echo "  make clean                  remove build/"
	@echo
	@echo "  N is a number (5 or 05) or a name (e1000). QEMU uses KVM when it can, else TCG;"
	@echo "  ACCEL=tcg or ACCEL=kvm chooses."

run:
	@$(MAKE) --no-print-directory step-run S=$$($(STEPS) resolve last)

test: deps-ensure
	@$(PYTHON) common/testall.py

# The student edition is built from a copy of the tree with every lab item stubbed.
book: deps-ensure
ifeq ($(EDITION),student)
	@$(LAB) student-tree build/student-tree
	@$(PYTHON) book/build.py --root build/student-tree --student --out build/book-student
else
	@$(PYTHON) book/build.py
endif

# The book as a reader's browser shows it (book/browser_test.mjs, with playwright-core from
# common/npm and Debian's chromium).
book-check: book
	@[ -f common/npm/node_modules/.package-lock.json ] || (cd common/npm && npm ci --no-audit --no-fund)
	@node book/browser_test.mjs build/book

deps:
	@common/deps.sh install

bench: deps-ensure
	@$(PYTHON) common/bench.py
	@$(PYTHON) common/bench_http.py
	@$(PYTHON) common/bench_infer.py
	@$(PYTHON) common/bench_engine.py
	@$(PYTHON) common/bench_idle.py

# Training needs PyTorch, which make test does not: its packages are installed only here.
model: deps-ensure
	@common/deps.sh ensure-model
	@$(MAKE) --no-print-directory -f common/model/model.mk

fuzz: deps-ensure
	@common/fuzz/run.sh $(or $(FUZZ_SECONDS),600)

forward:
	@test -n "$(STEP)" || { echo "usage: make forward STEP=K [BASE=rev]" >&2; exit 2; }
	@$(STEPS) forward $(STEP) $(if $(BASE),--base $(BASE))

check-steps:
	@$(STEPS) check

# For editors (clangd): no other target needs it. The flags come from common/kernel.mk.
compile-commands:
	@$(PYTHON) common/compile_commands.py

check-labs: deps-ensure
	@$(LAB) check

handouts:
	@test -n "$(OUT)" || { echo "usage: make handouts OUT=dir" >&2; exit 2; }
	@$(LAB) handouts $(OUT)

clean:
	rm -rf build
endif

.PHONY: deps-ensure step-actions step-iso step-run step-grade step-gdb step-diff step-clean \
        step-lab step-handout step-autograder
deps-ensure:
	@common/deps.sh ensure

# ---- one step: S is the step's folder name, resolved by `make step` ----
STEP_DIR = $(or $(TREE),steps/$(S))
STEP_OUT = build/$(if $(TREE),tree-$(S),$(S))
# $(call manifest,KEY): KEY's value in the step's MANIFEST (a TREE's own), as common/steps.py
# reads it: continuation lines joined, empty if the MANIFEST does not have the key.
manifest = $(if $(S)$(TREE),$(shell $(STEPS) field $(1) --manifest $(STEP_DIR)/MANIFEST))
CONSOLE  = $(call manifest,console)
# A step's MANIFEST may name extra QEMU arguments for `run`, such as its network card.
RUN_ARGS = $(call manifest,run)
# And how many CPUs (`smp: 4`, or `smp: host` for all the host's cores; 1 if it says nothing).
# CPUS=N on the command line overrides it.
SMP      = $(or $(CPUS),$(call manifest,smp),1)

# From step 08 on GRUB also loads the model and its tokenizer, as Multiboot2 modules named
# model.bin and tokenizer.bin. The step's MANIFEST names the committed files (`modules:`);
# MODEL= and TOKENIZER= choose others, such as llama2.c's TinyStories, which are staged as
# symlinks under the names the kernel looks for. A model of your own is called by its file
# name in the API (model=NAME); the committed one by the kernel's default name.
# STEP_MODULES is used often: the eval reads the MANIFEST on first use only, then keeps the value.
STEP_MODULES  = $(eval STEP_MODULES := $(call manifest,modules))$(STEP_MODULES)
MODEL        ?= $(filter %/model.bin,$(STEP_MODULES))
TOKENIZER    ?= $(filter %/tokenizer.bin,$(STEP_MODULES))
STAGED       = $(if $(STEP_MODULES),$(STEP_OUT)/model.bin $(STEP_OUT)/tokenizer.bin)
MODEL_ARG    = $(if $(filter command line,$(origin MODEL)),model=$(basename $(notdir $(MODEL))))
# QEMU's memory grows with the model (see common/qemu.py, --fit).
FIT          = $(if $(STAGED),--fit $(STAGED))

# QEMU_ARGS='...' goes to QEMU after everything else (the project's flags, the MANIFEST's `run:`),
# so where QEMU lets a later option override an earlier one (-cpu, -m, -smp), it wins.
# PCAP=file records the network card's frames, both ways, with QEMU's filter-dump on the
# netdev that every step with a card names net0 (`run:` in its MANIFEST). QEMU's option parser
# reads a doubled comma as a comma in the file name.
comma := ,
PCAP_ARGS = $(if $(PCAP),-object filter-dump$(comma)id=pcap0$(comma)netdev=net0$(comma)file=$(subst $(comma),$(comma)$(comma),$(PCAP)))
QEMU_EXTRA = $(RUN_ARGS) $(PCAP_ARGS) $(QEMU_ARGS)
# Checked before anything is built: a step without a card has nothing for PCAP to record.
ifneq ($(PCAP),)
ifneq ($(filter step-run step-gdb,$(MAKECMDGOALS)),)
ifeq ($(and $(filter -netdev,$(RUN_ARGS)),$(findstring id=net0,$(RUN_ARGS))),)
$(error PCAP=$(PCAP): step $(S) has no network card to record (the e1000 arrives in step 05; its MANIFEST's run: line has no -netdev ...,id=net0))
endif
endif
endif

step-actions:
	@echo "make step $(S) run|grade|gdb|diff|iso|clean|lab|handout|autograder"

step-iso: deps-ensure
ifneq ($(STEP_MODULES),)
	@for f in "$(MODEL)" "$(TOKENIZER)"; do test -f "$$f" || \
	  { echo "no such file: '$$f' (MODEL=... TOKENIZER=... name the model's files)" >&2; exit 1; }; done
	@mkdir -p $(STEP_OUT)
	@ln -sfn $(abspath $(MODEL)) $(STEP_OUT)/model.bin
	@ln -sfn $(abspath $(TOKENIZER)) $(STEP_OUT)/tokenizer.bin
endif
	@$(KERNEL) STEP_DIR=$(STEP_DIR) OUT=$(STEP_OUT) CMDLINE="$(MODEL_ARG)" MODULES="$(STAGED)" iso

# ARGS gives the kernel a command line, in an ISO of its own so the plain one stays as it is.
step-run: step-iso
ifneq ($(PCAP),)
	@mkdir -p "$(dir $(PCAP))"
	@echo "qemu: recording the network card's frames in $(PCAP)"
endif
ifeq ($(ARGS),)
	@$(QEMU) run $(STEP_OUT)/ringzero.iso --console $(or $(CONSOLE),serial) $(FIT) --smp $(SMP) \
	  -- $(QEMU_EXTRA)
else
	@common/mkiso.sh $(STEP_OUT)/kernel.elf $(STEP_OUT)/ringzero-args.iso \
	  "$(strip $(MODEL_ARG) $(ARGS))" $(STAGED)
	@$(QEMU) run $(STEP_OUT)/ringzero-args.iso --console $(or $(CONSOLE),serial) $(FIT) --smp $(SMP) \
	  -- $(QEMU_EXTRA)
endif

step-grade: deps-ensure
	@$(GRADER) $(S) $(if $(TREE),--tree $(TREE)) $(if $(T),-t $(T)) $(if $(JSON),--json $(JSON))

step-gdb: step-iso
	@$(QEMU) run $(STEP_OUT)/ringzero.iso --console $(or $(CONSOLE),serial) $(FIT) --smp $(SMP) \
	  --gdb $$($(QEMU) gdb-port) --elf $(STEP_OUT)/kernel.elf -- $(QEMU_EXTRA)

step-diff:
	@$(STEPS) diff $(S)

step-lab:
	@$(LAB) list $(S)

step-handout:
	@test -n "$(OUT)" || { echo "usage: make step N handout OUT=dir" >&2; exit 2; }
	@$(LAB) handout $(S) $(OUT)

step-autograder:
	@$(LAB) autograder $(S) $(or $(OUT),build/autograder-$(S).zip)

step-clean:
	rm -rf $(STEP_OUT)
