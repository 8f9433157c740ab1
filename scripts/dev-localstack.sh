#!/usr/bin/env bash
# `make dev-localstack`: `make dev` with LocalStack (host mode, no Docker) in
# place of the embedded emulator. Starts LocalStack unless one is running
# already, then runs the same runner as `make dev` (chalicelib.local.stack)
# with AWS_ENDPOINT_URL pointing at it: infra/template.yaml is deployed there
# through CloudFormation, then the API on $PORT, $LOCAL_CONSUMERS consumers and
# the sweeper start, with every `make dev` setting (DOWNLOAD_DELAY_*, ...).
# Ctrl-C stops the runner's processes and the LocalStack this script started
# (one it found running is left running).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/localstack.sh with --reuse -- .venv/bin/python -m chalicelib.local.stack
