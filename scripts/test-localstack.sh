#!/usr/bin/env bash
# `make test-localstack`: the end-to-end tier against LocalStack (host mode, no Docker).
# Starts LocalStack on loopback, smoke-checks the data plane, lets the dev stack deploy infra/template.yaml into it
# through CloudFormation, runs tests/e2e against API + consumers + LocalStack, stops it.
# Then tests/localstack runs `make dev-localstack` (scripts/dev-localstack.sh), which starts and stops its own.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"
port="${LOCALSTACK_PORT:-4566}"
"$here/localstack.sh" install
"$here/localstack.sh" start
trap '"$here/localstack.sh" stop' EXIT
# The AWS behaviours the service relies on, checked one by one (clear failures first).
.venv/bin/python scripts/localstack_smoke.py --endpoint "http://127.0.0.1:${port}"
DELINEATE_E2E_ENDPOINT="http://127.0.0.1:${port}" .venv/bin/python -m pytest -q tests/e2e "$@"
"$here/localstack.sh" stop
trap - EXIT
# `make dev-localstack` brings its own LocalStack up and, on Ctrl-C, down again: run it with none running.
DELINEATE_DEV_LOCALSTACK=1 .venv/bin/python -m pytest -q tests/localstack
