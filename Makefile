# Two commands: `make demo` and `make test`. Everything lives under SEGMENTATION_HOME (default .local/).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# `airflow standalone` starts its components (and Airflow its task processes) by the name `airflow`: the venv's
# bin goes first on PATH, so every target works from a fresh shell without activating the venv.
export PATH := $(abspath $(BIN)):$(PATH)

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

# pytest arguments for the test targets, e.g. make test PYTEST_ARGS="-x tests/unit"
PYTEST_ARGS ?=

.PHONY: help install system-deps mlflow-server demo test test-fast test-faults test-live lint format sample airflow-init standalone bench bench-guard quality recommend-quality clean

help:
	@echo "make demo        - install, generate sample data, run segmentation_monthly for $(DEMO_FROM)..$(DEMO_TO) through Airflow"
	@echo "make test        - install (Python deps, Debian's postgresql and chromium if missing) and run the test suite:"
	@echo "                   unit, DAG, e2e, integration and the live suites (a real Airflow through its REST API,"
	@echo "                   asset-triggered export, the UI in headless Chromium, make standalone); about 23 minutes."
	@echo "                   SEGMENTATION_SKIP_LIVE=1 skips the live suites (about 14 minutes)"
	@echo "make test-fast   - the edit loop: unit and DAG tests not marked slow (under 2 minutes)"
	@echo "make test-faults - SIGKILL fault injection on a real Airflow (what .ci/run adds after make test)"
	@echo "make test-live   - only the live suites, fault injection included"
	@echo "make lint        - ruff check (with Airflow AIR rules) and ruff format --check (make format applies it)"
	@echo "make standalone  - Airflow UI on http://localhost:8080 (AIRFLOW__API__PORT=... for another port)"
	@echo "                   with this project's dags/ and plugins/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set (as on CI) every
# task process, DAG parse and test subprocess would compile Airflow, pandas and TensorFlow from source again
$(VENV)/.installed: $(BIN)/python requirements.txt constraints.txt pyproject.toml
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -r requirements.txt -c constraints.txt
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -c constraints.txt -e ".[test,mlflow]"
	touch $@

install: $(VENV)/.installed

# Debian packages the tests need, installed only when missing: the PostgreSQL server binaries (PostgreSQL
# warehouse tests) and Chromium (the report's browser check and the live UI check)
system-deps:
	bash scripts/install_postgres.sh > /dev/null
	bash scripts/install_browser.sh > /dev/null

# The MLflow tracking server the experiment-tracking test starts, in its own virtualenv (see the script)
mlflow-server: install
	UV=$(BIN)/uv bash scripts/install_mlflow_server.sh > /dev/null

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

# Everything but the fault injection. The live suites (tests/live) start a real Airflow: api-server, scheduler
# and dag-processor driven through the REST API v2, the asset-triggered export, the lookup API, the UI in
# headless Chromium, and `make standalone` itself. SEGMENTATION_SKIP_LIVE=1 skips them.
test: install system-deps mlflow-server
	$(BIN)/python -m pytest -m "not faults" $(PYTEST_ARGS)

# SIGKILL fault injection on a real Airflow (tests/live/test_faults.py): about 8 minutes
test-faults: install
	$(BIN)/python -m pytest -m faults tests/live $(PYTEST_ARGS)

# The edit loop: unit, DAG and packaging tests without the slow ones (model training, whole pipelines, servers)
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not faults" -q tests/unit tests/dags $(PYTEST_ARGS)

test-live: install system-deps
	$(BIN)/python -m pytest tests/live $(PYTEST_ARGS)

format: install
	$(BIN)/ruff format .

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# UI on http://localhost:$AIRFLOW__API__PORT (8080 by default); the execution API the task processes call
# back to follows the port; scripts/standalone.py stops what airflow standalone leaves behind after Ctrl-C
standalone: export AIRFLOW__API__PORT ?= 8080
standalone: export AIRFLOW__API__BASE_URL ?= http://localhost:$(AIRFLOW__API__PORT)
standalone: install airflow-init
	$(BIN)/python scripts/standalone.py

bench: install
	$(BIN)/python benchmarks/run.py

# Every monthly stage at 1M shops against the code issue 12's speed guard was set on, interleaved on this machine
# (about 20 minutes)
bench-guard: install
	$(BIN)/python benchmarks/guard.py --json benchmarks/results/guard.json

# Segment quality through `segmentation run`: Online Retail, CDNOW, a sparse marketplace's customers and grocery
# households (future-behaviour AUC against KMeans-RFM and a supervised ceiling), planted shop data from five
# independent generators and the project's own (ARI against the planted behaviours); about 50 minutes
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
