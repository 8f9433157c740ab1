#!/usr/bin/env bash
# `make test-deploy`: the deploy rehearsal. The user's own scripts/deploy.sh
# deploys build/$STAGE into LocalStack (host mode, no Docker) through
# CloudFormation and destroys it again; tests/deploy asserts every resource
# reached CREATE_COMPLETE and destroy left only what the template retains.
# Functions are created but never run: LocalStack's Lambda gets our no-op
# runtime executor (scripts/localstack_executor), as it has no Docker to run them in.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"
export STAGE="${STAGE:-prod}"
port="${LOCALSTACK_PORT:-4566}"
# Beyond the data plane's services: what the packaged stack adds (functions and
# their roles, the REST API, the sweeper's schedule, log groups, the webhook secret).
export LOCALSTACK_EXTRA_SERVICES="lambda,iam,sts,apigateway,events,logs,secretsmanager"

[[ -f "build/$STAGE/sam.yaml" ]] || make package STAGE="$STAGE"
if "$here/localstack.sh" status >/dev/null 2>&1; then
  echo "test-deploy: LocalStack is already running; stop it (scripts/localstack.sh stop): the rehearsal needs a fresh account" >&2
  exit 1
fi
"$here/localstack.sh" install
AWSCLI_PINNED=1 "$here/ensure-awscli.sh" >/dev/null
"$here/localstack.sh" start
trap '"$here/localstack.sh" stop' EXIT
DELINEATE_DEPLOY_ENDPOINT="http://127.0.0.1:${port}" .venv/bin/python -m pytest -q tests/deploy "$@"
