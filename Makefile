# Two entry points: `make lesson` (set up, then run the whole lesson) and `make test`
# (set up, then run every test). Both create .venv when it is missing and are safe to rerun.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= build/lesson
STAMP := $(VENV)/.lesson5-installed

.PHONY: lesson test lint setup notebooks clean bench

setup: $(STAMP)

# PyTorch goes in first, so that the package's range (torch>=2.13) is already met: its CPU build
# where no NVIDIA GPU answers (a few hundred MB instead of several GB), else the default (CUDA)
# build; TORCH=cpu or TORCH=cuda forces either, and a torch already in the venv is kept. For the
# CPU build a wheel pip already has at hand (its find-links) comes before PyTorch's CPU index.
TORCH ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_REQ := 'torch>=2.13'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	@if $(PY) -c 'import torch' 2>/dev/null; then echo "keeping the venv's torch"; \
	elif [ "$(TORCH)" = cpu ]; then \
	  echo "installing PyTorch's CPU build (TORCH=cuda for the CUDA build)"; \
	  { $(PY) -m pip install -q --no-index --no-deps $(TORCH_REQ) 2>/dev/null \
	    && $(PY) -m pip install $(TORCH_REQ); } \
	    || $(PY) -m pip install $(TORCH_REQ) --index-url $(TORCH_CPU_INDEX); \
	else $(PY) -m pip install $(TORCH_REQ); fi
	$(PY) -m pip install -e '.[run,test,lab]'
	touch $(STAMP)

lesson: $(STAMP)
	$(PY) -m lesson5 run --out $(OUT)

# Two workers, one thread each (two torch pools on two cores spin against each other); a
# notebook's cells stay together on one worker (loadfile), the files in the order tests/conftest.py
# gives them (notebooks, the longest, first).
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# Lint, import order and formatting (ruff); CI runs it before `make test`.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Re-execute every notebook in place (top to bottom, fresh kernel) before committing it.
notebooks: $(STAMP)
	$(PY) -m lesson5 run --inplace

clean:
	rm -rf build .pytest_cache

# The benchmark (benchmarks/README.md): its own venv with the peers (fastai, Surprise) pinned, every row
# 3 times, the raw records under benchmarks/results/, and the table in benchmarks/README.md regenerated from them.
# Elsewhere than here, get torch's CPU build with TORCH_PIP_ARGS="--index-url <PyTorch's CPU index>".
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.lesson5-bench-installed
BENCH_OUT := benchmarks/results/$(shell date -u +%Y%m%dT%H%MZ)-$(shell hostname -s).jsonl
BENCH_ARGS ?=
TORCH_PIP_ARGS ?=

$(BENCH_STAMP): benchmarks/requirements.txt pyproject.toml
	test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --upgrade pip
	$(BENCH_PY) -m pip install torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BENCH_PY) -m pip install -r benchmarks/requirements.txt -e '.[test]'
	$(BENCH_PY) -c 'import torchvision' 2>/dev/null || $(BENCH_PY) -m pip uninstall -y torchvision
	$(BENCH_PY) -c 'import fastai.collab, surprise'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_PY) benchmarks/bench.py --runs 3 --results $(BENCH_OUT) $(BENCH_ARGS)
	$(BENCH_PY) benchmarks/bench.py --table $(BENCH_OUT) --readme benchmarks/README.md
