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

# Stage commands (`python -m tabml.<stage>`) must find the project's environment. The files the
# stages exchange are named once, in params.yaml's `paths` (dvc.yaml reads them from there):
# every `python -m tabml.*` defaults to them, and a recipe that needs one asks `tabml.paths`.
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
# A laptop without Python 3.11 gets uv's managed download; the workflows set `never`, so there
# actions/setup-python must provide the interpreter (uv then says "No interpreter found").
export UV_PYTHON_DOWNLOADS ?= automatic
# No usage reporting from the tools.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export DO_NOT_TRACK := 1
# CML reads this one (src/analytics.js), not DO_NOT_TRACK.
export ITERATIVE_DO_NOT_TRACK := 1

.PHONY: help setup init run repro check-params snapshot test test-fast test-runner test-host lint format bench mlflow-ui clean

##@ Set-up
help:  ## Show this help
	@awk -v order='Set-up|Pipeline|Pull requests|Serving|Delivery|Kubernetes|Continuous training|GitHub|Benchmarks' ' \
	  BEGIN { FS = ":.*## "; n = split(order, sections, "|"); \
	    for (i = 1; i <= n; i++) known[sections[i]] = 1; section = "Other" } \
	  /^##@ / { section = substr($$0, 5); next } \
	  /^[a-zA-Z0-9_-]+:.*## / { \
	    if (!(section in known)) { known[section] = 1; sections[++n] = section } \
	    lines[section] = lines[section] sprintf("  \033[36m%-18s\033[0m %s\n", $$1, $$2) } \
	  END { for (i = 1; i <= n; i++) if (sections[i] in lines) \
	    printf "%s\033[1m%s\033[0m\n%s", (shown++ ? "\n" : ""), sections[i], lines[sections[i]] }' \
	  $(MAKEFILE_LIST)

$(VENV)/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --locked
	@touch $@

setup: $(VENV)/.synced  ## Create .venv from uv.lock (installs uv with pip if missing)

##@ Pipeline
run: setup  ## Run the whole pipeline on the shipped data and show the metrics
	dvc repro
	@echo
	dvc metrics show --md
	@echo "Next:"
	@printf '  %-25s %s\n' \
	  "$$(python -m tabml.paths metrics)" "metrics on the validation and test sets" \
	  "$$(python -m tabml.paths validation_summary)" "the data validation summary" \
	  "dvc plots show" "plots (ROC, PR, calibration, gain...) -> dvc_plots/index.html" \
	  "make mlflow-ui" "browse runs, params and models at http://127.0.0.1:5000"

repro: setup  ## dvc repro: run the stages whose code, params or data changed
	dvc repro

PARAMS ?= params.yaml

check-params: setup  ## Check params.yaml whole (types, ranges, columns, estimator options); dvc repro does first
	python -m tabml.check_params --params $(PARAMS)

snapshot: setup  ## Read the source again (an SQL source's database is not versioned) and rerun
	dvc repro --force --single-item ingest
	dvc repro

# --- Adopting your data: make init SOURCE=... TARGET=... (docs/adopting.md) ------------------
SOURCE ?=
TARGET ?=
POSITIVE ?=
TIME ?=
LEAK ?=
DATABASE ?=

.PHONY: init

##@ Set-up
init: setup  ## Adopt your data: SOURCE=csv|parquet|url|query.sql TARGET=column [POSITIVE= TIME= LEAK=a,b DATABASE=url]
	@test -n "$(SOURCE)" -a -n "$(TARGET)" || { echo "ERROR: make init needs SOURCE=<file or URL>" \
	  "and TARGET=<label column> (POSITIVE=, TIME=, LEAK= optional; docs/adopting.md)."; exit 2; }
	python -m tabml.init --source "$(SOURCE)" --target "$(TARGET)" \
	  $(if $(POSITIVE),--positive "$(POSITIVE)") $(if $(TIME),--time "$(TIME)") \
	  $(if $(LEAK),--leak "$(LEAK)") $(if $(DATABASE),--database "$(DATABASE)")
	python -m tabml.reference
	dvc repro
	dvc metrics show --md
	@echo "Review what init listed above, run 'make test', then commit data/, src/tabml/schema.py,"
	@echo "params.yaml, dvc.lock and reports/."

test: setup  ## Run the whole test suite
	pytest $(PYTEST_ARGS)

