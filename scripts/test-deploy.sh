#!/usr/bin/env bash
# `make test-deploy`: the deploy rehearsal. The user's own scripts/deploy.sh
# deploys build/$STAGE into LocalStack (host mode, no Docker) through
# CloudFormation and destroys it again; tests/deploy asserts every resource
# reached CREATE_COMPLETE and destroy left only what the template retains.
# Functions are created but never run: LocalStack's Lambda gets our no-op
# runtime executor (scripts/localstack_executor), as it has no Docker to run them in.
set -euo pipefail
cd "$(dirname "$0")/.."
export STAGE="${STAGE:-prod}"
# Beyond the data plane's services: what the packaged stack adds (functions and
# their roles, the REST API, the sweeper's schedule, log groups, the webhook secret).
export LOCALSTACK_EXTRA_SERVICES="lambda,iam,sts,apigateway,events,logs,secretsmanager"

[[ -f "build/$STAGE/sam.yaml" ]] || make package STAGE="$STAGE"
AWSCLI_PINNED=1 scripts/ensure-awscli.sh >/dev/null
# A fresh LocalStack (a running one is refused): the rehearsal asserts on a clean account.
DELINEATE_DEPLOY_ENDPOINT="http://127.0.0.1:${LOCALSTACK_PORT:-4566}" \
  scripts/localstack.sh with -- .venv/bin/python -m pytest -q tests/deploy "$@"
