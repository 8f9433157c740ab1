#!/usr/bin/env bash
# Prints the path of an AWS CLI to use: the `aws` on PATH when it runs, else the
# pinned one from scripts/awscli-requirements.txt, installed (once) into
# <repo>/.awscli/venv. AWSCLI_PINNED=1 always takes the pinned one
# (`make test-deploy` does, so the rehearsal does not depend on the machine).
set -euo pipefail
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname -- "$SCRIPT_DIR")
REQUIREMENTS="$SCRIPT_DIR/awscli-requirements.txt"
VENV="$REPO/.awscli/venv"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [[ "${AWSCLI_PINNED:-0}" != 1 ]] && command -v aws >/dev/null && aws --version >/dev/null 2>&1; then
  command -v aws
  exit 0
fi
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "ensure-awscli: installing $(grep '^awscli==' "$REQUIREMENTS") into $VENV" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS" >&2
  "$VENV/bin/python" -m pip check >&2
  echo "$want" >"$stamp"
fi
echo "$VENV/bin/aws"
