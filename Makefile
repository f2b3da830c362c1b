# sdapi-swift — the two commands a new user needs: `make run` and `make test`.
SWIFT     ?= swift
PORT      ?= 7860
MODELS    ?= Models
PYTHON    ?= python3.11
REF_VENV  ?= compat/reference/.venv
JOBS      ?= $(shell nproc)

.PHONY: deps build run test unit-test compat-test bench fixtures full-checkpoint reference-venv clean

deps:
	@./scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product sdapi

run: build
	.build/release/sdapi --port $(PORT) --models-dir $(MODELS)

unit-test: deps
	$(SWIFT) build --build-tests -j $(JOBS)
	$(SWIFT) test --skip-build --parallel

test: unit-test
	@if [ -x scripts/compat-test.sh ]; then ./scripts/compat-test.sh; fi

bench: deps
	$(SWIFT) build -c release --product sdbench
	.build/release/sdbench $(BENCH_ARGS)

# Regenerates fixtures/ from the pinned PyTorch reference (needs network for the first venv install).
reference-venv:
	@[ -x $(REF_VENV)/bin/python ] || $(PYTHON) -m venv $(REF_VENV)
	@$(REF_VENV)/bin/python -c "import torch, diffusers, k_diffusion" 2>/dev/null || \
		{ $(REF_VENV)/bin/pip install -r compat/reference/requirements.txt && \
		  $(REF_VENV)/bin/pip uninstall -y torchvision; }

fixtures: reference-venv
	REF_PY=$(REF_VENV)/bin/python ./compat/reference/make_fixtures.sh

# Full-size random SD1.5 checkpoint in the real layout, for benchmarks and loader proofs (never committed).
# CKPT_DTYPE = fp32|fp16|bf16, CKPT_FORMAT = safetensors|ckpt.
CKPT_DTYPE  ?= fp16
CKPT_FORMAT ?= safetensors
full-checkpoint: reference-venv
	$(REF_VENV)/bin/python compat/reference/gen_full_checkpoint.py --dtype $(CKPT_DTYPE) --format $(CKPT_FORMAT) \
		.build-data/sdapi-random-full-sd15-$(CKPT_DTYPE).$(CKPT_FORMAT)

clean:
	rm -rf .build
