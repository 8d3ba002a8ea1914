# Two commands: `make demo` and `make test`. Everything lives under SEGMENTATION_HOME (default .local/).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

export SEGMENTATION_HOME ?= $(CURDIR)/.local
export AIRFLOW_HOME ?= $(SEGMENTATION_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := True

DEMO_SHOPS ?= 2000
DEMO_FROM ?= 2023-01
DEMO_TO ?= 2024-12
SAMPLE := $(SEGMENTATION_HOME)/sample/sales.parquet

.PHONY: help install system-deps demo test test-live lint sample airflow-init standalone bench quality recommend-quality clean

help:
	@echo "make demo   - install, generate sample data, run segmentation_monthly for $(DEMO_FROM)..$(DEMO_TO) through Airflow"
	@echo "make test   - install and run the whole test suite"
	@echo "make lint   - ruff (with Airflow AIR rules)"
	@echo "make standalone - Airflow UI on http://localhost:8080 with this project's dags/ and plugins/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.txt constraints.txt pyproject.toml
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -r requirements.txt -c constraints.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Debian's PostgreSQL server binaries, for the PostgreSQL warehouse tests (installed only when missing)
system-deps:
	bash scripts/install_postgres.sh > /dev/null

$(SAMPLE): | $(VENV)/.installed
	$(BIN)/segmentation generate --shops $(DEMO_SHOPS) --from $(DEMO_FROM) --to $(DEMO_TO) --out $(SAMPLE)

sample: $(SAMPLE)

$(AIRFLOW_HOME)/airflow.db: | $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log
	$(BIN)/airflow pools set warehouse 1 "Serialize warehouse writers (DuckDB allows one writer)"

airflow-init: $(AIRFLOW_HOME)/airflow.db

demo: install sample airflow-init
	$(BIN)/python scripts/run_demo.py --from $(DEMO_FROM) --to $(DEMO_TO)

test: install system-deps
	$(BIN)/python -m pytest

# A real Airflow (api-server, scheduler, dag-processor) driven through the REST API v2, the UI in headless
# Chromium (screenshots in docs/screenshots) and SIGKILL fault injection: about 17 minutes
test-live: install
	bash scripts/install_browser.sh > /dev/null
	SEGMENTATION_LIVE_TESTS=1 $(BIN)/python -m pytest tests/live

lint: install
	$(BIN)/ruff check .

standalone: install airflow-init
	$(BIN)/airflow standalone

bench: install
	$(BIN)/python benchmarks/run.py

# Segment quality through `segmentation run`: UCI Online Retail (future-behaviour AUC against KMeans-RFM and a
# supervised ceiling) and planted shop data from an independent generator (also over 36 months with the defaults) and the project's own (about 20 minutes)
quality: install
	$(BIN)/python benchmarks/quality.py --json benchmarks/results/quality.json

# Recommendation quality on held-out months through `segmentation run`: Online Retail and planted shop data, each
# method against the popularity baseline and without segments (about 20 minutes)
recommend-quality: install
	$(BIN)/python benchmarks/recommend_quality.py --variant itemcf:neighbours=50 --variant itemcf:popularity_weight=0 \
	    --variant itemcf:popularity_weight=0.2 --variant segment_itemcf:popularity_weight=0.2 \
	    --json benchmarks/results/recommend_quality.json

clean:
	rm -rf $(SEGMENTATION_HOME)
