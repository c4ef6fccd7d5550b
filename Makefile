# The two set-up commands: `make run` (server on the embedded SQLite default) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

ROUNDS ?= 3
JOBS ?= 2000

.PHONY: install run test lint unit fuzz bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/jobyard serve --host $(HOST) --port $(PORT) --config examples/jobyard.yaml \
		--database-url sqlite:///./jobyard.db

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Three test files at a time (pytest-xdist), each file's tests in one process so that a
# module's shared server stays its own; TEST_WORKERS=0 runs them in one process. Three
# took 12-15 min where two took 17-18 (bench/RESULTS.md); the load they put on two
# cores has exposed races in tests, each fixed in the test or the code. The source is
# compiled first: where PYTHONDONTWRITEBYTECODE is set, each of the ~700 processes the
# tests start would otherwise compile it again (~0.35 s of CPU each).
TEST_WORKERS ?= 3
test: lint
	$(BIN)/python -m compileall -q src
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

unit: install
	$(BIN)/pytest tests/unit -q

# The API's fuzz and model-based tests searched deeper than in CI (a nightly-sized run),
# the fuzz on every backend (CI fuzzes SQLite only).
FUZZ_BACKENDS ?= sqlite,postgres,mariadb
FUZZ_EXAMPLES ?= 500
MODEL_EXAMPLES ?= 200
MODEL_STEPS ?= 50
fuzz: install
	JOBYARD_FUZZ_BACKENDS=$(FUZZ_BACKENDS) JOBYARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		JOBYARD_MODEL_EXAMPLES=$(MODEL_EXAMPLES) \
		JOBYARD_MODEL_STEPS=$(MODEL_STEPS) \
		$(BIN)/pytest tests/integration/test_api_fuzz.py tests/integration/test_api_model.py -q

# Side by side with Celery, RQ, Dramatiq, Huey and Procrastinate (needs Redis on
# 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432); writes bench/RESULTS.md's generated section.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.compare --rounds $(ROUNDS) --jobs $(JOBS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache jobyard.db jobyard.db-wal jobyard.db-shm
