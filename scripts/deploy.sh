#!/usr/bin/env bash
# Deploys the packaged stack to an AWS account, or tears it down.
#
#   scripts/deploy.sh deploy     upload build/$STAGE and create/update the stack
#   scripts/deploy.sh destroy    empty the storage bucket and delete the stack
#   scripts/deploy.sh outputs    print the stack outputs (EndpointURL, ...)
#
# Run `make package STAGE=...` (scripts/package.py) first: it writes
# build/$STAGE/sam.yaml and deployment.zip. Credentials and region come from
# the usual AWS CLI sources (AWS_PROFILE, AWS_REGION, ...); AWS_ENDPOINT_URL
# points every call elsewhere (`make test-deploy` rehearses against LocalStack).
# The `aws` on PATH is used, else a pinned one is installed (scripts/ensure-awscli.sh).
#
# Before it changes anything, deploy checks the account's Lambda concurrency
# quota (scripts/deploy_preflight.py): the stack's reservations must leave 100
# unreserved, or it stops and suggests parameter values that fit.
#
# Environment:
#   STAGE                      chalice stage that was packaged (default prod)
#   STACK_NAME                 default delineate-$STAGE; at most 45 characters,
#                              because the functions are named <stack>-<function>
#   DEPLOY_ARTIFACT_BUCKET     S3 bucket for deployment.zip and the template (which,
#                              at ~195 KB, is over the 51,200 bytes CloudFormation
#                              takes inline); created if missing. Default
#                              delineate-artifacts-<account>-<region>-<stage>
#   DEPLOY_PARAMETER_OVERRIDES optional, e.g. "WorkerMaximumConcurrency=20 MaxReceiveCount=5"
#   DESTROY_CONFIRM            set to the stack name to destroy without a prompt
set -euo pipefail

STAGE="${STAGE:-prod}"
STACK_NAME="${STACK_NAME:-delineate-${STAGE}}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${ROOT}/build/${STAGE}"
PYTHON="${PYTHON:-${ROOT}/.venv/bin/python}"
AWS_CLI=""

die() { echo "deploy: $*" >&2; exit 1; }

require_aws_cli() {
  [[ -n "${AWS_CLI}" ]] || AWS_CLI="$("${ROOT}/scripts/ensure-awscli.sh")" || die "no AWS CLI (see scripts/ensure-awscli.sh)"
}

aws() { "${AWS_CLI}" "$@"; }

region() {
  local configured="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  [[ -n "${configured}" ]] || configured="$(aws configure get region || true)"
  [[ -n "${configured}" ]] || die "no region: set AWS_REGION"
  echo "${configured}"
}

# The bucket for the Lambda code and the template; created (private, encrypted) if missing.
artifact_bucket() {
  local bucket="${DEPLOY_ARTIFACT_BUCKET:-}" where
  where="$(region)"
  if [[ -z "${bucket}" ]]; then
    bucket="delineate-artifacts-$(aws sts get-caller-identity --query Account --output text)-${where}-${STAGE}"
  fi
  if ! aws s3api head-bucket --bucket "${bucket}" >/dev/null 2>&1; then
    echo "deploy: creating artifact bucket s3://${bucket}" >&2
    if [[ "${where}" == us-east-1 ]]; then
      aws s3api create-bucket --bucket "${bucket}" >/dev/null
    else
      aws s3api create-bucket --bucket "${bucket}" \
        --create-bucket-configuration "LocationConstraint=${where}" >/dev/null
    fi
    aws s3api put-public-access-block --bucket "${bucket}" --public-access-block-configuration \
      BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  fi
  echo "${bucket}"
}

# Refuses reservations the account's concurrency quota cannot give (deploy_preflight.py).
preflight() {
  local settings already=0 name reserved
  settings="$(mktemp)"
  if ! aws lambda get-account-settings --output json >"${settings}"; then
    rm -f "${settings}"
    echo "deploy: cannot read the account's Lambda settings (lambda:GetAccountSettings)" >&2
    return 1
  fi
  # An update gives back what the stack's functions reserve today.
  while read -r name; do
    reserved="$(aws lambda get-function-concurrency --function-name "${name}" \
      --query ReservedConcurrentExecutions --output text 2>/dev/null || true)"
    [[ "${reserved}" =~ ^[0-9]+$ ]] && already=$((already + reserved))
  done < <("${PYTHON}" "${ROOT}/scripts/deploy_preflight.py" names \
    --template "${BUILD_DIR}/sam.yaml" --stack-name "${STACK_NAME}")
  local status=0
  "${PYTHON}" "${ROOT}/scripts/deploy_preflight.py" check --template "${BUILD_DIR}/sam.yaml" \
    --account-settings "${settings}" --overrides "${DEPLOY_PARAMETER_OVERRIDES:-}" \
    --already-reserved "${already}" || status=$?
  rm -f "${settings}"
  return "${status}"
}

