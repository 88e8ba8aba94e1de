# Two entry points: `make lesson` (set up, then run the whole lesson) and `make test`
# (set up, then run every test). Both create .venv when it is missing and are safe to rerun.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= build/lesson
STAMP := $(VENV)/.lesson5-installed

.PHONY: lesson test lint setup notebooks clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test,lab]'
	touch $(STAMP)

lesson: $(STAMP)
	$(PY) -m lesson5 run --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest

# Lint, import order and formatting (ruff); CI runs it before `make test`.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Re-execute every notebook in place (top to bottom, fresh kernel) before committing it.
notebooks: $(STAMP)
	$(PY) -m lesson5 run --inplace

clean:
	rm -rf build .pytest_cache
