# Two commands for a fresh Linux machine with Python 3.11+:  make reproduce   and   make test
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.eignotes-installed

.PHONY: setup reproduce test test-fast check lab bench sync clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# A fresh venv has no torch: install 2.13.0 (the CPU build where a local wheel exists; PyPI's default build
	@# otherwise). torch is never pinned in the package itself, so Colab keeps its own CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	@# fitstream (the stream library our stages interoperate with) declares Python >= 3.12 but runs on 3.11; it is
	@# no dependency, only the interop test uses it, and that test skips with the reason where it is missing.
	$(PY) -m pip install -q --ignore-requires-python fitstream || echo "fitstream not installed: its interop test will skip"
	@touch $@

setup: $(STAMP)

# The main job: run every notebook headless, executed copies and figures under build/.
reproduce: $(STAMP)
	$(PY) -m eignotes.course.reproduce --out build

# Static checks: lint (ruff), the layer contracts (import-linter), types of the core (mypy).
check: $(STAMP)
	$(VENV)/bin/ruff check eignotes tests tools notebooks benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# The tests run in one worker process per core (pytest-xdist), each worker's numba and torch on one thread: most
# tests are small kernels that a second thread does not speed up (waking it costs more), while a second worker
# runs other tests meanwhile; two-threaded workers would oversubscribe the cores, and numba's waiting threads spin.
TEST_ENV := EIGNOTES_SCALE=quick NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1
TEST_ARGS := -q -p no:cacheprovider -n auto

# The CI command: static checks, then unit tests, doctests, notebook-pair checks and every notebook (nbmake) at the
# quick scale.
test: check
	$(TEST_ENV) $(PY) -m pytest tests --nbmake notebooks $(TEST_ARGS)

# The edit-test loop: static checks and the unit tests not marked slow (tests/conftest.py lists them), no notebooks.
test-fast: check
	$(TEST_ENV) $(PY) -m pytest tests $(TEST_ARGS) -m "not slow"

# After editing a notebook (its .py source, or the .ipynb in Jupyter): rewrite the other file of the pair.
sync: $(STAMP)
	$(PY) tools/sync_notebooks.py

lab: $(STAMP)
	$(PY) -m pip install -q -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m eignotes.bench

clean:
	rm -rf build