stack_output() {
  aws cloudformation describe-stacks --stack-name "${STACK_NAME}" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

cmd_deploy() {
  require_aws_cli
  [[ -f "${BUILD_DIR}/sam.yaml" ]] || die "${BUILD_DIR}/sam.yaml is missing: run 'make package STAGE=${STAGE}' first"
  (( ${#STACK_NAME} <= 45 )) || die "STACK_NAME '${STACK_NAME}' is longer than 45 characters"
  preflight || die "refused before any change (see above)"
  local bucket
  bucket="$(artifact_bucket)"

  # Uploads CodeUri (deployment.zip) and rewrites it to the S3 location.
  aws cloudformation package \
    --template-file "${BUILD_DIR}/sam.yaml" \
    --s3-bucket "${bucket}" \
    --s3-prefix "${STACK_NAME}" \
    --output-template-file "${BUILD_DIR}/packaged.yaml"

  local -a overrides=()
  if [[ -n "${DEPLOY_PARAMETER_OVERRIDES:-}" ]]; then
    read -r -a overrides <<<"${DEPLOY_PARAMETER_OVERRIDES}"
    overrides=(--parameter-overrides "${overrides[@]}")
  fi
  # (The ${a[@]+...} form keeps `set -u` quiet for an empty array in bash 3.2.)
  # CAPABILITY_IAM: the stack creates the three function roles (unnamed, so
  # CAPABILITY_NAMED_IAM is not needed). `deploy` goes through a change set,
  # which expands the SAM transform without CAPABILITY_AUTO_EXPAND.
  # --s3-bucket: the CLI refuses a template over 51,200 bytes inline; ours is ~195 KB.
  aws cloudformation deploy \
    --template-file "${BUILD_DIR}/packaged.yaml" \
    --stack-name "${STACK_NAME}" \
    --s3-bucket "${bucket}" \
    --s3-prefix "${STACK_NAME}" \
    --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    --tags "app=delineate" "stage=${STAGE}" \
    ${overrides[@]+"${overrides[@]}"}

  cmd_outputs
}

cmd_outputs() {
  require_aws_cli
  aws cloudformation describe-stacks --stack-name "${STACK_NAME}" \
    --query "Stacks[0].Outputs[].[OutputKey,OutputValue]" --output table
}

cmd_destroy() {
  require_aws_cli
  if [[ "${DESTROY_CONFIRM:-}" != "${STACK_NAME}" ]]; then
    [[ -t 0 ]] || die "not a terminal: set DESTROY_CONFIRM=${STACK_NAME} to destroy without a prompt"
    local answer
    read -r -p "Delete stack ${STACK_NAME} with its jobs table and bucket contents? Type the stack name: " answer
    [[ "${answer}" == "${STACK_NAME}" ]] || die "not confirmed; nothing deleted"
  fi

  # CloudFormation cannot delete a bucket that still holds objects. The bucket
  # is not versioned, so removing the current objects empties it.
  local bucket
  bucket="$(stack_output BucketName 2>/dev/null || true)"
  if [[ -n "${bucket}" && "${bucket}" != "None" ]]; then
    echo "deploy: emptying s3://${bucket}"
    aws s3 rm "s3://${bucket}" --recursive --only-show-errors
  fi

  aws cloudformation delete-stack --stack-name "${STACK_NAME}"
  echo "deploy: waiting for ${STACK_NAME} to be deleted"
  aws cloudformation wait stack-delete-complete --stack-name "${STACK_NAME}"
  echo "deploy: ${STACK_NAME} deleted"
}

case "${1:-deploy}" in
  deploy) cmd_deploy ;;
  destroy) cmd_destroy ;;
  outputs) cmd_outputs ;;
  -h|--help|help) sed -n '2,30p' "$0" ;;
  *) die "unknown command '$1' (deploy | destroy | outputs)" ;;
esac
