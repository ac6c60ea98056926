# The two commands a user needs: `make run` (the demo reef) and `make test` (everything).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# What running needs, and on top of it what testing and checking need: `make run` installs only
# the first.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run webapp test lint typecheck imports check bench bench-depth bench-preview bench-trends bench-live clean

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/reef-alerts demo

# The example web app (examples/webapp) with the preview router, on the demo reef's database.
webapp: $(DEV_STAMP)
	$(BIN)/reef-alerts demo > /dev/null
	REEF_WEBAPP_DATABASE_URL=sqlite+aiosqlite:///reef_alerts_demo.db \
		$(BIN)/uvicorn --app-dir examples/webapp app:app --port $${PORT:-8000}

# pytest's exit code 5 (no tests collected) is a failure here, not a pass.
test: $(DEV_STAMP)
	@$(BIN)/pytest --cov=reef_alerts --cov-report=term-missing:skip-covered $(PYTEST_ARGS); \
	status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; \
	[ $$status -eq 0 ] || exit $$status
	@echo "Domain coverage (must be >= 95%):"
	@$(BIN)/coverage report --include='*/reef_alerts/domain/*' --fail-under=95

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

imports: $(DEV_STAMP)
	$(BIN)/lint-imports

check: lint typecheck imports test

# The targets: PostgreSQL 1k, 10k (against the per-alert reference); PostgreSQL and SQLite 100k
# on both generations of the web app's schema; trend alerts against plain ones at 10k and 100k.
bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.run --suite
	$(BIN)/python -m benchmarks.preview_api

# Every alert a trend alert against none, 10,000 and 100,000 on PostgreSQL (issue 13).
bench-trends: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.run --alerts 10000,100000 --trends --skip-reference

# A running worker's reading-to-event latency and CPU, 100,000 alerts, 500 readings a second for
# 60 s, live passes against full cycles only (issue 16; about 3 minutes).
bench-live: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.live

# A week's preview through the web app's router on PostgreSQL (issue 14).
bench-preview: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.preview_api

# The history (device_id, timestamp) index's worth, 1,000 alerts 100 to 10,000 readings deep.
bench-depth: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.depth

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
