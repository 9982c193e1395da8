# Two commands from a clean clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types pytest install bench clean constraints

# Every dependency at the version in constraints.txt: a fresh machine runs what passed here.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,local,dev]'
	# Bytecode as a wheel install would leave it (this machine sets PYTHONDONTWRITEBYTECODE).
	$(BIN)/python -m compileall -q builder
	touch $(STAMP)

install: $(STAMP)

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy

# Two workers (pytest-xdist): the suite mostly waits on moto and subprocesses, one module per worker at a time.
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python bench/build_bench.py

# After changing dependencies in pyproject.toml: re-pin from a fresh resolve.
constraints:
	rm -rf .constraints-venv && $(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/python -m pip install --quiet -e '.[test,local,dev]'
	{ head -2 constraints.txt; .constraints-venv/bin/python -m pip freeze --exclude-editable | grep -v '^lambda-relay'; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .constraints-venv

# After changing dependencies (and `make constraints`): re-pin the Docker image's hash-checked requirements.
.PHONY: docker-requirements
docker-requirements: $(STAMP)
	bash docker/refresh-requirements.sh

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
