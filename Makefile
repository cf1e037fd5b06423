# lakehouse: `make up` starts the lake house, `make test` runs the tests.
# Everything installs itself into .venv; Maven artifacts go to the user cache
# (LAKEHOUSE_CACHE overrides).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_REQUEST_CHECKSUM_CALCULATION := when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION := when_required

.DEFAULT_GOAL := help
.PHONY: help install browser up down status demo test test-unit test-integration lint bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install lakehouse with its dev tools

up: $(STAMP) ## Start the lake house and load the sample data (WITH=dashboards,jupyter adds optional services; GOVERNANCE_DEMO=1 loads the governed scenario)
	$(BIN)/lakehouse up $(if $(SERVICES),--services $(SERVICES)) $(if $(WITH),--with $(WITH)) $(if $(RUNTIME),--runtime $(RUNTIME)) $(if $(GOVERNANCE_DEMO),--governance-demo)

down: $(STAMP) ## Stop the lake house (data is kept)
	$(BIN)/lakehouse down

status: $(STAMP) ## Show each service's health, PID and memory
	$(BIN)/lakehouse status

demo: up ## Run a first query
	$(BIN)/lakehouse query "SELECT status, count(*) AS orders, sum(total_amount) AS revenue FROM retail.orders GROUP BY status ORDER BY orders DESC"

browser: ## Install Debian's chromium and chromedriver for the page tests (as root)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing chromium and chromium-driver for the page tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "chromium/chromedriver not found: page tests will skip (as root: make browser)"; fi

test: $(STAMP) browser ## Run unit, integration and notebook tests against real servers
	$(BIN)/python -m pytest

test-unit: $(STAMP) ## Only the tests that need no servers
	$(BIN)/python -m pytest tests/unit -m "not slow"

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check lakehouse sample_data tests bench scripts examples
	$(BIN)/ruff format --check lakehouse sample_data tests bench scripts examples
	$(BIN)/mypy

bench: $(STAMP) ## Measure start-up, ingest and query speed; writes bench/results/*.json
	$(BIN)/python -m bench

clean: ## Remove .venv and the default home (.lakehouse); the artifact cache stays
	-$(BIN)/lakehouse down
	rm -rf $(VENV) .lakehouse
