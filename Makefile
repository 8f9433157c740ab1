# The front door. Each target is one line of intent; the logic lives in scripts/ and chalicelib/local/.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
STAGE ?= prod
CLIENT_SOURCES := client/pyproject.toml $(shell find client/src -name '*.py' 2>/dev/null)

.PHONY: help venv browser dev test test-unit test-e2e test-contract test-browser test-fuzz test-faults test-localstack test-iam test-artifact test-deploy dev-localstack package deploy destroy bench bench-coldstart capacity stats lint dlq-inspect dlq-redrive api-key api-key-revoke clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt $(CLIENT_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check ./client
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies and the client (./client)

browser: ## Debian's chromium + chromium-driver for tests/browser (apt-get install when missing; needs root)
	scripts/ensure-browser.sh

dev: $(STAMP) ## run the whole system: emulator, resources, samples, API on $PORT, consumers
	$(PY) -m chalicelib.local.stack

test: $(STAMP) browser ## unit, contract, infra, end-to-end and browser tiers (offline, a few minutes)
	$(PY) -m pytest -q tests --ignore=tests/fuzz --ignore=tests/faults --ignore=tests/iam/test_replay.py --ignore=tests/artifact --ignore=tests/deploy/test_rehearsal.py --ignore=tests/localstack

test-unit: $(STAMP) ## unit tier only (moto, in process)
	$(PY) -m pytest -q tests/unit

test-e2e: $(STAMP) ## end-to-end tier only (real processes over HTTP)
	$(PY) -m pytest -q tests/e2e

test-browser: $(STAMP) browser ## /app in headless Chromium against a dev stack; screenshots in build/
	$(PY) -m pytest -q tests/browser

test-contract: $(STAMP) ## routes, OpenAPI document and responses agree (moto, in process)
	$(PY) -m pytest -q tests/contract

test-fuzz: $(STAMP) ## schemathesis against a dev stack: >= 1,000 requests, no 5xx, all as documented
	$(PY) -m pytest -q tests/fuzz

test-faults: $(STAMP) ## fault injection against the real dev processes; table in build/faults-results.md
	$(PY) -m pytest -q tests/faults

test-iam: $(STAMP) ## IAM replay: AWS calls recorded in the real dev processes vs each role in build/$(STAGE)/sam.yaml; report in build/iam-report.md
	DELINEATE_IAM_REPLAY=1 STAGE=$(STAGE) $(PY) -m pytest -q tests/iam

test-localstack: $(STAMP) ## end-to-end tier against LocalStack in host mode
	scripts/test-localstack.sh

test-artifact: $(STAMP) ## the packaged zip (make package STAGE=prod first), unpacked read-only, every handler against the embedded emulator
	DELINEATE_ARTIFACT=build/prod/deployment.zip $(PY) -m pytest -q tests/artifact

dev-localstack: $(STAMP) ## `make dev` on LocalStack (host mode): starts it, deploys infra/, API + consumers + sweeper; Ctrl-C stops all
	scripts/dev-localstack.sh

test-deploy: $(STAMP) ## deploy rehearsal: scripts/deploy.sh deploy + destroy of build/$(STAGE) against LocalStack (host mode)
	STAGE=$(STAGE) scripts/test-deploy.sh

package: $(STAMP) ## build/$(STAGE)/sam.yaml: chalice package merged with infra/, then cfn-lint
	$(PY) scripts/package.py --stage $(STAGE)
	$(VENV)/bin/cfn-lint infra/template.yaml build/$(STAGE)/sam.yaml

deploy: package ## deploy build/$(STAGE) to the AWS account in your environment
	STAGE=$(STAGE) scripts/deploy.sh deploy

destroy: ## delete the deployed stack
	STAGE=$(STAGE) scripts/deploy.sh destroy

stats: $(STAMP) ## metrics of the running dev stack over the last MINUTES (default 15), from its EMF log lines
	$(PY) scripts/stats.py $(if $(MINUTES),--minutes $(MINUTES))

capacity: $(STAMP) ## ceilings of the packaged stack for a load profile (ARGS="--users 100000"), from build/prod + build/bench.json
	test -f build/prod/sam.yaml || $(MAKE) package STAGE=prod
	$(PY) scripts/capacity.py $(ARGS)

bench: $(STAMP) ## ratios side by side on fresh stacks -> build/bench.json + PNGs (BENCH_QUICK=1: reduced, for CI)
	$(PY) scripts/bench.py

bench-coldstart: $(STAMP) ## only the cold-start row of make bench: import app + GET / from the packaged zip over a bare boto3 client
	$(PY) scripts/bench_coldstart.py

lint: $(STAMP) ## ruff check (complexity too) + format check (ruff.toml), mypy (mypy.ini, client/mypy.ini), byte-compile and shell-check
	$(VENV)/bin/ruff check app.py chalicelib scripts tests client
	$(VENV)/bin/ruff format --check app.py chalicelib scripts tests client
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file client/mypy.ini client/src/delineate_client
	$(VENV)/bin/mypy --config-file client/mypy.ini tests/client/typing_usage.py  # as a user sees the installed package
	$(PY) -m compileall -q app.py chalicelib scripts tests client
	for f in scripts/*.sh infra/localstack/ready.d/*.sh; do [ ! -e "$$f" ] || bash -n "$$f" || exit 1; done

dlq-inspect: $(STAMP) ## show messages in the dead-letter queue of the running dev stack
	$(PY) -m chalicelib.local.dlq inspect

dlq-redrive: $(STAMP) ## move dead-lettered messages back to the work queue
	$(PY) -m chalicelib.local.dlq redrive

api-key: $(STAMP) ## create an API key on the running dev stack: NAME=... [RATE_LIMIT=N] [MAX_ACTIVE_JOBS=N]
	@test -n "$(NAME)" || { echo "usage: make api-key NAME=<name> [RATE_LIMIT=N] [MAX_ACTIVE_JOBS=N]" >&2; exit 2; }
	@$(PY) -m chalicelib.admin keys create --dev --name "$(NAME)" $(if $(RATE_LIMIT),--rate-limit "$(RATE_LIMIT)") $(if $(MAX_ACTIVE_JOBS),--max-active-jobs "$(MAX_ACTIVE_JOBS)")

api-key-revoke: $(STAMP) ## revoke an API key on the running dev stack: ID=...
	@test -n "$(ID)" || { echo "usage: make api-key-revoke ID=<key id>" >&2; exit 2; }
	@$(PY) -m chalicelib.admin keys revoke --dev "$(ID)"

clean: ## remove build output and local state
	rm -rf build .dev .pytest_cache
