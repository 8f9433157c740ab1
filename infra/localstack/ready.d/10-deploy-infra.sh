#!/bin/bash
# LocalStack READY hook (docker-compose.localstack.yml): deploy Delineate's data
# plane from infra/template.yaml, the same template the cloud stack is built
# from, so LocalStack and AWS get identical tables, queues and buckets.
#
# A non-zero exit marks the hook ERROR in /_localstack/init/ready, which the
# compose healthcheck reads: the container is only healthy once this succeeded.
set -euo pipefail

# LocalStack needs some credentials; their values are ignored ("test" -> account 000000000000).
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

stack="${DELINEATE_STACK_NAME:-delineate}"
# infra/ is mounted read-only at /opt/delineate/infra by the compose file.
template="${DELINEATE_TEMPLATE:-/opt/delineate/infra/template.yaml}"

echo "delineate: deploying ${template} as stack '${stack}' (${AWS_DEFAULT_REGION})"
# --no-fail-on-empty-changeset: re-running against a stack that already matches is success.
awslocal cloudformation deploy \
  --stack-name "${stack}" \
  --template-file "${template}" \
  --no-fail-on-empty-changeset

echo "delineate: stack '${stack}' outputs:"
awslocal cloudformation describe-stacks \
  --stack-name "${stack}" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' \
  --output text
