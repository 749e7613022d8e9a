# Set-up and entry points. `make bench` and `make test` create or reuse .venv.
# The venv is rebuilt only when the dependency spec (the dependency lists in
# pyproject.toml, plus the torch pins below) changes; the old one is removed first,
# so there is never more than one copy on disk.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
SPEC_HASH := $(shell $(PYTHON) .ci/spec_hash.py "$(TORCH_PINS)")
STAMP := $(VENV)/.spec-$(SPEC_HASH)
BIN := $(VENV)/bin
BENCH_DATA ?= data/shapes-default
BENCH_FACES ?= data/faces-default

.PHONY: venv bench test lint regress regress-proxy regress-refresh clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml .ci/spec_hash.py
	@if [ ! -f "$(STAMP)" ]; then \
	  echo "[venv] dependency spec $(SPEC_HASH): (re)building $(VENV)"; \
	  rm -rf "$(VENV)"; \
	  $(PYTHON) -m venv "$(VENV)"; \
	  "$(BIN)/pip" install --quiet --upgrade pip; \
	  "$(BIN)/pip" install --quiet $(TORCH_PINS); \
	  "$(BIN)/pip" install --quiet -e ".[dev]"; \
	fi
	@"$(BIN)/pip" install --quiet --no-deps -e . >/dev/null
	@touch "$(STAMP)"

bench: venv
	"$(BIN)/sdn-bench" bench --data $(BENCH_DATA) --faces-data $(BENCH_FACES)

test: venv
	"$(BIN)/python" -m pytest -q

lint: venv
	"$(BIN)/ruff" check sdn evaluation occnet_multiview benchmarks tests

regress: venv
	"$(BIN)/sdn-bench" regress

# The same job with oneDNN and MKL capped at AVX2: a proxy for another machine of this kind
# (other float kernels). It must pass with unchanged code, like `make regress`.
regress-proxy: venv
	ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 "$(BIN)/sdn-bench" regress --work runs/regression-proxy

regress-refresh: venv
	"$(BIN)/sdn-bench" regress --refresh-baseline

clean-venv:
	rm -rf "$(VENV)"
