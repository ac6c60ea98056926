# The two commands a user needs: `make run` (the demo reef) and `make test` (everything).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck imports check bench bench-depth clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/reef-alerts demo

# pytest's exit code 5 (no tests collected) is a failure here, not a pass.
test: $(STAMP)
	@$(BIN)/pytest --cov=reef_alerts --cov-report=term-missing:skip-covered $(PYTEST_ARGS); \
	status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; \
	[ $$status -eq 0 ] || exit $$status
	@echo "Domain coverage (must be >= 95%):"
	@$(BIN)/coverage report --include='*/reef_alerts/domain/*' --fail-under=95

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck imports test

# The targets: PostgreSQL 1k, 10k (against the per-alert reference); PostgreSQL and SQLite 100k
# on both generations of the web app's schema.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --suite

# The history (device_id, timestamp) index's worth, 1,000 alerts 100 to 10,000 readings deep.
bench-depth: $(STAMP)
	$(BIN)/python -m benchmarks.depth

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
