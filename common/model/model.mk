# Build the fortune model: corpus -> tokenizer -> training -> export -> check.
#   make -f common/model/model.mk                       the full model in build/model/
#   make -f common/model/model.mk SIZE=tiny MODEL_DIR=build/model-tiny   a one-minute trial
# Needs python3-torch, python3-numpy, fortunes (and libopenblas0-pthread for speed).

PYTHON    ?= /usr/bin/python3
SIZE      ?= full
MODEL_DIR ?= build/model
M         := common/model
SHELL     := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all check
all: check

$(MODEL_DIR)/train.txt: $(M)/corpus.py
	$(PYTHON) $(M)/corpus.py --out $(MODEL_DIR)

$(MODEL_DIR)/tokenizer.bin: $(MODEL_DIR)/train.txt $(M)/tokenizer.py
	$(PYTHON) $(M)/tokenizer.py train --dir $(MODEL_DIR)

$(MODEL_DIR)/train.tok: $(MODEL_DIR)/tokenizer.bin
	$(PYTHON) $(M)/tokenizer.py encode --dir $(MODEL_DIR)

# The log keeps the loss figures the README quotes.
$(MODEL_DIR)/checkpoint.pt: $(MODEL_DIR)/train.tok $(M)/train.py $(M)/model.py
	$(PYTHON) $(M)/train.py --dir $(MODEL_DIR) --size $(SIZE) | tee $(MODEL_DIR)/train.log

# export.py writes model.bin and golden.txt together.
$(MODEL_DIR)/golden.txt: $(MODEL_DIR)/checkpoint.pt $(M)/export.py
	$(PYTHON) $(M)/export.py --dir $(MODEL_DIR)

check: $(MODEL_DIR)/golden.txt
	$(PYTHON) $(M)/check_export.py --dir $(MODEL_DIR)