test-fast: setup  ## Run the tests that need no trained pipeline and no server
	pytest -m "not slow" $(PYTEST_ARGS)

# The workflow tests: their jobs run in the ubuntu-24.04 stand-in image (podman), as on a hosted
# runner; `make test-host` runs them on this machine instead, quicker and proving less.
RUNNER_TESTS := tests/workflows/test_act.py tests/workflows/test_retrain.py tests/workflows/test_tune_workflow.py \
  tests/delivery/test_cd.py

test-runner: setup  ## Run only the workflow tests, their jobs in the ubuntu-24.04 stand-in image
	TABML_ACT_RUNNER=image pytest $(RUNNER_TESTS) $(PYTEST_ARGS)

test-host: setup  ## Run only the workflow tests, their jobs on this machine (quick, proves less)
	TABML_ACT_RUNNER=host pytest $(RUNNER_TESTS) $(PYTEST_ARGS)

lint: setup  ## Check format and lint (ruff)
	ruff format --check .
	ruff check .

format: setup  ## Format and fix what ruff can
	ruff format .
	ruff check --fix .

##@ Benchmarks
bench: setup  ## Benchmark the pipeline against one bare Python process
	python benchmarks/pipeline.py

.PHONY: bench-flights bench-validate reference-profile

bench-flights: setup  ## Benchmark the whole pipeline on the 336,776 NYC flights against fit + score
	python benchmarks/flights.py

bench-validate: setup  ## Benchmark data validation on 1M and 10M resampled rows (time, memory)
	python benchmarks/validate.py

##@ Pipeline
reference-profile: setup  ## Rewrite the drift reference from drift.reference_* (commit it)
	python -m tabml.reference

# The UI takes up to a minute to answer the first time (it upgrades the store's schema): its
# address is printed once it answers.
MLFLOW_UI_PORT ?= 5000

mlflow-ui: setup  ## Browse the local MLflow store (the address is printed once the UI answers)
	@echo "Starting the MLflow UI on port $(MLFLOW_UI_PORT) (the first start takes up to a minute)..."
	@mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 \
	  --port $(MLFLOW_UI_PORT) & ui=$$!; trap 'kill $$ui 2>/dev/null' EXIT INT TERM; \
	until python -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)' \
	  "http://127.0.0.1:$(MLFLOW_UI_PORT)/health" 2>/dev/null; do \
	  kill -0 $$ui 2>/dev/null || { wait $$ui; exit 1; }; sleep 1; done; \
	echo "MLflow UI ready: http://127.0.0.1:$(MLFLOW_UI_PORT) (Ctrl+C stops it)"; wait $$ui

##@ Set-up
clean:  ## Remove the environment and local caches (not the DVC cache or MLflow store)
	rm -rf $(VENV) .pytest_cache .ruff_cache

