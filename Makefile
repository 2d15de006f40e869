# Torii: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PYTHON) hack/stack.py

# Where the gateways' code comes from when the registries refuse it: the team's mirrors beside the checkout.
# A user whose own GOPROXY serves Tyk, or whose Maven repositories serve Otoroshi, needs neither.
SHARED := $(abspath $(CURDIR)/../shared)
ifneq ($(wildcard $(SHARED)/goproxy),)
export TORII_GOPROXY ?= file://$(SHARED)/goproxy
endif
ifneq ($(wildcard $(SHARED)/maven),)
export TORII_MAVEN_REPO ?= $(SHARED)/maven
endif

.PHONY: help venv deps stack-up stack-down stack-status lint typecheck unit e2e test crds run demo demo-stop bench bench-compare bench-failover bench-adoption chaos clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## create the virtualenv with the operator and dev tools

deps: ## install system packages the stack needs (apt; idempotent)
	bash hack/install-deps.sh

stack-up: ## build (cached) and start the local stack; idempotent; writes .stack/env (NODES=3: three Tyk nodes)
	TORII_TYK_NODES=$${TORII_TYK_NODES:-$${NODES:-1}} $(STACK) up

stack-down: ## stop exactly the processes stack-up started (and the demo's)
	bash hack/demo.sh stop
	$(STACK) down

stack-status: ## health, ports and memory of the local stack
	$(STACK) status

lint: venv ## ruff lint + format check
	$(VENV)/bin/ruff check operator tests hack bench
	$(VENV)/bin/ruff format --check operator tests hack bench

typecheck: venv ## mypy (strict) on the operator package
	$(VENV)/bin/mypy

unit: venv ## fast tests only (no stack)
	$(VENV)/bin/pytest -m 'not e2e'

e2e: venv ## end-to-end tests against the real local stack (started if needed)
	$(VENV)/bin/pytest -m e2e

test: venv lint typecheck ## everything: ruff, mypy, unit and end-to-end tests (two workers, then serial modules)
	PY=$(PY) bash hack/test.sh

crds: venv ## regenerate crds/ (and the chart's copy, and its tenancy schema) from the pydantic models
	$(VENV)/bin/torii crds --write crds/
	$(VENV)/bin/torii crds --write helm/torii/crds/
	$(PY) hack/chart_schema.py

run: venv stack-up ## run the operator in the foreground against the local stack (gateways `tyk`, `otoroshi`)
	. .stack/env && kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
	. .stack/env && $(PY) hack/local_config.py
	. .stack/env && $(VENV)/bin/torii run --standalone --config .stack/torii.yaml

demo: venv ## stack, CRDs, operator, examples, and a request through each gateway
	bash hack/demo.sh

demo-stop: ## stop the demo's operator and upstream
	bash hack/demo.sh stop

bench: venv stack-up ## benchmark: N GatewayAPIs to Ready and served (make bench N=1000 GATEWAY=otoroshi ENTITY=services; NODES=3: Tyk nodes)
	. .stack/env && $(PY) bench/gatewayapi.py --count $${N:-200} --gateway $${GATEWAY:-tyk} --entity $${ENTITY:-routes} --tyk-nodes $${NODES:-1}

chaos: venv stack-up ## chaos scenarios at full size on the real stack, then the table of figures
	. .stack/env && kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
	. .stack/env && $(PY) bench/chaos_report.py

bench-failover: venv stack-up ## two replicas, the active one killed in the middle of a burst (make bench-failover N=1000)
	. .stack/env && $(PY) bench/failover.py --count $${N:-1000}

bench-compare: venv stack-up ## tyk-operator v0.18.0 and Torii side by side on the same Tyk (make bench-compare N=1000)
	. .stack/env && $(PY) bench/compare_tyk_operator.py --count $${N:-100}

bench-adoption: venv stack-up ## adopt N hand-made APIs + N keys under client traffic (make bench-adoption N=1000 GATEWAY=otoroshi)
	. .stack/env && kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
	. .stack/env && $(PY) bench/adoption.py --count $${N:-200} --gateway $${GATEWAY:-tyk}

clean: stack-down ## stop the stack and remove local state (not the build cache)
	rm -rf .stack .pytest_cache .mypy_cache .ruff_cache
