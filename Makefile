# Every command a developer or a workflow runs is a target here. `make` lists them.
.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# uv from PATH, or the one pip installs on first use.
UV := $(shell command -v uv 2>/dev/null || echo $(PYTHON) -m uv)
PYTEST_ARGS ?=

# Stage commands (`python -m tabml.<stage>`) must find the project's environment.
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never
# No usage reporting from the tools.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export DO_NOT_TRACK := 1

.PHONY: help setup run repro test test-fast lint format bench mlflow-ui clean

help:  ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --locked
	@touch $@

setup: $(VENV)/.synced  ## Create .venv from uv.lock (installs uv with pip if missing)

run: setup  ## Run the whole pipeline on the shipped data and show the metrics
	dvc repro
	@echo
	dvc metrics show --md
	@echo "Next:"
	@echo "  reports/metrics.json      metrics on the validation and test sets"
	@echo "  reports/validation.md     the data validation summary"
	@echo "  dvc plots show            plots (ROC, PR, calibration, gain...) -> dvc_plots/index.html"
	@echo "  make mlflow-ui            browse runs, params and models at http://127.0.0.1:5000"

repro: setup  ## dvc repro: run the stages whose code, params or data changed
	dvc repro

test: setup  ## Run the whole test suite
	pytest $(PYTEST_ARGS)

test-fast: setup  ## Run the tests that need no trained pipeline and no server
	pytest -m "not slow" $(PYTEST_ARGS)

lint: setup  ## Check format and lint (ruff)
	ruff format --check .
	ruff check .

format: setup  ## Format and fix what ruff can
	ruff format .
	ruff check --fix .

bench: setup  ## Benchmark the pipeline against one bare Python process
	python benchmarks/pipeline.py

mlflow-ui: setup  ## Browse the local MLflow store
	mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port 5000

clean:  ## Remove the environment and local caches (not the DVC cache or MLflow store)
	rm -rf $(VENV) .pytest_cache .ruff_cache

.PHONY: bento serve bench-serve

BENTO_ARGS := --model models/model.joblib --train data/processed/train.parquet \
	--valid data/processed/valid.parquet --test data/processed/test.parquet \
	--metrics reports/metrics.json

bento: repro  ## Import the trained model into the BentoML store (exact tag) and build the bento
	python -m tabml.bento $(BENTO_ARGS)

serve: repro  ## Build the bento and serve it on http://127.0.0.1:3000
	tag=$$(python -m tabml.bento $(BENTO_ARGS) | sed -n 's/^bento: //p'); \
		bentoml serve "$$tag" --host 127.0.0.1 --port 3000

bench-serve: repro  ## Benchmark the service against naive FastAPI and BentoML with batching
	python benchmarks/serve.py
