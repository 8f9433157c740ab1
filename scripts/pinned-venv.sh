#!/usr/bin/env bash
# A venv holding exactly a pinned requirements file (installed --no-deps, so the
# file must be the complete set; `pip check` proves it). Shared by
# scripts/localstack.sh (LocalStack's runtime) and scripts/ensure-awscli.sh.
#
#   pinned-venv.sh check VENV REQUIREMENTS          exit 0 when VENV matches REQUIREMENTS
#   pinned-venv.sh build VENV REQUIREMENTS PYTHON   (re)create VENV with PYTHON and install
set -euo pipefail
[[ $# -ge 3 ]] || { echo "usage: $0 check VENV REQUIREMENTS | build VENV REQUIREMENTS PYTHON" >&2; exit 2; }
command=$1 venv=$2 requirements=$3
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)

case "$command" in
  check) [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] ;;
  build)
    python=${4:?build needs PYTHON}
    echo "pinned-venv: creating $venv with $python from $(basename "$requirements")" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    log="$venv.pip-install.log"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-deps -r "$requirements" >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      echo "pinned-venv: pip install failed (full log: $log)" >&2
      exit 1
    fi
    "$venv/bin/python" -m pip check >&2
    echo "$want" >"$stamp"
    ;;
  *) echo "$0: unknown command '$command'" >&2; exit 2 ;;
esac
