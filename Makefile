# Every target bootstraps .venv from nothing: a fresh machine needs only Python 3.11 or newer,
# pip and venv. Another interpreter gets its own venv, e.g. (as .ci/run does)
#   make test PYTHON=python3.13 VENV=.venv-py3.13
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/kidaudit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The analysis worker runs with -O: its bytecode, compiled once here, not at each start.
	$(BIN)/python -O -m compileall -q -j0 auditor \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
		>/dev/null || echo "some files were not precompiled: the worker compiles them as it starts"
	touch $@

demo: $(BIN)/kidaudit
	$(BIN)/kidaudit demo --out reports/demo

# ruff, then the import contracts of .importlinter (the core stays free of mitmproxy, files and
# the clock; the stages import downwards only).
lint: $(BIN)/kidaudit
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/python -m pytest -q

bench: $(BIN)/kidaudit
	$(BIN)/python -m bench

clean:
	rm -rf .venv .venv-* reports/demo build *.egg-info
