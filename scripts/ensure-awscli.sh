#!/usr/bin/env bash
# Prints the path of an AWS CLI to use: the `aws` on PATH when it runs, else the
# pinned one from scripts/awscli-requirements.txt, installed (once) into
# <repo>/.awscli/venv. AWSCLI_PINNED=1 always takes the pinned one
# (`make test-deploy` does, so the rehearsal does not depend on the machine).
set -euo pipefail
if [[ "${AWSCLI_PINNED:-0}" != 1 ]] && command -v aws >/dev/null && aws --version >/dev/null 2>&1; then
  command -v aws
  exit 0
fi
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
venv="$PWD/.awscli/venv"
scripts/pinned-venv.sh check "$venv" scripts/awscli-requirements.txt \
  || scripts/pinned-venv.sh build "$venv" scripts/awscli-requirements.txt \
    "${PYTHON:-$(command -v python3.11 || command -v python3)}"
echo "$venv/bin/aws"
