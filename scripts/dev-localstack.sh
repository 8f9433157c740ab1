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
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"
port="${LOCALSTACK_PORT:-4566}"

"$here/localstack.sh" install
if "$here/localstack.sh" status >/dev/null 2>&1; then
  echo "dev-localstack: using the LocalStack already running on 127.0.0.1:$port (it stays up on exit)" >&2
else
  "$here/localstack.sh" start
  trap '"$here/localstack.sh" stop' EXIT
fi
# A trapped (not ignored) SIGINT: the runner still gets Ctrl-C and stops its
# children; this shell then finishes and the EXIT trap stops LocalStack.
trap 'echo "dev-localstack: stopping" >&2' INT TERM
status=0
AWS_ENDPOINT_URL="http://127.0.0.1:$port" .venv/bin/python -m chalicelib.local.stack || status=$?
exit "$status"
