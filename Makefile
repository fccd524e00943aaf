# The two commands a newcomer runs: `make demo` and `make test`.
# Both create .venv and install everything they need on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# llama.cpp (inside llama-cpp-python) is compiled here from source. Its default, GGML_NATIVE=ON,
# builds for whatever the compiling CPU reports; on Xeons with AVX-512 (BF16/FP16/VNNI) and AMX
# that build segfaults on any prompt longer than one token. A portable x86-64 baseline (AVX2,
# FMA, F16C; no AVX-512) runs on every machine of this kind. Override LLAMA_CMAKE_ARGS to build
# something else, e.g. `make install LLAMA_CMAKE_ARGS=-DGGML_NATIVE=ON`.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
endif
LLAMA_SPEC := llama-cpp-python[server]>=0.3.7,<0.4
# Named after the flags, so a venv built before (or with other flags) has no such stamp and is
# rebuilt.
LLAMA_STAMP := $(VENV)/.llama-$(shell echo '$(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: demo test lint install clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Always built from source with the flags above and never taken from pip's wheel cache: pip
# reuses a cached llama-cpp-python wheel whatever CMAKE_ARGS say, and a wheel cached on another
# CPU is exactly the build that crashes.
$(LLAMA_STAMP): $(VENV)/bin/python
	@echo "building llama-cpp-python with CMAKE_ARGS=$(LLAMA_CMAKE_ARGS) (a few minutes)"
	rm -f $(VENV)/.llama-*
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --no-cache-dir \
	  --no-binary llama-cpp-python --force-reinstall --no-deps "llama-cpp-python>=0.3.7,<0.4"
	$(BIN)/python -m pip install --quiet "$(LLAMA_SPEC)"
	echo "$(LLAMA_CMAKE_ARGS)" > $@

$(STAMP): pyproject.toml $(LLAMA_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shopaug demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