# --- Pull-request CI: the targets the workflows in .github/workflows run, one per step -------
# BASE is the revision a change is compared with (the workflow passes the pull request's base
# commit); REPORT_DIR is what the report job uploads; PR_REPORT_DIR is where the posting job
# downloads it (outside the checkout). CML runs through npx at a pinned version unless CML names
# another command; the posting job instead runs the copy install-cml put in CML_PREFIX before
# anything untrusted was on disk (npx would obey an .npmrc in its working directory).
BASE ?= main
REPORT_DIR ?= build/report
PR_REPORT_DIR ?= build/pr-report
CML_VERSION ?= 0.20.0
CML ?= npx --yes @dvcorg/cml@$(CML_VERSION)
CML_PREFIX ?= $(CURDIR)/build/cml
POST_CML := $(if $(filter file,$(origin CML)),$(CML_PREFIX)/node_modules/.bin/cml,$(CML))
WORKFLOWS := $(wildcard .github/workflows/*.yml)

.PHONY: lint-workflows check-data pull-cache check-lock report gate install-cml comment all-green ci bench-ci

##@ Pull requests
lint-workflows: setup  ## Lint the workflows and Dependabot config (schema, actionlint, zizmor)
	check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	actionlint $(WORKFLOWS)
	zizmor --offline --pedantic --no-progress $(WORKFLOWS) .github/dependabot.yml

check-data: setup  ## Run the pipeline up to data validation: stops here on bad data
	dvc repro validate

pull-cache: setup  ## Pull the DVC run-cache and outputs, when a DVC remote is configured
	@if [ -z "$$(dvc remote list)" ]; then \
	  echo "No DVC remote configured: the pipeline uses the restored CI cache only."; \
	elif ! dvc pull --run-cache --allow-missing; then \
	  echo "WARNING: dvc pull failed; stages whose outputs are missing will run."; \
	fi

check-lock: setup  ## Fail when dvc.lock or reports/ differ from what code, params and data produce
	@if [ -n "$$(git status --porcelain -- dvc.lock reports)" ]; then \
	  git status --short -- dvc.lock reports; git --no-pager diff --stat -- dvc.lock reports; \
	  echo "ERROR: the committed dvc.lock or reports/ do not match what this commit's code," \
	    "params and data produce. Run 'make repro' and commit dvc.lock and reports/ (they are" \
	    "also in the 'pipeline' artifact of this run)."; \
	  exit 1; \
	fi
	@dvc status --quiet || { dvc status; echo "ERROR: dvc status is not clean after dvc repro."; exit 1; }
	@echo "dvc.lock and reports/ match what this commit produces."

report: setup  ## Write the pull-request report against BASE into REPORT_DIR (make report BASE=main)
	python -m tabml.report --base "$(BASE)" --out $(REPORT_DIR) \
	  --pipeline-result "$(PIPELINE_RESULT)" \
	  --pr-number "$(PR_NUMBER)" --head-sha "$(HEAD_SHA)" --run-url "$(RUN_URL)" \
	  $(if $(filter true,$(FROM_FORK)),--from-fork)

gate: setup  ## Fail when a metric is under its floor or falls beyond its tolerance against BASE
	python -m tabml.gate --base "$(BASE)" --params params.yaml

install-cml:  ## Install CML_VERSION of CML into CML_PREFIX (no install scripts), unless CML names another
ifeq ($(origin CML),file)
	npm install --prefix "$(CML_PREFIX)" --ignore-scripts --no-audit --no-fund \
	  "@dvcorg/cml@$(CML_VERSION)"
	ITERATIVE_DO_NOT_TRACK=1 "$(POST_CML)" --version
else
	@echo "CML is $(CML): nothing to install."
endif

# Runs in the posting workflow, which installs nothing of ours: the system Python and src/.
comment:  ## Post PR_REPORT_DIR/report.md as the pull request's one CML comment, updated in place
	PYTHONPATH=src $(PYTHON) -m tabml.comment --report-dir "$(PR_REPORT_DIR)" \
	  --head-sha "$(HEAD_SHA)" --pr-numbers "$(PR_NUMBERS)" --run-url "$(RUN_URL)" \
	  --cml "$(POST_CML)" $(if $(filter true,$(PUBLISH_IMAGES)),--publish)

all-green:  ## Fail unless every job in RESULTS ("lint=success tests=success ...") succeeded
	@test -n "$(strip $(RESULTS))" || { echo "ERROR: RESULTS is empty."; exit 1; }
	@bad=""; for result in $(RESULTS); do \
	  case "$$result" in *=success) ;; *) bad="$$bad $$result";; esac; \
	done; \
	if [ -n "$$bad" ]; then echo "ERROR: these jobs did not succeed:$$bad"; exit 1; fi
	@echo "All required jobs succeeded: $(RESULTS)"

ci: lint lint-workflows test check-data pull-cache repro check-lock report gate  ## Run locally what the pull-request workflow runs, in its order

##@ Benchmarks
bench-ci: setup  ## Time the pull-request workflow under act, with and without a DVC cache hit
	python benchmarks/ci.py

# --- Kubernetes manifests ----------------------------------------------------------------
# deploy/k8s: kustomize base plus staging and production overlays (README, Deploy to
# Kubernetes). K8S_IMAGE is the exact tag the check pins the placeholder to, as deploy does;
# K8S_OUT receives each rendered overlay.
K8S_IMAGE ?= registry.example.com/tabml/tabml-service:0.1.0
K8S_OUT ?= build/k8s

.PHONY: manifests

##@ Kubernetes
manifests: setup  ## Render and validate the Kubernetes overlays
	deploy/k8s/validate.sh $(K8S_OUT) $(K8S_IMAGE)

.PHONY: bento serve shadow-report bench-serve

# Every build makes a new bento version; `bento` writes its tag here and `serve`, `image` and
# `sbom` read it, so each builds on (or describes) that one bento. BUILD is set below.
BENTO_TAG = $(BUILD)/bento-tag

# SHADOW (a model file or an exact tag; default serve.shadow_model) is a second model the
# service scores off the request path; `make shadow-report` compares the two over the log.
SHADOW ?=

##@ Serving
bento: repro  ## Import the model (and SHADOW=file|tag, a shadow model) into the BentoML store and build the bento
	python -m tabml.bento --tag-out $(BENTO_TAG) $(if $(SHADOW),--shadow "$(SHADOW)")

# PORT is where `make serve` listens. The service writes its prediction log where
# `make monitor PREDICTION_LOG=...` reads it: serve.prediction_log resolved from here (a relative
# path would resolve in the bento's own directory in the BentoML store), or the directory
# TABML_PREDICTION_LOG names. Arguments are checked before anything is built.
PORT ?= 3000
SERVE_LOG = log="$${TABML_PREDICTION_LOG:-$$(python -m tabml.paths --absolute prediction_log)}"; \
  case "$$log" in /*) ;; *) log="$(CURDIR)/$$log";; esac

serve: setup  ## Build the bento and serve it on http://127.0.0.1:PORT (3000), logging to serve.prediction_log
	@case "$(PORT)" in ''|*[!0-9]*) echo "ERROR: PORT='$(PORT)' is not a port number;" \
	  "run make serve PORT=3000 (or another free port)." >&2; exit 2;; esac
	@$(SERVE_LOG); if [ -e "$$log" ] && [ ! -d "$$log" ]; then \
	  echo "ERROR: TABML_PREDICTION_LOG=$$log is a file, not a directory; name a directory" \
	    "or unset it (the default is serve.prediction_log)." >&2; exit 2; fi
	@$(MAKE) --no-print-directory bento
	@$(SERVE_LOG); echo "Prediction log: $$log"; export TABML_PREDICTION_LOG="$$log"; \
	  exec bentoml serve "$$(cat $(BENTO_TAG))" --host 127.0.0.1 --port $(PORT)

# The window is the log's records at or after LOG_SINCE, then the newest LOG_LAST of them; the
# log is PREDICTION_LOG (default serve.prediction_log). Not under reports/: those are the
# pipeline's outputs, which `make check-lock` compares with what the pipeline produces.
LOG_LAST ?=
SHADOW_OUT ?= $(BUILD)/shadow

shadow-report: setup  ## Compare the shadow model with the served one over the log (PREDICTION_LOG= LOG_SINCE= LOG_LAST=)
	python -m tabml.shadow_report --out $(SHADOW_OUT) \
	  --log "$(or $(PREDICTION_LOG),$$(python -m tabml.paths prediction_log))" \
	  $(if $(LOG_SINCE),--since "$(LOG_SINCE)") $(if $(LOG_LAST),--last "$(LOG_LAST)")

# --- Alerts: deploy/prometheus/rules.yml, its unit tests, its PrometheusRule (docs/alerts.md) ---
PROMETHEUS_RULES := deploy/prometheus/rules.yml
PROMETHEUS_RULE := deploy/k8s/base/monitoring/prometheusrule.yaml

.PHONY: test-rules prometheus-rule

test-rules:  ## Check the alert rules and run their unit tests (promtool, from make system-packages)
	@command -v promtool >/dev/null || { echo "ERROR: promtool is not on PATH; run" \
	  "'make system-packages' (Debian's prometheus package has it)." >&2; exit 2; }
	promtool check rules $(PROMETHEUS_RULES)
	cd $(dir $(PROMETHEUS_RULES)) && promtool test rules rules.test.yml

prometheus-rule: setup  ## Write the Kubernetes PrometheusRule from deploy/prometheus/rules.yml
	python deploy/prometheus/prometheusrule.py $(PROMETHEUS_RULES) $(PROMETHEUS_RULE)

##@ Benchmarks
bench-serve: repro  ## Benchmark the service against naive FastAPI and BentoML with batching
	python benchmarks/serve.py

# --- Delivery: what the merge workflow (cd.yml) runs, one target per step --------------------
# The model is registered in MLflow (MLFLOW_TRACKING_URI), the serving image is the bento that
# pins it, and each environment gets it only after its smoke test; see README, Delivery.
# ENV is staging or production; REGISTRY (optional) is where `make push` sends the images;
# DEPLOY_TARGET (local or k8s) overrides deploy.target. JOB is the cd.yml job that `preflight`
# checks; docs/delivery.md lists the settings each job needs.
ENV ?= staging
JOB ?= build
URL ?= http://127.0.0.1:3101
BUILD := build
# podman here needs runc and raised ulimits (deploy/podman/containers.conf); Docker ignores it.
export CONTAINERS_CONF ?= $(CURDIR)/deploy/podman/containers.conf

.PHONY: preflight track register promote rollback base-image check-tools system-packages image sbom
.PHONY: registry-login
.PHONY: push golden deploy smoke release

# Runs before `make setup` in each cd.yml job: the system Python and src/ are enough.
##@ Delivery
preflight:  ## Check the settings cd.yml's job JOB (build, staging, production) needs; one line each
	PYTHONPATH=src $(PYTHON) -m tabml.preflight --job $(JOB) --params params.yaml

track: repro  ## Log this commit's model to MLflow (re-runs train+evaluate) unless a run has it
	@if python -m tabml.registry tracked; then echo "MLflow already has this model's run."; \
	else dvc repro --force --single-item train && dvc repro --force --single-item evaluate; fi

register: setup  ## Register the model dvc.lock pins (once per model); writes build/model-version
	@mkdir -p $(BUILD)
	python -m tabml.registry register | tee $(BUILD)/model-version

# A shadow report in SHADOW_OUT (make shadow-report) that compared the promoted version is cited
# as the version's tag ENV.shadow_report.
promote: setup  ## Point alias ENV at build/model-version (the old target becomes ENV-previous; PUSHGATEWAY= tells it)
	python -m tabml.registry promote --alias $(ENV) --version "$$(cat $(BUILD)/model-version)" \
	  $(if $(wildcard $(SHADOW_OUT)/shadow.json),--shadow-report $(SHADOW_OUT)/shadow.json) \
	  $(if $(PUSHGATEWAY),--pushgateway "$(PUSHGATEWAY)")

rollback: setup  ## Put the previous release of ENV back in service and move its alias back
	python -m tabml.deploy --env $(ENV) --rollback
	python -m tabml.registry rollback --alias $(ENV) $(if $(PUSHGATEWAY),--pushgateway "$(PUSHGATEWAY)")

base-image: setup  ## Build python:3.11-slim locally where none can be pulled (CA_BUNDLE: your CA)
	deploy/base-image.sh

check-tools: setup base-image  ## Check that the container engine (with --init), act, kubectl and promtool answer
	deploy/check-tools.sh

# What the container tests and the local deploy need from the system, each named in
# .ci/system-packages with the reason.
SYSTEM_PACKAGES := $(strip $(shell sed -e 's/\#.*//' .ci/system-packages))
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

system-packages:  ## Install the system packages the container and database tests use (apt-get; root or sudo)
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  $(SYSTEM_PACKAGES) >/dev/null
	@echo "Installed: $(SYSTEM_PACKAGES)"

image: bento  ## Build the serving and pipeline images with their lineage labels
	python -m tabml.release images --bento "$$(cat $(BENTO_TAG))" \
	  --model-version "$$(cat $(BUILD)/model-version 2>/dev/null || echo unregistered)"

# cd.yml runs `make image` and then `make sbom`: the SBOM describes the bento the image holds,
# and a bento is built here only when none was.
$(BENTO_TAG):
	$(MAKE) --no-print-directory bento

sbom: setup $(BENTO_TAG)  ## Write CycloneDX SBOMs of both images' Python environments to build/sbom
	python -m tabml.release sbom --bento "$$(cat $(BENTO_TAG))" --out $(BUILD)/sbom

registry-login: setup  ## Log the engine in to REGISTRY as REGISTRY_AUTH says (token from the environment)
	python -m tabml.release login

push: setup  ## Push both images to REGISTRY and record their digests (no REGISTRY: no-op)
	python -m tabml.release push

golden: repro  ## Record golden requests and their expected scores from the test split
	python -m tabml.smoke golden --out $(BUILD)/golden.json

# PROMETHEUS_URL (default deploy.prometheus_url) is where the canary analysis queries.
deploy: setup  ## Deploy the serving image (IMAGE, default build/release.json) to ENV; roll back on failure
	python -m tabml.deploy --env $(ENV) --golden $(BUILD)/golden.json \
	  --record $(BUILD)/deploy-$(ENV).json \
	  $(if $(IMAGE),--image $(IMAGE)) $(if $(DEPLOY_TARGET),--target $(DEPLOY_TARGET)) \
	  $(if $(PROMETHEUS_URL),--prometheus-url "$(PROMETHEUS_URL)")

smoke: setup  ## Smoke-test the service at URL against build/golden.json
	python -m tabml.smoke check --url $(URL) --golden $(BUILD)/golden.json

release: track register golden image  ## Local rehearsal of the merge workflow: staging, then production
	$(MAKE) deploy promote ENV=staging
	$(MAKE) deploy promote ENV=production

# --- Continuous training: drift monitor, scheduled retraining as a pull request, simulation ---
# The monitor reads PREDICTION_LOG (the service's log directory) when it is set, otherwise the
# newest `monitor.window_rows` rows of the source. `python -m tabml.monitor` exits 3 on drift;
# FAIL_ON_DRIFT=false makes it exit 0 (a workflow reads `drift=` from its output instead).
# MONITOR_MODEL is the model monitored (default: the pipeline's, params.yaml `paths.model`).
PREDICTION_LOG ?=
LOG_SINCE ?=
MONITOR_MODEL ?=
MONITOR_OUT ?= build/monitor
# PUSHGATEWAY (a URL) and METRICS_FILE (a .prom file for node-exporter's textfile collector)
# receive the monitor's drift figures as Prometheus metrics (docs/alerts.md); PUSHGATEWAY also
# receives the alias that `make promote` and `make rollback` move. Default: neither.
PUSHGATEWAY ?=
METRICS_FILE ?=
FAIL_ON_DRIFT ?= true
RETRAIN_DIR ?= build/retrain
DRIFT ?= false
RETRAIN_BRANCH ?= retrain/$(shell date -u +%Y%m%d-%H%M%S)
GH ?= gh
RETRAIN_REF ?= main
SIMULATE_OUT ?= build/simulate
SIMULATE_WINDOWS ?=

.PHONY: monitor simulate production-model retrain-window retrain-compare retrain-pr trigger-retrain

##@ Continuous training
monitor: setup  ## Drift of the prediction log (PREDICTION_LOG=dir) or the newest rows; exit 3 on drift (PUSHGATEWAY= METRICS_FILE=)
	python -m tabml.monitor --out $(MONITOR_OUT) $(if $(MONITOR_MODEL),--model "$(MONITOR_MODEL)") \
	  $(if $(PREDICTION_LOG),--log "$(PREDICTION_LOG)") $(if $(LOG_SINCE),--since "$(LOG_SINCE)") \
	  $(if $(filter false,$(FAIL_ON_DRIFT)),--no-fail-on-drift) \
	  $(if $(PUSHGATEWAY),--pushgateway "$(PUSHGATEWAY)") \
	  $(if $(METRICS_FILE),--metrics-file "$(METRICS_FILE)")

simulate: setup  ## Replay 2008-2010 in time windows: monitor, retrain on drift, print the table
	python -m tabml.simulate --out $(SIMULATE_OUT) $(if $(SIMULATE_WINDOWS),--windows $(SIMULATE_WINDOWS))

production-model: setup  ## Fetch the production model (MLflow alias, else dvc.lock's) into RETRAIN_DIR
	python -m tabml.retrain production --out $(RETRAIN_DIR)/production

retrain-window: setup  ## Move the ingest window to the newest rows and rewrite the drift reference
	python -m tabml.retrain window --out $(RETRAIN_DIR)/window.json
	python -m tabml.reference

# The branch is chosen here and handed to retrain-pr through the artifact: the body names it.
retrain-compare: setup  ## Compare the retrained model with production on the newest holdout (DRIFT=true|false)
	branch="$(RETRAIN_BRANCH)"; \
	python -m tabml.retrain compare --production $(RETRAIN_DIR)/production \
	  --out $(RETRAIN_DIR) --drift "$(DRIFT)" --branch "$$branch" \
	  $(if $(wildcard $(MONITOR_OUT)/monitor.md),--monitor $(MONITOR_OUT)/monitor.md) \
	  && echo "$$branch" > $(RETRAIN_DIR)/branch
	python -m tabml.paths reference > $(RETRAIN_DIR)/reference-path

# Runs in retrain.yml's pull-request job, which installs nothing of ours: the reference's path
# comes from retrain-compare, through the artifact, like the body.
retrain-pr:  ## Open the retraining pull request (CML): params, lock, reference, reports
	reference="$$(cat $(RETRAIN_DIR)/reference-path)"; \
	branch="$$(cat $(RETRAIN_DIR)/branch 2>/dev/null || echo "$(RETRAIN_BRANCH)")"; \
	$(CML) pr create --branch "$$branch" --title "Retrain on the newest data" \
	  --message "Retrain on the newest data" --body "$$(cat $(RETRAIN_DIR)/body.md)" \
	  --user-name "tabml retraining" --user-email "tabml-retraining@users.noreply.github.com" \
	  params.yaml dvc.lock reports "$$reference"

trigger-retrain:  ## Start the retraining workflow on the default branch (gh), saying drift was found
	$(GH) workflow run retrain.yml --ref "$(RETRAIN_REF)" -f drift=true

# --- Hyperparameter search (docs/tuning.md): `make tune` proposes, APPLY=1 applies -----------
# TRIALS, TUNE_SECONDS and WORKERS override params.yaml's tune.trials, tune.seconds and
# tune.workers; the summary goes to TUNE_OUT/tuning.{json,md,png}, the study to TUNE_STORAGE.
# With APPLY=1 the best settings go into params.yaml and `dvc repro` trains and evaluates them.
TRIALS ?=
TUNE_SECONDS ?=
WORKERS ?=
APPLY ?=
TUNE_OUT ?= reports
TUNE_STORAGE ?= $(BUILD)/tune/optuna.db
TUNE_BRANCH ?= tune/$(shell date -u +%Y%m%d-%H%M%S)
APPLYING := $(filter 1 true yes,$(APPLY))

.PHONY: tune tune-pr bench-tune

##@ Pipeline
tune: setup  ## Search hyperparameters on forward folds (TRIALS= TUNE_SECONDS= WORKERS=); APPLY=1 applies them
	dvc repro split
	python -m tabml.tune --out $(TUNE_OUT) --storage $(TUNE_STORAGE) \
	  $(if $(TRIALS),--trials "$(TRIALS)") $(if $(TUNE_SECONDS),--seconds "$(TUNE_SECONDS)") \
	  $(if $(WORKERS),--workers "$(WORKERS)") $(if $(APPLYING),--apply)
	$(if $(APPLYING),dvc repro)

# Runs in tune.yml's pull-request job, which installs nothing of ours.
##@ Continuous training
tune-pr:  ## Open the tuning pull request (CML): params.yaml, dvc.lock, reports; the summary as body
	$(CML) pr create --branch "$(TUNE_BRANCH)" --title "Tune the hyperparameters" \
	  --message "Tune the hyperparameters" --body "$$(cat $(TUNE_OUT)/tuning.md)" \
	  --user-name "tabml tuning" --user-email "tabml-tuning@users.noreply.github.com" \
	  params.yaml dvc.lock reports

##@ Benchmarks
bench-tune: setup  ## Time make tune's search with 1 and 2 workers on the shipped data (same seed, same trials)
	python benchmarks/tune.py

# --- GitHub repository settings: run once after forking (docs/github.md, First run on GitHub) --
# REPO=owner/name (default: the origin remote); REVIEWERS=user1,user2 approve production
# deploys; APPROVALS is how many approvals a pull request into main needs (0 when working
# alone); variable values come from the environment or GITHUB_SETUP_ENV (NAME=value lines,
# default github-setup.env). DRY_RUN=1 prints every API call and sends nothing. The token is
# GH_TOKEN, GITHUB_TOKEN or `gh auth token`; GITHUB_API_URL points it at GitHub Enterprise.
REPO ?=
REVIEWERS ?=
APPROVALS ?= 1
GITHUB_SETUP_ENV ?=
DRY_RUN ?=

.PHONY: github-setup

##@ GitHub
github-setup: setup  ## Set up the GitHub repository: environments, variables, Actions token, main protection
	python -m tabml.github_setup $(if $(REPO),--repo "$(REPO)") --reviewers "$(REVIEWERS)" \
	  --approvals "$(APPROVALS)" $(if $(GITHUB_SETUP_ENV),--env-file "$(GITHUB_SETUP_ENV)") \
	  $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run)
