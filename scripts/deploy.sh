#!/usr/bin/env bash
# Deploys the packaged stack to an AWS account, or tears it down.
#
#   scripts/deploy.sh deploy     upload build/$STAGE and create/update the stack
#   scripts/deploy.sh destroy    empty the storage bucket and delete the stack
#   scripts/deploy.sh outputs    print the stack outputs (EndpointURL, ...)
#
# Run `make package STAGE=...` (scripts/package.py) first: it writes
# build/$STAGE/sam.yaml and deployment.zip. Credentials and region come from
# the usual AWS CLI sources (AWS_PROFILE, AWS_REGION, ...).
#
# Environment:
#   STAGE                      chalice stage that was packaged (default prod)
#   STACK_NAME                 default delineate-$STAGE; at most 45 characters,
#                              because the functions are named <stack>-<function>
#   DEPLOY_ARTIFACT_BUCKET     S3 bucket that `aws cloudformation package` uploads
#                              deployment.zip to (required for deploy)
#   DEPLOY_PARAMETER_OVERRIDES optional, e.g. "WorkerMaximumConcurrency=20 MaxReceiveCount=5"
#   DESTROY_CONFIRM            set to the stack name to destroy without a prompt
set -euo pipefail

STAGE="${STAGE:-prod}"
STACK_NAME="${STACK_NAME:-delineate-${STAGE}}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${ROOT}/build/${STAGE}"

die() { echo "deploy: $*" >&2; exit 1; }

require_aws_cli() {
  command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not installed"
}

stack_output() {
  aws cloudformation describe-stacks --stack-name "${STACK_NAME}" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

cmd_deploy() {
  require_aws_cli
  [[ -f "${BUILD_DIR}/sam.yaml" ]] || die "${BUILD_DIR}/sam.yaml is missing: run 'make package STAGE=${STAGE}' first"
  [[ -n "${DEPLOY_ARTIFACT_BUCKET:-}" ]] || die "set DEPLOY_ARTIFACT_BUCKET to an S3 bucket for the Lambda code"
  (( ${#STACK_NAME} <= 45 )) || die "STACK_NAME '${STACK_NAME}' is longer than 45 characters"

  # Uploads CodeUri (deployment.zip) and rewrites it to the S3 location.
  aws cloudformation package \
    --template-file "${BUILD_DIR}/sam.yaml" \
    --s3-bucket "${DEPLOY_ARTIFACT_BUCKET}" \
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
  aws cloudformation deploy \
    --template-file "${BUILD_DIR}/packaged.yaml" \
    --stack-name "${STACK_NAME}" \
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
  -h|--help|help) sed -n '2,20p' "$0" ;;
  *) die "unknown command '$1' (deploy | destroy | outputs)" ;;
esac
